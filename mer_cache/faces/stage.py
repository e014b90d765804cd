"""The face stage over a list of clips: one alignment per clip, from its first frames.

A clip whose reference frames hold no usable face gets an alignment with an ``error`` and
fails alone; the others go on. Frames are read at full resolution here (the trunk's
resize comes after the warp, in :func:`aligned_input`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, UnidentifiedImageError

from mer_cache.catalogue.clip import Clip
from mer_cache.errors import DatasetError
from mer_cache.faces.align import ClipAlignment, FaceConfig, align_from_detections, warp_frame
from mer_cache.frames import FrameDecodeError, array_to_input
from mer_cache.trunks.spec import Preprocessing

Progress = Callable[[int, int], None]  # (clips done, clips total)


def read_rgb(path: Path) -> np.ndarray:
    """One image file as ``(H, W, 3)`` uint8 RGB (greyscale is replicated)."""
    try:
        with Image.open(path) as img:
            return np.array(img.convert("RGB"))
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise FrameDecodeError(f"Cannot decode frame {path}: {exc}. Replace or remove the "
                               "file, then rerun.") from None


def read_video_frames(path: Path, n: int | None = None) -> list[np.ndarray]:
    """The first ``n`` (all when None) frames of a video as RGB arrays (PyAV)."""
    try:
        import av
    except ImportError:
        raise DatasetError("Reading video clips needs PyAV: pip install 'mer-cache[video]'.") from None
    frames = []
    try:
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                frames.append(frame.to_ndarray(format="rgb24"))
                if n is not None and len(frames) >= n:
                    break
    except (av.error.FFmpegError, OSError) as exc:
        raise DatasetError(f"Cannot decode video {path}: {exc}.") from None
    return frames


def reference_frames(clip: Clip, n: int) -> list[np.ndarray]:
    """The clip's first ``n`` frames (the alignment's reference), full resolution."""
    if clip.video is not None:
        return read_video_frames(clip.video, n)
    return [read_rgb(p) for p in clip.frames[:n]]


def align_clip(clip: Clip, detector, config: FaceConfig) -> ClipAlignment:
    """Detect in the clip's reference frames and fit its transform (errors -> ``error``)."""
    try:
        frames = reference_frames(clip, config.ref_frames)
    except DatasetError as exc:
        return ClipAlignment(None, 0, None, None, 0, 0, 0, error=str(exc))
    dets = [(detector(f), f.shape[:2]) for f in frames]
    return align_from_detections(dets, config, clip.clip_id)


def align_clips(clips: list[Clip], config: FaceConfig = FaceConfig(), *,
                weights: Path | None = None, progress: Progress | None = None,
                ) -> list[ClipAlignment]:
    """One :class:`ClipAlignment` per clip, in order (failed clips carry ``error``)."""
    from mer_cache.faces.detector import FaceDetector

    detector = FaceDetector(config, weights=weights)
    out = []
    for k, clip in enumerate(clips):
        out.append(align_clip(clip, detector, config))
        if progress is not None:
            progress(k + 1, len(clips))
    return out


def aligned_input(rgb: np.ndarray, alignment: ClipAlignment, pre: Preprocessing) -> np.ndarray:
    """Raw RGB frame -> aligned crop -> the trunk's ``(C, H, W)`` uint8 input."""
    return array_to_input(warp_frame(rgb, alignment), pre)


class FaceStage:
    """What the extractor needs from the face stage, behind three calls.

    ``identity()`` goes into the cache fingerprint; ``table_column(clips)`` runs detection
    (only when a cache is created) and returns the clip table's ``face`` column;
    ``alignments(column)`` turns the stored column back into per-clip alignments, so a
    rerun warps with exactly the stored transforms.
    """

    COLUMN = "face"

    def __init__(self, config: FaceConfig = FaceConfig(), *, weights: Path | None = None) -> None:
        self.config, self.weights = config, weights

    def identity(self) -> dict:
        from mer_cache.faces.weights import SHA256, REQUIREMENT

        return {**self.config.identity(), "weights": REQUIREMENT, "weights_sha256": SHA256}

    def table_column(self, clips: list[Clip]) -> list[dict]:
        return [a.to_json() for a in align_clips(clips, self.config, weights=self.weights)]

    def alignments(self, column: list[dict] | None) -> list[ClipAlignment]:
        if column is None:
            raise DatasetError("This cache has no face column although its fingerprint asks "
                               "for aligned faces; delete it and extract again.")
        return [ClipAlignment.from_json(d) for d in column]


def config_from_identity(identity: dict) -> FaceConfig:
    """The :class:`FaceConfig` a cache fingerprint's ``face`` entry was made with."""
    from dataclasses import fields

    return FaceConfig(**{f.name: identity[f.name] for f in fields(FaceConfig) if f.name in identity})


def clip_input_loader(frames: list[Path], pre: Preprocessing, face: dict | None, *,
                      name: str, weights: Path | None = None) -> Callable[[Path], np.ndarray]:
    """``path -> (C, H, W)`` trunk input for the frames of one clip, aligned as ``face`` says.

    ``face`` is a cache fingerprint's face entry (None: plain resize), so a run's head gets
    frames made the way its cache's were. The clip is aligned from its first frames.

    Raises
    ------
    FaceError
        When the clip's reference frames hold no usable face.
    """
    from mer_cache.faces.align import FaceError
    from mer_cache.faces.detector import FaceDetector
    from mer_cache.frames import load_frame

    if face is None:
        return lambda path: load_frame(path, pre)
    config = config_from_identity(face)
    detector = FaceDetector(config, weights=weights)
    refs = [read_rgb(p) for p in frames[:config.ref_frames]]
    a = align_from_detections([(detector(f), f.shape[:2]) for f in refs], config, name)
    if a.error is not None:
        raise FaceError(a.error)
    return lambda path: aligned_input(read_rgb(path), a, pre)


def image_input_loader(pre: Preprocessing, *, config: FaceConfig = FaceConfig(),
                       weights: Path | None = None) -> Callable[[Path], np.ndarray]:
    """``path -> (C, H, W)`` trunk input of a single image, its own face aligned.

    Each image is its own one-frame clip (``mer-cache embed --face align``).

    Raises
    ------
    FaceError
        Naming the image, when it holds no usable face.
    """
    from mer_cache.faces.align import FaceError
    from mer_cache.faces.detector import FaceDetector

    detector = FaceDetector(config, weights=weights)

    def load(path: Path) -> np.ndarray:
        rgb = read_rgb(path)
        a = align_from_detections([(detector(rgb), rgb.shape[:2])], config, str(path))
        if a.error is not None:
            raise FaceError(a.error.replace("in its first 1 frames", "in the image"))
        return aligned_input(rgb, a, pre)
    return load
