"""``extract --features flow`` and ``train-head --arch ststnet|offapexnet`` from the command line."""

from __future__ import annotations

import json

import pytest

from cli_run import run_cli


_run = run_cli


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth") / "smic"
    res = _run("synth", "--out", root, "--subjects", "2", "--clips-per-class", "1", "--seed", "0")
    assert res.exit_code == 0, res.output
    return root


def test_extract_flow_then_train_a_flow_head(synth_root, tmp_path):
    out = tmp_path / "flow.zarr"
    res = _run("extract", "--features", "flow", "--dataset", "smic", "--root", synth_root, "--out", out)
    assert res.exit_code == 0, res.output
    assert "apex estimated" in res.output and "Flow cache complete: True" in res.output
    again = _run("extract", "--features", "flow", "--dataset", "smic", "--root", synth_root, "--out", out)
    assert again.exit_code == 0 and "resumed" in again.output
    info = _run("cache", "info", out, "--json")
    assert info.exit_code == 0, info.output
    data = json.loads(info.output)
    assert data["apex_estimated"] == 8 and len(data["frames_used"]) == 8
    assert {u["apex_source"] for u in data["frames_used"].values()} == {"estimated"}
    run = tmp_path / "run"
    res = _run("train-head", "--cache", out, "--arch", "ststnet", "--folds", "2", "--epochs", "2",
               "--out", run)
    assert res.exit_code == 0, res.output
    config = json.loads((run / "config.json").read_text())
    assert config["config"]["window"] == 1 and config["fingerprint"]["method"] == "tvl1-opencv"
    assert (run / "metrics.json").is_file()
    wrong = _run("train-head", "--cache", out, "--arch", "bilstm", "--out", tmp_path / "x")
    assert wrong.exit_code == 2 and "needs an embedding cache" in wrong.output


def test_extract_flow_refuses_trunk_options(synth_root, tmp_path):
    res = _run("extract", "--features", "flow", "--dataset", "smic", "--root", synth_root,
               "--out", tmp_path / "f.zarr", "--trunk", "tiny-cnn")
    assert res.exit_code == 2 and "--trunk cannot be combined with --features flow" in res.output
    # options with defaults are refused when typed, not silently ignored (--dtype float16
    # used to store float32 without a word)
    res = _run("extract", "--features", "flow", "--dataset", "smic", "--root", synth_root,
               "--out", tmp_path / "f.zarr", "--dtype", "float16", "--batch-size", "8")
    assert res.exit_code == 2
    assert "--batch-size, --dtype cannot be combined with --features flow" in " ".join(res.output.split())
    assert not (tmp_path / "f.zarr").exists()
    res = _run("extract", "--features", "optical", "--dataset", "smic", "--root", synth_root,
               "--out", tmp_path / "f.zarr")
    assert res.exit_code == 2 and "--features must be embeddings or flow" in res.output
