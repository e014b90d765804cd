"""SAMM: ``SAMM_Micro_FACS_Codes_v2.xlsx`` joined with ``SAMM/006/006_1_2/006_05562.jpg``.

The xlsx has 12 preamble rows before its header (REFERENCE.md section 5); the header is
found by its content, so other versions with more or fewer preamble rows load too. The
subject is written ``006`` but may load as the integer 6, so it is zero-padded back to
three digits. Recorded at 200 fps.
"""

from __future__ import annotations

from pathlib import Path

from mer_cache.catalogue.build import (
    check_label, choose_base, clip_from_folder, report_unannotated, require_root,
)
from mer_cache.catalogue.clip import Clip
from mer_cache.catalogue.problems import ProblemLog
from mer_cache.catalogue.xlsx import find_annotation, normalise_subject, parse_frame, read_annotation

FPS = 200.0  # SAMM camera rate
LABELS = frozenset({"anger", "contempt", "disgust", "fear", "happiness", "other", "others",
                    "sadness", "surprise"})

COLUMNS = {
    "subject": ("Subject",),
    "filename": ("Filename", "File name"),
    "onset": ("Onset Frame", "OnsetFrame", "Onset"),
    "apex": ("Apex Frame", "ApexFrame", "Apex"),
    "offset": ("Offset Frame", "OffsetFrame", "Offset"),
    "emotion": ("Estimated Emotion", "Emotion"),
}
OPTIONAL = {"action_units": ("Action Units",), "objective_class": ("Objective Classes",),
            "inducement_code": ("Inducement Code",), "notes": ("Notes",)}


def load_samm(
    root: Path | str,
    *,
    problems: ProblemLog,
    annotation: Path | str | None = None,
) -> list[Clip]:
    """SAMM clips, one per annotation row.

    Parameters
    ----------
    root : Path
        The dataset folder (holding ``SAMM/`` and the xlsx) or the ``SAMM/`` folder itself.
    problems : ProblemLog
        Receives missing folders, unknown labels and annotation quirks.
    annotation : Path, optional
        The xlsx; by default the ``SAMM*.xlsx`` found near ``root``.
    """
    root = require_root(root, dataset="samm")
    xlsx = find_annotation(root, patterns=("SAMM_Micro_FACS_Codes*.xlsx", "*SAMM*.xlsx", "*FACS*.xlsx"),
                           dataset="SAMM", given=annotation, problems=problems)
    rows = read_annotation(xlsx, columns=COLUMNS, optional=OPTIONAL, problems=problems)
    subjects = [normalise_subject(r["subject"], width=3) for r in rows]
    base = choose_base(root, [root / "SAMM", root / "SAMM_CROP", root], subjects, dataset="SAMM",
                       expected="SAMM/006/006_1_2/006_05562.jpg")
    clips: list[Clip] = []
    for r, subject in zip(rows, subjects):
        name = str(r["filename"]).strip()
        clip_id = f"samm/{subject}/{name}"
        context = f"row {r.row} of {xlsx.name}"
        label = check_label(r["emotion"], LABELS, dataset="SAMM", where=xlsx, context=context,
                            clip_id=clip_id, problems=problems)
        nums = {k: parse_frame(r[k], what=k, path=xlsx, row=r.row, problems=problems, clip_id=clip_id)
                for k in ("onset", "apex", "offset")}
        if label is None:
            continue
        clip = clip_from_folder(
            dataset="samm", subject=subject, clip_name=name, folder=base / subject / name,
            label=label, fps=FPS, problems=problems, context=context, **nums,
            attrs={"action_units": r["action_units"], "objective_class": r["objective_class"],
                   "inducement_code": r["inducement_code"], "annotation_row": r.row})
        if clip is not None:
            clips.append(clip)
    report_unannotated(base, {(s, str(r["filename"]).strip()) for s, r in zip(subjects, rows)},
                       set(subjects), problems, dataset="SAMM", xlsx=xlsx)
    return clips
