"""The one epoch loop of every trained model (temporal heads and fine-tuned trunks).

Epochs run for a fixed count, or stop early on a score of the fold's *validation* subjects
(training subjects set aside, :attr:`mer_cache.protocol.folds.Fold.val`), after which the best
epoch's weights are restored. The validation score is built here from the fold itself
(:func:`validation_scorer`), so no caller can hand the loop the test fold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from torch import nn

from mer_cache.protocol.au_metrics import au_scores, predict_present
from mer_cache.protocol.early_stopping import EarlyStopping
from mer_cache.protocol.folds import Fold
from mer_cache.protocol.metrics import scores


@dataclass(frozen=True)
class ProgressEvent:
    """One step of a run, for a progress display: ``kind`` is 'fold', 'epoch', 'skip' or 'done'."""

    kind: str
    fold: int
    n_folds: int
    epoch: int = 0
    n_epochs: int = 0
    loss: float | None = None
    val_uf1: float | None = None


Progress = Callable[[ProgressEvent], None]


@dataclass
class EpochHistory:
    """What the loop did: losses and validation UF1 per epoch, and the epoch kept."""

    losses: list[float] = field(default_factory=list)
    val_uf1: list[float] = field(default_factory=list)
    best_epoch: int = 0

    @property
    def epochs_run(self) -> int:
        return len(self.losses)


def validation_scorer(fold: Fold, y: np.ndarray, *, n_classes: int,
                      predict: Callable[[np.ndarray], np.ndarray]) -> Callable[[], float] | None:
    """UF1 on the fold's validation part only, or None when the fold has none (fixed epochs).

    ``predict(positions)`` returns predicted classes for positions into ``y``; it is only
    ever called with ``fold.val``, never with ``fold.test``.
    """
    val = fold.val
    if len(val) == 0:
        return None
    if len(np.intersect1d(val, fold.test)):  # a Fold built by hand could mix them
        raise ValueError(f"fold {fold.index}: validation and test positions overlap")
    return lambda: float(scores(y[val], predict(val), n_classes=n_classes)["uf1"])


def au_validation_scorer(fold: Fold, targets: np.ndarray, *, names: tuple[str, ...],
                         predict: Callable[[np.ndarray], np.ndarray]) -> Callable[[], float] | None:
    """Mean AU F1 on the fold's validation part only (the AU task), or None without one.

    ``targets`` is the (n, A) 0/1 AU matrix; ``predict(positions)`` returns (len, A) logits and
    is only ever called with ``fold.val``. An AU is present when its logit is above 0.
    """
    val = fold.val
    if len(val) == 0:
        return None
    if len(np.intersect1d(val, fold.test)):
        raise ValueError(f"fold {fold.index}: validation and test positions overlap")
    return lambda: float(au_scores(targets[val], predict_present(predict(val)), names=names)["mean_f1"])


def fit_epochs(model: nn.Module, *, epochs: int, patience: int, train_epoch: Callable[[int], float],
               validate: Callable[[], float] | None,
               on_epoch: Callable[[int, float, float | None], None] | None = None) -> EpochHistory:
    """Run up to ``epochs`` epochs of ``train_epoch``; stop early on ``validate``; keep the best.

    Parameters
    ----------
    model : nn.Module
        Whose best-epoch weights are restored at the end (with ``validate``).
    train_epoch : callable
        ``train_epoch(epoch) -> mean training loss``.
    validate : callable or None
        From :func:`validation_scorer`; None trains exactly ``epochs`` epochs.
    on_epoch : callable, optional
        ``on_epoch(epoch, loss, val_uf1)`` after each epoch (progress display).
    """
    history = EpochHistory()
    stopper = EarlyStopping(patience=patience)
    for epoch in range(1, epochs + 1):
        history.losses.append(round(float(train_epoch(epoch)), 6))
        val = validate() if validate is not None else None
        if val is not None:
            history.val_uf1.append(val)
        stop = val is not None and stopper.update(epoch, val, model)
        if on_epoch:
            on_epoch(epoch, history.losses[-1], val)
        if stop:
            break
    if validate is not None:
        stopper.restore(model)  # the epoch the validation subjects chose, never the test fold's
        history.best_epoch = stopper.best_epoch
    else:
        history.best_epoch = history.epochs_run
    return history
