"""Leave one dataset out: train on the other datasets, test on one, for every dataset.

The cross-dataset protocol of meb's ``CrossDatasetValidator``: each dataset is the test set
once, so a score says how well what was learnt on other cameras, populations and annotators
transfers. Subjects never cross a fold (subject ids are unique per dataset, and the folds are
checked anyway). Training subjects can be held out for early stopping, chosen with the seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mer_cache.errors import ProtocolError
from mer_cache.protocol.val_split import split_val


@dataclass(frozen=True)
class DatasetFold:
    """One fold: positions into the clip list; ``dataset`` is the one tested.

    ``val`` holds the training subjects set aside for early stopping (empty if none); the
    fields match the subject protocols' folds so the same training loop runs on both.
    """

    index: int
    dataset: str
    train: np.ndarray
    test: np.ndarray
    val: np.ndarray


def leave_one_dataset_out(datasets: np.ndarray, groups: np.ndarray, *, val_subjects: int = 0,
                          seed: int = 0, y: np.ndarray | None = None,
                          classes: tuple[str, ...] | None = None) -> list[DatasetFold]:
    """One fold per dataset, in order of first appearance.

    Parameters
    ----------
    datasets : ndarray of str, shape (n,)
        The dataset of each clip.
    groups : ndarray of str, shape (n,)
        Subject key of each clip (``dataset/subject``).
    val_subjects : int
        Training subjects per fold held out for early stopping (0: none).
    seed : int
    y, classes : optional
        Class index of each clip and the class names: when given, every class must be in
        each fold's training clips (a class learnt from nothing cannot be tested).

    Raises
    ------
    ProtocolError
        With fewer than 2 datasets, when a fold's train and test share a subject, when the
        validation subjects would leave no training subject, or when a class is absent from
        a fold's training clips.
    """
    datasets, groups = np.asarray(datasets).astype(str), np.asarray(groups).astype(str)
    names = list(dict.fromkeys(datasets.tolist()))
    if len(names) < 2:
        raise ProtocolError(
            f"Leave-one-dataset-out needs clips of at least 2 datasets; these are all from "
            f"{names[0] if names else 'no dataset'}. Build the cache from several datasets (e.g. "
            "extract casme2 and samm into one cache), or use --protocol loso / subject-kfold.")
    folds = []
    for k, name in enumerate(names):
        test = np.flatnonzero(datasets == name)
        train = np.flatnonzero(datasets != name)
        shared = set(groups[train]) & set(groups[test])
        if shared:
            raise ProtocolError(f"Fold {k} (test {name}): subjects {sorted(shared)[:5]} are in both training "
                                "and test; give subjects per-dataset keys (dataset/subject).")
        train, val = split_val(train, groups, val_subjects=val_subjects, seed=seed + k,
                               where=f"Fold testing {name}")
        if y is not None and classes is not None:
            missing = [c for i, c in enumerate(classes) if not np.any(np.asarray(y)[train] == i)]
            if missing:
                raise ProtocolError(
                    f"Fold {k} (test {name}): class {', '.join(map(repr, missing))} is absent from the "
                    f"training datasets ({', '.join(n for n in names if n != name)}); the model could "
                    "never predict it. Use a label scheme whose classes every dataset has (e.g. megc3).")
        folds.append(DatasetFold(k, name, train, test, val))
    return folds
