"""The leakage guard: a fold may test only subjects its features' trunk never saw.

Features from a fine-tuned trunk carry what it learned about its training subjects. If a head
tests subject S on features whose trunk trained (or early-stopped) on S, the score is inflated
by subject leakage, silently. Every cache records what its trunk saw (the fingerprint's
``finetune`` record, written from the checkpoint's own metadata whatever the route: a
fold-cache folder, ``extract --weights fold3.pt``, or a notebook), and every head run checks
each of its folds here before anything trains:

- fold k's test subjects must be disjoint from the training and validation subjects of the
  trunk that produced fold k's features (else :class:`ProtocolError`, naming them);
- with per-fold features (a fold-cache folder), fold k must read the cache of fine-tuned fold
  k, and the head's subject -> fold assignment must equal the fine-tuning run's.
"""

from __future__ import annotations

import hashlib
import json
from typing import Sequence

import numpy as np

from mer_cache.errors import ProtocolError
from mer_cache.protocol.folds import Fold


def fold_assignment(folds: list[Fold], groups: np.ndarray) -> dict[str, int]:
    """Subject key -> index of the fold whose test part holds it."""
    groups = np.asarray(groups)
    out: dict[str, int] = {}
    for fold in folds:
        for g in sorted(set(groups[fold.test].tolist())):
            out[str(g)] = int(fold.index)
    return dict(sorted(out.items()))


def assignment_sha256(assignment: dict[str, int]) -> str:
    """A hash of the complete subject -> fold map (order-independent)."""
    text = json.dumps(sorted((str(k), int(v)) for k, v in assignment.items()))
    return hashlib.sha256(text.encode()).hexdigest()


def _run(record: dict) -> str:
    return (f"--protocol {record.get('protocol')} --folds {record.get('folds')} "
            f"--seed {record.get('seed')} --labels {record.get('labels')}")


def check_unseen(record: dict | None, *, fold_index: int, test_subjects, source: str) -> None:
    """Refuse fold ``fold_index`` if the features' trunk trained on one of its test subjects.

    Parameters
    ----------
    record : dict or None
        The ``finetune`` record of the features' cache (None: a trunk trained on no subject
        of this data, nothing to check).
    test_subjects : iterable of str
        The fold's test subjects (``dataset/subject`` keys).
    source : str
        Where the features come from, for the message.
    """
    if not record:
        return
    seen = set(record.get("train_subjects") or []) | set(record.get("val_subjects") or [])
    leaked = sorted(s for s in set(map(str, test_subjects)) if s in seen)
    if leaked:
        raise ProtocolError(
            f"Fold {fold_index}: the features in {source} come from a trunk "
            f"({record.get('checkpoint')}, fine-tuned fold {record.get('fold')}) that was trained "
            f"on subject(s) {', '.join(leaked)}, which this head tests in fold {fold_index}. Its "
            f"scores would be inflated by subject leakage, so nothing is trained. Extract with "
            f"`mer-cache extract --finetuned-run RUN` and pass that folder (fold k then reads "
            f"fold k's features), with the fine-tuning run's folds ({_run(record)}).")


def check_same_folds(record: dict, *, fold_index: int, test_subjects, assignment_hash: str,
                     head_assignment: dict[str, int] | None = None) -> None:
    """Refuse per-fold features whose fold or subject -> fold assignment differ from the head's."""
    if record.get("fold") != fold_index:
        raise ProtocolError(f"Fold {fold_index} of the head would read features of fine-tuned fold "
                            f"{record.get('fold')}; each fold must use its own fold cache.")
    if assignment_hash == record.get("assignment_sha256"):
        return
    run_assignment = record.get("assignment") or {}
    differ = sorted(set(map(str, test_subjects)) ^ set(record.get("test_subjects", [])))
    if head_assignment is not None:
        keys = set(head_assignment) | set(run_assignment)
        differ = sorted(s for s in keys if head_assignment.get(s) != run_assignment.get(s))
    shown = ", ".join(f"{s} (head fold {head_assignment.get(s) if head_assignment else '?'}, "
                      f"run fold {run_assignment.get(s, 'none')})" for s in differ[:12])
    raise ProtocolError(
        f"Fold {fold_index}: the head's subject -> fold assignment differs from the fine-tuning "
        f"run's, so fold caches and head folds do not match. Subjects placed differently: "
        f"{shown or 'none in this fold; other folds differ'}{' ...' if len(differ) > 12 else ''}. "
        f"Train the head with the run's settings ({_run(record)}) on the same clips.")


def check_features(records: Sequence[dict | None], folds: list[Fold], groups, *, per_fold: bool,
                   source: str) -> None:
    """Check every fold of a head run against the trunk(s) that made its features.

    Parameters
    ----------
    records : sequence of dict or None
        The ``finetune`` record of each fold's features: one per fold with ``per_fold``
        (a fold-cache folder), else one record shared by every fold.
    folds : list of Fold
    groups : ndarray of str
        Subject key of every clip.
    per_fold : bool
        True when fold k reads its own cache (then fold indices and assignment must match).
    source : str
        Path of the features, for messages.

    Raises
    ------
    ProtocolError
        Naming the subjects, on any leak or mismatch.
    """
    groups = np.asarray(groups)
    if per_fold and len(records) != len(folds):
        first = next((r for r in records if r), {})
        raise ProtocolError(f"The head makes {len(folds)} folds but {source} holds {len(records)} "
                            f"fold caches; use the fine-tuning run's {_run(first)}.")
    head_assignment = fold_assignment(folds, groups)
    digest = assignment_sha256(head_assignment)
    for fold in folds:
        record = records[fold.index] if per_fold else records[0]
        tests = groups[fold.test].tolist()
        check_unseen(record, fold_index=fold.index, test_subjects=tests, source=source)
        if per_fold and record:
            check_same_folds(record, fold_index=fold.index, test_subjects=tests,
                             assignment_hash=digest, head_assignment=head_assignment)
