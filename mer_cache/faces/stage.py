"""The face stage over a list of clips: one alignment per clip, from its first frames.

A clip whose reference frames hold no usable face gets an alignment with an ``error`` and
fails alone; the others go on. Frames are read at full resolution here (the trunk's
resize comes after the warp, in :func:`aligned_input`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from mer_cache.catalogue.clip import Clip
from mer_cache.errors import ConfigError, DatasetError
from mer_cache.faces.align import (
    EXTRACT_ADVICE, GEOMETRY, ClipAlignment, FaceConfig, align_from_detections, warp_frame,
)
from mer_cache.faces.stabilise import Stabiliser
from mer_cache.frames import FrameDecodeError, array_to_input, to_8bit
from mer_cache.trunks.spec import Preprocessing

Progress = Callable[[int, int], None]  # (clips done, clips total)


def read_rgb(path: Path) -> np.ndarray:
    """One image file as ``(H, W, 3)`` uint8 RGB (greyscale replicated, 16-bit scaled to
    8 bit as :func:`mer_cache.frames.load_frame` does)."""
    return _read(path, "RGB")


def _read(path: Path, mode: str) -> np.ndarray:
    try:
        with Image.open(path) as img:
            if mode == "L":
                img.draft("L", img.size)  # a JPEG decodes straight to its luma (no-op else)
            return np.array(to_8bit(img, path).convert(mode))
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise FrameDecodeError(f"Cannot decode frame {path}: {exc}. Replace or remove the "
                               "file, then rerun.") from None


def aligned_frame(path: Path, alignment: ClipAlignment, pre: Preprocessing, *,
                  stabiliser: Stabiliser | None = None, first: Path | None = None) -> np.ndarray:
    """One frame file -> its clip's aligned crop -> the trunk's ``(C, H, W)`` uint8 input.

    A grey trunk's frames are read and warped as luma only: a third of the warp, and a
    JPEG skips its colour conversion: 0.46 against 0.74 ms a frame (raw synthetic data,
    fer-minixception, one thread), at most one grey level from warping RGB first.
    With a ``stabiliser`` (``FaceConfig.stabilise``) the frame is shifted onto the clip's
    ``first`` frame (:mod:`mer_cache.faces.stabilise`).
    """
    mode = "L" if pre.channels == "gray" else "RGB"
    frame = _read(path, mode)
    if stabiliser is not None:
        alignment = stabiliser.frame_alignment(frame, alignment, first, lambda: _read(first, mode))
    return array_to_input(warp_frame(frame, alignment), pre)


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


def reference_frames(clip: Clip, n: int, start: int = 0) -> Iterator[np.ndarray]:
    """Frames ``start`` to ``n - 1`` of a clip, full resolution, read only as consumed (a
    video decodes from its beginning, as it has to)."""
    if clip.video is not None:
        yield from read_video_frames(clip.video, n)[start:]
    else:
        yield from (read_rgb(p) for p in clip.frames[start:n])


def align_frames(frames: Iterable[np.ndarray], detector, config: FaceConfig,
                 name: str, *, done: Sequence[tuple] = (), **wording: str) -> ClipAlignment:
    """Detect in ``frames`` until ``config.ref_frames`` of them hold a face, then fit.

    Frames after those are never read: a clip whose first frame has a face costs one
    decode and one detection. ``done``: ``(detections, shape)`` of the clip's frames
    before ``frames``, detected already. ``wording`` (``searched``, ``advice``) phrases a
    failure for the command at hand (:func:`~mer_cache.faces.align.align_from_detections`).
    """
    dets = list(done)
    enough = lambda: sum(len(d) > 0 for d, _ in dets) >= config.ref_frames  # noqa: E731
    for rgb in () if dets and enough() else frames:
        dets.append((detector(rgb), rgb.shape[:2]))
        if enough():
            break
    return align_from_detections(dets, config, name, **wording)


def align_clip(clip: Clip, detector, config: FaceConfig) -> ClipAlignment:
    """Detect in the clip's first frames and fit its transform (errors -> ``error``)."""
    return align_batch([clip], detector, config)[0]


def _failed(exc: DatasetError) -> ClipAlignment:
    return ClipAlignment(None, 0, None, None, 0, 0, 0, error=str(exc))


def align_batch(clips: Sequence[Clip], detector, config: FaceConfig) -> list[ClipAlignment]:
    """:func:`align_clip` of each clip, their first frames detected in one batch.

    The first frames go through the detector together (``FaceDetector.detect_many``:
    one net call per pyramid level and stage for all of them); a clip that needs more
    frames (no face in its first, or ``ref_frames`` > 1) goes on alone from its second.
    """
    firsts: list[np.ndarray | None] = []
    out: list[ClipAlignment | None] = []
    for clip in clips:
        try:
            firsts.append(next(reference_frames(clip, 1), None))
            out.append(None)
        except DatasetError as exc:
            firsts.append(None)
            out.append(_failed(exc))
    # a plain callable (frame -> Detections) works too, one frame at a time
    many = getattr(detector, "detect_many", None) or (lambda fs: [detector(f) for f in fs])
    batch = [k for k, f in enumerate(firsts) if f is not None]
    found = dict(zip(batch, many([firsts[k] for k in batch]))) if batch else {}
    for k, clip in enumerate(clips):
        if out[k] is not None:
            continue
        done = [(found[k], firsts[k].shape[:2])] if k in found else []
        try:  # the next frames are read only if the first ones are not enough
            rest = reference_frames(clip, config.search_frames, start=len(done))
            out[k] = align_frames(rest, detector, config, clip.clip_id, done=done)
        except DatasetError as exc:
            out[k] = _failed(exc)
    return out  # type: ignore[return-value]


# First frames detected in one batch: the cascade's small operations are paid once per
# batch (benchmarks/face_detect.py, one thread: 640x360 10.2 -> 7.2 ms a frame, 320x240
# 9.2 -> 6.2 ms; 32 a batch was no faster, 64 slower)
BATCH_CLIPS = 16


def align_clips(clips: list[Clip], config: FaceConfig = FaceConfig(), *,
                weights: Path | None = None, progress: Progress | None = None,
                workers: int | None = None) -> list[ClipAlignment]:
    """One :class:`ClipAlignment` per clip, in order (failed clips carry ``error``).

    Clips go in batches of up to ``BATCH_CLIPS`` whose first frames are detected together
    (:func:`align_batch`). By default one thread per torch thread works through the
    batches in this process; ``workers`` > 1 uses that many worker processes instead, and
    ``workers=1`` one thread. benchmarks/face_detect.py (2 cores): the 128 raw synthetic
    clips took 0.69 s on a thread per core, 0.79 s on two processes and 1.17 s on one
    thread; 15 real 640x360 clips 0.15, 0.29 (the processes' start-up) and 0.17 s.

    Raises
    ------
    WeightsError
        When the detector's weights are missing (raised here, before any worker starts).
    """
    import torch
    from torch.utils.data import DataLoader

    from mer_cache.faces.detector import FaceDetector

    processes = min(workers or 1, len(clips), os.cpu_count() or 1)
    threads = 1 if workers is not None else min(torch.get_num_threads(), len(clips))
    parallel = max(processes, threads)
    batch = max(1, min(BATCH_CLIPS, -(-len(clips) // parallel)))
    dataset = _Aligner(clips, config, FaceDetector(config, weights=weights), batch)
    if processes > 1:
        items = DataLoader(dataset, batch_size=None, shuffle=False, num_workers=processes,
                           collate_fn=_same)
    elif threads > 1:
        items = _threaded(dataset, min(threads, len(dataset)))
    else:
        items = iter(dataset)
    out = []
    for done in items:
        out.extend(done)
        if progress is not None:
            progress(len(out), len(clips))
    return out


def _threaded(dataset: "_Aligner", n: int) -> Iterator[ClipAlignment]:
    """The batches aligned by ``n`` threads of one torch thread each, in order.

    Threads share the detector and start at once (worker processes take ~0.2 s). The
    cascade's convolutions, OpenCV and most NumPy calls release the GIL; its Python glue
    does not, which batching keeps small.
    """
    from concurrent.futures import ThreadPoolExecutor

    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)  # each thread's ops on its own core
    try:
        with ThreadPoolExecutor(n, thread_name_prefix="mer-cache-faces") as pool:
            yield from pool.map(dataset.__getitem__, range(len(dataset)))
    finally:
        torch.set_num_threads(before)


class _Aligner:
    """Batches of ``batch`` clips -> their alignments, as a map-style dataset for
    DataLoader worker processes (each gets its copy of the detector; DataLoader gives each
    worker one torch thread) or a thread pool."""

    def __init__(self, clips: list[Clip], config: FaceConfig, detector, batch: int = 1) -> None:
        self.clips, self.config, self.detector, self.batch = clips, config, detector, batch

    def __len__(self) -> int:
        return -(-len(self.clips) // self.batch)

    def __getitem__(self, k: int) -> list[ClipAlignment]:
        return align_batch(self.clips[k * self.batch:(k + 1) * self.batch], self.detector,
                           self.config)

    def __iter__(self):
        return (self[k] for k in range(len(self)))


def _same(item):
    return item


def aligned_input(rgb: np.ndarray, alignment: ClipAlignment, pre: Preprocessing) -> np.ndarray:
    """Raw RGB frame -> aligned crop -> the trunk's ``(C, H, W)`` uint8 input."""
    return array_to_input(warp_frame(rgb, alignment), pre)


class FaceStage:
    """What the extractor needs from the face stage, behind three calls.

    ``identity()`` goes into the cache fingerprint; ``table_column(clips)`` runs detection
    (when a cache is created, and on a rerun for unfinished clips whose alignment failed)
    and returns the clip table's ``face`` column; ``alignments(column)`` turns the stored
    column back into per-clip alignments, so a rerun warps with exactly the stored transforms.
    """

    COLUMN = "face"

    def __init__(self, config: FaceConfig = FaceConfig(), *, weights: Path | None = None) -> None:
        self.config, self.weights = config, weights

    def identity(self) -> dict:
        from mer_cache.faces.weights import SHA256, REQUIREMENT

        return {**self.config.identity(), "geometry": GEOMETRY, "weights": REQUIREMENT,
                "weights_sha256": SHA256}

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

    # an identity written before a field existed was made as the field's neutral value says
    before = {"first_pass": None}  # older caches and checkpoints scanned the whole pyramid
    return FaceConfig(**{f.name: identity.get(f.name, before.get(f.name))
                         for f in fields(FaceConfig) if f.name in identity or f.name in before})


def clip_input_loader(frames: list[Path], pre: Preprocessing, face: dict | None, *,
                      name: str, weights: Path | None = None,
                      advice: str = EXTRACT_ADVICE) -> Callable[[Path], np.ndarray]:
    """``path -> (C, H, W)`` trunk input for the frames of one clip, aligned as ``face`` says.

    ``face`` is a cache fingerprint's face entry (None: plain resize), so a run's head gets
    frames made the way its cache's were. The clip is aligned from its first frames.

    Raises
    ------
    FaceError
        When the clip's reference frames hold no usable face: ``"{name}: {what}. {advice}"``.
    """
    from mer_cache.faces.align import FaceError
    from mer_cache.faces.detector import FaceDetector
    from mer_cache.frames import load_frame

    if face is None:
        return lambda path: load_frame(path, pre)
    if face.get("geometry") != GEOMETRY:  # identities before the version carry none
        raise ConfigError(
            f"The run's frames were aligned by an older face stage (geometry "
            f"{face.get('geometry', 'unversioned')}, this version warps as {GEOMETRY}), so "
            f"{name} cannot be aligned the way its head was trained. Extract the cache again "
            f"with this version and train the head on it.")
    config = config_from_identity(face)
    detector = FaceDetector(config, weights=weights)
    a = align_frames((read_rgb(p) for p in frames[:config.search_frames]), detector, config,
                     name, advice=advice)
    if a.error is not None:
        raise FaceError(a.error)
    if not config.stabilise:
        return lambda path: aligned_frame(path, a, pre)
    stabiliser = Stabiliser()
    return lambda path: aligned_frame(path, a, pre, stabiliser=stabiliser, first=frames[0])


def image_input_loader(pre: Preprocessing, *, config: FaceConfig = FaceConfig(),
                       weights: Path | None = None,
                       advice: str = EXTRACT_ADVICE) -> Callable[[Path], np.ndarray]:
    """``path -> (C, H, W)`` trunk input of a single image, its own face aligned.

    Each image is its own one-frame clip (``mer-cache embed --face align``).

    Raises
    ------
    FaceError
        Naming the image, when it holds no usable face: ``"{path}: {what}. {advice}"``.
    """
    from mer_cache.faces.align import FaceError
    from mer_cache.faces.detector import FaceDetector

    detector = FaceDetector(config, weights=weights)

    def load(path: Path) -> np.ndarray:
        rgb = read_rgb(path)
        a = align_frames([rgb], detector, config, str(path), searched="the image",
                         advice=advice)
        if a.error is not None:
            raise FaceError(a.error)
        return aligned_input(rgb, a, pre)
    return load


class StoredFaceStage(FaceStage):
    """A :class:`FaceStage` that warps with transforms estimated before, by clip id.

    ``known`` maps clip ids to ``ClipAlignment.to_json()`` dicts (errors included, so a clip
    that failed keeps failing); only the other clips are detected, once. A resumed
    fine-tuning run, its fold caches and its Grad-CAM maps so warp with the very transforms
    its training frames got, not with a re-estimate that may round differently.
    """

    def __init__(self, config: FaceConfig, known: dict[str, dict], *,
                 weights: Path | None = None) -> None:
        super().__init__(config, weights=weights)
        self.known = known

    def table_column(self, clips: list[Clip]) -> list[dict]:
        todo = [c for c in clips if c.clip_id not in self.known]
        if todo:  # remembered, so a second cache of the same clips detects nothing
            self.known.update(zip((c.clip_id for c in todo), super().table_column(todo)))
        return [self.known[c.clip_id] for c in clips]
