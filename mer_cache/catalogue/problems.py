"""Problems a loader finds in a dataset copy, collected instead of raised one by one.

Loaders are strict but report: every missing folder, frameless clip, unknown label or
annotation quirk becomes a :class:`Problem` in a :class:`ProblemLog`. ``datasets check``
shows them all in one report; :func:`~mer_cache.catalogue.load_catalogue` turns the
warnings into Python warnings and raises on the fatal ones, so a user sees every broken
row at once rather than fixing them one traceback at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Severity = Literal["fatal", "warning", "info"]

# kinds of problem, so tests and callers can filter without parsing messages
MISSING_FOLDER = "missing_folder"  # an annotated clip (or a whole root part) has no folder
NO_FRAMES = "no_frames"  # the clip folder exists but holds no image
UNKNOWN_LABEL = "unknown_label"
APEX_RANGE = "apex_outside_onset_offset"
FRAME_NOT_FOUND = "frame_not_found"  # an annotated frame number has no file
ANNOTATION_QUIRK = "annotation_quirk"  # '/', blank or text cells of official files
UNANNOTATED_FOLDER = "unannotated_folder"
DUPLICATE_CLIP = "duplicate_clip"
UNREADABLE = "unreadable_image"
DUPLICATE_FRAMES = "duplicate_frames"  # one frame number in two files (img1.bmp, img1.png)
EMPTY_CELL = "empty_cell"  # a manifest row without subject, clip or label
ANNOTATION_FILE = "annotation_file"  # which annotation file was read (a note)
LAYOUT = "layout"  # root, annotation file or column problems that stop the loader


class DatasetWarning(UserWarning):
    """A known quirk of a dataset copy; the clip is still usable."""


class AnnotationFileNote(UserWarning):
    """Which annotation file a loader read (always said, so a second copy is never used silently)."""



@dataclass(frozen=True)
class Problem:
    """One thing wrong in a dataset copy.

    Attributes
    ----------
    severity : {"fatal", "warning", "info"}
        Fatal problems stop :func:`load_catalogue`; warnings only inform; info entries
        are notes for ``datasets check`` (which annotation file was read).
    kind : str
        One of the kind constants of this module (``missing_folder``, ...).
    path : Path or None
        The file or folder concerned.
    message : str
        What is wrong and what to do.
    clip_id : str or None
        The clip concerned, when there is one.
    """

    severity: Severity
    kind: str
    path: Path | None
    message: str
    clip_id: str | None = None

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path is not None else ""
        return f"{where}{self.message}"


class ProblemLog:
    """Collects the problems of one loader run."""

    def __init__(self) -> None:
        self.items: list[Problem] = []

    def fatal(self, kind: str, path: Path | None, message: str, *, clip_id: str | None = None) -> None:
        self.items.append(Problem("fatal", kind, path, message, clip_id))

    def warning(self, kind: str, path: Path | None, message: str, *, clip_id: str | None = None) -> None:
        self.items.append(Problem("warning", kind, path, message, clip_id))

    def note(self, kind: str, path: Path | None, message: str) -> None:
        """Information a user should see in the report (e.g. which file was read)."""
        self.items.append(Problem("info", kind, path, message))

    def extend(self, problems: list[Problem]) -> None:
        self.items.extend(problems)

    @property
    def fatal_items(self) -> list[Problem]:
        return [p for p in self.items if p.severity == "fatal"]

    @property
    def warning_items(self) -> list[Problem]:
        return [p for p in self.items if p.severity == "warning"]
