"""``--face auto``: align raw recordings, leave cropped releases as they are.

- the raw recordings of ``smic``, ``casme2``, ``samm``, ``casme3``, ``megc2019``, ``casme``,
  ``4dme``, ``casme3c``, ``casme3-ac`` and ``smic-e``: ``align``, unless every clip comes from
  a cropped release (its loader read it with ``cropped=true``, or a folder named
  ``Cropped``, ``CASME2_Cropped``, ``CASME_Cropped``, ``cropped``, ``SMIC_all_cropped``,
  ``SAMM_CROP`` or ``gray_micro_crop`` is on its path): ``none``.
- A dataset written by ``mer-cache synth``: ``align`` for ``--layout raw``, ``none`` for the
  others (their frames are already tight face crops). Its ``synth.json`` says which.
- ``folder``, ``video``, ``manifest``, and ``mmew`` (its release layout does not say whether
  its frames are cropped): ``none``; pass ``--face align`` for raw footage.
"""

from __future__ import annotations

import json
from pathlib import Path

from mer_cache.catalogue.clip import Clip
from mer_cache.errors import ConfigError

FACE_MODES = ("auto", "align", "none")
RAW_DATASETS = ("smic", "casme2", "samm", "casme3", "megc2019", "casme", "4dme", "casme3c",
                "casme3-ac", "smic-e")
CROPPED_FOLDERS = {"cropped", "casme2_cropped", "casme_cropped", "smic_all_cropped", "samm_crop",
                   "gray_micro_crop"}


def synth_manifest(clip: Clip) -> Path | None:
    """The ``synth.json`` of the ``mer-cache synth`` dataset ``clip`` comes from, or None.

    Looked for in the 6 folders above the clip's folder (the smic layout's clips are 4
    below the root: ``HS/s1/micro/negative/<clip>``). ``--face auto`` and the Grad-CAM
    regions ``auto`` both find the synthetic data this way.
    """
    for parent in list(clip.source.parents)[:6]:
        manifest = parent / "synth.json"
        if manifest.is_file():
            return manifest
    return None


def _synth_layout(clip: Clip) -> str | None:
    manifest = synth_manifest(clip)
    if manifest is None:
        return None
    try:
        return json.loads(manifest.read_text()).get("layout")
    except (OSError, ValueError):
        return None


def _cropped(clip: Clip) -> bool:
    return bool(clip.attrs.get("cropped")) or any(
        part.lower() in CROPPED_FOLDERS for part in Path(clip.source).parts)


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
    # a composite (megc2019) mixes releases: one raw clip makes the whole cache aligned
    if any(c.dataset in RAW_DATASETS and not _cropped(c) for c in clips):
        return "align"
    return "none"
