"""Late fusion of runs: the fused probabilities, the score, and refusal of mismatched folds."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from heads_synth import make_arrays
from mer_cache.cli.app import app
from mer_cache.errors import ConfigError, ProtocolError
from mer_cache.heads.data import sequences_from_arrays
from mer_cache.pipelines import fuse_runs
from mer_cache.heads.config import HeadConfig
from mer_cache.pipelines import train_head

FAST = dict(window=9, epochs=2, batch_size=16, folds=3, precision="fp32")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("runs")
    arrays = make_arrays(n_subjects=6, clips_per_class=1)
    seqs = sequences_from_arrays(**arrays, scheme="smic4")
    for arch in ("mean", "frame"):
        train_head(seqs, HeadConfig(arch=arch, **FAST), out=base / arch)
    train_head(seqs, HeadConfig(arch="mean", seed=1, **FAST), out=base / "mean-seed1")
    fewer = {k: v[:-1] for k, v in arrays.items()}  # one clip less: other folds
    train_head(sequences_from_arrays(**fewer, scheme="smic4"), HeadConfig(arch="frame", **FAST),
               out=base / "frame-fewer")
    return base


def _softmax(x):
    e = np.exp(x - x.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_fused_probability_is_the_mean_of_the_runs_softmax(runs, tmp_path):
    res = fuse_runs([runs / "mean", runs / "frame"], out=tmp_path / "fused")
    fold0 = [json.loads((runs / a / "fold0.json").read_text()) for a in ("mean", "frame")]
    clip = fold0[0]["test_clip_ids"][0]
    expected = np.mean([_softmax(np.asarray(f["logits"]))[f["test_clip_ids"].index(clip)]
                        for f in fold0], axis=0)
    row = next(r for r in res.predictions if r["clip"] == clip)
    classes = res.metrics["classes"]
    np.testing.assert_allclose([row[f"p_{c}"] for c in classes], expected, atol=1e-6)
    assert row["predicted"] == classes[int(np.argmax(expected))]
    assert res.metrics["arch"] == "fusion(mean+frame)" and res.metrics["pooled"]["n"] == 24
    assert (tmp_path / "fused" / "metrics.json").is_file()


def test_fusing_a_run_with_itself_gives_its_own_predictions(runs):
    res = fuse_runs([runs / "mean", runs / "mean"])
    own = json.loads((runs / "mean" / "metrics.json").read_text())
    assert res.metrics["pooled"] == own["pooled"]


def test_runs_on_other_folds_are_refused(runs):
    with pytest.raises(ConfigError, match="seed: 0 in .* 1 in"):
        fuse_runs([runs / "mean", runs / "mean-seed1"])
    with pytest.raises(ProtocolError, match="tests other clips"):
        fuse_runs([runs / "mean", runs / "frame-fewer"])
    with pytest.raises(ConfigError, match="at least two runs"):
        fuse_runs([runs / "mean"])
    with pytest.raises(ConfigError, match="not a finished"):
        fuse_runs([runs / "mean", runs / "nothing-here"])


def test_fuse_runs_command(runs, tmp_path):
    res = CliRunner().invoke(app, ["fuse-runs", "--run", str(runs / "mean"), "--run",
                                   str(runs / "frame"), "--out", str(tmp_path / "f")])
    assert res.exit_code == 0, res.output
    assert "fusion(mean+frame)" in res.output and "pooled" in res.output
    bad = CliRunner().invoke(app, ["fuse-runs", "--run", str(runs / "mean"), "--run",
                                   str(runs / "mean-seed1")])
    assert bad.exit_code == 2 and "Traceback" not in bad.output
