"""Run a trunk once over every frame of every clip and write the embeddings to a cache.

One loop owns iteration, skip-if-done, failure handling and writing; the trunk only
embeds a batch. Frames are decoded by DataLoader workers, batches pack frames across clips,
and a background thread assembles finished clips and writes them while the next batch
computes. Completion is recorded per clip as soon as its rows are stored, so a crash or
Ctrl-C loses at most the clips still in flight, and a rerun resumes.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Literal

import numpy as np
import torch

from mer_cache.cache import CacheWriter, build_fingerprint, prepare_cache
from mer_cache.cache.store import DEFAULT_CHUNK_BYTES
from mer_cache.catalogue.clip import Clip
from mer_cache.catalogue.require import require_clips
from mer_cache.errors import ConfigError
from mer_cache.extract import distributed as dist
from mer_cache.extract.loader import FrameDataset, frame_loader
from mer_cache.trunks.base import Trunk
from mer_cache.trunks.checkpoints import check_trained_face, training_record

if TYPE_CHECKING:
    from mer_cache.faces import FaceStage

Progress = Callable[[int, int], None]  # (frames done, frames total)


@dataclass(frozen=True)
class ExtractOptions:
    """How to run an extraction (what it computes is fixed by the trunk and the clips)."""

    batch_size: int = 64
    # DataLoader decoding processes. None = 0 on the CPU, where workers would compete with
    # the trunk's own threads for the same cores (measured: fer-minixception extracts ~15 %
    # slower with 1 worker than decoding in-process on 2 cores), min(8, cores) on a GPU.
    workers: int | None = None
    device: str = "cpu"
    amp: Literal["bf16", "fp16", "off"] = "bf16"  # autocast dtype; used on CUDA only
    dtype: Literal["float16", "float32"] = "float16"  # storage dtype: float16 halves the size
    chunk_bytes: int = DEFAULT_CHUNK_BYTES
    # "align": detect once per clip and warp every frame to a canonical face crop
    # (mer_cache.faces); "none": frames go to the trunk's resize as they are; "auto" (the
    # default, as for `extract --face`): align raw dataset layouts, not cropped releases or
    # folder/video/manifest clips (mer_cache.faces.defaults).
    face: Literal["auto", "align", "none"] = "auto"
    # shift each aligned frame onto its clip's first frame (mer_cache.faces.stabilise)
    face_stabilise: bool = False

    def __post_init__(self) -> None:
        if self.face not in ("auto", "align", "none"):
            raise ConfigError(f"--face must be auto, align or none, got {self.face!r}.")
        if self.face_stabilise and self.face == "none":
            raise ConfigError("--face-stabilise stabilises aligned faces: use it with --face "
                              "align or auto, or drop it.")
        if self.batch_size < 1:
            raise ConfigError(f"--batch-size must be at least 1, got {self.batch_size}.")
        if self.workers is not None and self.workers < 0:
            raise ConfigError(f"--workers must be 0 or more, got {self.workers}.")
        if self.amp not in ("bf16", "fp16", "off"):
            raise ConfigError(f"--amp must be bf16, fp16 or off, got {self.amp!r}.")
        if self.dtype not in ("float16", "float32"):
            raise ConfigError(f"--dtype must be float16 or float32, got {self.dtype!r}.")


@dataclass
class ExtractResult:
    path: Path
    status: str  # "created" or "resumed"
    device: str
    n_clips: int
    n_already_done: int
    n_written: int
    frames: int
    seconds: float
    failed: dict[str, str] = field(default_factory=dict)  # clip_id -> reason (this rank)
    complete: bool = False
    rank: int = 0
    world: int = 1
    face: str = "none"  # the face stage that made the frames, and what chose it
    several_faces: list[str] = field(default_factory=list)  # clips with more than one face

    @property
    def frames_per_s(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def resolve_device(gpu: int | None) -> tuple[torch.device, str | None]:
    """cuda:N when asked and present; otherwise the CPU with a note saying why."""
    if gpu is None:
        return torch.device("cpu"), None
    if not torch.cuda.is_available():
        return torch.device("cpu"), f"--gpu {gpu}: no CUDA device is available; running on the CPU."
    if gpu >= torch.cuda.device_count():
        raise ConfigError(f"--gpu {gpu}: only {torch.cuda.device_count()} CUDA device(s) "
                          f"(0..{torch.cuda.device_count() - 1}).")
    return torch.device(f"cuda:{gpu}"), None


class _ClipAssembler(threading.Thread):
    """Background writer: gathers rows per clip, writes finished clips, records failures."""

    def __init__(self, writer: CacheWriter, clips: list[Clip], dim: int) -> None:
        super().__init__(daemon=True, name="mer-cache-writer")
        self.writer, self.clips, self.dim = writer, clips, dim
        self.inbox: queue.Queue = queue.Queue(maxsize=8)
        self.buffers: dict[int, tuple[np.ndarray, list[int], list[str]]] = {}
        self.written = 0
        self.failed: dict[str, str] = {}
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while (item := self.inbox.get()) is not None:
                self._consume(*item)
        except BaseException as exc:  # surfaced by the main thread after join()
            self.error = exc
            while self.inbox.get() is not None:  # drain so the producer never blocks
                pass

    def _consume(self, emb: np.ndarray, clip_idx: np.ndarray, frame_idx: np.ndarray,
                 errors: list[str]) -> None:
        # A batch holds runs of consecutive frames of a few clips: copy run by run.
        starts = np.flatnonzero(np.r_[True, clip_idx[1:] != clip_idx[:-1]])
        ends = np.r_[starts[1:], len(clip_idx)]
        for a, b in zip(starts.tolist(), ends.tolist()):
            i = int(clip_idx[a])
            if i not in self.buffers:
                self.buffers[i] = (np.empty((self.clips[i].n_frames, self.dim), np.float32), [0], [])
            rows, count, errs = self.buffers[i]
            rows[frame_idx[a:b]] = emb[a:b]
            count[0] += b - a
            errs.extend(e for e in errors[a:b] if e)
            if count[0] == self.clips[i].n_frames:
                self._finish(i, rows, errs)

    def _finish(self, i: int, rows: np.ndarray, errs: list[str]) -> None:
        del self.buffers[i]
        if errs:
            reason = errs[0] + (f" (and {len(errs) - 1} more frames)" if len(errs) > 1 else "")
            self.writer.fail(i, reason)
            self.failed[self.clips[i].clip_id] = reason
        elif not np.isfinite(rows).all():
            reason = "the trunk produced NaN/inf embeddings (try --amp off or --dtype float32)"
            self.writer.fail(i, reason)
            self.failed[self.clips[i].clip_id] = reason
        else:
            self.writer.write(i, rows)
            self.written += 1


def _realign_failed(writer: CacheWriter, face: "FaceStage", clips: list[Clip]) -> None:
    """Align again the unfinished clips whose stored alignment failed, and store the result.

    The failure told the user to replace the unreadable frame and rerun, so the rerun must
    read it again. Other clips keep their stored transforms: crops never change within a
    cache. ``writer`` is a one-process writer (every clip is its own), on rank 0.
    """
    column = writer.column(face.COLUMN)
    pending = set(writer.pending())
    retry = [i for i, a in enumerate(face.alignments(column)) if a.error and i in pending]
    fresh = face.table_column([clips[i] for i in retry]) if retry else []
    changed = {i: value for i, value in zip(retry, fresh) if value != column[i]}
    if changed:
        writer.set_column_values(face.COLUMN, changed)


def _autocast(device: torch.device, amp: str):
    if device.type != "cuda" or amp == "off":
        return nullcontext()
    return torch.autocast("cuda", dtype=torch.bfloat16 if amp == "bf16" else torch.float16)


def extract_clips(
    clips: list[Clip],
    trunk: Trunk,
    out: Path | str,
    *,
    options: ExtractOptions = ExtractOptions(),
    finetune: dict | None = None,
    face_stage: "FaceStage | None" = None,
    progress: Progress | None = None,
) -> ExtractResult:
    """Embed every frame of ``clips`` with ``trunk`` into the cache at ``out``.

    Resumes when ``out`` holds a cache with the same fingerprint (done clips are skipped,
    failed ones retried, their face aligned again if that failed) and refuses one with
    another fingerprint. Under a ``torch.distributed`` launch each rank embeds only the
    clips it owns and rank 0 finalizes.

    ``face_stage``, when given, is the face stage to use instead of ``options.face`` (fold
    caches: the fine-tuning run's, with its stored transforms). A fine-tuned trunk whose
    checkpoint names the face stage of its training frames is refused other frames.

    Raises
    ------
    ConfigError
        When ``trunk`` is a fine-tuned checkpoint trained through another face stage.

    Returns
    -------
    ExtractResult
        Counts, failures (clip id -> reason) and throughput of this process.
    """
    out = Path(out)
    require_clips(clips, out=out)
    ctx = dist.context()
    device = torch.device(options.device)
    if finetune is None and trunk.weights_format == "checkpoint" and trunk.weights_path:
        # a fine-tuned checkpoint passed as plain weights still says which subjects it saw
        finetune = training_record(trunk.weights_path)
    face = face_stage
    if face is None and options.face != "none":
        from mer_cache.faces import FaceStage  # the frames-level stage before the trunk
        from mer_cache.faces.defaults import resolve_face_mode

        from mer_cache.faces.align import FaceConfig

        face = (FaceStage(FaceConfig(stabilise=options.face_stabilise))
                if resolve_face_mode(options.face, clips) == "align" else None)
    check_trained_face(finetune, face and face.identity())
    fingerprint = build_fingerprint(trunk.identity(), dtype=options.dtype, clips=clips,
                                    finetune=finetune, face=face and face.identity())
    columns = (lambda: {face.COLUMN: face.table_column(clips)}) if face else None
    status = dist.run_on_rank0(ctx, lambda: prepare_cache(
        out, fingerprint=fingerprint, clips=clips, chunk_bytes=options.chunk_bytes,
        extra_columns=columns))
    if face is not None and status == "resumed":
        dist.run_on_rank0(ctx, lambda: _realign_failed(CacheWriter(out), face, clips))
    writer = CacheWriter(out, rank=ctx.rank, world=ctx.world)
    todo = writer.pending()
    owned = sum(writer.owns(i) for i in range(len(clips)))
    n_pending = len(todo)
    alignments, face_failed = None, {}
    if face is not None:  # a clip without a usable face fails alone, before the trunk
        alignments = face.alignments(writer.column(face.COLUMN))
        for i in todo:
            if alignments[i].error:
                writer.fail(i, alignments[i].error)
                face_failed[clips[i].clip_id] = alignments[i].error
        todo = [i for i in todo if not alignments[i].error]

    several = [c.clip_id for c, a in zip(clips, alignments or ()) if a.max_faces > 1]

    trunk = trunk.to(device).eval()
    if device.type == "cuda":
        trunk = trunk.to(memory_format=torch.channels_last)
    dataset = FrameDataset(clips, todo, trunk.preprocessing, alignments=alignments,
                           stabilise=face is not None and face.config.stabilise)
    workers = options.workers
    if workers is None:
        workers = min(8, os.cpu_count() or 1) if device.type == "cuda" else 0
    loader = frame_loader(dataset, batch_size=options.batch_size, workers=workers,
                          pin_memory=device.type == "cuda")
    assembler = _ClipAssembler(writer, clips, trunk.dim)
    assembler.start()
    frames_total, frames_done = len(dataset), 0
    t0 = time.perf_counter()
    try:
        with torch.inference_mode(), _autocast(device, options.amp):
            for images, clip_idx, frame_idx, errors in loader:
                x = images.to(device, non_blocking=True)  # (B, C, H, W) uint8
                if device.type == "cuda":
                    x = x.contiguous(memory_format=torch.channels_last)
                emb = trunk(x).float().cpu().numpy()  # (B, D)
                assembler.inbox.put((emb, clip_idx.numpy(), frame_idx.numpy(), errors))
                frames_done += len(images)
                if progress is not None:
                    progress(frames_done, frames_total)
    finally:
        assembler.inbox.put(None)
        assembler.join()
    if assembler.error is not None:
        raise assembler.error
    seconds = time.perf_counter() - t0

    summary = dist.finish(ctx, writer.finalize)
    return ExtractResult(
        path=out, status=status, device=str(device), n_clips=owned,
        n_already_done=owned - n_pending, n_written=assembler.written, frames=frames_done,
        seconds=seconds, failed={**face_failed, **assembler.failed},
        complete=bool(summary.complete) if summary is not None else False,
        rank=ctx.rank, world=ctx.world, several_faces=several,
        face=_face_description(face, options.face, given=face_stage is not None),
    )


def _face_description(face, mode: str, *, given: bool) -> str:
    """``align``, ``align + stabilise`` or ``none``, and who chose it (``auto``, the run)."""
    what = "none" if face is None else "align + stabilise" if face.config.stabilise else "align"
    if given:
        return f"{what} (the fine-tuning run's)"
    return f"{what} (auto)" if mode == "auto" else what
