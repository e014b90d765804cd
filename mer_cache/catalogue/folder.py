"""Generic layouts: ``root/<subject>/<label>/<clip>/<frames>`` or ``.../<label>/<clip>.mp4``.

For data no dedicated loader knows: the folders say subject and label, each clip is a
frame folder (``folder`` loader) or a video file (``video`` loader, via PyAV). There is no
annotation, so onset/apex/offset stay unset and any label is accepted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from mer_cache.catalogue.build import as_fps, clip_from_folder, require_root
from mer_cache.catalogue.clip import IMAGE_SUFFIXES, VIDEO_SUFFIXES, Clip, natural_key
from mer_cache.catalogue.problems import LAYOUT, MISSING_FOLDER, ProblemLog
from mer_cache.catalogue.video import clip_from_video
from mer_cache.errors import DatasetError

# Frame folders carry no rate; 30 fps is the common webcam rate. Pass the real one.
DEFAULT_FPS = 30.0


def _dirs(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")),
                  key=lambda p: natural_key(p.name))


def walk_labelled_tree(
    root: Path | str,
    *,
    problems: ProblemLog,
    name: str,
    fps: float | None,
    clips_are: Literal["frames", "videos"],
) -> list[Clip]:
    """Clips of a ``root/<subject>/<label>/<clip>`` tree (frame folders or video files)."""
    root = require_root(root, dataset=name)
    fps = as_fps(fps, dataset=name)
    subjects = _dirs(root)
    expected = ("root/<subject>/<label>/<clip>/<frames>" if clips_are == "frames"
                else "root/<subject>/<label>/<clip>.mp4")
    if not subjects:
        raise DatasetError(f"No subject folders in {root}. The {name} loader expects {expected}.")
    clips: list[Clip] = []
    for sdir in subjects:
        labels = _dirs(sdir)
        if not labels:
            problems.warning(MISSING_FOLDER, sdir, f"subject folder has no label folders; expected {expected}.")
        for ldir in labels:
            loose = [p for p in ldir.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
            if clips_are == "frames" and loose:
                problems.fatal(LAYOUT, ldir,
                               f"{len(loose)} images sit directly in a label folder; the {name} "
                               f"loader expects {expected}. Put each clip's frames in its own folder.")
            entries = (_dirs(ldir) if clips_are == "frames" else sorted(
                (p for p in ldir.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES),
                key=lambda p: natural_key(p.name)))
            if not entries and not loose:
                problems.warning(MISSING_FOLDER, ldir, f"label folder holds no clip; expected {expected}.")
            for entry in entries:
                common = dict(dataset=name, subject=sdir.name, label=ldir.name, problems=problems,
                              context=f"{name} clip")
                if clips_are == "frames":
                    clip = clip_from_folder(clip_name=entry.name, folder=entry,
                                            fps=fps or DEFAULT_FPS, **common)
                else:
                    clip = clip_from_video(clip_name=entry.stem, path=entry, fps=fps, **common)
                if clip is not None:
                    clips.append(clip)
    return clips


def load_folder(root: Path | str, *, problems: ProblemLog, fps: float | None = None,
                name: str = "folder") -> list[Clip]:
    """Frame-folder clips of ``root/<subject>/<label>/<clip>/<frames>``.

    Parameters
    ----------
    fps : float, optional
        Frame rate of the recordings (30 when not given).
    name : str
        Dataset name used in clip ids (``<name>/<subject>/<clip>``); give each of your
        datasets its own so their ids never collide.
    """
    return walk_labelled_tree(root, problems=problems, name=name, fps=fps, clips_are="frames")


def load_videos(root: Path | str, *, problems: ProblemLog, fps: float | None = None,
                name: str = "video") -> list[Clip]:
    """Video-file clips of ``root/<subject>/<label>/<clip>.mp4`` (mp4, avi, mov, mkv).

    Parameters
    ----------
    fps : float, optional
        Overrides the frame rate stored in each container.
    name : str
        Dataset name used in clip ids.
    """
    return walk_labelled_tree(root, problems=problems, name=name, fps=fps, clips_are="videos")
