"""Pooled scores versus the mean of per-fold scores, per-dataset scores, confusions."""

import numpy as np
import pytest
from sklearn.metrics import f1_score

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
