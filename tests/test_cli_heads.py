"""``mer-cache train-head`` and ``mer-cache sweep``: outputs, and every bad input as a message."""

import csv
import json

import numpy as np
import pytest

import mer_cache.pipelines.inputs as pipeline_inputs
from heads_synth import make_arrays, write_cache
from mer_cache.heads.data import sequences_from_arrays
from cli_run import run_cli

FAST = ["--epochs", "1", "--window", "9", "--batch-size", "16"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    path = tmp_path_factory.mktemp("cache") / "c.zarr"
    write_cache(path, n_subjects=6, clips_per_class=1)
    return path


_run = run_cli


def test_train_head_writes_a_run_and_prints_the_metrics_table(cache, tmp_path):
    out = tmp_path / "run"
    res = _run("train-head", "--cache", cache, "--arch", "mean", "--folds", "2", *FAST, "--out", out)
    assert res.exit_code == 0, res.output
    assert "pooled" in res.output and "UF1" in res.output
    for name in ("config.json", "metrics.json", "predictions.csv", "fold0.pt", "fold1.pt",
                 "confusion_pooled.png"):
        assert (out / name).is_file(), name
    again = _run("train-head", "--cache", cache, "--arch", "mean", "--folds", "2", *FAST, "--out", out)
    assert again.exit_code == 0
    changed = _run("train-head", "--cache", cache, "--arch", "frame", "--folds", "2", *FAST, "--out", out)
    assert changed.exit_code == 2 and "config.arch" in changed.output


def test_clip_kfold_is_printed_with_a_leak_warning(cache, tmp_path):
    res = _run("train-head", "--cache", cache, "--arch", "frame", "--protocol", "clip-kfold",
               "--folds", "2", *FAST, "--out", tmp_path / "run")
    assert res.exit_code == 0, res.output
    assert "subjects are in training and test" in " ".join(res.output.split())


@pytest.mark.parametrize("args, title, detail", [
    (["--labels", "casme2-5"], "Label problem", "label scheme 'casme2-5' fits only"),
    (["--labels", "nope"], "Label problem", "Unknown label scheme 'nope'"),
    (["--folds", "9"], "Evaluation protocol problem", "--folds 9 does not fit 6 subjects"),
    (["--window", "99"], "Invalid options", "longer than every clip"),
    (["--arch", "tcn"], "Invalid options", "arch 'tcn' is unknown"),
])
def test_bad_options_are_one_message_and_exit_2(cache, tmp_path, args, title, detail):
    base = ["train-head", "--cache", cache, "--arch", "mean", "--epochs", "1", "--out", tmp_path / "r"]
    res = _run(*base, *args)
    assert res.exit_code == 2
    text = " ".join(res.output.split())
    assert title in text and detail in text


def test_incomplete_or_missing_cache_is_a_cache_problem(tmp_path):
    write_cache(tmp_path / "c.zarr", n_subjects=2, clips_per_class=1, drop_last=True)
    for path in (tmp_path / "c.zarr", tmp_path / "absent.zarr"):
        res = _run("train-head", "--cache", path, "--out", tmp_path / "r")
        assert res.exit_code == 2
        assert "Cache problem" in res.output or "File not found" in res.output


def test_class_absent_from_a_training_fold_is_a_protocol_problem(tmp_path, monkeypatch):
    arrays = make_arrays(n_subjects=4, clips_per_class=1, dim=8)
    # only subject s03 shows surprise: leaving it out removes the class from training
    arrays["labels"] = [lab if lab != "surprise" or s == "s03" else "negative"
                        for lab, s in zip(arrays["labels"], arrays["subjects"])]
    seqs = sequences_from_arrays(**arrays, scheme="smic4")
    monkeypatch.setattr(pipeline_inputs, "load_sequences", lambda path, labels: seqs)
    res = _run("train-head", "--cache", tmp_path, "--protocol", "loso", "--out", tmp_path / "r")
    assert res.exit_code == 2
    text = " ".join(res.output.split())
    assert "class 'surprise' is absent" in text and "smic/s03" in text


def test_sweep_reports_nested_selection_and_labels_the_grid_not_for_choosing(cache, tmp_path):
    res = _run("sweep", "--cache", cache, "--arch", "mean,frame", "--window", "7,9", "--folds", "2",
               "--inner-folds", "2", "--epochs", "1", "--out", tmp_path)
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "not for choosing" in text and "nested selection" in text
    lines = (tmp_path / "grid.csv").read_text().splitlines()
    assert lines[0].startswith("# ") and "for reading only" in lines[0]
    rows = list(csv.DictReader(lines[1:]))
    assert "rank" not in rows[0] and "test_uf1" in rows[0]
    assert [r["name"] for r in rows] == [f"arch={a}_window={w}" for a in ("mean", "frame") for w in (7, 9)]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["selection"].startswith("nested")
    assert len(metrics["choices"]) == 2 and metrics["pooled"]["n"] == 6 * 4
    assert {c["chosen"] for c in metrics["choices"]} <= {r["name"] for r in rows}
    assert (tmp_path / "arch=frame_window=7" / "metrics.json").is_file()
    assert (tmp_path / "selection" / "fold0" / "arch=mean_window=7" / "metrics.json").is_file()
    bad = _run("sweep", "--cache", cache, "--window", "7,x", "--out", tmp_path / "b")
    assert bad.exit_code == 2 and "comma-separated list of int" in bad.output
    too_long = _run("sweep", "--cache", cache, "--window", "7,99", "--out", tmp_path / "c")
    assert too_long.exit_code == 2 and "--window 99 is longer" in " ".join(too_long.output.split())
    assert not (tmp_path / "c").exists()


def test_preset_paper_sets_the_papers_training_and_explicit_options_win(cache, tmp_path):
    res = _run("train-head", "--cache", cache, "--arch", "mean", "--preset", "paper", "--folds", "2",
               "--epochs", "1", "--window", "7", "--out", tmp_path / "p")
    assert res.exit_code == 0, res.output
    config = json.loads((tmp_path / "p" / "config.json").read_text())["config"]
    assert config["reference"] == "none" and config["epoch_windows"] == "all"
    assert config["batch_size"] == 40 and config["lr"] == 2.6e-3
    assert config["epochs"] == 1 and config["window"] == 7  # given on the command line
    bad = _run("train-head", "--cache", cache, "--preset", "fast", "--out", tmp_path / "q")
    assert bad.exit_code == 2 and "Unknown preset 'fast'" in bad.output
    flow = _run("train-head", "--cache", cache, "--arch", "ststnet", "--preset", "paper",
                "--out", tmp_path / "r")  # the paper's 13-frame window: refused, said why
    assert flow.exit_code == 2 and "one flow map per clip" in " ".join(flow.output.split())
    assert "Traceback" not in flow.output and not (tmp_path / "r").exists()


def test_seeds_repeat_a_run_and_report_mean_and_spread(cache, tmp_path):
    res = _run("train-head", "--cache", cache, "--arch", "mean", "--folds", "2", *FAST,
               "--seeds", "0,1", "--out", tmp_path)
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "seeds.json").read_text())
    assert [r["seed"] for r in summary["per_seed"]] == [0, 1]
    uf1 = [r["uf1"] for r in summary["per_seed"]]
    assert summary["uf1"]["mean"] == pytest.approx(sum(uf1) / 2, abs=1e-6)
    assert summary["uf1"]["std"] == pytest.approx(abs(uf1[0] - uf1[1]) / 2 ** 0.5, abs=1e-6)
    for s in (0, 1):
        assert json.loads((tmp_path / f"seed{s}" / "config.json").read_text())["config"]["seed"] == s
    assert "mean ± sd" in res.output
    bad = _run("train-head", "--cache", cache, "--seeds", "0,0", "--out", tmp_path / "b")
    assert bad.exit_code == 2 and "distinct seeds" in bad.output
