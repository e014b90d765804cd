"""Pooled scores versus the mean of per-fold scores, per-dataset scores, confusions."""

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix, f1_score, recall_score

from mer_cache.protocol.metrics import summarize


def test_pooled_scores_differ_from_the_mean_of_fold_scores():
    # fold 0: 2 clips, both right; fold 1: 6 clips, 3 right
    y_true = np.array([0, 1, 0, 0, 0, 1, 1, 1])
    y_pred = np.array([0, 1, 0, 0, 1, 0, 0, 1])
    fold = np.array([0, 0, 1, 1, 1, 1, 1, 1])
    m = summarize(y_true, y_pred, fold, np.array(["smic"] * 8), classes=("a", "b"))
    assert m["pooled"]["accuracy"] == pytest.approx(5 / 8)
    assert m["folds"][0]["accuracy"] == 1.0 and m["folds"][1]["accuracy"] == 0.5
    assert m["mean_of_folds"]["accuracy"] == pytest.approx(0.75)
    assert m["pooled"]["uf1"] == pytest.approx(f1_score(y_true, y_pred, average="macro"), abs=1e-6)
    assert m["pooled"]["uf1"] != pytest.approx(m["mean_of_folds"]["uf1"])
    assert m["confusion_pooled"] == [[3, 1], [2, 2]]
    assert m["folds"][1]["confusion"] == [[2, 1], [2, 1]]
    assert "per_dataset" not in m


def test_composite_data_gets_per_dataset_scores():
    y_true = np.array([0, 1, 2, 0, 1, 2])
    y_pred = np.array([0, 1, 2, 1, 1, 1])
    ds = np.array(["smic", "smic", "smic", "casme2", "casme2", "casme2"])
    m = summarize(y_true, y_pred, np.zeros(6, int), ds, classes=("n", "p", "s"))
    assert m["per_dataset"]["smic"]["uar"] == 1.0
    assert m["per_dataset"]["casme2"]["uar"] == pytest.approx(1 / 3)
    assert m["per_dataset"]["casme2"]["n"] == 3


def test_subset_scores_use_the_full_class_list_megc_formula():
    """A false positive to a class absent from the subset's truth costs F1 (0.600, not 0.900)."""
    from mer_cache.protocol.metrics import scores

    y_true, y_pred = np.array([0, 1, 1, 1]), np.array([0, 1, 1, 2])
    s = scores(y_true, y_pred, n_classes=3)
    assert s["uf1"] == pytest.approx(0.6)
    assert s["uf1"] == pytest.approx(f1_score(y_true, y_pred, labels=[0, 1, 2], average="macro",
                                              zero_division=0))
    assert s["uar"] == pytest.approx(recall_score(y_true, y_pred, labels=[0, 1, 2], average="macro",
                                                  zero_division=0))
    assert s["uar"] == pytest.approx((1 + 2 / 3 + 0) / 3)


@pytest.mark.parametrize("seed", range(6))
def test_confusion_scores_equal_sklearn_with_the_full_label_list(seed):
    from mer_cache.protocol.intervals import scores_from_confusion

    rng = np.random.default_rng(seed)
    c = int(rng.integers(2, 6))
    y_true, y_pred = rng.integers(0, c, 40), rng.integers(0, c, 40)
    y_true[y_true == c - 1] = 0  # one class never true: its predictions are false positives
    conf = confusion_matrix(y_true, y_pred, labels=list(range(c)))
    uf1, uar = scores_from_confusion(conf)
    labels = list(range(c))
    assert uf1 == pytest.approx(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0))
    assert uar == pytest.approx(recall_score(y_true, y_pred, labels=labels, average="macro", zero_division=0))


def test_pooled_scores_carry_a_subject_bootstrap_interval():
    rng = np.random.default_rng(0)
    subjects = np.repeat([f"s{i}" for i in range(10)], 6)
    y_true = np.tile([0, 1, 2], 20)
    good = rng.random(60) < 0.7
    y_pred = np.where(good, y_true, (y_true + 1) % 3)
    m = summarize(y_true, y_pred, np.zeros(60, int), np.array(["smic"] * 60), classes=("a", "b", "c"),
                  subjects=subjects, seed=0)
    lo, hi = m["pooled_ci95"]["uf1"]
    assert lo < m["pooled"]["uf1"] < hi and hi - lo > 0.05
    assert m["pooled_ci95"]["units"] == 10
    again = summarize(y_true, y_pred, np.zeros(60, int), np.array(["smic"] * 60),
                      classes=("a", "b", "c"), subjects=subjects, seed=0)
    assert again["pooled_ci95"] == m["pooled_ci95"]  # seeded: equal runs, equal bytes
    # perfect predictions: the interval collapses onto 1
    perfect = summarize(y_true, y_true, np.zeros(60, int), np.array(["smic"] * 60),
                        classes=("a", "b", "c"), subjects=subjects)
    assert perfect["pooled_ci95"]["uf1"] == [1.0, 1.0]


def test_bootstrap_resamples_subjects_not_clips():
    """Two subjects, one always right, one always wrong: resampling subjects gives intervals
    reaching both extremes; resampling clips would stay near the middle."""
    from mer_cache.protocol.intervals import subject_bootstrap

    y_true = np.array([0, 1] * 20)
    y_pred = np.concatenate([y_true[:20], 1 - y_true[20:]])
    subjects = np.array(["a"] * 20 + ["b"] * 20)
    ci = subject_bootstrap(y_true, y_pred, subjects, n_classes=2, seed=1)
    assert ci["uar"][0] == 0.0 and ci["uar"][1] == 1.0
