"""One extraction job from plain options: catalogue -> trunk -> extractor -> cache.

This is what ``mer-cache extract`` calls and what a notebook can call too.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mer_cache.extract import distributed as dist
from mer_cache.extract.extractor import (
    ExtractOptions, ExtractResult, Progress, extract_clips, resolve_device,
)
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


def run_extract_job(job: ExtractJob, *, progress: Progress | None = None,
                    notes: list[str] | None = None) -> ExtractResult:
    """Load the catalogue, build the trunk and extract; device notes go to ``notes``."""
    from mer_cache.catalogue import load_catalogue

    clips = load_catalogue(job.dataset, Path(job.root), **job.dataset_options)
    ctx = dist.context()
    gpu = job.gpu
    if gpu is not None and ctx.active:
        gpu = ctx.local_rank  # one GPU per local rank under torchrun
    device, note = resolve_device(gpu)
    if note and notes is not None:
        notes.append(note)
    weights = job.weights
    trunk = create_trunk(job.trunk, weights=Path(weights) if weights not in (None, "random") else weights,
                         layer=job.layer, resize_mode=job.resize_mode)  # type: ignore[arg-type]
    options = ExtractOptions(**{**asdict(job.options), "device": str(device)})
    return extract_clips(clips, trunk, job.out, options=options, progress=progress)
