"""A grid of head configurations, evaluated with nested selection (never on the test fold).

The cache is read once by the caller; then:

1. every grid point is trained and tested on the outer folds with :func:`train_head`, in its
   own run folder ``out/<name>`` (resumable). Their pooled test scores are written to
   ``grid.csv`` as *per-configuration test scores, not for choosing*;
2. for every outer fold, each grid point is cross-validated on that fold's training subjects
   alone (``out/selection/fold{k}/<name>``, ``inner_folds`` subject folds), and the fold
   keeps the point with the best inner pooled UF1 (:mod:`mer_cache.protocol.selection`);
3. the headline (``metrics.json``) pools the outer test predictions of what each fold chose:
   an honest estimate of "run this sweep, then use its choice".

Outer fold k of every grid point uses the same seed (``fold_seed(seed, k)``), so the chosen
point's outer predictions are exactly those of its grid run.
"""

from __future__ import annotations

import csv
import itertools
import json
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from mer_cache.errors import ConfigError, ProtocolError
from mer_cache.heads.data import Sequences
from mer_cache.heads.config import FLOW_HEADS, HeadConfig
from mer_cache.heads.windows import check_window
from mer_cache.pipelines.fold_features import FoldFeatures
from mer_cache.pipelines.head_runs import write_atomic
from mer_cache.pipelines.head_training import train_head
from mer_cache.protocol.epochs import Progress
from mer_cache.protocol.folds import make_folds
from mer_cache.protocol.metrics import summarize
from mer_cache.protocol.selection import choose, selection_positions

GRID_COLUMNS = ("name", "test_uf1", "test_uar", "test_accuracy", "seconds")
GRID_NOTE = ("per-configuration pooled TEST scores, for reading only: choosing the best row "
             "would select on the test folds; the sweep's honest score is metrics.json "
             "(nested selection on training subjects)")


@dataclass
class SweepResult:
    """The nested-selection headline, the grid rows (in grid order) and what was written."""

    metrics: dict
    rows: list[dict]
    choices: list[dict]
    out: Path | None


def run_name(point: Mapping[str, object]) -> str:
    """Directory name of a grid point, e.g. ``arch=bilstm_window=13``."""
    return "_".join(f"{k}={v}" for k, v in point.items()) or "base"


OUTER_KEYS = ("seed", "protocol", "folds", "labels", "task", "aus", "au_min_clips")


def expand_grid(grid: Mapping[str, Sequence], *, base: HeadConfig) -> list[tuple[str, HeadConfig]]:
    """Every combination of the grid's values applied to ``base``, validated up front.

    Raises
    ------
    ConfigError
        For a key that is not a :class:`HeadConfig` field, a key of ``OUTER_KEYS`` (they
        make the outer folds and the target, which all grid points must share), an empty
        value list, or any invalid combination (before anything trains).
    """
    known = {f.name for f in fields(HeadConfig)}
    unknown = sorted(set(grid) - known)
    if unknown:
        raise ConfigError(f"Sweep grid keys {unknown} are not head options; known: {sorted(known)}.")
    # Every grid point is scored on the outer folds made from ``base``; a key that makes other
    # folds (or another target) would choose on one split and test on another.
    outer = sorted(set(grid) & set(OUTER_KEYS))
    if outer:
        raise ConfigError(
            f"Sweep grid keys {outer} decide the folds or what is scored, so every grid point must "
            f"share them: a grid over them would choose a configuration on one set of subjects "
            f"and report it on another. Set them once for the sweep (--seed, --protocol, --folds, "
            f"--labels, --task, --aus; in Python, on the base HeadConfig) and sweep the rest.")
    empty = [k for k, v in grid.items() if len(v) == 0]
    if empty:
        raise ConfigError(f"Sweep grid keys {empty} have no values.")
    archs = list(grid.get("arch", [base.arch]))
    flow = [a for a in archs if a in FLOW_HEADS]
    if flow and len(flow) < len(archs):
        raise ConfigError(
            f"Sweep grid arch {archs} mixes flow heads ({', '.join(flow)}), which read a flow "
            f"cache (extract --features flow), with heads that read frame embeddings; one "
            f"cache cannot feed both. Sweep each kind on its own cache.")
    # the base's window is for the other kind of head: each grid point takes its arch's own
    own = {"window": None} if "window" not in grid and (base.arch in FLOW_HEADS) != bool(flow) else {}
    keys = list(grid)
    return [(run_name(dict(zip(keys, values))), replace(base, **own, **dict(zip(keys, values))))
            for values in itertools.product(*(grid[k] for k in keys))]


def _inner_sequences(seqs: Sequences, positions: np.ndarray, embeddings: list[np.ndarray],
                     fingerprint: dict | None) -> Sequences:
    return Sequences(embeddings=[embeddings[i] for i in positions],
                     clip_ids=tuple(seqs.clip_ids[i] for i in positions),
                     subjects=tuple(seqs.subjects[i] for i in positions),
                     datasets=tuple(seqs.datasets[i] for i in positions),
                     labels=tuple(seqs.labels[i] for i in positions), y=seqs.y[positions],
                     classes=seqs.classes, scheme=seqs.scheme, fingerprint=fingerprint)


def run_sweep(seqs: Sequences, grid: Mapping[str, Sequence], *, base: HeadConfig = HeadConfig(),
              out: Path | None = None, inner_folds: int = 3, progress: Progress | None = None,
              on_run: Callable[[str, int, int], None] | None = None,
              fold_features: FoldFeatures | None = None, source: str | None = None) -> SweepResult:
    """Evaluate a grid of head configurations with nested selection.

    Parameters
    ----------
    seqs : Sequences
        Loaded once, shared by every run.
    grid : mapping of option name -> list of values
        E.g. ``{"arch": ["lstm", "bilstm"], "window": [11, 13, 15, 17]}``.
    base : HeadConfig
        Options not in the grid (protocol, folds and seed make the outer folds).
    out : Path, optional
        Sweep folder: one run folder per point, ``selection/``, ``grid.csv``, ``selection.json``
        and ``metrics.json``.
    inner_folds : int
        Subject folds of the inner cross-validation on each outer fold's training subjects.
    progress, on_run : callable, optional
        ``progress`` is passed to every run; ``on_run(name, index, total)`` is called before
        each run starts.
    fold_features : FoldFeatures, optional
        Per-fold features of a fold-cache folder (outer fold k and its inner selection read
        fold k's features).
    source : str, optional
        Where ``seqs`` came from, for messages.

    Raises
    ------
    ConfigError, ProtocolError
        For an invalid grid (or a task other than 'emotion'), or outer/inner folds that cannot
        be made.
    """
    if inner_folds < 2:
        raise ConfigError(f"inner_folds must be at least 2, got {inner_folds}.")
    if base.task != "emotion":  # selection and the grid read UF1
        raise ConfigError(f"sweep selects on UF1 of emotion classes; task '{base.task}' is not "
                          "supported there yet. Train each configuration with train-head.")
    points = expand_grid(grid, base=base)
    for _, config in points:  # refuse a bad grid point before hours of the others
        check_window(seqs.lengths, window=config.window)
    out = Path(out) if out is not None else None
    total = len(points) * 2
    results = {}
    for i, (name, config) in enumerate(points):
        if on_run:
            on_run(f"{name} (outer folds)", i, total)
        results[name] = train_head(seqs, config, out=None if out is None else out / name,
                                   progress=progress, fold_features=fold_features, source=source)
    folds = make_folds(seqs.y, seqs.groups, protocol=base.protocol, folds=base.folds,
                       seed=base.seed, classes=seqs.classes, datasets=np.asarray(seqs.datasets))
    choices = []
    for fold in folds:
        positions = selection_positions(fold)
        embeddings = (seqs.embeddings if fold_features is None
                      else fold_features.embeddings(fold.index))
        # inner runs see only this fold's training subjects; with fold caches, fold k's trunk
        # trained on them, so no test subject is involved (the guard would refuse them all)
        inner = _inner_sequences(seqs, positions, embeddings,
                                 seqs.fingerprint if fold_features is None else None)
        inner_scores = {}
        for j, (name, config) in enumerate(points):
            if on_run:
                on_run(f"{name} (selection on fold {fold.index}'s training subjects)",
                       len(points) + j, total)
            # at most one inner fold per training subject
            k_inner = min(inner_folds, len(set(inner.groups.tolist())))
            cfg = replace(config, protocol="subject-kfold", folds=k_inner, val_subjects=0)
            try:
                res = train_head(inner, cfg, progress=progress, source=source,
                                 out=None if out is None else out / "selection" / f"fold{fold.index}" / name)
            except ProtocolError as exc:
                raise ProtocolError(f"Selection inside outer fold {fold.index} (its training "
                                    f"subjects only): {exc} Try --inner-folds 2.") from None
            inner_scores[name] = res.metrics["pooled"]
        chosen = choose(inner_scores)
        choices.append({"fold": fold.index, "chosen": chosen,
                        "test_subjects": sorted(set(seqs.groups[fold.test].tolist())),
                        "inner_uf1": {n: s["uf1"] for n, s in inner_scores.items()},
                        "inner_uar": {n: s["uar"] for n, s in inner_scores.items()}})
    metrics = _nested_metrics(seqs, results, choices, base=base, inner_folds=inner_folds)
    rows = [{"name": name, "test_uf1": r.metrics["pooled"]["uf1"], "test_uar": r.metrics["pooled"]["uar"],
             "test_accuracy": r.metrics["pooled"]["accuracy"],
             "test_uf1_ci95": r.metrics["pooled_ci95"]["uf1"],
             "seconds": round(r.seconds, 2), "times_chosen": sum(c["chosen"] == name for c in choices),
             **{k: getattr(r.config, k) for k in grid}}
            for name, r in results.items()]
    if out is not None:
        _write(out, metrics, rows, choices, grid)
    return SweepResult(metrics=metrics, rows=rows, choices=choices, out=out)


def _nested_metrics(seqs: Sequences, results: dict, choices: list[dict], *, base: HeadConfig,
                    inner_folds: int) -> dict:
    """Pool the outer test predictions of each fold's chosen configuration."""
    clips, pred, fold_of = [], [], []
    for choice in choices:
        record = next(r for r in results[choice["chosen"]].folds if r["fold"] == choice["fold"])
        clips.append(np.asarray(record["test_clips"], np.int64))
        pred.append(np.asarray(record["logits"]).argmax(1))
        fold_of.append(np.full(len(record["test_clips"]), choice["fold"]))
    clips, pred, fold_of = np.concatenate(clips), np.concatenate(pred), np.concatenate(fold_of)
    metrics = summarize(seqs.y[clips], pred, fold_of, np.array(seqs.datasets)[clips],
                        classes=seqs.classes, subjects=seqs.groups[clips], seed=base.seed)
    return {"selection": "nested: each outer fold chose on its training subjects "
                         f"({inner_folds} inner subject folds, best inner pooled UF1)",
            "protocol": base.protocol, **metrics,
            "choices": [{k: c[k] for k in ("fold", "chosen")} for c in choices]}


def _write(out: Path, metrics: dict, rows: list[dict], choices: list[dict], grid: Mapping) -> None:
    out.mkdir(parents=True, exist_ok=True)
    columns = [*GRID_COLUMNS, "test_uf1_ci95", "times_chosen", *grid]
    tmp = out / "grid.csv.tmp"
    with open(tmp, "w", newline="") as fh:
        fh.write(f"# {GRID_NOTE}\n")
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows({k: r[k] for k in columns} for r in rows)
    tmp.replace(out / "grid.csv")
    write_atomic(out / "selection.json", json.dumps(choices, indent=2).encode())
    write_atomic(out / "metrics.json", json.dumps(metrics, indent=2).encode())
