"""Exp-I end to end through the CLI: finetune -> extract --finetuned-run -> train-head, and refusals.

Mirrors the wiring in ``cli/extract.py`` (``--finetuned-run``), ``extract/job.py``
(``run_extract_finetuned_job``), ``heads/training.py`` (``fold_features``) and ``cli/heads.py``.
"""

from __future__ import annotations

from dataclasses import replace

import json

import pytest
import torch

from conftest import make_clips
from mer_cache.errors import ProtocolError, ConfigError
from mer_cache.pipelines import load_fold_features
from mer_cache.protocol.leakage import fold_assignment
from mer_cache.protocol.folds import make_folds
from mer_cache.heads.config import HeadConfig
from mer_cache.pipelines import train_head
from cli_run import run_cli

FOLDS, SEED = 2, 0
HEAD = ["--arch", "mean", "--window", "3", "--epochs", "1", "--batch-size", "16", "--labels", "smic4"]


_run = run_cli


def _flat(text: str) -> str:
    return " ".join(text.split())  # rich wraps long messages at the console width


@pytest.fixture(scope="module")
def exp1(tmp_path_factory):
    """A fine-tuning run (2 folds, 4 subjects) and its fold caches, both made through the CLI."""
    root = tmp_path_factory.mktemp("exp1")
    # the folder layout root/subject/label/clip/frames; 4 subjects and 3 labels are coprime,
    # so every subject has every label
    make_clips(root / "data", [6] * 12, subjects=4)
    data = ["--dataset", "folder", "--root", root / "data"]
    res = _run("finetune", *data, "--trunk", "tiny-cnn", "--weights", "random", "--from-layer",
               "layer4", "--folds", FOLDS, "--seed", SEED, "--epochs", "1", "--batch-size", "8",
               "--out", root / "run")
    assert res.exit_code == 0, res.output
    res = _run("extract", *data, "--finetuned-run", root / "run", "--workers", "0",
               "--batch-size", "32", "--dtype", "float32", "--out", root / "caches")
    assert res.exit_code == 0, res.output
    return root, data, res.output


def test_extract_writes_one_cache_per_fold_and_a_table(exp1):
    root, _, output = exp1
    assert (root / "caches" / "folds.json").is_file()
    rows = {line.split("│")[2].strip(): line.split("│")[3].strip()
            for line in output.splitlines() if line.count("│") > 3}
    for k in range(FOLDS):
        assert (root / "caches" / f"fold{k}.zarr").is_dir()
        assert rows[f"fold{k}.zarr"] == "12"  # clips written by fold k's trunk
    assert "Fold caches complete: True" in _flat(output)


def test_train_head_on_fold_caches_uses_each_folds_features(exp1):
    root, _, _ = exp1
    out = root / "head"
    res = _run("train-head", "--cache", root / "caches", *HEAD, "--folds", FOLDS, "--seed", SEED,
               "--out", out)
    assert res.exit_code == 0, res.output
    assert "pooled" in res.output and "fine-tuned trunk" in _flat(res.output)
    caches = json.loads((root / "caches" / "folds.json").read_text())["fold_caches"]
    for k in range(FOLDS):
        record = json.loads((out / f"fold{k}.json").read_text())
        assert record["features"]["cache"] == f"fold{k}.zarr"
        assert record["features"]["checkpoint_sha256"] == caches[k]["finetune"]["checkpoint_sha256"]
    config = json.loads((out / "config.json").read_text())
    assert len(config["fold_features"]["checkpoints_sha256"]) == FOLDS
    again = _run("train-head", "--cache", root / "caches", *HEAD, "--folds", FOLDS, "--seed", SEED,
                 "--out", out)
    assert again.exit_code == 0, again.output  # resumes: same fold features


def test_fold_k_trains_and_tests_on_fold_k_features(exp1):
    root, _, _ = exp1
    features = load_fold_features(root / "caches", labels="smic4")
    config = HeadConfig(arch="mean", window=3, epochs=1, batch_size=16, folds=FOLDS, seed=SEED)
    both = train_head(features.sequences[0], config, fold_features=features)
    # the same run on fold k's cache alone (its fine-tuning record stripped, which only a test
    # does: the guard refuses such a cache otherwise) gives fold k's logits
    alone = [train_head(replace(features.sequences[k], fingerprint=None), config) for k in range(FOLDS)]
    for k in range(FOLDS):
        assert both.folds[k]["logits"] == alone[k].folds[k]["logits"]
    assert both.folds[1]["logits"] != alone[0].folds[1]["logits"]


def test_a_run_on_fold_features_is_not_resumed_without_them(exp1):
    root, _, _ = exp1
    features = load_fold_features(root / "caches", labels="smic4")
    seqs = features.sequences[0]
    config = HeadConfig(arch="mean", window=3, epochs=1, batch_size=16, folds=FOLDS, seed=SEED)
    out = root / "resume"
    train_head(seqs, config, out=out, fold_features=features)
    with pytest.raises(ProtocolError, match="trained on subject"):
        train_head(seqs, config, out=out)  # fold 0's features for every fold: refused outright
    with pytest.raises(ConfigError, match="fold_features"):  # and a run of other features
        train_head(replace(seqs, fingerprint=None), config, out=out)


def test_train_head_refuses_another_fold_count(exp1):
    root, _, _ = exp1
    res = _run("train-head", "--cache", root / "caches", *HEAD, "--folds", 3, "--seed", SEED,
               "--out", root / "head3")
    text = _flat(res.output)
    assert res.exit_code == 2, res.output
    assert "makes 3 folds" in text and f"--folds {FOLDS} --seed {SEED}" in text


def test_train_head_refuses_folds_whose_test_subjects_the_trunk_saw(exp1):
    root, _, _ = exp1
    features = load_fold_features(root / "caches", labels="smic4")
    seqs = features.sequences[0]

    def folds(seed):
        return make_folds(seqs.y, seqs.groups, protocol="subject-kfold", folds=FOLDS, seed=seed,
                          classes=seqs.classes)

    ours = fold_assignment(folds(SEED), seqs.groups)
    seed = next(s for s in range(1, 50) if fold_assignment(folds(s), seqs.groups) != ours)
    res = _run("train-head", "--cache", root / "caches", *HEAD, "--folds", FOLDS, "--seed", seed,
               "--out", root / "head_seed")
    text = _flat(res.output)
    assert res.exit_code == 2, res.output
    assert "Evaluation protocol problem" in text and "trained on subject" in text
    k = int(text.split("Fold ")[1].split(":")[0])
    leaked = set(seqs.groups[folds(seed)[k].test]) & set(features.caches.fold_meta[k]["train_subjects"])
    assert leaked and all(s in text for s in leaked)
    assert not (root / "head_seed" / "fold0.pt").exists()  # refused before any training


def test_train_head_and_sweep_refuse_one_fold_cache_for_every_fold(exp1):
    root, _, _ = exp1
    one = root / "caches" / "fold1.zarr"
    train_subjects = load_fold_features(root / "caches", labels="smic4").caches.fold_meta[1][
        "train_subjects"]
    for command in (["train-head"], ["sweep"]):
        res = _run(*command, "--cache", one, *HEAD, "--folds", FOLDS, "--out", root / "one")
        text = _flat(res.output)
        assert res.exit_code == 2, res.output
        assert "fine-tuned fold 1" in text and all(s in text for s in train_subjects)


def test_sweep_on_fold_caches(exp1):
    root, _, _ = exp1
    res = _run("sweep", "--cache", root / "caches", "--arch", "mean,frame", "--window", "3",
               "--epochs", "1", "--folds", FOLDS, "--seed", SEED, "--out", root / "sweep")
    assert res.exit_code == 0, res.output
    assert (root / "sweep" / "arch=frame" / "fold1.json").is_file()


@pytest.mark.parametrize("extra, named", [
    (["--weights", "random"], "--weights"),
    (["--trunk", "tiny-cnn", "--layer", "pool"], "--trunk, --layer"),
    (["--resize-mode", "stretch"], "--resize-mode"),
])
def test_extract_refuses_trunk_options_with_a_finetuned_run(exp1, extra, named):
    root, data, _ = exp1
    res = _run("extract", *data, "--finetuned-run", root / "run", *extra, "--out", root / "bad")
    text = _flat(res.output)
    assert res.exit_code == 2, res.output
    assert "Invalid options" in text and f"{named} cannot be combined with --finetuned-run" in text
    assert not (root / "bad").exists()


def test_extract_refuses_a_folder_that_is_no_finetuning_run(exp1, tmp_path):
    _, data, _ = exp1
    res = _run("extract", *data, "--finetuned-run", tmp_path, "--out", tmp_path / "c")
    assert res.exit_code == 2 and "no run.json" in _flat(res.output)


def test_cli_weights_route_a_fold_checkpoint_as_plain_weights_is_refused(exp1):
    """`extract --weights runs/ft/fold0.pt` then `train-head`: refused, naming the subjects."""
    root, data, _ = exp1
    res = _run("extract", *data, "--trunk", "tiny-cnn", "--weights", root / "run" / "fold0.pt",
               "--workers", "0", "--dtype", "float32", "--out", root / "w0.zarr")
    assert res.exit_code == 0, res.output
    seen = json.loads((root / "run" / "fold0.json").read_text())["train_subjects"]
    for command in (["train-head"], ["sweep", "--inner-folds", "2"]):
        res = _run(*command, "--cache", root / "w0.zarr", *HEAD, "--folds", FOLDS, "--seed", SEED,
                   "--out", root / "w0-run")
        text = _flat(res.output)
        assert res.exit_code == 2, res.output
        assert "trained on subject" in text and any(s in text for s in seen)
        assert not (root / "w0-run").exists()
