"""The clip record every loader produces, and natural frame ordering.

A :class:`Clip` is one micro-expression (or non-micro) sequence: who, what label, which
frames in which order, and the annotated onset/apex/offset as 0-based indices into
``frames``. Loaders convert dataset frame numbers (``img46.jpg``) to these indices so the
rest of the tool never has to know a dataset's numbering.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

IMAGE_SUFFIXES = (".bmp", ".jpg", ".jpeg", ".png", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv")

_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple:
    """Sort key that orders ``img2`` before ``img10`` (digit runs compare as numbers)."""
    parts = _DIGITS.split(name)
    return tuple(int(p) if p.isdigit() else p.lower() for p in parts)


def list_frames(folder: Path) -> tuple[Path, ...]:
    """Image files directly inside ``folder``, in natural order (hidden files skipped)."""
    files = [
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
    ]
    return tuple(sorted(files, key=lambda p: natural_key(p.name)))


def duplicate_frames(paths: tuple[Path, ...]) -> list[list[str]]:
    """Groups of files that carry the same frame number (``img1.bmp`` and ``img1.png``).

    Such a folder holds one clip twice (two exports, two formats); read as one clip its
    frames would interleave, so loaders refuse it.
    """
    by_number: dict[int, list[str]] = {}
    for p in paths:
        n = frame_number(p)
        if n is not None:
            by_number.setdefault(n, []).append(p.name)
    return [names for names in by_number.values() if len(names) > 1]


def duplicates_message(folder: Path, groups: list[list[str]]) -> str:
    shown = "; ".join(" and ".join(g) for g in groups[:3]) + (" ..." if len(groups) > 3 else "")
    return (f"the clip folder {folder} holds {len(groups)} frame number(s) twice ({shown}): two "
            "copies of the clip (e.g. two formats) mixed in one folder. Keep one copy of each "
            "frame and move the other files elsewhere.")


def frame_number(path: Path) -> int | None:
    """The last digit run of a frame's file name (``reg_img46.jpg`` -> 46), or None."""
    runs = _DIGITS.findall(path.stem)
    return int(runs[-1]) if runs else None


@dataclass(frozen=True)
class Clip:
    """One clip of a dataset.

    Attributes
    ----------
    dataset : str
        Loader name (``smic``, ``casme2``, ``samm``, ``casme3``, ``folder``, ...).
    subject : str
        Subject id as the frame folders name it (``sub01``, ``006``, ``s1``); folds group on it.
    clip_id : str
        Unique across datasets, ``<dataset>/<subject>/<clip>`` (``casme2/sub01/EP02_01f``).
    label : str
        Raw label as the dataset gives it; label schemes map it to task classes.
    frames : tuple of Path
        Frame image paths in temporal (natural) order; empty for a video clip.
    fps : float
        Frame rate of the recording.
    onset, apex, offset : int or None
        0-based indices into ``frames`` where annotated.
    video : Path or None
        The video file when the clip is a video rather than a frame folder.
    video_frames : int
        Number of frames of ``video`` (0 for frame-folder clips).
    attrs : dict
        Extra annotation (action units, original frame numbers, ...); not compared.
    """

    dataset: str
    subject: str
    clip_id: str
    label: str
    frames: tuple[Path, ...]
    fps: float
    onset: int | None = None
    apex: int | None = None
    offset: int | None = None
    video: Path | None = None
    video_frames: int = 0
    attrs: dict = field(default_factory=dict, compare=False, hash=False, repr=False)

    @property
    def n_frames(self) -> int:
        return self.video_frames if self.video is not None else len(self.frames)

    @property
    def source(self) -> Path:
        """The folder (or video file) the clip is read from, for messages."""
        if self.video is not None:
            return self.video
        return self.frames[0].parent if self.frames else Path(self.clip_id)
