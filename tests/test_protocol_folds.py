"""Protocols: subject-disjoint folds, the clip-kfold leak warning, and refusals."""

import numpy as np
import pytest

from heads_synth import make_sequences
from mer_cache.errors import ProtocolError
from mer_cache.protocol.folds import SubjectLeakWarning, make_folds

CLASSES = ("negative", "positive", "surprise", "non_micro")


@pytest.fixture(scope="module")
def seqs():
    return make_sequences(n_subjects=12, clips_per_class=2, dim=4)


def _folds(seqs, **kw):
    kw = {"protocol": "subject-kfold", "folds": 5, "seed": 0, **kw}
    return make_folds(seqs.y, seqs.groups, classes=seqs.classes, **kw)


def test_subject_kfold_is_subject_disjoint_and_covers_every_clip(seqs):
    folds = _folds(seqs)
    assert len(folds) == 5
    groups = seqs.groups
    for f in folds:
        assert not set(groups[f.train]) & set(groups[f.test])
    assert sorted(np.concatenate([f.test for f in folds]).tolist()) == list(range(len(seqs)))
    # shuffled with the seed: another seed gives other folds, the same seed the same folds
    assert [f.test.tolist() for f in folds] == [f.test.tolist() for f in _folds(seqs)]
    assert [f.test.tolist() for f in folds] != [f.test.tolist() for f in _folds(seqs, seed=3)]


def test_loso_tests_one_subject_per_fold(seqs):
    folds = _folds(seqs, protocol="loso")
    assert len(folds) == 12
    assert all(len(set(seqs.groups[f.test])) == 1 for f in folds)


def test_clip_kfold_warns_that_subjects_leak(seqs):
    with pytest.warns(SubjectLeakWarning, match="same subjects are in training and test"):
        folds = _folds(seqs, protocol="clip-kfold")
    assert any(set(seqs.groups[f.train]) & set(seqs.groups[f.test]) for f in folds)


def test_more_folds_than_subjects_is_refused(seqs):
    with pytest.raises(ProtocolError, match="--folds 13 does not fit 12 subjects"):
        _folds(seqs, folds=13)


def test_class_absent_from_a_training_fold_names_fold_class_and_subjects():
    y = np.array([0, 1, 0, 1, 0, 1, 2, 2])
    groups = np.array(["a", "a", "b", "b", "c", "c", "d", "d"])  # only subject d has class 2
    with pytest.raises(ProtocolError, match=r"Fold \d: class 'surprise' is absent.*subjects d"):
        make_folds(y, groups, protocol="loso", folds=2, seed=0, classes=CLASSES[:3])


def test_validation_subjects_come_from_training_subjects_only(seqs):
    for f in _folds(seqs, val_subjects=2):
        val, train, test = (set(seqs.groups[i]) for i in (f.val, f.train, f.test))
        assert len(val) == 2
        assert not val & test and not val & train
