"""SMIC-E (SMIC-HS-E, -VIS-E, -NIR-E): long videos with a micro-expression annotated inside.

The annotation (REFERENCE.md sections 5 and 11) is ``SMIC-HS-E_annotation.xlsx`` with the
columns ``Subject, Filename, OnsetF, OffsetF, Emotion, FirstF`` (a later version adds
``ApexF``), followed by free-text rows that are skipped with a warning. Frames are
``s01/<Filename>/image{6-digit}.jpg``. OnsetF/OffsetF are read as the numbers of the image
files; FirstF, the number of the video's first frame, is kept in ``attrs`` and checked
against the folder (a mismatch is a warning: the onset may then be counted from FirstF).
A clip is one row and by default keeps the whole long video (``frames="all"``), onset and
offset marking the micro-expression inside it; a video with several rows gives several
clips, named ``<Filename>_<OnsetF>``. HS is 100 fps, VIS and NIR 25 fps.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from mer_cache.catalogue.build import (
    FrameSelection, check_choice, check_label, choose_base, clip_from_folder, report_unannotated,
    require_root,
)
from mer_cache.catalogue.clip import Clip, frame_number
from mer_cache.catalogue.problems import ANNOTATION_QUIRK, ProblemLog
from mer_cache.catalogue.smic import FPS as SMIC_FPS, MICRO_LABELS
from mer_cache.catalogue.xlsx import find_annotation, normalise_subject, parse_frame, read_annotation

COLUMNS = {
    "subject": ("Subject",),
    "filename": ("Filename", "File name"),
    "onset": ("OnsetF", "Onset Frame", "Onset"),
    "offset": ("OffsetF", "Offset Frame", "Offset"),
    "emotion": ("Emotion",),
}
OPTIONAL = {"first": ("FirstF", "First Frame"), "apex": ("ApexF", "Apex Frame", "Apex")}


def subject_folder(value: object) -> str:
    """``1``, ``01``, ``s1`` or ``s01`` -> ``s01`` (SMIC-E's folder names)."""
    text = normalise_subject(value, width=0).lower()
    digits = text[1:] if text.startswith("s") else text
    return f"s{int(digits):02d}" if digits.isdigit() else text


def load_smic_e(
    root: Path | str,
    *,
    problems: ProblemLog,
    modality: str = "HS",
    frames: FrameSelection = "all",
    annotation: Path | str | None = None,
) -> list[Clip]:
    """SMIC-E long-video clips, one per annotation row.

    Parameters
    ----------
    root : Path
        The SMIC-E folder (holding the subject folders, or ``<modality>_E/`` / ``SMIC-<modality>-E/``
        around them, and the xlsx).
    problems : ProblemLog
        Receives missing folders, unknown labels and annotation quirks (trailing text rows).
    modality : {"HS", "VIS", "NIR"}
        Camera; sets the frame rate and the default annotation file name.
    frames : {"all", "onset-offset"}
        Keep the whole long video (default), or only onset..offset.
    annotation : Path, optional
        The xlsx; by default ``SMIC-<modality>-E_annotation*.xlsx`` found near ``root``.
    """
    root = require_root(root, dataset="smic-e")
    modality = check_choice(str(modality).upper(), tuple(SMIC_FPS), option="modality", dataset="smic-e")
    check_choice(frames, ("all", "onset-offset"), option="frames", dataset="smic-e")
    xlsx = find_annotation(root, patterns=(f"SMIC-{modality}-E_annotation*.xlsx", f"*{modality}-E*.xlsx",
                                           "SMIC*E_annotation*.xlsx"),
                           dataset=f"SMIC-{modality}-E", given=annotation)
    rows = read_annotation(xlsx, columns=COLUMNS, optional=OPTIONAL, problems=problems)
    subjects = [subject_folder(r["subject"]) for r in rows]
    wrappers = (f"SMIC-{modality}-E", f"{modality}_E", f"SMIC_{modality}_E", modality, "SMIC-E")
    base = choose_base(root, [*(root / w for w in wrappers), root], subjects, dataset=f"SMIC-{modality}-E",
                       expected=f"SMIC-{modality}-E/s01/<Filename>/image000001.jpg")
    per_video = Counter((s, str(r["filename"]).strip()) for s, r in zip(subjects, rows))
    clips: list[Clip] = []
    for r, subject in zip(rows, subjects):
        video = str(r["filename"]).strip()
        context = f"row {r.row} of {xlsx.name}"
        provisional = f"smic-e/{subject}/{video}"
        nums = {k: parse_frame(r[k], what=k, path=xlsx, row=r.row, problems=problems, clip_id=provisional)
                for k in ("onset", "offset")}
        nums["apex"] = (parse_frame(r["apex"], what="apex", path=xlsx, row=r.row, problems=problems,
                                    clip_id=provisional) if r["apex"] is not None else None)
        name = video if per_video[(subject, video)] == 1 else f"{video}_{nums['onset']}"
        clip_id = f"smic-e/{subject}/{name}"
        label = check_label(r["emotion"], frozenset(MICRO_LABELS), dataset="SMIC-E", where=xlsx,
                            context=context, clip_id=clip_id, problems=problems)
        if label is None:
            continue
        first = (parse_frame(r["first"], what="FirstF", path=xlsx, row=r.row, problems=problems,
                             clip_id=clip_id) if r["first"] is not None else None)
        clip = clip_from_folder(
            dataset="smic-e", subject=subject, clip_name=name, folder=base / subject / video, label=label,
            fps=SMIC_FPS[modality], problems=problems, context=context, frames=frames, **nums,
            attrs={"modality": modality, "video": video, "first_frame": first, "annotation_row": r.row})
        if clip is None:
            continue
        if first is not None and frames == "all" and frame_number(clip.frames[0]) != first:
            problems.warning(ANNOTATION_QUIRK, clip.source,
                             f"{context} ({clip_id}): FirstF is {first} but the video's first image is "
                             f"{clip.frames[0].name}; check whether OnsetF/OffsetF count from FirstF.",
                             clip_id=clip_id)
        clips.append(clip)
    report_unannotated(base, set(per_video), set(subjects), problems, dataset=f"SMIC-{modality}-E", xlsx=xlsx)
    return clips
