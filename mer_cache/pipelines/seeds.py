"""One head configuration repeated over several seeds: mean and spread of the pooled scores.

The subject bootstrap of one run (``pooled_ci95``) says how much the score would move with
other subjects; repeating the run with other seeds says how much it moves with the folds'
shuffle and the weights' initialisation. Each seed is an ordinary run folder
(``out/seed{s}``, resumable); ``out/seeds.json`` holds the per-seed scores, their mean and
standard deviation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from mer_cache.errors import ConfigError
from mer_cache.heads.data import Sequences
from mer_cache.heads.config import HeadConfig
from mer_cache.pipelines.fold_features import FoldFeatures
from mer_cache.pipelines.head_runs import RunResult, write_atomic
from mer_cache.pipelines.head_training import train_head
from mer_cache.protocol.epochs import Progress


@dataclass
class SeedsResult:
    """Every seed's run and the summary written to ``seeds.json``."""

    runs: list[RunResult]
    summary: dict
    out: Path | None


def train_head_seeds(seqs: Sequences, config: HeadConfig, seeds: list[int], *,
                     out: Path | None = None, progress: Progress | None = None,
                     on_seed: Callable[[int, int, int], None] | None = None,
                     fold_features: FoldFeatures | None = None,
                     source: str | None = None) -> SeedsResult:
    """Run ``config`` once per seed (folds reshuffled, weights re-drawn) and summarize.

    Raises
    ------
    ConfigError
        For an empty or repeated seed list, or a task other than 'emotion'.
    """
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds needs distinct seeds, got {seeds}.")
    if config.task != "emotion":  # the summary reads UF1/UAR/accuracy
        raise ConfigError(f"--seeds summarizes emotion runs (UF1, UAR); task '{config.task}' is not "
                          "supported there yet. Run one --seed at a time.")
    runs = []
    for i, seed in enumerate(seeds):
        if on_seed:
            on_seed(seed, i, len(seeds))
        runs.append(train_head(seqs, replace(config, seed=seed), progress=progress,
                               out=None if out is None else Path(out) / f"seed{seed}",
                               fold_features=fold_features, source=source))
    per_seed = [{"seed": r.config.seed, **{k: r.metrics["pooled"][k] for k in ("uf1", "uar", "accuracy")},
                 "uf1_ci95": r.metrics["pooled_ci95"]["uf1"]} for r in runs]
    summary = {"arch": config.arch, "protocol": config.protocol, "seeds": list(seeds),
               "per_seed": per_seed}
    for key in ("uf1", "uar", "accuracy"):
        values = np.array([row[key] for row in per_seed])
        summary[key] = {"mean": round(float(values.mean()), 6),
                        "std": round(float(values.std(ddof=1)) if len(values) > 1 else 0.0, 6),
                        "min": float(values.min()), "max": float(values.max())}
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
        write_atomic(Path(out) / "seeds.json", json.dumps(summary, indent=2).encode())
    return SeedsResult(runs=runs, summary=summary, out=None if out is None else Path(out))
