"""95 % intervals for pooled scores: a bootstrap over subjects.

A pooled UF1 on a few hundred clips of a few dozen subjects moves by several points with the
luck of which subjects were recorded, and clips of one subject are not independent; so the
interval resamples subjects (all of a subject's clips together), rescoring the pooled
predictions each time with the same MEGC formula. Percentile interval, fixed seed, so equal
runs give equal bytes.

The resamples are scored from per-subject confusion matrices in one matrix product rather
than by calling scikit-learn 1000 times (about 2 s per run summary, paid by every fold table
and every sweep point); :func:`scores_from_confusion` equals scikit-learn's ``f1_score`` /
``recall_score`` with ``labels=`` the full class list and ``zero_division=0`` (tested).
"""

from __future__ import annotations

import numpy as np

N_BOOTSTRAP = 1000


def scores_from_confusion(conf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """UF1 and UAR (MEGC formula, all classes) of confusion matrices of shape (..., C, C)."""
    conf = np.asarray(conf, dtype=np.float64)  # (..., C, C), rows true, columns predicted
    tp = np.diagonal(conf, axis1=-2, axis2=-1)  # (..., C)
    n_true, n_pred = conf.sum(-1), conf.sum(-2)  # (..., C)
    f1_den, rec_den = n_true + n_pred, n_true  # 2TP + FP + FN = N_true + N_pred
    f1 = np.divide(2 * tp, f1_den, out=np.zeros_like(tp), where=f1_den > 0)
    rec = np.divide(tp, rec_den, out=np.zeros_like(tp), where=rec_den > 0)
    return f1.mean(-1), rec.mean(-1)


def subject_bootstrap(y_true, y_pred, subjects, *, n_classes: int, seed: int = 0,
                      n_resamples: int = N_BOOTSTRAP) -> dict:
    """Percentile 95 % intervals of pooled UF1 and UAR, resampling subjects with replacement.

    Parameters
    ----------
    y_true, y_pred : ndarray of int, shape (n,)
    subjects : ndarray, shape (n,)
        The resampling unit of each clip (``dataset/subject``).
    n_classes : int
        Scores average over classes ``0..n_classes-1`` (the MEGC formula).

    Returns
    -------
    dict
        ``{"uf1": [lo, hi], "uar": [lo, hi], "method": ..., "n_resamples": ..., "units": ...}``.
    """
    y_true, y_pred = np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)
    units, unit = np.unique(np.asarray(subjects), return_inverse=True)
    c, u = n_classes, len(units)
    per_unit = np.bincount(unit * c * c + y_true * c + y_pred, minlength=u * c * c)
    per_unit = per_unit.reshape(u, c * c).astype(np.float64)  # (U, C*C)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, u, size=(n_resamples, u))  # (B, U) drawn subjects
    weights = np.zeros((n_resamples, u))
    np.add.at(weights, (np.arange(n_resamples)[:, None], picks), 1.0)  # (B, U) times drawn
    conf = (weights @ per_unit).reshape(n_resamples, c, c)  # (B, C, C)
    uf1, uar = scores_from_confusion(conf)
    lo, hi = np.percentile(np.stack([uf1, uar], 1), [2.5, 97.5], axis=0)
    return {"uf1": [round(float(lo[0]), 4), round(float(hi[0]), 4)],
            "uar": [round(float(lo[1]), 4), round(float(hi[1]), 4)],
            "method": "percentile bootstrap over subjects", "n_resamples": n_resamples,
            "units": int(u)}
