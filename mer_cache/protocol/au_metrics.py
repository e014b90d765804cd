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
