"""Validation subjects for early stopping, taken from a fold's training subjects only."""

from __future__ import annotations

import numpy as np

from mer_cache.errors import ProtocolError


def split_val(train: np.ndarray, groups: np.ndarray, *, val_subjects: int, seed: int,
              where: str) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) positions: ``val_subjects`` training subjects, drawn with ``seed``, set aside.

    ``where`` names the fold in messages (e.g. ``"Fold 3"``).
    """
    if val_subjects <= 0:
        return train, np.empty(0, np.int64)
    subjects = np.unique(groups[train])
    if val_subjects >= len(subjects):
        raise ProtocolError(f"{where}: --val-subjects {val_subjects} leaves no training subject "
                            f"(it trains on {len(subjects)}). Use fewer validation subjects.")
    chosen = np.random.default_rng(seed).choice(subjects, size=val_subjects, replace=False)
    is_val = np.isin(groups[train], chosen)
    return train[~is_val], train[is_val]
