"""``--face auto``: align raw recordings, leave cropped releases as they are.

- ``smic``, ``casme2``, ``samm``, ``casme3``, ``megc2019``: ``align``, unless the frames come
  from a cropped release (a folder named ``Cropped``, ``CASME2_Cropped``, ``cropped``,
  ``SMIC_all_cropped`` or ``SAMM_CROP`` on their path): ``none``.
- A dataset written by ``mer-cache synth``: ``align`` for ``--layout raw``, ``none`` for the
  others (their frames are already tight face crops). Its ``synth.json`` says which.
- ``folder``, ``video``, ``manifest``: ``none`` (nothing says what the frames hold; pass
  ``--face align`` for raw footage).
"""

from __future__ import annotations

import json
from pathlib import Path

from mer_cache.catalogue.clip import Clip
from mer_cache.errors import ConfigError

FACE_MODES = ("auto", "align", "none")
RAW_DATASETS = ("smic", "casme2", "samm", "casme3", "megc2019")
CROPPED_FOLDERS = {"cropped", "casme2_cropped", "smic_all_cropped", "samm_crop"}


def _synth_layout(clip: Clip) -> str | None:
    for parent in list(clip.source.parents)[:6]:
        manifest = parent / "synth.json"
        if manifest.is_file():
            try:
                return json.loads(manifest.read_text()).get("layout")
            except (OSError, ValueError):
                return None
    return None


def _cropped(clip: Clip) -> bool:
    return any(part.lower() in CROPPED_FOLDERS for part in Path(clip.source).parts)


def resolve_face_mode(mode: str, clips: list[Clip]) -> str:
    """``align`` or ``none`` for ``mode`` (``auto`` decided from the clips, see module doc)."""
    if mode not in FACE_MODES:
        raise ConfigError(f"--face must be one of {', '.join(FACE_MODES)}, got {mode!r}.")
    if mode != "auto" or not clips:
        return "none" if mode == "auto" else mode
    first = clips[0]
    layout = _synth_layout(first)
    if layout is not None:
        return "align" if layout == "raw" else "none"
    if first.dataset in RAW_DATASETS and not all(_cropped(c) for c in clips):
        return "align"
    return "none"
