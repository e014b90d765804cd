"""Write a flow cache: per clip, choose onset/apex, compute (u, v, strain), store.

One loop owns iteration, skip-if-done and failure handling (as the embedding extractor
does); a clip that cannot be read is recorded as failed with its reason and the run goes
on. Rerunning the same call resumes: done clips are kept, failed ones retried.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from mer_cache.cache.flow_api import (
    FlowCacheWriter, build_flow_fingerprint, prepare_flow_cache,
)
from mer_cache.catalogue.clip import Clip
from mer_cache.catalogue.require import require_clips
from mer_cache.errors import ConfigError, DatasetError
from mer_cache.faces.stage import read_rgb
from mer_cache.flow.apex import choose_frames
from mer_cache.flow.compute import flow_maps, opencv_version, prepare_grey
from mer_cache.flow.config import FlowConfig

Progress = Callable[[int, int], None]  # (clips done, clips total)


@dataclass
class FlowExtractResult:
    path: Path
    status: str  # "created" or "resumed"
    n_clips: int
    n_already_done: int
    n_written: int
    n_estimated_apex: int  # of the clips written now
    seconds: float
    failed: dict[str, str] = field(default_factory=dict)  # clip_id -> reason
    complete: bool = False

    @property
    def clips_per_s(self) -> float:
        return self.n_written / self.seconds if self.seconds > 0 else 0.0


def _grey(rgb: np.ndarray, size: int, alignment=None) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (size, size) uint8 grey, through the clip's face alignment."""
    if alignment is not None:  # the same similarity warp the embeddings get (mer_cache.faces)
        from mer_cache.faces.align import warp_frame

        rgb = warp_frame(rgb, alignment)
    return prepare_grey(rgb, size)


def read_grey(clip: Clip, index: int, size: int, alignment=None) -> np.ndarray:
    """Frame ``index`` of a frame-folder clip as (size, size) uint8 grey (16-bit frames
    scaled to 8 bit as the trunk's path scales them)."""
    return _grey(read_rgb(clip.frames[index]), size, alignment)


def read_all_greys(clip: Clip, size: int, alignment=None) -> list[np.ndarray]:
    """Every frame of a clip (frame folder or video) as (size, size) uint8 grey."""
    if clip.video is None:
        return [read_grey(clip, i, size, alignment) for i in range(len(clip.frames))]
    from mer_cache.catalogue.video import iter_video_frames

    try:
        return [_grey(np.asarray(im.convert("RGB")), size, alignment)
                for im in iter_video_frames(clip.video)]
    except OSError as exc:
        raise DatasetError(f"Cannot decode video {clip.video}: {exc}.") from None


def clip_flow(clip: Clip, config: FlowConfig, alignment=None):
    """(maps (3, S, S), FramesUsed) of one clip; reads two frames when the apex is annotated.

    ``alignment``: the clip's face alignment (:mod:`mer_cache.faces`), applied to every frame
    before the flow, as every published flow pipeline aligns first.
    """
    size = config.frame_size
    cache: dict[str, list] = {}

    def read_all() -> list[np.ndarray]:
        cache["all"] = read_all_greys(clip, size, alignment)
        return cache["all"]

    used, greys = choose_frames(clip, read_all)
    if greys is None and clip.video is not None:
        greys = read_all()  # a video decodes in order anyway
    if greys is not None:
        if used.apex >= len(greys):
            raise DatasetError(f"{clip.source}: apex frame {used.apex} is past the "
                               f"{len(greys)} decodable frames.")
        onset, apex = greys[used.onset], greys[used.apex]
    else:
        onset, apex = (read_grey(clip, used.onset, size, alignment),
                       read_grey(clip, used.apex, size, alignment))
    return flow_maps(onset, apex, config), used


def extract_flow_cache(clips: list[Clip], out: Path | str, *, config: FlowConfig = FlowConfig(),
                       face=None, progress: Progress | None = None) -> FlowExtractResult:
    """Compute onset -> apex flow maps for every clip into the flow cache ``out``.

    Parameters
    ----------
    clips : list of Clip
        From :func:`mer_cache.catalogue.load_catalogue` (after the face stage, when there is one).
    out : Path
        The cache folder; rerun with the same arguments to resume.
    config : FlowConfig
        TV-L1 parameters, sizes and apex rule (all recorded in the fingerprint).
    face : mer_cache.faces.FaceStage, optional
        Align faces before the flow: one transform per clip from its first frames, applied to
        every frame read (recorded in the fingerprint; a clip without a face fails alone).
    progress : callable, optional
        ``progress(clips_done, clips_total)`` after every clip.

    Raises
    ------
    CacheError
        If ``out`` holds a cache made with another fingerprint, or is not a flow cache.
    """
    t0 = time.perf_counter()
    out = Path(out)
    require_clips(clips, out=out)
    fingerprint = build_flow_fingerprint({**config.identity(), "face": face and face.identity()},
                                         clips=clips, opencv_version=opencv_version())
    shape = (len(config.channels), config.out_size, config.out_size)
    status = prepare_flow_cache(out, fingerprint=fingerprint, clips=clips, shape=shape)
    writer = FlowCacheWriter(out)
    todo = writer.pending()
    n_before = len(clips) - len(todo)
    failed: dict[str, str] = {}
    written = estimated = 0
    alignments = {}
    if face is not None and todo:  # detection once per clip still to do
        from mer_cache.faces.stage import align_clips

        found = align_clips([clips[i] for i in todo], face.config, weights=face.weights)
        alignments = dict(zip(todo, found))
    for k, i in enumerate(todo):
        clip = clips[i]
        alignment = alignments.get(i)
        if alignment is not None and alignment.error:
            writer.fail(i, alignment.error)
            failed[clip.clip_id] = alignment.error
            if progress:
                progress(n_before + k + 1, len(clips))
            continue
        try:
            maps, used = clip_flow(clip, config, alignment)
        except (DatasetError, ValueError) as exc:
            writer.fail(i, str(exc))
            failed[clip.clip_id] = str(exc)
        else:
            if np.isfinite(maps).all():
                writer.write(i, maps, used)
                written += 1
                estimated += used.apex_source == "estimated"
            else:
                reason = (f"TV-L1 gave NaN/inf flow between frames {used.onset} and {used.apex}; "
                          "check that both frames decode to real images")
                writer.fail(i, reason)
                failed[clip.clip_id] = reason
        if progress:
            progress(n_before + k + 1, len(clips))
    summary = writer.finalize()
    return FlowExtractResult(path=out, status=status, n_clips=len(clips), n_already_done=n_before,
                             n_written=written, n_estimated_apex=estimated,
                             seconds=time.perf_counter() - t0, failed=failed,
                             complete=summary.complete)


def run_flow_extract_job(dataset: str, root: Path | str, out: Path | str, *,
                         dataset_options: dict | None = None, config: FlowConfig = FlowConfig(),
                         face: str = "auto", progress: Progress | None = None) -> FlowExtractResult:
    """Load a catalogue and write its flow cache (what ``extract --features flow`` calls).

    ``face``: ``align`` (faces aligned before the flow), ``none``, or ``auto`` (align raw
    dataset layouts, not cropped ones; :func:`mer_cache.faces.defaults.resolve_face_mode`).
    """
    from mer_cache.catalogue import load_catalogue

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError("Flow extraction runs in one process (one writer per flow cache); "
                          "start it without torchrun.")
    clips = load_catalogue(dataset, Path(root), **(dataset_options or {}))
    require_clips(clips, out=out, dataset=dataset, root=root)
    stage = None
    if face != "none":
        from mer_cache.faces import FaceStage
        from mer_cache.faces.defaults import resolve_face_mode

        stage = FaceStage() if resolve_face_mode(face, clips) == "align" else None
    return extract_flow_cache(clips, out, config=config, face=stage, progress=progress)
