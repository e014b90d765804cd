"""Which subject tests in which fold: computed exactly as ``train-head`` computes it.

Fine-tuned trunks are only honest if the head that later reads their features tests fold k
on the same subjects the fold-k trunk never saw. So the fine-tuning run builds its folds with
the heads' own code path: the label scheme is applied by
:func:`mer_cache.protocol.labels.label_clips` (same dropped clips, same class indices,
same ``dataset/subject`` group keys, same order) and the folds by
:func:`mer_cache.protocol.folds.make_folds`. The result is summarized as a subject -> test fold
map and its sha256, which every checkpoint and fold cache records.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mer_cache.catalogue.clip import Clip
from mer_cache.protocol.folds import Fold, make_folds
from mer_cache.protocol.leakage import assignment_sha256, fold_assignment
from mer_cache.protocol.labels import label_clips


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


def clip_folds(clips: list[Clip], *, labels: str, protocol: str, folds: int, seed: int,
               val_subjects: int = 0) -> ClipFolds:
    """Label the clips and split them into folds the way ``train-head`` does.

    Raises
    ------
    LabelError
        If the label scheme fits no clip.
    ProtocolError
        If the folds cannot be made (see :func:`mer_cache.protocol.folds.make_folds`).
    """
    lab = label_clips([c.dataset for c in clips], [c.label for c in clips], scheme=labels)
    keep = lab.keep
    groups = np.array([f"{clips[i].dataset}/{clips[i].subject}" for i in keep])
    made = make_folds(lab.y, groups, protocol=protocol, folds=folds, seed=seed,
                      classes=lab.classes, val_subjects=val_subjects)  # type: ignore[arg-type]
    return ClipFolds(keep=keep, y=lab.y, groups=groups, classes=lab.classes, folds=made,
                     assignment=fold_assignment(made, groups))
