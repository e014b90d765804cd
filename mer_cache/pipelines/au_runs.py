"""What an AU-detection run writes (``train-head --task au``): its metrics and prediction rows.

Same run folder as an emotion run (:mod:`mer_cache.pipelines.head_runs`), with these files
holding the AU task's results:

- ``metrics.json``: ``task: "au"``, the AU set, per-AU F1 and their mean pooled over folds
  (with each AU's support and a 95 % subject-bootstrap interval of the mean F1), per dataset
  when the clips come from several, and per fold for reading;
- ``predictions.csv``: per clip, its AUs as annotated (in the set) and as predicted
  (``+``-joined), and the probability of every AU (``p_AU12``, sigmoid of the mean logit).
"""

from __future__ import annotations

import hashlib

import numpy as np

from mer_cache.catalogue.aus import AUTargets
from mer_cache.heads.config import HeadConfig
from mer_cache.heads.data import Sequences
from mer_cache.protocol.au_metrics import predict_present, summarize_au_run


def au_identity(targets: AUTargets) -> dict:
    """What a resumed AU run must see again: the AU set, how many clips code each, the targets' hash."""
    y = np.ascontiguousarray(targets.y, dtype=np.uint8)
    return {"aus": list(targets.names), "positives": [int(v) for v in y.sum(axis=0)],
            "targets_sha256": hashlib.sha256(y.tobytes()).hexdigest()}


def au_results(seqs: Sequences, targets: AUTargets, records: list[dict], config: HeadConfig,
               notes: list[str]) -> tuple[dict, list[dict]]:
    """Score the folds' pooled test logits; returns ``(metrics, prediction rows)``."""
    names = targets.names
    clips = np.concatenate([np.asarray(r["test_clips"], dtype=np.int64) for r in records])
    fold = np.concatenate([[r["fold"]] * len(r["test_clips"]) for r in records])
    logits = np.concatenate([np.asarray(r["logits"], dtype=np.float64) for r in records])  # (n, A)
    true, pred = targets.y[clips], predict_present(logits)
    scores = summarize_au_run(true, pred, fold, np.array(seqs.datasets)[clips], seqs.groups[clips],
                              names=names, seed=config.seed)
    metrics = {
        "task": "au", "arch": config.arch, "protocol": config.protocol,
        "subject_independent": config.protocol != "clip-kfold", **scores,
        "threshold": "an AU is present when its mean window logit is above 0 (sigmoid 0.5)",
        "fold_details": [{k: r[k] for k in ("fold", "test_subjects", "val_subjects", "n_train_clips",
                                            "n_train_windows", "windows_per_epoch", "epochs_run",
                                            "best_epoch", "aus_without_training_positive")}
                         for r in records],
        "notes": notes,
    }
    probs = 1.0 / (1.0 + np.exp(-logits))  # (n, A)

    def joined(row: np.ndarray) -> str:
        return "+".join(n for n, v in zip(names, row) if v)

    rows = [{"clip": seqs.clip_ids[c], "subject": seqs.subjects[c], "dataset": seqs.datasets[c],
             "fold": int(f), "au_annotation": seqs.action_units[c], "true": joined(t),
             "predicted": joined(p), **{f"p_{n}": round(float(q), 6) for n, q in zip(names, pr)}}
            for c, f, t, p, pr in zip(clips, fold, true, pred, probs)]
    return metrics, rows
