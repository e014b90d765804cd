"""Exp-I fine-tuning: one trunk per fold on its training subjects, frozen layers, Aug.-I, resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from conftest import make_clips
from mer_cache.errors import ConfigError, TrunkError
from mer_cache.finetune import FinetuneConfig
from mer_cache.pipelines import finetune
from mer_cache.protocol.assignment import assignment_sha256, clip_folds
from mer_cache.finetune.augment import FlipRotate, balanced_epoch, class_multipliers
from mer_cache.finetune.model import FinetuneModel
from mer_cache.heads.data import sequences_from_arrays
from mer_cache.protocol.folds import make_folds
from mer_cache.trunks import create_trunk
from mer_cache.trunks.checkpoints import read_checkpoint

CONFIG = FinetuneConfig(trunk="tiny-cnn", weights="random", from_layer="layer3", folds=2,
                        epochs=2, batch_size=8, fc_dims=(16,), workers=0)




def dataset(root):
    # 12 clips, 4 subjects, 3 labels: 4 and 3 are coprime, so every subject has every label
    return make_clips(root, [5] * 12, subjects=4)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("ft")
    clips = dataset(root / "frames")
    return clips, finetune(clips, config=CONFIG, out=root / "run"), root


def test_one_checkpoint_per_fold_trained_only_on_its_training_subjects(run):
    clips, result, _ = run
    assert len(result.folds) == 2
    base = create_trunk("tiny-cnn", weights="random")
    all_subjects = {f"folder/{c.subject}" for c in clips}
    tested = set()
    for k, record in enumerate(result.folds):
        meta = read_checkpoint(result.out / f"fold{k}.pt").meta
        assert meta["fold"] == k and meta["from_layer"] == "layer3"
        assert meta["base_weights_sha256"] == base.weights_sha256
        assert (meta["protocol"], meta["folds"], meta["seed"], meta["labels"]) == (
            "subject-kfold", 2, 0, "smic4")
        train, test = set(meta["train_subjects"]), set(meta["test_subjects"])
        assert train and test and not train & test
        assert train | test == all_subjects
        assert meta["assignment_sha256"] == assignment_sha256(meta["assignment"])
        assert all(meta["assignment"][s] == k for s in test)
        # the frames it trained on are exactly the training subjects' frames
        n_train = sum(len(c.frames) for c in clips if f"folder/{c.subject}" in train)
        assert record["n_train_frames"] == n_train
        tested |= test
    assert tested == all_subjects


def test_folds_are_the_heads_folds(run):
    clips, result, _ = run
    seqs = sequences_from_arrays([np.zeros((len(c.frames), 3), np.float32) for c in clips],
                                 clip_ids=[c.clip_id for c in clips],
                                 subjects=[c.subject for c in clips],
                                 datasets=[c.dataset for c in clips],
                                 labels=[c.label for c in clips], scheme="smic4")
    folds = make_folds(seqs.y, seqs.groups, protocol="subject-kfold", folds=2, seed=0,
                       classes=seqs.classes)
    for fold, record in zip(folds, result.folds):
        assert sorted(set(seqs.groups[fold.test])) == record["test_subjects"]


def test_frozen_layers_unchanged_and_later_layers_trained(run):
    _, result, _ = run
    base = create_trunk("tiny-cnn", weights="random").net.state_dict()
    tuned = read_checkpoint(result.out / "fold0.pt").state_dict
    for key in base:
        same = torch.equal(base[key], tuned[key])
        if key.startswith(("layer1.", "layer2.")):
            assert same, f"frozen {key} changed"  # BatchNorm buffers included
    for key in ("layer3.0.weight", "layer4.0.weight", "layer3.1.running_mean"):
        assert not torch.equal(base[key], tuned[key]), f"trainable {key} did not change"


def test_frozen_batchnorm_stays_in_eval_mode():
    trunk = create_trunk("tiny-cnn", weights="random")
    model = FinetuneModel(trunk, from_layer="layer3", n_classes=3, fc_dims=(8,), dropout=0.0)
    model.train()
    assert not trunk.net.layer2[1].training and trunk.net.layer3[1].training
    assert not any(p.requires_grad for p in trunk.net.layer2.parameters())
    assert all(p.requires_grad for p in trunk.net.layer4.parameters())


def test_frame_level_scores_per_fold_and_pooled(run):
    clips, result, _ = run
    saved = json.loads((result.out / "metrics.json").read_text())
    assert saved["level"] == "frame"
    assert saved["pooled"]["n"] == sum(len(c.frames) for c in clips)
    assert [f["fold"] for f in saved["folds"]] == [0, 1]
    for key in ("accuracy", "uf1", "uar"):
        assert 0.0 <= saved["pooled"][key] <= 1.0


def test_rerun_skips_finished_folds_and_refuses_other_settings(run):
    clips, result, _ = run
    again = finetune(clips, config=CONFIG, out=result.out)
    assert again.skipped == [0, 1]
    assert again.metrics["pooled"] == result.metrics["pooled"]
    other = FinetuneConfig(**{**CONFIG.to_dict(), "lr": 0.01, "fc_dims": (16,)})
    with pytest.raises(ConfigError, match="lr"):
        finetune(clips, config=other, out=result.out)


def test_same_seed_same_weights(tmp_path, run):
    clips, result, _ = run
    again = finetune(clips, config=CONFIG, out=tmp_path / "again")
    a = read_checkpoint(result.out / "fold1.pt").state_dict
    b = read_checkpoint(again.out / "fold1.pt").state_dict
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert again.metrics["pooled"] == result.metrics["pooled"]


def test_unknown_from_layer_lists_valid_layers(tmp_path):
    clips = dataset(tmp_path / "frames")
    bad = FinetuneConfig(**{**CONFIG.to_dict(), "from_layer": "layer9", "fc_dims": (16,)})
    with pytest.raises(TrunkError, match="layer1, layer2, layer3, layer4"):
        finetune(clips, config=bad, out=tmp_path / "run")


def test_clip_level_folds_are_refused():
    with pytest.raises(ConfigError, match="clip-kfold"):
        FinetuneConfig(protocol="clip-kfold")


def test_balanced_epoch_equalizes_classes():
    y = np.array([0] * 10 + [1] * 3 + [2] * 5)
    order = balanced_epoch(y, 3, target=None, rng=np.random.default_rng(0))
    assert np.bincount(y[order]).tolist() == [10, 10, 10]
    assert np.bincount(y[balanced_epoch(y, 3, target=7, rng=np.random.default_rng(0))]).tolist() == [7, 7, 7]
    assert class_multipliers(y, 3, target=None) == {0: 1.0, 1: 10 / 3, 2: 2.0}


def test_flip_rotate_is_seeded_and_flips():
    x = torch.arange(2 * 1 * 8 * 8, dtype=torch.float32).view(2, 1, 8, 8)
    a = FlipRotate(flip=True, rotation_deg=10, generator=torch.Generator().manual_seed(3))(x)
    b = FlipRotate(flip=True, rotation_deg=10, generator=torch.Generator().manual_seed(3))(x)
    assert torch.equal(a, b)
    flip_only = FlipRotate(flip=True, rotation_deg=0, generator=torch.Generator().manual_seed(0))
    out = flip_only(x)
    for i in range(2):  # each sample is either itself or its mirror image
        assert torch.allclose(out[i], x[i], atol=1e-4) or torch.allclose(out[i], x[i].flip(-1), atol=1e-4)


def test_clip_folds_drop_clips_the_scheme_drops(tmp_path):
    clips = make_clips(tmp_path / "f", [4] * 12, subjects=4, labels=("negative", "positive", "others"))
    cf = clip_folds(clips, labels="megc3", protocol="loso", folds=2, seed=0)
    assert len(cf.keep) == 8 and cf.classes == ("negative", "positive")
    assert sorted(cf.assignment) == ["folder/s1", "folder/s2", "folder/s3", "folder/s4"]


def test_folds_train_and_test_their_own_subjects_frames_when_the_scheme_drops_clips(tmp_path):
    """Fold positions index the kept clips, as the frame bank does: dropping clips (here megc3
    drops 'others') must not shift which frames a fold trains and tests on."""
    labels = ("negative", "positive", "surprise", "others")  # 3 subjects x 4 labels, coprime
    clips = make_clips(tmp_path / "f", [5 + k for k in range(12)], subjects=3, labels=labels)
    config = FinetuneConfig(**{**CONFIG.to_dict(), "labels": "megc3", "folds": 3, "epochs": 1,
                               "fc_dims": (8,)})
    with pytest.warns(UserWarning, match="left out 3 of 12"):
        result = finetune(clips, config=config, out=tmp_path / "run")
    kept = [c for c in clips if c.label != "others"]
    for record in result.folds:
        def frames(subjects):
            return sum(len(c.frames) for c in kept if f"folder/{c.subject}" in subjects)
        assert record["n_train_frames"] == frames(record["train_subjects"])
        assert record["test"]["n"] == frames(record["test_subjects"])


def test_cli_finetune(tmp_path):
    from mer_cache.cli.app import app

    dataset(tmp_path / "data")
    res = CliRunner().invoke(app, [
        "finetune", "--dataset", "folder", "--root", str(tmp_path / "data"), "--trunk", "tiny-cnn",
        "--weights", "random", "--from-layer", "layer4", "--folds", "2", "--epochs", "1",
        "--batch-size", "8", "--out", str(tmp_path / "run")])
    assert res.exit_code == 0, res.output
    assert "pooled" in res.output and (tmp_path / "run" / "fold1.pt").is_file()
    bad = CliRunner().invoke(app, [
        "finetune", "--dataset", "folder", "--root", str(tmp_path / "data"), "--trunk", "tiny-cnn",
        "--weights", "random", "--from-layer", "conv9", "--folds", "2", "--out", str(tmp_path / "run2")])
    assert bad.exit_code == 2 and "layer1, layer2, layer3, layer4" in bad.output
