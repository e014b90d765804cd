"""Scores of the AU-detection task: per-AU F1 and their mean, pooled and per dataset.

This is what meb's AU validators report (``MultiLabelF1Score(average="binary")``): each AU
is a binary problem, its F1 is scikit-learn's binary F1 of that column, and the headline is
the unweighted mean over the AUs ("Average"). An AU with no true and no predicted positive in
a split has no defined F1; scikit-learn's ``zero_division=0`` counts it as 0, as meb does,
and ``support`` says how many true positives each AU had so a reader can tell.
Network outputs are logits: an AU is predicted present when its logit is above 0 (sigmoid
0.5), meb's threshold.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import f1_score

from mer_cache.errors import ConfigError


def _r(x: float) -> float:
    return float(round(float(x), 6))


def predict_present(logits: np.ndarray, *, threshold: float = 0.0) -> np.ndarray:
    """0/1 predictions from logits, shape kept: 1 where ``logit > threshold``."""
    return (np.asarray(logits) > threshold).astype(np.uint8)


def au_scores(y_true: np.ndarray, y_pred: np.ndarray, *, names: tuple[str, ...] | list[str]) -> dict:
    """Per-AU F1, their mean, and each AU's support.

    Parameters
    ----------
    y_true, y_pred : ndarray of 0/1, shape (n_clips, n_aus)
    names : sequence of str
        The AU of each column (``AU12``).

    Returns
    -------
    dict
        ``{"n": clips, "f1": {AU: F1}, "mean_f1": mean over AUs, "support": {AU: true positives}}``.

    Raises
    ------
    ConfigError
        When the shapes disagree with each other or with ``names``.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.ndim != 2 or y_true.shape != y_pred.shape or y_true.shape[1] != len(names):
        raise ConfigError(f"AU scores need (clips, AUs) arrays of one shape with one name per AU; got "
                          f"{y_true.shape}, {y_pred.shape} and {len(names)} names.")
    per_au = f1_score(y_true, y_pred, average=None, zero_division=0) if len(y_true) else np.zeros(len(names))
    return {
        "n": int(len(y_true)),
        "f1": {n: _r(f) for n, f in zip(names, per_au)},
        "mean_f1": _r(np.mean(per_au)) if len(names) else 0.0,
        "support": {n: int(s) for n, s in zip(names, y_true.sum(axis=0))},
    }


def summarize_aus(y_true: np.ndarray, y_pred: np.ndarray, datasets: np.ndarray | None = None, *,
                  names: tuple[str, ...] | list[str]) -> dict:
    """Pooled AU scores, and per dataset when the clips come from more than one.

    The per-dataset scores are what the leave-one-dataset-out protocol reports: each
    dataset's clips are the test clips of its own fold.
    """
    out = {"aus": list(names), "pooled": au_scores(y_true, y_pred, names=names)}
    if datasets is not None:
        datasets = np.asarray(datasets)
        present = list(dict.fromkeys(datasets.tolist()))
        if len(present) > 1:
            out["per_dataset"] = {d: au_scores(np.asarray(y_true)[datasets == d],
                                               np.asarray(y_pred)[datasets == d], names=names)
                                  for d in present}
    return out


def au_subject_bootstrap(y_true: np.ndarray, y_pred: np.ndarray, subjects: np.ndarray, *,
                         seed: int = 0, n_resamples: int = 1000) -> list[float]:
    """Percentile 95 % interval of the pooled mean AU F1, resampling subjects with replacement.

    The same resampling as :func:`mer_cache.protocol.intervals.subject_bootstrap` (all of a
    subject's clips together): per-subject true/false positive and false negative counts of
    every AU are summed with the resample's weights in one matrix product, and each AU's F1
    is ``2TP / (2TP + FP + FN)`` (0 when undefined, as ``zero_division=0``).
    """
    y_true, y_pred = np.asarray(y_true, np.float64), np.asarray(y_pred, np.float64)  # (n, A)
    units, unit = np.unique(np.asarray(subjects), return_inverse=True)
    onehot = np.zeros((len(units), len(y_true)))
    onehot[unit, np.arange(len(y_true))] = 1.0  # (U, n)
    tp, fp = onehot @ (y_true * y_pred), onehot @ ((1 - y_true) * y_pred)  # (U, A)
    fn = onehot @ (y_true * (1 - y_pred))  # (U, A)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(units), size=(n_resamples, len(units)))  # (B, U)
    weights = np.zeros((n_resamples, len(units)))
    np.add.at(weights, (np.arange(n_resamples)[:, None], picks), 1.0)  # (B, U) times drawn
    tp_b, fp_b, fn_b = weights @ tp, weights @ fp, weights @ fn  # (B, A)
    den = 2 * tp_b + fp_b + fn_b
    f1 = np.divide(2 * tp_b, den, out=np.zeros_like(den), where=den > 0)
    lo, hi = np.percentile(f1.mean(1), [2.5, 97.5])
    return [round(float(lo), 4), round(float(hi), 4)]


def summarize_au_run(y_true: np.ndarray, y_pred: np.ndarray, fold: np.ndarray, datasets: np.ndarray,
                     subjects: np.ndarray, *, names: tuple[str, ...] | list[str], seed: int = 0) -> dict:
    """Everything an AU run reports: pooled and per-dataset scores (:func:`summarize_aus`),
    the pooled mean F1's 95 % subject-bootstrap interval, and each fold's scores (for reading:
    a fold of one or two subjects lacks most AUs, so its mean F1 is noisy).
    """
    out = summarize_aus(y_true, y_pred, datasets, names=names)
    out["pooled_ci95"] = {"mean_f1": au_subject_bootstrap(y_true, y_pred, subjects, seed=seed),
                          "method": "percentile bootstrap over subjects",
                          "units": int(len(np.unique(subjects)))}
    fold = np.asarray(fold)
    out["folds"] = [{"fold": int(k), **au_scores(np.asarray(y_true)[fold == k],
                                                 np.asarray(y_pred)[fold == k], names=names)}
                    for k in sorted(set(fold.tolist()))]
    out["mean_of_folds"] = {"mean_f1": _r(np.mean([f["mean_f1"] for f in out["folds"]]))}
    return out
