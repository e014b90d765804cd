"""Dataset name -> loader registry, and the one entry point that loads a catalogue.

Every loader has the signature ``loader(root, *, problems, **options) -> list[Clip]`` and
collects what is wrong in ``problems``. :func:`scan_dataset` runs one and checks what all
datasets share (unique clip ids); :func:`load_catalogue` then warns about the quirks and
raises on fatal problems, listing them all in one message.
"""

from __future__ import annotations

import inspect
import warnings
from collections import Counter
from pathlib import Path
from typing import Callable, Literal

from mer_cache.catalogue.casme import load_casme
from mer_cache.catalogue.casme2 import load_casme2
from mer_cache.catalogue.casme3 import load_casme3
from mer_cache.catalogue.casme3c import load_casme3_ac, load_casme3c
from mer_cache.catalogue.clip import Clip
from mer_cache.catalogue.folder import load_folder, load_videos
from mer_cache.catalogue.fourdme import load_4dme
from mer_cache.catalogue.manifest import load_manifest
from mer_cache.catalogue.megc2019 import load_megc2019
from mer_cache.catalogue.mmew import load_mmew
from mer_cache.catalogue.problems import (
    ANNOTATION_FILE, DUPLICATE_CLIP, MISSING_FOLDER, NO_FRAMES, UNKNOWN_LABEL, AnnotationFileNote,
    DatasetWarning, Problem, ProblemLog,
)
from mer_cache.catalogue.samm import load_samm
from mer_cache.catalogue.smic import load_smic
from mer_cache.catalogue.smic_e import load_smic_e
from mer_cache.errors import ConfigError, DatasetError, LabelError

Loader = Callable[..., list[Clip]]

DATASETS: dict[str, Loader] = {
    "smic": load_smic,
    "casme2": load_casme2,
    "samm": load_samm,
    "casme3": load_casme3,
    "megc2019": load_megc2019,
    "casme": load_casme,
    "4dme": load_4dme,
    "mmew": load_mmew,
    "casme3c": load_casme3c,
    "casme3-ac": load_casme3_ac,
    "smic-e": load_smic_e,
    "folder": load_folder,
    "video": load_videos,
    "manifest": load_manifest,
}

_SHOWN = 10  # problems listed in an error message; `datasets check` shows them all
_WARNED = 20  # python warnings emitted per load before one summary warning


def get_loader(dataset: str) -> Loader:
    """The loader of a dataset name; an unknown name lists the known ones."""
    if dataset not in DATASETS:
        raise DatasetError(f"Unknown dataset '{dataset}'. Known datasets: {', '.join(DATASETS)}.")
    return DATASETS[dataset]


def loader_options(dataset: str) -> dict[str, object]:
    """Option name -> default of a dataset's loader (what ``-o key=value`` accepts)."""
    params = inspect.signature(get_loader(dataset)).parameters
    return {n: p.default for n, p in params.items()
            if p.kind is p.KEYWORD_ONLY and n != "problems"}


def scan_dataset(dataset: str, root: Path | str, **options) -> tuple[list[Clip], list[Problem]]:
    """Run a loader and return its clips with every problem found.

    Raises
    ------
    DatasetError, ConfigError
        For problems that stop the loader itself (no root, no annotation file, missing
        column) and for an unknown option.
    """
    loader = get_loader(dataset)
    known = loader_options(dataset)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ConfigError(
            f"The {dataset} loader has no option {', '.join(unknown)}; its options are "
            f"{', '.join(f'{k} (default {v!r})' for k, v in known.items()) or 'none'}."
        )
    log = ProblemLog()
    clips = loader(root, problems=log, **options)
    counts = Counter(c.clip_id for c in clips)
    for clip_id, n in sorted(counts.items()):
        if n > 1:
            log.fatal(DUPLICATE_CLIP, None,
                      f"clip id {clip_id} is used by {n} clips; rename the folders so that clip "
                      "names are unique within a subject.", clip_id=clip_id)
    return clips, log.items


def load_catalogue(
    dataset: str,
    root: Path | str,
    *,
    on_missing: Literal["raise", "skip"] = "raise",
    **options,
) -> list[Clip]:
    """Clips of a dataset copy, after checking it.

    Parameters
    ----------
    dataset : str
        A name of :data:`DATASETS` (``smic``, ``casme2``, ``samm``, ``casme3``, ``megc2019``,
        ``casme``, ``4dme``, ``mmew``, ``casme3c``, ``casme3-ac``, ``smic-e``, ``folder``,
        ``video``, ``manifest``).
    root : Path
        The dataset folder (for ``manifest``: the CSV).
    on_missing : {"raise", "skip"}
        ``skip`` leaves out clips whose folder is missing or holds no frames (with a
        warning) instead of raising.
    **options
        Loader options, e.g. ``modality="VIS"`` (smic), ``frames="onset-offset"`` (casme2).

    Returns
    -------
    list of Clip

    Warns
    -----
    DatasetWarning
        For known quirks of official files (apex ``/``, missing apex, trailing text rows).

    Raises
    ------
    DatasetError
        Listing up to 10 fatal problems (missing folders, clips without frames, ...).
    LabelError
        When the only fatal problems are unknown labels.
    """
    if on_missing not in ("raise", "skip"):
        raise ConfigError(f"on_missing={on_missing!r} is not one of raise, skip.")
    clips, problems = scan_dataset(dataset, root, **options)
    if on_missing == "skip":
        problems = [Problem("warning", p.kind, p.path, p.message + " (skipped)", p.clip_id)
                    if p.severity == "fatal" and p.kind in (MISSING_FOLDER, NO_FRAMES) else p
                    for p in problems]
    for p in problems:  # which annotation file was read, always
        if p.severity == "info" and p.kind == ANNOTATION_FILE:
            warnings.warn(str(p), AnnotationFileNote, stacklevel=2)
    warn = [p for p in problems if p.severity == "warning"]
    for p in warn[:_WARNED]:
        warnings.warn(str(p), DatasetWarning, stacklevel=2)
    if len(warn) > _WARNED:
        warnings.warn(f"{len(warn) - _WARNED} more {dataset} warnings; run `mer-cache datasets check "
                      f"--dataset {dataset} --root {root}` to see them all.", DatasetWarning, stacklevel=2)
    fatal = [p for p in problems if p.severity == "fatal"]
    if fatal:
        lines = "\n".join(f"  - {p}" for p in fatal[:_SHOWN])
        more = f"\n  ... and {len(fatal) - _SHOWN} more." if len(fatal) > _SHOWN else ""
        kind = LabelError if all(p.kind == UNKNOWN_LABEL for p in fatal) else DatasetError
        raise kind(
            f"{len(fatal)} problem(s) in the {dataset} data at {root}:\n{lines}{more}\n"
            f"Fix them, or run `mer-cache datasets check --dataset {dataset} --root {root}` for "
            "the full report; to leave out clips whose frames are missing, pass on_missing='skip' "
            "(CLI: --dataset-option on_missing=skip)."
        )
    return clips
