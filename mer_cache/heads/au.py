"""The action-unit detection task of the heads: multi-label targets and one fold's training.

Each clip's AU annotation cell (``4+7``, ``R14A``) becomes a 0/1 row over a chosen AU set
(:func:`mer_cache.catalogue.aus.au_targets`, side and intensity dropped). The head is the
same temporal head as for emotions, with one output per AU; it is trained on the windows of
the training clips with a sigmoid (binary cross-entropy) loss per AU, and its epochs are
chosen, as for emotions, on validation subjects only, here by their mean AU F1. A clip is
predicted from the mean of its windows' logits; an AU is present when its logit is above 0.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from mer_cache.catalogue.aus import AU_SETS, AUTargets, au_targets
from mer_cache.errors import LabelError
from mer_cache.heads.config import HeadConfig
from mer_cache.heads.data import Sequences
from mer_cache.heads.models import TemporalHead, create_head
from mer_cache.heads.training import epoch_trainer, fold_seed, predict_clips
from mer_cache.heads.windows import EpochSampler, make_windows
from mer_cache.protocol.epochs import Progress, ProgressEvent, au_validation_scorer, fit_epochs
from mer_cache.protocol.folds import Fold


def choose_au_targets(seqs: Sequences, config: HeadConfig, *, source: str = "these sequences") -> AUTargets:
    """The (n_clips, n_aus) target of a run: ``config.aus``, or every AU coded often enough.

    With ``config.aus`` empty, the set is every AU coded in at least ``config.au_min_clips``
    of the clips, in numeric order. The rule reads the annotation of all the run's clips,
    as meb's fixed per-dataset AU sets do; it never looks at a prediction.

    Raises
    ------
    LabelError
        When the clips carry no AU annotation, or no AU reaches ``au_min_clips``.
    """
    cells = seqs.action_units
    if not cells or not any(c.strip() for c in cells):
        raise LabelError(
            f"{source} holds no action-unit annotation, so --task au has nothing to learn. AUs come "
            "from the annotation file (CASME II, SAMM, CAS(ME)^3, 4DME, MMEW, CASME; SMIC has none) "
            "and are stored in the cache by `mer-cache extract`; a cache written before AUs were "
            "stored reads as none: extract it again into a new --out folder.")
    if config.aus:
        chosen = config.aus[0] if len(config.aus) == 1 and config.aus[0] in AU_SETS else config.aus
        return au_targets(cells, aus=chosen)
    every = au_targets(cells)
    counts = every.y.sum(axis=0).astype(np.int64)
    keep = [n for n, c in zip(every.names, counts) if c >= config.au_min_clips]
    if not keep:
        top = ", ".join(f"{n} x{int(c)}" for n, c in sorted(zip(every.names, counts), key=lambda t: -t[1])[:5])
        raise LabelError(f"No action unit is coded in at least {config.au_min_clips} of the "
                         f"{len(cells)} clips of {source} (most frequent: {top}). Lower "
                         "--au-min-clips, or name the AUs with --aus.")
    return au_targets(cells, aus=keep)


def positive_weights(targets: np.ndarray) -> np.ndarray:
    """Per-AU BCE weight of positives, negatives / positives (1 for an AU with none), shape (A,)."""
    pos = targets.sum(axis=0).astype(np.float64)
    neg = len(targets) - pos
    return np.where(pos > 0, neg / np.maximum(pos, 1), 1.0).astype(np.float32)


def train_au_fold(bank: torch.Tensor, seqs: Sequences, targets: AUTargets, fold: Fold,
                  config: HeadConfig, *, precision: str, n_folds: int,
                  progress: Progress | None) -> tuple[TemporalHead, dict]:
    """Train one AU head on a fold's training clips; returns the head and the fold's record.

    With ``balance='loss'`` each AU's positives are weighted by negatives/positives over the
    fold's training windows (``pos_weight`` of the BCE), so a rare AU is not learned as
    "always absent"; ``'none'`` weights every target 1. Windows are drawn without class
    balance (a multi-label target has no classes to balance).
    """
    seed = fold_seed(config.seed, fold.index)
    torch.manual_seed(seed)
    y, lengths, device = targets.y, seqs.lengths, bank.device
    head = create_head(config.arch, in_dim=seqs.dim, n_classes=y.shape[1], proj_dims=config.proj_dims,
                       hidden=config.hidden, fc=config.fc).to(device)
    win = make_windows(lengths, fold.train, window=config.window, stride=config.window_stride)
    win_y = y[win.clip].astype(np.float32)  # (W, A)
    per_epoch = (None if config.epoch_windows == "all"
                 else max(1, round(config.windows_per_clip * len(fold.train))))
    sampler = EpochSampler(np.zeros(len(win), np.int64), 1, per_epoch=per_epoch, balance="none", seed=seed)
    pos_weight = (torch.from_numpy(positive_weights(win_y)).to(device)
                  if config.balance == "loss" else None)
    frames = torch.from_numpy(win.frames).to(device)  # (W, N) rows into the bank
    tgt = torch.from_numpy(win_y).to(device)  # (W, A)
    opt = torch.optim.Adam(head.parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=True)
    drawn: list[int] = []
    train_epoch = epoch_trainer(
        head, bank, frames, tgt, sampler, opt, batch_size=config.batch_size, precision=precision,
        drawn=drawn, loss_of=lambda logits, target, _: F.binary_cross_entropy_with_logits(
            logits, target, pos_weight=pos_weight))

    def predict_val(positions: np.ndarray) -> np.ndarray:
        return predict_clips(head, bank, lengths, positions, window=config.window,
                             stride=config.window_stride, precision=precision)

    def on_epoch(epoch: int, loss: float, val: float | None) -> None:
        if progress:
            progress(ProgressEvent("epoch", fold.index, n_folds, epoch, config.epochs, loss, val))

    history = fit_epochs(head, epochs=config.epochs, patience=config.patience, train_epoch=train_epoch,
                         validate=au_validation_scorer(fold, y, names=targets.names, predict=predict_val),
                         on_epoch=on_epoch)
    no_positive = [n for n, p in zip(targets.names, y[fold.train].sum(axis=0)) if p == 0]
    return head, {
        "fold": fold.index, "seed": seed, "precision": precision,
        "n_train_clips": int(len(fold.train)), "n_train_windows": int(len(win)),
        "windows_per_epoch": drawn[-1] if drawn else 0, "n_padded_train_clips": win.n_padded,
        "epochs_run": history.epochs_run, "best_epoch": history.best_epoch,
        "loss_history": history.losses, "val_mean_f1_history": history.val_uf1,
        "aus_without_training_positive": no_positive,
    }
