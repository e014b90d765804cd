"""CAS(ME)^3 part C, and parts A and C together.

Part C (REFERENCE.md section 11, meb's ``Casme3C``) annotates micro-expressions with action
units only: ``CAS(ME)3_part_C_ME.xlsx`` has the columns ``sub, count, au, onset, offset``,
no emotion and no apex. Frames are ``<sub>/<count>/color/<n>.jpg`` with the subject
zero-padded to two digits (``1`` -> ``01``), under ``ME_C/`` or ``part_C/``. Clips are
labelled ``unlabelled`` (every emotion scheme leaves them out, counted), which keeps them
for the AU task. The apex is not annotated: ``apex="middle"`` takes the frame halfway
between onset and offset (what meb does), marked ``attrs["apex_estimated"]``. AU cells use
``,`` and once the full-width ``，``; they are kept as written for the AU parser.

``casme3-ac`` loads part A (:func:`~mer_cache.catalogue.casme3.load_casme3`) and part C
together; each clip keeps its own dataset name (``casme3``, ``casme3c``), so folds group
subjects per part. Recorded at 30 fps.
"""

from __future__ import annotations

from pathlib import Path

from mer_cache.catalogue.build import (
    FrameSelection, check_choice, choose_base, clip_from_folder, report_unannotated, require_root,
)
from mer_cache.catalogue.casme3 import load_casme3
from mer_cache.catalogue.clip import Clip
from mer_cache.catalogue.problems import ProblemLog
from mer_cache.catalogue.xlsx import find_annotation, normalise_subject, parse_frame, read_annotation

FPS = 30.0  # CAS(ME)^3 colour camera rate
UNLABELLED = "unlabelled"  # part C has no emotion column

COLUMNS = {
    "subject": ("sub", "Subject"),
    "filename": ("count", "Filename"),
    "onset": ("onset", "Onset"),
    "offset": ("offset", "Offset"),
}
OPTIONAL = {"action_units": ("au", "AU", "AUs"), "apex": ("apex", "Apex")}


def load_casme3c(
    root: Path | str,
    *,
    problems: ProblemLog,
    frames: FrameSelection = "onset-offset",
    apex: str = "none",
    annotation: Path | str | None = None,
) -> list[Clip]:
    """CAS(ME)^3 part C micro-expression clips, one per annotation row.

    Parameters
    ----------
    root : Path
        The part C folder (holding ``ME_C/`` or the subject folders) with the xlsx near it.
    problems : ProblemLog
        Receives missing folders and annotation quirks.
    frames : {"onset-offset", "all"}
        Keep the row's onset..offset frames (default) or the whole recording.
    apex : {"none", "middle"}
        Leave the apex unannotated, or take the frame halfway between onset and offset.
    annotation : Path, optional
        The xlsx; by default ``*part_C*.xlsx`` found near ``root``.
    """
    root = require_root(root, dataset="casme3c")
    check_choice(frames, ("all", "onset-offset"), option="frames", dataset="casme3c")
    check_choice(apex, ("none", "middle"), option="apex", dataset="casme3c")
    xlsx = find_annotation(root, patterns=("*part_C*.xlsx", "*part_c*.xlsx", "*Part_C*.xlsx"),
                           dataset="CAS(ME)^3 part C", given=annotation)
    rows = read_annotation(xlsx, columns=COLUMNS, optional=OPTIONAL, problems=problems)
    subjects = [normalise_subject(r["subject"], width=2) for r in rows]
    candidates = [root / "ME_C", root / "part_C" / "data" / "part_C", root / "part_C", root / "data" / "part_C",
                  root / "data", root]
    base = choose_base(root, candidates, subjects, dataset="CAS(ME)^3 part C",
                       expected="ME_C/01/1/color/1.jpg")
    clips: list[Clip] = []
    for r, subject in zip(rows, subjects):
        name = normalise_subject(r["filename"], width=0)
        clip_id = f"casme3c/{subject}/{name}"
        context = f"row {r.row} of {xlsx.name}"
        nums = {k: parse_frame(r[k], what=k, path=xlsx, row=r.row, problems=problems, clip_id=clip_id)
                for k in ("onset", "offset")}
        nums["apex"] = (parse_frame(r["apex"], what="apex", path=xlsx, row=r.row, problems=problems,
                                    clip_id=clip_id) if r["apex"] is not None else None)
        estimated = apex == "middle" and nums["apex"] is None and None not in (nums["onset"], nums["offset"])
        if estimated:
            nums["apex"] = (nums["onset"] + nums["offset"]) // 2  # type: ignore[operator]
        folder = base / subject / name
        if (folder / "color").is_dir():
            folder = folder / "color"  # depth maps sit next to it and are not used
        clip = clip_from_folder(
            dataset="casme3c", subject=subject, clip_name=name, folder=folder, label=UNLABELLED,
            fps=FPS, problems=problems, context=context, frames=frames, **nums,
            attrs={"action_units": r["action_units"], "apex_estimated": estimated,
                   "annotation_row": r.row})
        if clip is not None:
            clips.append(clip)
    report_unannotated(base, {(s, normalise_subject(r["filename"], width=0)) for s, r in zip(subjects, rows)},
                       set(subjects), problems, dataset="CAS(ME)^3 part C", xlsx=xlsx)
    return clips


def load_casme3_ac(
    root: Path | str | None,
    *,
    problems: ProblemLog,
    part_a_root: Path | str | None = None,
    part_c_root: Path | str | None = None,
    frames: FrameSelection = "onset-offset",
) -> list[Clip]:
    """CAS(ME)^3 parts A and C in one catalogue (part A's emotions, part C ``unlabelled``).

    Parameters
    ----------
    root : Path or None
        A folder holding both parts and both xlsx files; ignored for a part whose root is given.
    part_a_root, part_c_root : Path, optional
        Roots of the two parts, as ``casme3`` and ``casme3c`` take them.
    frames : {"onset-offset", "all"}
        Passed to both loaders.
    """
    a_root = part_a_root if part_a_root is not None else root
    c_root = part_c_root if part_c_root is not None else root
    if a_root is None or c_root is None:
        from mer_cache.errors import DatasetError

        raise DatasetError("casme3-ac needs a root holding both parts, or part_a_root=PATH and "
                           "part_c_root=PATH (CLI: -o part_a_root=PATH -o part_c_root=PATH).")
    return [*load_casme3(a_root, problems=problems, frames=frames),
            *load_casme3c(c_root, problems=problems, frames=frames)]
