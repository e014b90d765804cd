"""4DME: ``4DME_Labelling_Micro_release v1.xlsx`` joined with ``gray_micro/<sub>/<clip>/``.

The annotation (REFERENCE.md section 11) has the columns ``sub_ID, fold_name, Emotion,
Onset, Apex, Offset, AUs``; frame folders are ``<sub_ID>/<fold_name>/`` under
``gray_micro/`` (cropped: ``gray_micro_crop/``). Frame numbers may load as floats (``12.0``)
and are read as integers. An AU written with ``(k)`` (``AU4(k)``) is kept as written; the AU
parser decides what it means. Some clips carry more than one emotion (``Negative+Surprise``):
the label is kept as written, every part must be a 4DME emotion, and a label scheme that
does not map the combination counts it as left out. The 2D frames are 60 fps.
"""

from __future__ import annotations

import re
from pathlib import Path

from mer_cache.catalogue.build import (
    FrameSelection, as_bool, check_choice, choose_base, clip_from_folder, norm_label, report_unannotated,
    require_root,
)
from mer_cache.catalogue.clip import Clip
from mer_cache.catalogue.problems import UNKNOWN_LABEL, ProblemLog
from mer_cache.catalogue.xlsx import find_annotation, normalise_subject, parse_frame, read_annotation

FPS = 60.0  # 4DME 2D (gray) camera rate
EMOTIONS = frozenset({"positive", "negative", "surprise", "repression", "others", "other"})

COLUMNS = {
    "subject": ("sub_ID", "subID", "Subject"),
    "filename": ("fold_name", "foldname", "Filename"),
    "onset": ("Onset", "OnsetFrame"),
    "apex": ("Apex", "ApexFrame"),
    "offset": ("Offset", "OffsetFrame"),
    "emotion": ("Emotion", "Estimated Emotion"),
}
OPTIONAL = {"action_units": ("AUs", "AU", "Action Units")}
_PARTS = re.compile(r"\s*[+,/&]\s*")


def check_emotion(raw: object, *, where: Path, context: str, clip_id: str,
                  problems: ProblemLog) -> str | None:
    """The label as written when each of its ``+``-joined parts is a 4DME emotion, else None."""
    text = "" if raw is None else str(raw).strip()
    parts = [norm_label(p) for p in _PARTS.split(text) if p.strip()]
    if parts and all(p in EMOTIONS for p in parts):
        return text
    problems.fatal(UNKNOWN_LABEL, where,
                   f"{context}: label {text or '(empty)'!r} is not a 4DME emotion (known: "
                   f"{', '.join(sorted(EMOTIONS))}, or several joined by '+'). Fix the label, or use "
                   "the 'manifest' loader for relabelled data.", clip_id=clip_id)
    return None


def load_4dme(
    root: Path | str,
    *,
    problems: ProblemLog,
    frames: FrameSelection = "all",
    cropped: bool = False,
    annotation: Path | str | None = None,
) -> list[Clip]:
    """4DME micro-expression clips, one per annotation row.

    Parameters
    ----------
    root : Path
        The dataset folder (holding ``gray_micro/`` or ``gray_micro_crop/`` and the xlsx),
        or the frame folder itself.
    problems : ProblemLog
        Receives missing folders, unknown labels and annotation quirks.
    frames : {"all", "onset-offset"}
        Keep every frame of the folder, or only onset..offset.
    cropped : bool
        Read ``gray_micro_crop/`` instead of ``gray_micro/``.
    annotation : Path, optional
        The xlsx; by default ``4DME_Labelling_Micro*.xlsx`` found near ``root``.
    """
    root = require_root(root, dataset="4dme")
    check_choice(frames, ("all", "onset-offset"), option="frames", dataset="4dme")
    cropped = as_bool(cropped, option="cropped", dataset="4dme")
    xlsx = find_annotation(root, patterns=("4DME_Labelling_Micro*.xlsx", "4DME*Micro*.xlsx", "4DME*.xlsx"),
                           dataset="4DME", given=annotation)
    rows = read_annotation(xlsx, columns=COLUMNS, optional=OPTIONAL, problems=problems)
    subjects = [normalise_subject(r["subject"], width=0) for r in rows]
    names = ("gray_micro_crop", "4DME_gray_micro_crop") if cropped else ("gray_micro", "4DME_gray_micro")
    base = choose_base(root, [*(root / n for n in names), root], subjects, dataset="4DME",
                       expected=f"{names[0]}/<sub_ID>/<fold_name>/*.jpg")
    clips: list[Clip] = []
    for r, subject in zip(rows, subjects):
        name = str(r["filename"]).strip()
        clip_id = f"4dme/{subject}/{name}"
        context = f"row {r.row} of {xlsx.name}"
        label = check_emotion(r["emotion"], where=xlsx, context=context, clip_id=clip_id, problems=problems)
        nums = {k: parse_frame(r[k], what=k, path=xlsx, row=r.row, problems=problems, clip_id=clip_id)
                for k in ("onset", "apex", "offset")}
        if label is None:
            continue
        clip = clip_from_folder(
            dataset="4dme", subject=subject, clip_name=name, folder=base / subject / name, label=label,
            fps=FPS, problems=problems, context=context, frames=frames, **nums,
            attrs={"action_units": r["action_units"], "annotation_row": r.row, "cropped": cropped})
        if clip is not None:
            clips.append(clip)
    report_unannotated(base, {(s, str(r["filename"]).strip()) for s, r in zip(subjects, rows)},
                       set(subjects), problems, dataset="4DME", xlsx=xlsx)
    return clips
