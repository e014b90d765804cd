"""CASME (I): the CASME coding xlsx joined with the frames of sections A and B.

CASME was filmed in two sections (REFERENCE.md section 11, meb's ``Casme``): A (subjects
1-7) and B (subjects 8-19), both at 60 fps. Copies keep the subject folders together
(``CASME_raw_selected/sub01/EP01_5/*.jpg``, cropped: ``Cropped/sub01/...``) or split by
section (``Section A/sub01/...``, ``Section B/sub08/...``, possibly under ``CASME_A``/
``CASME_B``); the loader looks for each subject in all of them. The xlsx columns are
``Subject, Filename, (blank), OnsetF, ApexF1, ApexF2, OffsetF, (blank), AU, Emotion``, the
subject a number (``1`` -> folder ``sub01``); a workbook with one sheet per section is read
sheet by sheet. A second apex (``ApexF2``) is kept in ``attrs``. Annotated frames that have
no file are warnings (meb rewrites five such onsets/offsets by row position instead).
"""

from __future__ import annotations

from pathlib import Path

from mer_cache.catalogue.build import (
    FrameSelection, as_bool, check_choice, check_label, clip_from_folder, report_unannotated, require_root,
)
from mer_cache.catalogue.clip import Clip
from mer_cache.catalogue.problems import ProblemLog
from mer_cache.catalogue.xlsx import find_annotation, normalise_subject, parse_frame, read_annotation
from mer_cache.errors import DatasetError

FPS = 60.0  # CASME: both sections filmed at 60 fps
LABELS = frozenset({"happiness", "amusement", "surprise", "disgust", "repression", "tense", "fear",
                    "sadness", "contempt", "others", "other"})

COLUMNS = {
    "subject": ("Subject",),
    "filename": ("Filename", "File name"),
    "onset": ("OnsetF", "OnsetFrame", "Onset Frame", "Onset"),
    "apex": ("ApexF1", "ApexF", "ApexFrame", "Apex Frame", "Apex"),
    "offset": ("OffsetF", "OffsetFrame", "Offset Frame", "Offset"),
    "emotion": ("Emotion", "Estimated Emotion"),
}
OPTIONAL = {"apex2": ("ApexF2",), "action_units": ("AU", "AUs", "Action Units")}

RAW_DIRS = ("CASME_raw_selected", "CASME_RAW_selected", "CASME_raw", "CASME")
CROPPED_DIRS = ("Cropped", "CASME_Cropped", "cropped")
SECTION_DIRS = ("Section A", "Section B", "CASME_A/Section A", "CASME_B/Section B", "CASME_A",
                "CASME_B", "SectionA", "SectionB")


def find_subject_folders(root: Path, subjects: set[str], *, cropped: bool) -> dict[str, Path]:
    """Subject -> its folder, looked up in every known base (one base per section allowed).

    Raises
    ------
    DatasetError
        When no subject folder is found anywhere (the message gives the expected layout).
    """
    names = CROPPED_DIRS if cropped else RAW_DIRS
    bases = [root / n for n in names]
    bases += [b / s for b in (*bases, root) for s in SECTION_DIRS]
    bases.append(root)
    found: dict[str, Path] = {}
    for base in bases:
        if not base.is_dir():
            continue
        for subject in subjects - set(found):
            if (base / subject).is_dir():
                found[subject] = base / subject
    if not found:
        shown = ", ".join(sorted(subjects)[:5]) + (", ..." if len(subjects) > 5 else "")
        raise DatasetError(
            f"No CASME frame folders found under {root}: none of the subject folders named in the "
            f"annotation ({shown}) is in {names[0]}/, a 'Section A'/'Section B' folder or the root. "
            f"The expected layout is {names[0]}/sub01/EP01_5/*.jpg (or Section A/sub01/..., "
            "Section B/sub08/...); point --root at the folder that holds it.")
    return found


def load_casme(
    root: Path | str,
    *,
    problems: ProblemLog,
    frames: FrameSelection = "all",
    cropped: bool = False,
    annotation: Path | str | None = None,
) -> list[Clip]:
    """CASME (I) clips, one per annotation row of every sheet.

    Parameters
    ----------
    root : Path
        The dataset folder (holding the frame folders and the xlsx).
    problems : ProblemLog
        Receives missing folders, unknown labels and annotation quirks.
    frames : {"all", "onset-offset"}
        Keep every frame of the folder, or only onset..offset.
    cropped : bool
        Read the cropped release (``Cropped/``) instead of the raw one.
    annotation : Path, optional
        The xlsx; by default the ``CASME*.xlsx`` (not CASME2/CASME3) found near ``root``.
    """
    root = require_root(root, dataset="casme")
    check_choice(frames, ("all", "onset-offset"), option="frames", dataset="casme")
    cropped = as_bool(cropped, option="cropped", dataset="casme")
    xlsx = find_annotation(root, patterns=("CASME-coding*.xlsx", "CASME_coding*.xlsx", "casme.xlsx",
                                           "CASME.xlsx", "CASME[-_ ]*.xlsx"),
                           dataset="CASME", given=annotation)
    rows = read_annotation(xlsx, columns=COLUMNS, optional=OPTIONAL, problems=problems, all_sheets=True)
    subjects = ["sub" + normalise_subject(r["subject"], width=2) for r in rows]
    folders = find_subject_folders(root, set(subjects), cropped=cropped)
    clips: list[Clip] = []
    for r, subject in zip(rows, subjects):
        name = str(r["filename"]).strip()
        clip_id = f"casme/{subject}/{name}"
        context = f"row {r.row} of {xlsx.name}" + (f" (sheet {r.sheet})" if r.sheet else "")
        label = check_label(r["emotion"], LABELS, dataset="CASME", where=xlsx, context=context,
                            clip_id=clip_id, problems=problems)
        nums = {k: parse_frame(r[k], what=k, path=xlsx, row=r.row, problems=problems, clip_id=clip_id)
                for k in ("onset", "apex", "offset")}
        if label is None:
            continue
        sdir = folders.get(subject, root / subject)
        clip = clip_from_folder(
            dataset="casme", subject=subject, clip_name=name, folder=sdir / name, label=label,
            fps=FPS, problems=problems, context=context, frames=frames, **nums,
            attrs={"action_units": r["action_units"], "apex2_frame": r["apex2"],
                   "section": _section(subject, sdir),
                   "annotation_row": r.row, "cropped": cropped})
        if clip is not None:
            clips.append(clip)
    annotated = {(s, str(r["filename"]).strip()) for s, r in zip(subjects, rows)}
    for subject, sdir in sorted(folders.items()):
        report_unannotated(sdir.parent, annotated, {subject}, problems, dataset="CASME", xlsx=xlsx)
    return clips


def _section(subject: str, folder: Path) -> str | None:
    """``A`` or ``B``: from a section folder name, else from the subject number (A is 1-7)."""
    for part in reversed(folder.parts):
        flat = part.replace(" ", "").replace("_", "").lower()
        if flat in ("sectiona", "casmea"):
            return "A"
        if flat in ("sectionb", "casmeb"):
            return "B"
    digits = subject[3:]
    return ("A" if int(digits) <= 7 else "B") if digits.isdigit() else None
