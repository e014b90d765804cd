"""Scores as the field computes them: pooled over folds, plus per fold and per dataset.

MEGC reports UF1 (macro F1) and UAR (balanced accuracy) on the predictions of all folds
pooled together, not the mean of per-fold scores (a frequent mistake in public code: the two
differ whenever folds differ in size or class mix). The per-fold table and its mean are kept
for reading, clearly labelled, as are confusion matrices per fold and pooled (the paper's
Fig. 3 shows per-fold matrices).
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, recall_score

from mer_cache.protocol.intervals import subject_bootstrap


def _r(x: float) -> float:
    return round(float(x), 6)


def scores(y_true: np.ndarray, y_pred: np.ndarray, *, n_classes: int) -> dict:
    """Accuracy, UF1 and UAR of one set of predictions, by the MEGC formula.

    Both average over the FULL class list ``0..n_classes-1``, whatever subset of clips is
    scored (a fold, a dataset, the validation subjects): UF1 is the mean of the per-class
    F1 = 2TP / (2TP + FP + FN), UAR the mean of the per-class recall TP / N_c, with 0 for a
    class whose score is undefined. Dropping classes absent from ``y_true`` (scikit-learn's
    default) would ignore false positives to them and overstate a subset's score.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    labels = list(range(n_classes))
    uf1 = f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)
    uar = recall_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)
    return {"n": int(len(y_true)), "accuracy": _r(accuracy_score(y_true, y_pred)),
            "uf1": _r(uf1), "uar": _r(uar)}


def summarize(y_true: np.ndarray, y_pred: np.ndarray, fold: np.ndarray, datasets: np.ndarray, *,
              classes: tuple[str, ...], subjects: np.ndarray | None = None, seed: int = 0) -> dict:
    """Pooled scores with 95 % intervals, per-fold table, its mean, per-dataset scores and
    confusion matrices.

    Parameters
    ----------
    y_true, y_pred, fold : ndarray of int, shape (n,)
        One row per test clip over all folds.
    datasets : ndarray of str, shape (n,)
    classes : tuple of str
    subjects : ndarray of str, shape (n,), optional
        Subject key of each clip: the pooled UF1 and UAR get a 95 % interval from a bootstrap
        over subjects (clips of one subject are not independent). Without it, over clips.
    seed : int
        Seed of the bootstrap, so equal runs write equal bytes.
    """
    y_true, y_pred, fold, datasets = map(np.asarray, (y_true, y_pred, fold, datasets))
    groups = np.arange(len(y_true)) if subjects is None else np.asarray(subjects)
    c = len(classes)
    labels = list(range(c))
    per_fold = []
    for k in sorted(set(fold.tolist())):
        m = fold == k
        row = {"fold": int(k), **scores(y_true[m], y_pred[m], n_classes=c)}
        row["confusion"] = confusion_matrix(y_true[m], y_pred[m], labels=labels).tolist()
        per_fold.append(row)
    mean = {key: _r(np.mean([f[key] for f in per_fold])) for key in ("accuracy", "uf1", "uar")}
    out = {
        "classes": list(classes),
        "pooled": scores(y_true, y_pred, n_classes=c),
        "pooled_ci95": subject_bootstrap(y_true, y_pred, groups, n_classes=c, seed=seed),
        "mean_of_folds": {**mean, "note": "for reading only; the headline is the pooled score"},
        "folds": per_fold,
        "confusion_pooled": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }
    names = sorted(set(datasets.tolist()))
    if len(names) > 1:  # composite data: MEGC reports every dataset too
        out["per_dataset"] = {d: scores(y_true[datasets == d], y_pred[datasets == d], n_classes=c)
                              for d in names}
    return out
