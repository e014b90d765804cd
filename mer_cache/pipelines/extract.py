"""One extraction job from plain options: catalogue -> trunk -> extractor -> cache.

This is what ``mer-cache extract`` calls and what a notebook can call too. With a
fine-tuning run (``extract --finetuned-run``) the run decides trunk, weights and layer, and
one cache per fold is written (:func:`run_extract_finetuned_job`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mer_cache.catalogue.require import require_clips
from mer_cache.extract import distributed as dist
from mer_cache.extract.extractor import (
    ExtractOptions, ExtractResult, Progress, extract_clips, resolve_device,
)
from mer_cache.pipelines.fold_caches import FoldCachesResult, extract_finetuned
from mer_cache.pipelines.fold_caches import Progress as FoldProgress
from mer_cache.trunks import create_trunk


@dataclass(frozen=True)
class ExtractJob:
    dataset: str
    root: Path
    trunk: str
    out: Path
    weights: str | None = None
    layer: str | None = None
    resize_mode: str = "stretch"  # the paper feeds whole frames, no face crop
    gpu: int | None = None
    dataset_options: dict = field(default_factory=dict)
    options: ExtractOptions = ExtractOptions()

    def to_dict(self) -> dict:
        d = asdict(self)
        return json.loads(json.dumps(d, default=str))


def _device(gpu: int | None, notes: list[str] | None):
    if gpu is not None and dist.context().active:
        gpu = dist.context().local_rank  # one GPU per local rank under torchrun
    device, note = resolve_device(gpu)
    if note and notes is not None:
        notes.append(note)
    return device


def run_extract_job(job: ExtractJob, *, progress: Progress | None = None,
                    notes: list[str] | None = None) -> ExtractResult:
    """Load the catalogue, build the trunk and extract; device notes go to ``notes``."""
    from mer_cache.catalogue import load_catalogue

    clips = load_catalogue(job.dataset, Path(job.root), **job.dataset_options)
    require_clips(clips, out=job.out, dataset=job.dataset, root=job.root)
    device = _device(job.gpu, notes)
    weights = job.weights
    trunk = create_trunk(job.trunk, weights=Path(weights) if weights not in (None, "random") else weights,
                         layer=job.layer, resize_mode=job.resize_mode)  # type: ignore[arg-type]
    options = ExtractOptions(**{**asdict(job.options), "device": str(device)})
    return extract_clips(clips, trunk, job.out, options=options, progress=progress)


def run_extract_finetuned_job(run_dir: Path | str, *, dataset: str, root: Path | str,
                              out: Path | str, gpu: int | None = None,
                              dataset_options: dict | None = None,
                              options: ExtractOptions = ExtractOptions(),
                              progress: FoldProgress | None = None,
                              notes: list[str] | None = None) -> FoldCachesResult:
    """Load the catalogue and write one cache per fold with the run's fine-tuned trunks.

    Trunk, weights, layer and resize mode come from the fine-tuning run, so only the clips,
    the device and the extraction options are chosen here.

    Parameters
    ----------
    run_dir : Path
        The ``--out`` folder of a finished ``mer-cache finetune`` run.
    dataset, root, dataset_options
        The catalogue to embed (see :func:`mer_cache.catalogue.load_catalogue`).
    out : Path
        Folder for ``fold{k}.zarr`` and ``folds.json``.
    gpu : int, optional
        CUDA device index; the CPU without it (or without CUDA, with a note).
    options : ExtractOptions
        Batch size, workers, AMP, storage dtype (its ``device`` is replaced).
    progress : callable, optional
        ``progress(fold, frames_done, frames_total)``.
    notes : list, optional
        Receives device notes.

    Raises
    ------
    ConfigError
        If ``run_dir`` is not a finished fine-tuning run.
    CacheError
        If ``out`` holds the fold caches of another run.
    """
    from mer_cache.catalogue import load_catalogue

    clips = load_catalogue(dataset, Path(root), **(dataset_options or {}))
    require_clips(clips, out=out, dataset=dataset, root=root)
    device = _device(gpu, notes)
    options = ExtractOptions(**{**asdict(options), "device": str(device)})
    return extract_finetuned(run_dir, clips=clips, out_dir=out, options=options, progress=progress)
