"""MMEW: ``MMEW_Micro_Exp.xlsx`` joined with ``Micro_Expression/<emotion>/<clip>/``.

MMEW files its micro-expression clips by emotion, not by subject (REFERENCE.md section 11,
meb's ``Mmew``): ``Micro_Expression/happiness/S01_0101/1.jpg``. The xlsx columns are
``Subject, Filename, OnsetFrame, ApexFrame, OffsetFrame, Action Units, Estimated Emotion,
remarks``; the emotion folder is found by the row's emotion, compared without case. Apexes
or offsets that fall outside the clip are warnings (meb overwrites 16 of them by row
position). Recorded at 90 fps.
"""

from __future__ import annotations

from pathlib import Path

from mer_cache.catalogue.build import (
    FrameSelection, check_choice, check_label, clip_from_folder, norm_label, require_root,
)
from mer_cache.catalogue.clip import Clip
from mer_cache.catalogue.problems import UNANNOTATED_FOLDER, ProblemLog
from mer_cache.catalogue.xlsx import find_annotation, normalise_subject, parse_frame, read_annotation
from mer_cache.errors import DatasetError

FPS = 90.0  # MMEW camera rate
LABELS = frozenset({"happiness", "surprise", "anger", "disgust", "fear", "sadness", "others", "other"})

COLUMNS = {
    "subject": ("Subject",),
    "filename": ("Filename", "File name"),
    "onset": ("OnsetFrame", "Onset Frame", "Onset"),
    "apex": ("ApexFrame", "Apex Frame", "Apex"),
    "offset": ("OffsetFrame", "Offset Frame", "Offset"),
    "emotion": ("Estimated Emotion", "Emotion"),
}
OPTIONAL = {"action_units": ("Action Units", "AU", "AUs"), "remarks": ("remarks", "Remark")}


def find_emotion_base(root: Path, emotions: set[str]) -> Path:
    """The folder holding the emotion folders (``Micro_Expression/`` or the root itself).

    Raises
    ------
    DatasetError
        When no candidate holds any emotion folder named in the annotation.
    """
    candidates = [root / "Micro_Expression", root / "MMEW" / "Micro_Expression", root / "Micro-Expression",
                  root]
    best, best_n = None, 0
    for cand in candidates:
        if cand.is_dir():
            n = len(emotions & {norm_label(p.name) for p in cand.iterdir() if p.is_dir()})
            if n > best_n:
                best, best_n = cand, n
    if best is None:
        raise DatasetError(
            f"No MMEW emotion folders ({', '.join(sorted(emotions))}) found under {root}. The expected "
            "layout is Micro_Expression/<emotion>/<Filename>/*.jpg next to MMEW_Micro_Exp.xlsx; point "
            "--root at the folder that holds it.")
    return best


def load_mmew(
    root: Path | str,
    *,
    problems: ProblemLog,
    frames: FrameSelection = "all",
    annotation: Path | str | None = None,
) -> list[Clip]:
    """MMEW micro-expression clips, one per annotation row.

    Parameters
    ----------
    root : Path
        The dataset folder (holding ``Micro_Expression/`` and the xlsx) or
        ``Micro_Expression/`` itself.
    problems : ProblemLog
        Receives missing folders, unknown labels and annotation quirks.
    frames : {"all", "onset-offset"}
        Keep every frame of the folder, or only onset..offset.
    annotation : Path, optional
        The xlsx; by default ``MMEW_Micro_Exp*.xlsx`` found near ``root``.
    """
    root = require_root(root, dataset="mmew")
    check_choice(frames, ("all", "onset-offset"), option="frames", dataset="mmew")
    xlsx = find_annotation(root, patterns=("MMEW_Micro_Exp*.xlsx", "MMEW*Micro*.xlsx", "MMEW*.xlsx"),
                           dataset="MMEW", given=annotation)
    rows = read_annotation(xlsx, columns=COLUMNS, optional=OPTIONAL, problems=problems)
    base = find_emotion_base(root, {norm_label(str(r["emotion"] or "")) for r in rows})
    folder_of = {norm_label(p.name): p for p in base.iterdir() if p.is_dir()}
    clips: list[Clip] = []
    annotated: set[Path] = set()
    for r in rows:
        subject = normalise_subject(r["subject"], width=0)
        name = str(r["filename"]).strip()
        clip_id = f"mmew/{subject}/{name}"
        context = f"row {r.row} of {xlsx.name}"
        label = check_label(r["emotion"], LABELS, dataset="MMEW", where=xlsx, context=context,
                            clip_id=clip_id, problems=problems)
        nums = {k: parse_frame(r[k], what=k, path=xlsx, row=r.row, problems=problems, clip_id=clip_id)
                for k in ("onset", "apex", "offset")}
        if label is None:
            continue
        folder = folder_of.get(norm_label(label), base / label) / name
        annotated.add(folder)
        clip = clip_from_folder(
            dataset="mmew", subject=subject, clip_name=name, folder=folder, label=label, fps=FPS,
            problems=problems, context=context, frames=frames, **nums,
            attrs={"action_units": r["action_units"], "remarks": r["remarks"], "annotation_row": r.row})
        if clip is not None:
            clips.append(clip)
    for edir in (d for key, d in sorted(folder_of.items()) if key in LABELS):  # not Macro_Expression/
        for folder in sorted(p for p in edir.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if folder not in annotated:
                problems.warning(UNANNOTATED_FOLDER, folder,
                                 f"clip folder not named in {xlsx.name}; it is left out of the MMEW catalogue.")
    return clips
