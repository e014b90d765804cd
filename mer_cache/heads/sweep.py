"""A grid of head-training runs over one in-memory copy of the cache, ranked.

The cache is read once by the caller (:func:`mer_cache.heads.data.load_sequences`); every
grid point trains with :func:`train_head` into its own run directory ``out/<name>``, so an
interrupted sweep resumes point by point and fold by fold. Ranking is by pooled UF1, then
UAR, then accuracy: scores that no fold of the test data helped choose.
"""

from __future__ import annotations

import csv
import itertools
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Callable, Mapping, Sequence

from mer_cache.errors import ConfigError
from mer_cache.heads.data import Sequences
from mer_cache.heads.training import HeadConfig, Progress, train_head
from mer_cache.heads.windows import check_window

COLUMNS = ("rank", "name", "uf1", "uar", "accuracy", "seconds")


@dataclass
class SweepResult:
    """Ranked rows (best first) and where ``sweep.csv`` was written."""

    rows: list[dict]
    csv_path: Path | None


def run_name(point: Mapping[str, object]) -> str:
    """Directory name of a grid point, e.g. ``arch=bilstm_window=13``."""
    return "_".join(f"{k}={v}" for k, v in point.items()) or "base"


def expand_grid(grid: Mapping[str, Sequence], *, base: HeadConfig) -> list[tuple[str, HeadConfig]]:
    """Every combination of the grid's values applied to ``base``, validated up front.

    Raises
    ------
    ConfigError
        For a key that is not a :class:`HeadConfig` field, an empty value list, or any
        invalid combination (before anything trains).
    """
    known = {f.name for f in fields(HeadConfig)}
    unknown = sorted(set(grid) - known)
    if unknown:
        raise ConfigError(f"Sweep grid keys {unknown} are not head options; known: {sorted(known)}.")
    empty = [k for k, v in grid.items() if len(v) == 0]
    if empty:
        raise ConfigError(f"Sweep grid keys {empty} have no values.")
    keys = list(grid)
    points = []
    for values in itertools.product(*(grid[k] for k in keys)):
        point = dict(zip(keys, values))
        points.append((run_name(point), replace(base, **point)))
    return points


def run_sweep(seqs: Sequences, grid: Mapping[str, Sequence], *, base: HeadConfig = HeadConfig(),
              out: Path | None = None, progress: Progress | None = None,
              on_run: Callable[[str, int, int], None] | None = None,
              fold_features=None) -> SweepResult:
    """Train every grid point on the same sequences and rank the results.

    Parameters
    ----------
    seqs : Sequences
        Loaded once, shared by every run.
    grid : mapping of option name -> list of values
        E.g. ``{"arch": ["lstm", "bilstm"], "window": [11, 13, 15, 17]}``.
    base : HeadConfig
        Options not in the grid.
    out : Path, optional
        Sweep directory: one run directory per point, and ``sweep.csv``.
    progress : callable, optional
        Passed to every run.
    on_run : callable, optional
        Called as ``on_run(name, index, total)`` before each run starts.
    fold_features : FoldFeatures, optional
        Per-fold features of a fold-cache folder, passed to every run (see :func:`train_head`).
    """
    points = expand_grid(grid, base=base)
    for _, config in points:  # refuse a bad grid point before hours of the others
        check_window(seqs.lengths, window=config.window)
    rows = []
    for i, (name, config) in enumerate(points):
        if on_run:
            on_run(name, i, len(points))
        res = train_head(seqs, config, out=None if out is None else Path(out) / name, progress=progress,
                         fold_features=fold_features)
        pooled = res.metrics["pooled"]
        rows.append({"name": name, "uf1": pooled["uf1"], "uar": pooled["uar"],
                     "accuracy": pooled["accuracy"],
                     # a resumed run reports the time its folds took when they ran
                     "seconds": round(res.seconds, 2),
                     **{k: getattr(config, k) for k in grid}})
    rows.sort(key=lambda r: (-r["uf1"], -r["uar"], -r["accuracy"], r["name"]))
    for rank, row in enumerate(rows, 1):
        row["rank"] = rank
    csv_path = None
    if out is not None:
        csv_path = Path(out) / "sweep.csv"
        with open(csv_path, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=[*COLUMNS, *grid])
            writer.writeheader()
            writer.writerows({k: r[k] for k in (*COLUMNS, *grid)} for r in rows)
    return SweepResult(rows=rows, csv_path=csv_path)
