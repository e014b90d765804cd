"""Sliding windows over clips, and the per-epoch draw of training windows.

Bai & Goecke train on windows of N consecutive frames cut from every clip (N = 11..17,
N = 13 best) and balance the window counts per class ("Aug.-II"). Here a window is a row
of frame indices into one stacked frame bank, so windows cost no copies: a batch gathers
its frames by index. A clip shorter than N gets one window whose indices are clamped to
the clip, which repeats its first and last frames (the reference code pads short clips by
repeating frames).

The training draw is the speed/faithfulness trade-off of this tool: every epoch draws
``windows_per_clip x training clips`` windows from the pool of all stride-s windows. With
``balance='windows'`` each class gets the same share of that draw, each class's pool being
walked in a seeded random order and restarted when used up (so a small class is repeated,
as an oversampling multiplier would). With the default one window per clip, 20 epochs see
about as many windows as one pass over the whole stride-1 pool of a SMIC-length clip.

``per_epoch=None`` is the paper's workload instead: every window of the pool in every epoch.
Balanced, each class then gets as many windows as the largest class has (Aug.-II's
per-class multipliers): every window of a class once, the smaller classes topped up with a
random draw of their own windows without repetition inside the top-up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from mer_cache.errors import ConfigError

Balance = Literal["windows", "loss", "none"]


@dataclass(frozen=True)
class WindowIndex:
    """Windows over a set of clips.

    Attributes
    ----------
    frames : ndarray of int64, shape (W, N)
        Rows into the stacked frame bank (see :func:`clip_offsets`).
    clip : ndarray of int64, shape (W,)
        Position of each window's clip in the sequence list.
    n_padded : int
        How many of the clips were shorter than N and padded by edge repetition.
    """

    frames: np.ndarray
    clip: np.ndarray
    n_padded: int

    def __len__(self) -> int:
        return len(self.clip)


def clip_offsets(lengths: np.ndarray) -> np.ndarray:
    """Start row of each clip in the frame bank (the clips stacked in order)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    return np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)


def check_window(lengths: np.ndarray, *, window: int) -> None:
    """Refuse a window longer than every clip: the data would be padding only.

    Raises
    ------
    ConfigError
        Naming the window and the longest clip.
    """
    longest = int(np.max(lengths))
    if window > longest:
        raise ConfigError(
            f"--window {window} is longer than every clip (the longest has {longest} frames), "
            f"so every training window would be mostly repeated edge frames. Choose a window "
            f"of at most {longest} frames (the paper uses 11..17 on SMIC, whose shortest clip "
            f"has 11 frames)."
        )


def make_windows(lengths: np.ndarray, clips: np.ndarray, *, window: int, stride: int) -> WindowIndex:
    """All windows of ``window`` frames, ``stride`` apart, over the chosen clips.

    Parameters
    ----------
    lengths : ndarray of int, shape (n_all,)
        Frame count of every clip in the bank.
    clips : ndarray of int
        Positions of the clips to cut windows from.
    window, stride : int
        Window length N and the step between window starts.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    clips = np.asarray(clips, dtype=np.int64)
    offsets = clip_offsets(lengths)
    t = lengths[clips]  # (n,)
    n_win = np.where(t >= window, (t - window) // stride + 1, 1)  # (n,)
    clip_of = np.repeat(clips, n_win)  # (W,)
    # window number inside its clip: 0, 1, ... restarting at each clip
    first = np.repeat(np.cumsum(n_win) - n_win, n_win)
    k = np.arange(len(clip_of)) - first  # (W,)
    t_w = lengths[clip_of]  # (W,)
    # a short clip is centred in its one window; clamping repeats its edge frames
    start = np.where(t_w >= window, k * stride, -((window - t_w) // 2))  # (W,)
    rel = start[:, None] + np.arange(window)[None, :]  # (W, N)
    rel = np.clip(rel, 0, t_w[:, None] - 1)
    return WindowIndex(frames=offsets[clip_of][:, None] + rel, clip=clip_of,
                       n_padded=int(np.sum(t < window)))


def class_weights(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Inverse-frequency weights (mean 1 over samples) for a class-weighted loss."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    weights = np.zeros(n_classes)
    present = counts > 0
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights.astype(np.float32)


class EpochSampler:
    """Draws each epoch's training windows, class-balanced or not, from a seeded stream.

    Parameters
    ----------
    labels : ndarray of int, shape (W,)
        Class of every window in the training pool.
    n_classes : int
    per_epoch : int or None
        Windows drawn per epoch (rounded up to a multiple of the class count when balanced);
        None: every window each epoch (see the module docstring).
    balance : {'windows', 'loss', 'none'}
        'windows' draws the same count from every class; otherwise the pool is walked as is.
    seed : int
    """

    def __init__(self, labels: np.ndarray, n_classes: int, *, per_epoch: int | None,
                 balance: Balance, seed: int) -> None:
        self._whole = per_epoch is None
        if self._whole:
            counts = np.bincount(labels, minlength=n_classes)
            per_epoch = len(labels) if balance != "windows" else \
                int(np.count_nonzero(counts) * counts.max())
        if per_epoch < 1:
            raise ConfigError(f"Windows per epoch must be at least 1, got {per_epoch}.")
        self._rng = np.random.default_rng(seed)
        self._balanced = balance == "windows"
        if self._balanced:
            self._pools = [np.flatnonzero(labels == c) for c in range(n_classes)]
            self._pools = [p for p in self._pools if len(p)]
            self._take = -(-per_epoch // len(self._pools))  # ceil: equal share per class
        else:
            self._pools = [np.arange(len(labels))]
            self._take = per_epoch
        self._queues: list[np.ndarray] = [np.empty(0, np.int64) for _ in self._pools]

    def _draw(self, i: int, n: int) -> np.ndarray:
        if self._whole:  # every window of the pool, then a top-up without repeats
            pool = self._pools[i]
            k, r = divmod(n, len(pool))
            return np.concatenate([self._rng.permutation(pool) for _ in range(k)]
                                  + [self._rng.choice(pool, r, replace=False)])
        out = []
        while n > 0:
            if len(self._queues[i]) == 0:  # pool used up: walk it again in a new order
                self._queues[i] = self._rng.permutation(self._pools[i])
            got = self._queues[i][:n]
            self._queues[i] = self._queues[i][n:]
            out.append(got)
            n -= len(got)
        return np.concatenate(out)

    def next_epoch(self) -> np.ndarray:
        """Window ids of the next epoch, shuffled."""
        ids = np.concatenate([self._draw(i, self._take) for i in range(len(self._pools))])
        return self._rng.permutation(ids)
