"""Train a head under a protocol: folds, the leakage guard, per-fold training, the run folder.

This is the job a notebook and ``mer-cache train-head`` call. It makes the folds
(:mod:`mer_cache.protocol.folds`), refuses features whose trunk saw a test subject
(:mod:`mer_cache.protocol.leakage`, on every route: a plain cache, a cache embedded with a
fine-tuned checkpoint, a fold-cache folder), trains each fold with the heads' mechanism
(:func:`mer_cache.heads.training.train_fold`, or :func:`mer_cache.heads.au.train_au_fold` for
action-unit detection, whose epochs are chosen on validation subjects only) and writes the run
folder (:mod:`mer_cache.pipelines.head_runs`), resuming finished folds.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from mer_cache.errors import ConfigError
from mer_cache.heads.au import choose_au_targets, train_au_fold
from mer_cache.heads.config import FLOW_HEADS
from mer_cache.heads.data import Sequences, reference_frames
from mer_cache.heads.training import (
    HeadConfig, deterministic, predict_clips, resolve_device, resolve_precision, retained_heap,
    train_fold,
)
from mer_cache.heads.windows import check_window
from mer_cache.pipelines.fold_features import FoldFeatures
from mer_cache.pipelines.head_runs import RunDir, RunResult
from mer_cache.protocol.epochs import Progress, ProgressEvent
from mer_cache.protocol.folds import LEAK_MESSAGE, SubjectLeakWarning, make_folds  # noqa: F401
from mer_cache.protocol.leakage import check_features


def _check_features(seqs: Sequences, config: HeadConfig) -> None:
    """Flow heads train on flow caches only, sequence heads on embedding caches only."""
    is_flow = (seqs.fingerprint or {}).get("features") == "flow"
    if is_flow and config.arch not in FLOW_HEADS:
        raise ConfigError(f"These clips come from a flow cache (one map per clip); arch "
                          f"'{config.arch}' needs an embedding cache. Use --arch "
                          f"{' or '.join(FLOW_HEADS)}, or --cache an embedding cache.")
    if config.arch in FLOW_HEADS and not is_flow:
        raise ConfigError(f"arch '{config.arch}' reads optical-flow maps; these clips come from "
                          f"an embedding cache. Make a flow cache with `mer-cache extract "
                          f"--features flow` and pass it as --cache.")


def train_head(seqs: Sequences, config: HeadConfig, *, out: Path | None = None,
               progress: Progress | None = None, fold_features: FoldFeatures | None = None,
               source: str | None = None) -> RunResult:
    """Train and evaluate a head under a protocol; write the run directory if ``out`` is given.

    Parameters
    ----------
    seqs : Sequences
        Labelled clips in memory (see :func:`mer_cache.heads.data.load_sequences`).
    config : HeadConfig
    out : Path, optional
        Run directory. Completed folds found there (same configuration) are kept, not rerun.
    progress : callable, optional
        Receives a :class:`ProgressEvent` per fold and epoch.
    fold_features : FoldFeatures, optional
        Per-fold features of a fold-cache folder (``mer_cache.finetune.load_fold_features``):
        fold k trains and tests on the features of fold k's fine-tuned trunk. The folds are
        checked against the fine-tuning run's first (the leakage guard). ``seqs`` must hold
        the same clips (normally ``fold_features.sequences[0]``).
    source : str, optional
        Where ``seqs`` came from (a cache path), for messages.

    Raises
    ------
    ConfigError
        If the labels differ from the sequences' scheme, the window exceeds every clip, or
        ``out`` holds a run with another configuration.
    ProtocolError
        If the folds cannot be made (see :func:`mer_cache.protocol.folds.make_folds`), if a
        fold's test subjects were seen by the trunk that produced its features (one cache
        embedded with a fine-tuned checkpoint, or a fold-cache folder), or if the fold
        assignment differs from the fine-tuning run's.
    """
    if config.labels != seqs.scheme:
        raise ConfigError(f"The run asks for labels '{config.labels}' but the sequences were "
                          f"labelled with '{seqs.scheme}'. Load them with the same scheme.")
    _check_features(seqs, config)
    check_window(seqs.lengths, window=config.window)
    device = resolve_device(config)
    precision = resolve_precision(config, device)
    notes = list(seqs.notes)
    if config.precision == "auto":
        notes.append(f"precision auto -> {precision}")
    reference = config.resolved_reference
    notes.append(f"reference {config.reference} -> {reference}" + (
        " (each clip's first frame is subtracted from its frames)" if reference == "first" else
        " (raw features, as cached)"))
    au = None
    fold_y, fold_classes = seqs.y, seqs.classes
    if config.task == "au":  # multi-label: the emotion scheme only chose the clips
        au = choose_au_targets(seqs, config, source=source or "these sequences")
        fold_y, fold_classes = np.zeros(len(seqs), np.int64), ("clip",)  # folds not stratified
        notes.append(f"task au: {len(au.names)} AUs ({', '.join(au.names)}), sigmoid loss, balance "
                     f"{config.balance}; folds are subject folds not stratified by label")
        if au.summary():
            notes.append(au.summary())
    folds = make_folds(fold_y, seqs.groups, protocol=config.protocol, folds=config.folds,
                       seed=config.seed, classes=fold_classes, val_subjects=config.val_subjects,
                       datasets=np.asarray(seqs.datasets))
    if fold_features is not None:
        # Exp-I: fold k's trunk never saw fold k's test subjects; refuse before any training
        fold_features.check(folds, seqs)
        notes.append(f"fold k uses the features of fold k's fine-tuned trunk (fine-tuning run "
                     f"{fold_features.caches.meta.get('run')}, fold caches "
                     f"{fold_features.caches.path})")
    else:
        # one cache for every fold: refuse if its trunk was fine-tuned on a test subject
        check_features([(seqs.fingerprint or {}).get("finetune")], folds, seqs.groups,
                       per_fold=False, source=source or "these sequences")
    if config.protocol == "clip-kfold":
        notes.append("WARNING: " + LEAK_MESSAGE)
    n_short = int(np.sum(seqs.lengths < config.window))
    if n_short:
        notes.append(f"{n_short} of {len(seqs)} clips are shorter than the {config.window}-frame "
                     f"window and were padded by repeating their edge frames")
    run = RunDir(out, config=config, seqs=seqs, notes=notes,
                 fold_features=None if fold_features is None else fold_features.identity(),
                 runtime={"precision": precision, "torch_threads": torch.get_num_threads()}, au=au)
    bank = (torch.from_numpy(np.concatenate(reference_frames(seqs.embeddings, reference)))
            .to(device)  # (sum T, D)
            if fold_features is None else None)
    records = []
    with deterministic(), retained_heap():
        for fold in folds:
            test_ids = [seqs.clip_ids[i] for i in fold.test]
            done = run.completed_fold(fold.index, test_ids)
            if done is not None:
                records.append(done)
                if progress:
                    progress(ProgressEvent("skip", fold.index, len(folds)))
                continue
            if progress:
                progress(ProgressEvent("fold", fold.index, len(folds), 0, config.epochs))
            t0 = time.perf_counter()
            fbank = bank if fold_features is None else torch.from_numpy(np.concatenate(
                reference_frames(fold_features.embeddings(fold.index), reference))).to(device)
            if au is None:
                head, record = train_fold(fbank, seqs, fold, config, precision=precision,
                                          n_folds=len(folds), progress=progress)
            else:
                head, record = train_au_fold(fbank, seqs, au, fold, config, precision=precision,
                                             n_folds=len(folds), progress=progress)
            logits = predict_clips(head, fbank, seqs.lengths, fold.test, window=config.window,
                                   stride=config.window_stride, precision=precision)
            if fold_features is not None:
                fm = fold_features.caches.fold_meta[fold.index]
                record["features"] = {"cache": fold_features.caches.cache_path(fold.index).name,
                                      "checkpoint": fm.get("checkpoint"),
                                      "checkpoint_sha256": fm.get("checkpoint_sha256")}
            groups = seqs.groups
            record.update({
                "test_clips": fold.test.tolist(), "test_clip_ids": test_ids,
                "train_subjects": sorted(set(groups[fold.train].tolist())),
                "val_subjects": sorted(set(groups[fold.val].tolist())),
                "test_subjects": sorted(set(groups[fold.test].tolist())),
                "logits": [[float(v) for v in row] for row in logits],
                "seconds": round(time.perf_counter() - t0, 3),
            })
            run.save_fold(record, head)
            records.append(record)
            if progress:
                progress(ProgressEvent("done", fold.index, len(folds)))
    return run.finish(records)
