"""AU scores: per-AU binary F1 and their mean, pooled and per dataset (meb's AU report)."""

from __future__ import annotations

import numpy as np
import pytest

from mer_cache.errors import ConfigError
from mer_cache.protocol.au_metrics import au_scores, predict_present, summarize_aus

NAMES = ("AU1", "AU4", "AU12")
Y = np.array([[1, 0, 1], [1, 1, 0], [0, 1, 0], [0, 0, 1]])
P = np.array([[1, 0, 0], [0, 1, 0], [0, 1, 1], [0, 0, 1]])


def test_per_au_f1_and_mean_by_hand():
    s = au_scores(Y, P, names=NAMES)
    # AU1: tp 1, fp 0, fn 1 -> 2/3; AU4: tp 2 -> 1; AU12: tp 1, fp 1, fn 1 -> 1/2
    assert s["f1"] == pytest.approx({"AU1": 2 / 3, "AU4": 1.0, "AU12": 0.5}, abs=1e-6)
    assert s["mean_f1"] == pytest.approx((2 / 3 + 1 + 0.5) / 3, abs=1e-6)
    assert s["support"] == {"AU1": 2, "AU4": 2, "AU12": 2} and s["n"] == 4


def test_au_never_present_nor_predicted_counts_as_zero_like_meb():
    y = np.array([[1, 0], [0, 0]])
    s = au_scores(y, y, names=("AU1", "AU2"))
    assert s["f1"] == {"AU1": 1.0, "AU2": 0.0} and s["mean_f1"] == 0.5 and s["support"]["AU2"] == 0


def test_logits_above_zero_are_present():
    assert predict_present(np.array([[-0.1, 0.0, 0.3]])).tolist() == [[0, 0, 1]]


def test_per_dataset_scores_when_clips_come_from_several():
    out = summarize_aus(Y, P, np.array(["casme2", "casme2", "samm", "samm"]), names=NAMES)
    assert list(out["per_dataset"]) == ["casme2", "samm"]
    assert out["per_dataset"]["samm"]["n"] == 2 and out["pooled"]["n"] == 4
    assert "per_dataset" not in summarize_aus(Y, P, np.array(["samm"] * 4), names=NAMES)


def test_shape_mismatch_is_a_config_error():
    with pytest.raises(ConfigError, match="one name per AU"):
        au_scores(Y, P[:, :2], names=NAMES)
