"""Evaluation protocols: which clips train and which test in every fold.

- ``subject-kfold``: StratifiedGroupKFold on subjects, shuffled with the seed. Bai & Goecke
  as written ("shuffle and distribution conducted on the subject level", 5 folds).
- ``loso``: leave one subject out, the MEGC standard; ``folds`` is ignored.
- ``lodo``: leave one dataset out (:mod:`mer_cache.protocol.lodo`), train on the other
  datasets and test on one; ``folds`` is ignored.
- ``clip-kfold``: random clip folds (KFold, shuffled with the seed), what the paper's public
  code does (``train_test_split(..., random_state=42)`` over clips). The same subject lands in
  train and test, so scores are optimistic: a :class:`SubjectLeakWarning` says so.

Every fold of the subject protocols is checked for disjoint train/test subjects, and every
training part for all classes, before anything trains.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import KFold, LeaveOneGroupOut, StratifiedGroupKFold

from mer_cache.errors import ProtocolError
from mer_cache.protocol.val_split import split_val
from mer_cache.protocol.lodo import leave_one_dataset_out
from mer_cache.protocol.names import PROTOCOLS, Protocol



class SubjectLeakWarning(UserWarning):
    """Clip-level folds put the same subject in training and test."""


LEAK_MESSAGE = ("clip-kfold splits clips at random, as the paper's public code does: the same "
                "subjects are in training and test folds, so these scores are optimistic and not "
                "comparable with subject-independent (subject-kfold, loso) results.")


@dataclass(frozen=True)
class Fold:
    """One fold: positions into the sequence list.

    ``val`` holds the training subjects set aside for early stopping (empty if none).
    """

    index: int
    train: np.ndarray
    test: np.ndarray
    val: np.ndarray


def make_folds(y: np.ndarray, groups: np.ndarray, *, protocol: Protocol, folds: int, seed: int,
               classes: tuple[str, ...], val_subjects: int = 0,
               datasets: np.ndarray | None = None) -> list[Fold]:
    """Split clips into folds and check them.

    Parameters
    ----------
    y : ndarray of int, shape (n,)
        Class of each clip.
    groups : ndarray of str, shape (n,)
        Subject key of each clip.
    protocol : {'subject-kfold', 'loso', 'clip-kfold'}
    folds : int
        Fold count (ignored by ``loso``).
    seed : int
    classes : tuple of str
        Class names, for messages.
    val_subjects : int
        Training subjects per fold held out for early stopping (0: none).
    datasets : ndarray of str, optional
        Dataset of each clip; ``lodo`` needs it.

    Raises
    ------
    ProtocolError
        If folds exceed the subjects (or clips for ``clip-kfold``), if train and test share a
        subject, or if a class is absent from a fold's training part.
    """
    y, groups = np.asarray(y), np.asarray(groups)
    if protocol == "lodo":
        if datasets is None:
            raise ProtocolError("lodo needs the dataset of every clip; pass datasets=.")
        made = leave_one_dataset_out(datasets, groups, val_subjects=val_subjects, seed=seed, y=y,
                                     classes=classes)
        for f in made:
            _check_classes(y, groups, f.train, f.test, classes=classes, fold=f.index,
                           part="validation-reduced training" if len(f.val) else "training")
        return [Fold(index=f.index, train=f.train, test=f.test, val=f.val) for f in made]
    n_subjects = len(np.unique(groups))
    idx = np.arange(len(y))
    if protocol == "subject-kfold":
        if folds < 2 or folds > n_subjects:
            raise ProtocolError(
                f"--folds {folds} does not fit {n_subjects} subjects: subject-kfold needs "
                f"between 2 and {n_subjects} folds (each fold tests at least one subject). Use "
                f"fewer folds, or --protocol loso for one subject per fold.")
        splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
        splits = splitter.split(idx, y, groups)
    elif protocol == "loso":
        if n_subjects < 2:
            raise ProtocolError(f"loso needs at least 2 subjects; the data has {n_subjects}.")
        splits = LeaveOneGroupOut().split(idx, y, groups)
    elif protocol == "clip-kfold":
        if folds < 2 or folds > len(y):
            raise ProtocolError(f"--folds {folds} does not fit {len(y)} clips: clip-kfold needs "
                                f"between 2 and {len(y)} folds.")
        warnings.warn(LEAK_MESSAGE, SubjectLeakWarning, stacklevel=2)
        splits = KFold(n_splits=folds, shuffle=True, random_state=seed).split(idx)
    else:
        raise ProtocolError(f"Unknown protocol '{protocol}'. Known protocols: {', '.join(PROTOCOLS)}.")

    out = []
    for k, (train, test) in enumerate(splits):
        train, test = np.sort(train), np.sort(test)
        if protocol != "clip-kfold":
            shared = set(groups[train]) & set(groups[test])
            if shared:  # a splitter bug or a mislabelled subject would leak identities
                raise ProtocolError(f"Fold {k}: subjects {sorted(shared)} are in both training and "
                                    f"test; refusing to evaluate with subject leakage.")
        train, val = split_val(train, groups, val_subjects=val_subjects, seed=seed + k, where=f"Fold {k}")
        _check_classes(y, groups, train, test, classes=classes, fold=k,
                       part="validation-reduced training" if len(val) else "training")
        out.append(Fold(index=k, train=train, test=test, val=val))
    return out


def _check_classes(y, groups, train, test, *, classes, fold: int, part: str) -> None:
    have = set(y[train].tolist())
    for c, name in enumerate(classes):
        if c not in have:
            holders = sorted(set(groups[y == c].tolist()))
            raise ProtocolError(
                f"Fold {fold}: class '{name}' is absent from the {part} clips; all its clips belong "
                f"to subjects {', '.join(holders)}, which this fold holds out. A head cannot learn "
                f"a class it never sees. Use fewer folds, another --seed, fewer --val-subjects, or a "
                f"label scheme that merges this class.")
