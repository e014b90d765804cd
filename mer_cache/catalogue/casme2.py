"""CASME II: the official ``CASME2-coding-20190701.xlsx`` joined with the frame folders.

Layout (REFERENCE.md section 5): ``CASME2_RAW_selected/sub01/EP02_01f/img46.jpg``, or the
cropped release ``Cropped/sub01/EP02_01f/reg_img46.jpg``. The xlsx writes the subject as
``01`` while the folder is ``sub01``; clip ids use the folder name
(``casme2/sub01/EP02_01f``). Recorded at 200 fps.
"""

from __future__ import annotations

from pathlib import Path

from mer_cache.catalogue.build import (
    FrameSelection, as_bool, check_choice, check_label, choose_base, clip_from_folder, report_unannotated,
    require_root,
)
from mer_cache.catalogue.clip import Clip
from mer_cache.catalogue.problems import ProblemLog
from mer_cache.catalogue.xlsx import find_annotation, normalise_subject, parse_frame, read_annotation

FPS = 200.0  # CASME II camera rate
LABELS = frozenset({"happiness", "surprise", "disgust", "repression", "others", "sadness", "fear"})

COLUMNS = {
    "subject": ("Subject",),
    "filename": ("Filename", "File name"),
    "onset": ("OnsetFrame", "Onset Frame", "Onset"),
    "apex": ("ApexFrame", "Apex Frame", "Apex"),
    "offset": ("OffsetFrame", "Offset Frame", "Offset"),
    "emotion": ("Estimated Emotion", "Emotion"),
}
OPTIONAL = {"action_units": ("Action Units",), "objective_class": ("Objective Classes", "Objective Class")}


def load_casme2(
    root: Path | str,
    *,
    problems: ProblemLog,
    frames: FrameSelection = "all",
    cropped: bool = False,
    annotation: Path | str | None = None,
) -> list[Clip]:
    """CASME II clips, one per annotation row.

    Parameters
    ----------
    root : Path
        The dataset folder (holding ``CASME2_RAW_selected/`` or ``Cropped/`` and the xlsx),
        or the frame folder itself.
    problems : ProblemLog
        Receives missing folders, unknown labels and annotation quirks.
    frames : {"all", "onset-offset"}
        Keep every frame of the folder, or only onset..offset.
    cropped : bool
        Read the cropped release (``Cropped/``, ``reg_img*.jpg``) instead of the raw one.
    annotation : Path, optional
        The xlsx; by default the ``*coding*.xlsx`` found near ``root``.
    """
    root = require_root(root, dataset="casme2")
    check_choice(frames, ("all", "onset-offset"), option="frames", dataset="casme2")
    cropped = as_bool(cropped, option="cropped", dataset="casme2")
    xlsx = find_annotation(root, patterns=("CASME2-coding*.xlsx", "*CASME2*.xlsx", "*coding*.xlsx"),
                           dataset="CASME II", given=annotation, problems=problems)
    rows = read_annotation(xlsx, columns=COLUMNS, optional=OPTIONAL, problems=problems)
    subjects = ["sub" + normalise_subject(r["subject"], width=2) for r in rows]
    names = ("Cropped", "CASME2_Cropped", "cropped") if cropped else (
        "CASME2_RAW_selected", "CASME2-RAW-selected", "CASME2_RAW", "CASME2-RAW")
    base = choose_base(root, [*(root / n for n in names), root], subjects, dataset="CASME II",
                       expected=f"{names[0]}/sub01/EP02_01f/{'reg_img46' if cropped else 'img46'}.jpg")
    clips: list[Clip] = []
    for r, subject in zip(rows, subjects):
        name = str(r["filename"]).strip()
        clip_id = f"casme2/{subject}/{name}"
        context = f"row {r.row} of {xlsx.name}"
        label = check_label(r["emotion"], LABELS, dataset="CASME II", where=xlsx, context=context,
                            clip_id=clip_id, problems=problems)
        nums = {k: parse_frame(r[k], what=k, path=xlsx, row=r.row, problems=problems, clip_id=clip_id)
                for k in ("onset", "apex", "offset")}
        if label is None:
            continue
        clip = clip_from_folder(
            dataset="casme2", subject=subject, clip_name=name, folder=base / subject / name,
            label=label, fps=FPS, problems=problems, context=context, frames=frames, **nums,
            attrs={"annotation_subject": normalise_subject(r["subject"], width=2),
                   "action_units": r["action_units"], "objective_class": r["objective_class"],
                   "annotation_row": r.row, "cropped": cropped})
        if clip is not None:
            clips.append(clip)
    report_unannotated(base, {(s, str(r["filename"]).strip()) for s, r in zip(subjects, rows)},
                       set(subjects), problems, dataset="CASME II", xlsx=xlsx)
    return clips

