"""Train a temporal head per fold and evaluate it honestly.

One :class:`HeadConfig` (frozen, validated once) describes a run. For every fold the head is
trained on windows of the training clips for a fixed number of epochs, or with early
stopping on held-out *training* subjects (``val_subjects``); the test fold is never used to
choose anything. A test clip is predicted from all its windows (mean of logits), and scores
are computed on the predictions pooled over folds (``metrics.py``).

Speed on a CPU comes from these choices, none of which changes the model:

- all frames live in one stacked tensor, and a batch gathers its windows by index (no
  per-sample Python, no DataLoader);
- a batch projects each distinct frame once and gathers windows from the projected frames;
  gradients are identical to projecting every window, and BatchNorm statistics are taken
  over the batch's distinct frames;
- an epoch draws ``windows_per_clip`` windows per training clip (class-balanced) from the
  pool of all windows, instead of walking the whole pool (see ``windows.py``;
  ``epoch_windows='all'`` walks it, as the paper does); at test time every window is used,
  and every frame is projected once;
- freed buffers stay in the process from one step to the next (:func:`retained_heap`), and
  deterministic mode skips its fill of fresh buffers (:func:`deterministic`).

Each fold is seeded from (seed, fold) alone, so a resumed run equals an uninterrupted one,
and deterministic algorithms are requested, so the same seed gives the same metrics.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from mer_cache.errors import ConfigError
from mer_cache.heads.data import Sequences, reference_frames
from mer_cache.heads.config import HeadConfig
from mer_cache.heads.models import TemporalHead, create_head
from mer_cache.heads.windows import EpochSampler, class_weights, make_windows
from mer_cache.protocol.epochs import Progress, ProgressEvent, fit_epochs, validation_scorer
from mer_cache.protocol.folds import Fold

@contextlib.contextmanager
def deterministic():
    """Ask torch for deterministic kernels during a run, restoring the caller's setting.

    ``fill_uninitialized_memory`` (on by default with deterministic algorithms) is turned off:
    it fills every ``torch.empty`` buffer before a kernel overwrites it (oneDNN's LSTM
    workspace, every gradient), 2-3 % of a ``bilstm`` training step, and changes no result
    of a kernel that writes its output before reading it.
    """
    before = torch.are_deterministic_algorithms_enabled(), torch.utils.deterministic.fill_uninitialized_memory
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.utils.deterministic.fill_uninitialized_memory = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0])
        torch.utils.deterministic.fill_uninitialized_memory = before[1]


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
_GLIBC_DEFAULT_THRESHOLD = 128 * 1024
_heap_depth = 0


@contextlib.contextmanager
def retained_heap():
    """Keep freed memory in the process while training, on glibc (elsewhere a no-op).

    A training step frees and allocates the same multi-megabyte buffers every step
    (activations, bfloat16 weight copies, gradients). glibc hands large freed blocks back
    to the kernel (blocks over the mmap threshold at once, the heap's free top over the
    trim threshold), so the next step page-faults them in again: on the paper's ``bilstm``
    workload (``benchmarks/heads_speed.py``) 2.0 M page faults per epoch of the 5 folds
    and 4-5 % of the time, 0.27 M faults with the thresholds raised. Raised, the blocks
    stay for reuse; the process never holds more than its peak. On leaving, glibc's
    defaults come back and the heap is trimmed. ``MALLOC_MMAP_THRESHOLD_`` or
    ``MALLOC_TRIM_THRESHOLD_`` in the environment are the user's choice and are kept.
    """
    global _heap_depth
    libc = _glibc()
    if libc is None or _heap_depth or os.environ.keys() & {"MALLOC_MMAP_THRESHOLD_",
                                                           "MALLOC_TRIM_THRESHOLD_"}:
        yield
        return
    libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20)  # glibc's largest allowed value
    libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30)
    _heap_depth = 1
    try:
        yield
    finally:
        _heap_depth = 0
        libc.mallopt(_M_TRIM_THRESHOLD, _GLIBC_DEFAULT_THRESHOLD)
        libc.mallopt(_M_MMAP_THRESHOLD, _GLIBC_DEFAULT_THRESHOLD)
        libc.malloc_trim(0)


def _glibc():
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc"):
            return None
    except (AttributeError, ValueError, OSError):  # not a POSIX system, or not glibc
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def resolve_device(config: HeadConfig) -> torch.device:
    if config.device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {config.device} was asked for, but torch sees no CUDA device "
                          f"here. Use --device cpu.")
    return torch.device(config.device)


def resolve_precision(config: HeadConfig, device: torch.device) -> str:
    """The precision a run really uses: 'auto' picks bf16 only where the CPU computes it natively."""
    if config.precision != "auto":
        return config.precision
    if device.type == "cpu" and torch.backends.mkldnn.is_available() \
            and torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return "bf16"
    return "fp32"


def _autocast(device: torch.device, precision: str):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def fold_seed(seed: int, fold: int) -> int:
    """Seed of one fold, from (seed, fold) only, so folds can be rerun one at a time."""
    return int(np.random.SeedSequence([seed, fold]).generate_state(1)[0])


@torch.no_grad()
def predict_clips(head: TemporalHead, bank: torch.Tensor, lengths: np.ndarray, clips: np.ndarray,
                  *, window: int, stride: int, precision: str = "fp32", batch: int = 512) -> np.ndarray:
    """Logits of each clip: the mean of its windows' logits, shape (len(clips), C).

    In eval mode BatchNorm uses running statistics, so a frame's projection does not depend
    on its window: every distinct frame is projected once.
    """
    head.eval()
    win = make_windows(lengths, clips, window=window, stride=stride)
    uniq, inv = torch.unique(torch.from_numpy(win.frames).to(bank.device), return_inverse=True)
    with _autocast(bank.device, precision):
        z = torch.cat([head.project(bank[uniq[i:i + 4096]]) for i in range(0, len(uniq), 4096)])  # (U, P)
        logits = torch.cat([head.decode(z[inv[i:i + batch]]) for i in range(0, len(win), batch)])  # (W, C)
    logits = logits.float()
    local = np.zeros(int(clips.max()) + 1, dtype=np.int64)
    local[clips] = np.arange(len(clips))
    where = torch.from_numpy(local[win.clip]).to(bank.device)  # (W,) row of each window's clip
    sums = torch.zeros(len(clips), logits.shape[1], device=bank.device).index_add_(0, where, logits)
    counts = torch.bincount(where, minlength=len(clips)).clamp(min=1).unsqueeze(1)
    return (sums / counts).cpu().numpy()  # (n, C)


def predict_sequences(head: TemporalHead, embeddings: list[np.ndarray], *, window: int, stride: int = 1,
                      precision: str = "fp32", device: str = "cpu",
                      reference: str = "none") -> np.ndarray:
    """Logits (n, C) of new clips given as (T_i, D) arrays: the mean over each clip's windows.

    Use the ``window``, ``window_stride``, ``precision`` and resolved ``reference`` stored
    with the head's checkpoint.
    """
    lengths = np.array([len(e) for e in embeddings], dtype=np.int64)
    embeddings = reference_frames(embeddings, reference)
    bank = torch.from_numpy(np.concatenate(embeddings).astype(np.float32, copy=False)).to(device)
    return predict_clips(head.to(device), bank, lengths, np.arange(len(embeddings)), window=window,
                         stride=stride, precision=precision)


def batch_loss(head: TemporalHead, bank: torch.Tensor, rows: torch.Tensor, targets: torch.Tensor, *,
               weight: torch.Tensor | None, precision: str,
               loss_of: Callable[..., torch.Tensor] | None = None) -> torch.Tensor | None:
    """Loss of one training batch of windows ``rows`` (B, N) into ``bank``.

    Each distinct frame is projected once (BatchNorm statistics over the distinct frames)
    and the windows are gathered from the projected frames; when no frame repeats, the
    gradients equal ``head(bank[rows])`` through the plain ``nn.LSTM`` (tested). None when
    the batch has a single distinct frame, of which BatchNorm cannot take statistics.
    ``loss_of(logits, targets, weight)`` is the task's loss of the float32 logits (B, C);
    cross-entropy by default (the emotion task).
    """
    uniq, inv = torch.unique(rows, return_inverse=True)  # (U,), (B, N)
    if len(uniq) < 2:
        return None
    with _autocast(bank.device, precision):
        z = head.project(bank[uniq])  # (U, P)
        logits = head.decode(z[inv])  # (B, N, P) -> (B, C)
    if loss_of is None:
        return F.cross_entropy(logits.float(), targets, weight=weight)
    return loss_of(logits.float(), targets, weight)


def epoch_trainer(head: TemporalHead, bank: torch.Tensor, frames: torch.Tensor, targets: torch.Tensor,
                  sampler: EpochSampler, opt: torch.optim.Optimizer, *, batch_size: int, precision: str,
                  drawn: list[int], weight: torch.Tensor | None = None,
                  loss_of: Callable[..., torch.Tensor] | None = None) -> Callable[[int], float]:
    """One training epoch over the windows ``sampler`` draws, as a ``train_epoch(epoch) -> loss``.

    ``frames`` (W, N) holds each window's rows into ``bank`` and ``targets`` (W, ...) its
    target; ``loss_of`` as in :func:`batch_loss`; ``drawn`` receives the window count of
    every epoch.
    """
    device = bank.device

    def train_epoch(epoch: int) -> float:
        head.train()
        ids = torch.from_numpy(sampler.next_epoch()).to(device)
        drawn.append(len(ids))
        total, n_seen = 0.0, 0
        for start in range(0, len(ids), batch_size):
            w = ids[start:start + batch_size]  # (B,)
            loss = batch_loss(head, bank, frames[w], targets[w], weight=weight, precision=precision,
                              loss_of=loss_of)
            if loss is None:
                continue
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(w)
            n_seen += len(w)
        return total / max(n_seen, 1)

    return train_epoch


def train_fold(bank: torch.Tensor, seqs: Sequences, fold: Fold, config: HeadConfig, *,
                precision: str, n_folds: int, progress: Progress | None) -> tuple[TemporalHead, dict]:
    """Train one head on a fold's training clips; returns the head and the fold's record."""
    seed = fold_seed(config.seed, fold.index)
    torch.manual_seed(seed)
    n_classes, lengths, device = len(seqs.classes), seqs.lengths, bank.device
    head = create_head(config.arch, in_dim=seqs.dim, n_classes=n_classes, proj_dims=config.proj_dims,
                       hidden=config.hidden, fc=config.fc).to(device)
    win = make_windows(lengths, fold.train, window=config.window, stride=config.window_stride)
    win_y = seqs.y[win.clip]
    per_epoch = (None if config.epoch_windows == "all"
                 else max(1, round(config.windows_per_clip * len(fold.train))))
    sampler = EpochSampler(win_y, n_classes, per_epoch=per_epoch, balance=config.balance, seed=seed)
    weight = (torch.from_numpy(class_weights(win_y, n_classes)).to(device)
              if config.balance == "loss" else None)
    frames = torch.from_numpy(win.frames).to(device)  # (W, N) rows into the bank
    targets = torch.from_numpy(win_y).to(device)  # (W,)
    # fused Adam: one kernel per parameter tensor instead of a dozen elementwise ops
    opt = torch.optim.Adam(head.parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=True)
    per_epoch_ids: list[int] = []
    train_epoch = epoch_trainer(head, bank, frames, targets, sampler, opt, batch_size=config.batch_size,
                                precision=precision, drawn=per_epoch_ids, weight=weight)

    def predict_val(positions: np.ndarray) -> np.ndarray:
        return predict_clips(head, bank, lengths, positions, window=config.window,
                             stride=config.window_stride, precision=precision).argmax(1)

    def on_epoch(epoch: int, loss: float, val_uf1: float | None) -> None:
        if progress:
            progress(ProgressEvent("epoch", fold.index, n_folds, epoch, config.epochs, loss, val_uf1))

    history = fit_epochs(head, epochs=config.epochs, patience=config.patience, train_epoch=train_epoch,
                         validate=validation_scorer(fold, seqs.y, n_classes=n_classes, predict=predict_val),
                         on_epoch=on_epoch)
    record = {
        "fold": fold.index, "seed": seed, "precision": precision,
        "n_train_clips": int(len(fold.train)), "n_train_windows": int(len(win)),
        "windows_per_epoch": per_epoch_ids[-1] if per_epoch_ids else 0,
        "n_padded_train_clips": win.n_padded,
        "epochs_run": history.epochs_run, "best_epoch": history.best_epoch,
        "loss_history": history.losses, "val_uf1_history": history.val_uf1,
    }
    return head, record
