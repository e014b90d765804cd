"""CAS(ME)^3 part A: the part A xlsx joined with ``{subject}/{clip}/color/{frame}.jpg``.

Part A (REFERENCE.md section 5) annotates micro-expressions inside longer recordings: one
recording folder (``spNO.1/a``) can hold several rows, each with its own onset..offset. A
clip is therefore one row, named ``<recording>_<onset>`` (``casme3/spNO.1/a_153``), and by
default keeps only its onset..offset frames. Recorded at 30 fps.
"""

from __future__ import annotations

from pathlib import Path

from mer_cache.catalogue.build import (
    FrameSelection, check_choice, check_label, choose_base, clip_from_folder, report_unannotated,
    require_root,
)
from mer_cache.catalogue.clip import Clip
from mer_cache.catalogue.problems import ProblemLog
from mer_cache.catalogue.xlsx import find_annotation, normalise_subject, parse_frame, read_annotation

FPS = 30.0  # CAS(ME)^3 colour camera rate
LABELS = frozenset({"anger", "disgust", "fear", "happy", "happiness", "sad", "sadness", "surprise",
                    "others", "other", "contempt"})

COLUMNS = {
    "subject": ("Subject", "sub"),
    "filename": ("Filename", "File name"),
    "onset": ("Onset", "OnsetFrame", "Onset Frame"),
    "apex": ("Apex", "ApexFrame", "Apex Frame"),
    "offset": ("Offset", "OffsetFrame", "Offset Frame"),
    "emotion": ("emotion", "Estimated Emotion"),
}
OPTIONAL = {"action_units": ("AU", "Action Units"), "objective_class": ("Objective class", "Objective Classes")}


def load_casme3(
    root: Path | str,
    *,
    problems: ProblemLog,
    frames: FrameSelection = "onset-offset",
    annotation: Path | str | None = None,
) -> list[Clip]:
    """CAS(ME)^3 part A micro-expression clips, one per annotation row.

    Parameters
    ----------
    root : Path
        The part A folder (``part_A/data/part_A/`` or above it) or the folder of subjects.
    problems : ProblemLog
        Receives missing folders, unknown labels and annotation quirks.
    frames : {"onset-offset", "all"}
        Keep the row's onset..offset frames (default) or the whole recording.
    annotation : Path, optional
        The part A xlsx; by default the ``*part_A*.xlsx`` found near ``root``.
    """
    root = require_root(root, dataset="casme3")
    check_choice(frames, ("all", "onset-offset"), option="frames", dataset="casme3")
    xlsx = find_annotation(root, patterns=("*part_A*.xlsx", "*part_a*.xlsx", "*cas(me)*.xlsx",
                                           "*CAS(ME)*.xlsx", "*casme3*.xlsx", "*CASME3*.xlsx"),
                           dataset="CAS(ME)^3 part A", given=annotation, problems=problems)
    rows = read_annotation(xlsx, columns=COLUMNS, optional=OPTIONAL, problems=problems)
    subjects = [normalise_subject(r["subject"], width=0) for r in rows]
    candidates = [root / "part_A" / "data" / "part_A", root / "data" / "part_A", root / "part_A",
                  root / "data", root]
    base = choose_base(root, candidates, subjects, dataset="CAS(ME)^3 part A",
                       expected="part_A/data/part_A/spNO.1/a/color/1.jpg")
    clips: list[Clip] = []
    for r, subject in zip(rows, subjects):
        recording = str(r["filename"]).strip()
        context = f"row {r.row} of {xlsx.name}"
        provisional = f"casme3/{subject}/{recording}_row{r.row}"
        nums = {k: parse_frame(r[k], what=k, path=xlsx, row=r.row, problems=problems,
                               clip_id=provisional) for k in ("onset", "apex", "offset")}
        name = f"{recording}_{nums['onset']}" if nums["onset"] is not None else f"{recording}_row{r.row}"
        label = check_label(r["emotion"], LABELS, dataset="CAS(ME)^3", where=xlsx, context=context,
                            clip_id=f"casme3/{subject}/{name}", problems=problems)
        if label is None:
            continue
        folder = base / subject / recording
        if (folder / "color").is_dir():
            folder = folder / "color"  # depth maps sit next to it and are not used
        clip = clip_from_folder(
            dataset="casme3", subject=subject, clip_name=name, folder=folder, label=label,
            fps=FPS, problems=problems, context=context, frames=frames, **nums,
            attrs={"recording": recording, "action_units": r["action_units"],
                   "objective_class": r["objective_class"], "annotation_row": r.row})
        if clip is not None:
            clips.append(clip)
    report_unannotated(base, {(s, str(r["filename"]).strip()) for s, r in zip(subjects, rows)},
                       set(subjects), problems, dataset="CAS(ME)^3", xlsx=xlsx)
    return clips
