"""Leave one dataset out: every dataset tested once, never with its own clips in training."""

from __future__ import annotations

import numpy as np
import pytest

from mer_cache.errors import ProtocolError
from mer_cache.protocol.lodo import leave_one_dataset_out

DATASETS = np.array(["casme2"] * 4 + ["samm"] * 3 + ["smic"] * 3)
GROUPS = np.array([f"{d}/s{i % 2}" for i, d in enumerate(DATASETS)])


def test_each_dataset_is_the_test_set_once():
    folds = leave_one_dataset_out(DATASETS, GROUPS)
    assert [f.dataset for f in folds] == ["casme2", "samm", "smic"]
    for f in folds:
        assert set(DATASETS[f.test]) == {f.dataset} and f.dataset not in set(DATASETS[f.train])
        assert len(f.train) + len(f.test) == len(DATASETS) and len(f.val) == 0
    assert sorted(np.concatenate([f.test for f in folds]).tolist()) == list(range(10))


def test_validation_subjects_come_from_training_datasets():
    folds = leave_one_dataset_out(DATASETS, GROUPS, val_subjects=1, seed=3)
    for f in folds:
        assert len(np.unique(GROUPS[f.val])) == 1 and f.dataset not in set(DATASETS[f.val])
        assert not set(GROUPS[f.val]) & set(GROUPS[f.train])
    with pytest.raises(ProtocolError, match="leaves no training subject"):
        leave_one_dataset_out(DATASETS, GROUPS, val_subjects=4)


def test_one_dataset_is_refused():
    with pytest.raises(ProtocolError, match="at least 2 datasets; these are all from samm"):
        leave_one_dataset_out(np.array(["samm"] * 3), np.array(["samm/a", "samm/b", "samm/c"]))


def test_class_missing_from_the_training_datasets_is_refused():
    y = np.array([0, 1, 0, 1, 0, 1, 0, 0, 0, 2])  # only smic has class 2
    leave_one_dataset_out(DATASETS, GROUPS, y=np.where(y == 2, 1, y), classes=("neg", "pos"))
    with pytest.raises(ProtocolError, match="class 'sur' is absent from the training datasets"):
        leave_one_dataset_out(DATASETS, GROUPS, y=y, classes=("neg", "pos", "sur"))


def test_shared_subject_key_across_datasets_is_refused():
    with pytest.raises(ProtocolError, match="in both training and test"):
        leave_one_dataset_out(np.array(["a", "b"]), np.array(["s1", "s1"]))
