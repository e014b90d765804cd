"""The face stage's jobs as the job API exposes them: fetch the detector's weights, draw a
contact sheet of raw frames beside their aligned crops, list clips with no or several faces.

The work is in :mod:`mer_cache.faces` (detection and alignment, the stage before the trunk).
"""

from __future__ import annotations

from pathlib import Path

from mer_cache.catalogue.check import CheckReport, check_dataset
from mer_cache.catalogue.problems import Problem
from mer_cache.errors import WeightsError
from mer_cache.faces.check import face_problems
from mer_cache.faces.preview import write_preview
from mer_cache.faces.stage import Progress
from mer_cache.faces.weights import fetch_mtcnn, load_mtcnn_state

__all__ = ["check_dataset_deep", "face_problems", "fetch_mtcnn", "load_mtcnn_state",
           "write_preview"]

FACES_NOT_CHECKED = "faces_not_checked"


def check_dataset_deep(dataset: str, root: Path | str, *, progress: Progress | None = None,
                       face_progress: Progress | None = None, **options) -> CheckReport:
    """``datasets check --deep``: :func:`~mer_cache.catalogue.check_dataset` with every image
    opened, plus the face warnings of each clip's first frames (no face, several faces,
    a face too small), as :func:`face_problems` finds them.

    Without the detector's weights the faces are not checked and the report says so in a
    note (``mer-cache faces fetch`` gets them); the rest of the check stands.
    """
    report = check_dataset(dataset, root, deep=True, progress=progress, **options)
    if not report.clips:
        return report
    try:
        load_mtcnn_state()
    except WeightsError as exc:
        report.problems.append(Problem("info", FACES_NOT_CHECKED, None, f"Faces not checked: {exc}"))
        return report
    found = face_problems(report.clips, progress=face_progress)
    report.problems = sorted(report.problems + found,
                             key=lambda p: ("fatal", "warning", "info").index(p.severity))
    return report
