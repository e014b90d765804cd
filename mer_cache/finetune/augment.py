"""Frame augmentation of Exp-I ("Aug.-I"): class-balanced copies, horizontal flip, rotation.

Bai & Goecke multiply each class by its own factor so every class reaches about 15000 frames
(Table 1). Here an epoch draws ``target`` frames per class from the fold's training frames:
every frame ``target // n_c`` times plus a random subset for the remainder, so the per-class
multiplier is ``target / n_c``; each drawn copy gets its own random flip and rotation, which
is what makes the copies differ. Augmentation statistics come from the training frames of
the fold only. Everything is drawn from explicit generators, so one seed gives one run.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def class_multipliers(y: np.ndarray, n_classes: int, *, target: int | None) -> dict[int, float]:
    """Class -> how many copies of each of its frames an epoch holds (``target / n_c``)."""
    counts = np.bincount(np.asarray(y), minlength=n_classes)
    goal = int(target) if target is not None else int(counts.max())
    return {c: (goal / int(n) if n else 0.0) for c, n in enumerate(counts)}


def balanced_epoch(y: np.ndarray, n_classes: int, *, target: int | None,
                   rng: np.random.Generator) -> np.ndarray:
    """Positions into ``y`` for one epoch: ``target`` per present class, shuffled.

    Parameters
    ----------
    y : ndarray of int, shape (n,)
        Class of each training frame.
    target : int or None
        Frames per class and epoch (None: the largest class's count).
    """
    y = np.asarray(y)
    counts = np.bincount(y, minlength=n_classes)
    goal = int(target) if target is not None else int(counts.max())
    picks = []
    for c in range(n_classes):
        members = np.flatnonzero(y == c)
        if len(members) == 0:
            continue
        full, rest = divmod(goal, len(members))
        picks.append(np.tile(members, full))
        picks.append(rng.choice(members, size=rest, replace=False))
    order = np.concatenate(picks)
    return order[rng.permutation(len(order))]


class FlipRotate:
    """Random horizontal flip and rotation of a normalized batch, on its device.

    One affine warp per sample (``grid_sample``), so a batch is augmented in one call.
    Pixels rotated in from outside the frame are 0 in normalized units, i.e. the mean colour.
    """

    def __init__(self, *, flip: bool, rotation_deg: float, generator: torch.Generator) -> None:
        self.flip = flip
        self.rotation_rad = math.radians(rotation_deg)
        self.generator = generator  # a CPU generator: the same draws on any device

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        angle = (torch.rand(b, generator=self.generator) * 2 - 1) * self.rotation_rad  # (B,)
        sign = torch.ones(b)
        if self.flip:
            sign = torch.where(torch.rand(b, generator=self.generator) < 0.5, -1.0, 1.0)
        if not self.flip and self.rotation_rad == 0:
            return x
        cos, sin = torch.cos(angle), torch.sin(angle)
        zero = torch.zeros(b)
        # sample at R @ diag(sign, 1) @ p: a mirror of x, then a rotation
        theta = torch.stack([torch.stack([sign * cos, -sin, zero], 1),
                             torch.stack([sign * sin, cos, zero], 1)], 1)  # (B, 2, 3)
        theta = theta.to(x.device, x.dtype)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)  # (B, H, W, 2)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
