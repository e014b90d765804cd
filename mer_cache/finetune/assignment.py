"""Which subject tests in which fold: computed exactly as ``train-head`` computes it.

Fine-tuned trunks are only honest if the head that later reads their features tests fold k
on the same subjects the fold-k trunk never saw. So the fine-tuning run builds its folds with
the heads' own code path: the label scheme is applied by
:func:`mer_cache.heads.data.sequences_from_arrays` (same dropped clips, same class indices,
same ``dataset/subject`` group keys, same order) and the folds by
:func:`mer_cache.heads.folds.make_folds`. The result is summarized as a subject -> test fold
map and its sha256, which every checkpoint and fold cache records.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np

from mer_cache.catalogue.clip import Clip
from mer_cache.heads.data import sequences_from_arrays
from mer_cache.heads.folds import Fold, make_folds


@dataclass(frozen=True)
class ClipFolds:
    """The labelled clips of a run and their folds.

    Attributes
    ----------
    keep : ndarray of int
        Positions into the catalogue of the clips the label scheme keeps.
    y : ndarray of int
        Class of each kept clip.
    groups : ndarray of str
        ``dataset/subject`` of each kept clip (the heads' subject key).
    classes : tuple of str
    folds : list of Fold
        Positions into the kept clips.
    assignment : dict
        Subject key -> the fold that tests it.
    """

    keep: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    classes: tuple[str, ...]
    folds: list[Fold]
    assignment: dict[str, int]

    @property
    def assignment_sha256(self) -> str:
        return assignment_sha256(self.assignment)


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


def clip_folds(clips: list[Clip], *, labels: str, protocol: str, folds: int, seed: int,
               val_subjects: int = 0) -> ClipFolds:
    """Label the clips and split them into folds the way ``train-head`` does.

    Raises
    ------
    LabelError
        If the label scheme fits no clip.
    ProtocolError
        If the folds cannot be made (see :func:`mer_cache.heads.folds.make_folds`).
    """
    # Placeholder (1, 1) arrays: only the labelling path of the heads is wanted here, and
    # reusing it (rather than a copy) keeps clip order, dropped clips and class indices equal.
    seqs = sequences_from_arrays(
        [np.zeros((1, 1), np.float32)] * len(clips),
        clip_ids=[c.clip_id for c in clips], subjects=[c.subject for c in clips],
        datasets=[c.dataset for c in clips], labels=[c.label for c in clips], scheme=labels,
    )
    index = {c.clip_id: i for i, c in enumerate(clips)}
    keep = np.array([index[cid] for cid in seqs.clip_ids], dtype=np.int64)
    groups = seqs.groups
    made = make_folds(seqs.y, groups, protocol=protocol, folds=folds, seed=seed,
                      classes=seqs.classes, val_subjects=val_subjects)  # type: ignore[arg-type]
    return ClipFolds(keep=keep, y=seqs.y, groups=groups, classes=seqs.classes, folds=made,
                     assignment=fold_assignment(made, groups))
