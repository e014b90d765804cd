"""The one epoch loop: early stopping on validation subjects, the best epoch restored, and no
route by which the test fold can choose an epoch, a configuration or a layer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import mer_cache.finetune.train as finetune_train
import mer_cache.heads.training as head_training
import mer_cache.pipelines.finetune_run as finetune_run
import mer_cache.pipelines.sweep as sweep_module
from conftest import make_clips
from heads_synth import make_sequences
from mer_cache.finetune import FinetuneConfig
from mer_cache.heads.config import HeadConfig
from mer_cache.pipelines import finetune, run_sweep, train_head
from mer_cache.protocol.epochs import ProgressEvent, fit_epochs, validation_scorer
from mer_cache.protocol.folds import Fold


def _scripted(scores):
    """A model whose weight records the epoch, and a validation that replays ``scores``."""
    model = nn.Linear(1, 1, bias=False)
    seen = iter(scores)

    def train_epoch(epoch: int) -> float:
        with torch.no_grad():
            model.weight.fill_(float(epoch))
        return 1.0 / epoch

    return model, train_epoch, lambda: next(seen)


def test_stops_after_patience_and_restores_the_best_epoch():
    model, train_epoch, validate = _scripted([0.2, 0.6, 0.4, 0.3, 0.9, 0.9])
    history = fit_epochs(model, epochs=6, patience=2, train_epoch=train_epoch, validate=validate)
    assert history.epochs_run == 4  # epochs 3 and 4 brought nothing better than epoch 2
    assert history.best_epoch == 2 and history.val_uf1 == [0.2, 0.6, 0.4, 0.3]
    assert float(model.weight.detach()) == 2.0  # the weights of epoch 2, not of the last epoch


def test_without_validation_every_epoch_runs_and_the_last_weights_stay():
    model, train_epoch, _ = _scripted([])
    history = fit_epochs(model, epochs=5, patience=1, train_epoch=train_epoch, validate=None)
    assert history.epochs_run == 5 and history.best_epoch == 5 and history.val_uf1 == []
    assert float(model.weight.detach()) == 5.0


def test_validation_scores_only_the_validation_part():
    fold = Fold(index=0, train=np.array([0, 1, 2]), test=np.array([3, 4]), val=np.array([5, 6]))
    y = np.array([0, 1, 0, 1, 0, 1, 0])
    calls = []

    def predict(positions):
        calls.append(positions.tolist())
        return y[positions]

    score = validation_scorer(fold, y, n_classes=2, predict=predict)
    assert score() == 1.0 and calls == [[5, 6]]
    assert validation_scorer(Fold(0, fold.train, fold.test, np.empty(0, np.int64)), y,
                             n_classes=2, predict=predict) is None
    with pytest.raises(ValueError, match="overlap"):
        validation_scorer(Fold(0, fold.train, fold.test, np.array([4, 5])), y, n_classes=2,
                          predict=predict)


def test_head_early_stopping_never_reads_the_test_fold(monkeypatch):
    """Every prediction made while training (validation) is on the fold's validation subjects."""
    seqs = make_sequences(n_subjects=6, clips_per_class=1, dim=8)
    calls, current = [], {}
    real = head_training.predict_clips

    def spy(head, bank, lengths, clips, **kw):
        calls.append((current["fold"], np.asarray(clips).copy()))
        return real(head, bank, lengths, clips, **kw)

    def progress(ev: ProgressEvent) -> None:
        if ev.kind == "fold":
            current["fold"] = ev.fold

    monkeypatch.setattr(head_training, "predict_clips", spy)
    config = HeadConfig(arch="mean", folds=3, epochs=4, patience=1, val_subjects=1, window=5,
                        batch_size=16)
    res = train_head(seqs, config, progress=progress)
    assert calls, "validation never ran"
    details = {d["fold"]: d for d in res.metrics["fold_details"]}
    for k, clips in calls:
        subjects = set(seqs.groups[clips].tolist())
        assert subjects <= set(details[k]["val_subjects"])
        assert not subjects & set(details[k]["test_subjects"])
    assert all(d["epochs_run"] >= d["best_epoch"] >= 1 for d in details.values())


def test_finetune_early_stopping_and_layer_choice_never_read_test_subjects(tmp_path, monkeypatch):
    clips = make_clips(tmp_path / "frames", [4] * 12, subjects=4)
    groups = np.array([f"{c.dataset}/{c.subject}" for c in clips])
    val_calls, layer_calls, current = [], [], {}
    real_predict = finetune_train.predict_frames

    def spy_predict(model, bank, rows, **kw):
        val_calls.append((current["fold"], set(groups[bank.clip_of_frame[rows]].tolist())))
        return real_predict(model, bank, rows, **kw)

    def spy_suggest(train_clips, *, trunk, regions, seed, face):
        layer_calls.append((current["fold"], {f"{c.dataset}/{c.subject}" for c in train_clips}))
        return [{"layer": "layer4", "focus": 1.0, "n_clips": len(train_clips), "focus_per_clip": []}]

    def progress(ev):
        if ev.kind == "fold":
            current["fold"] = ev.fold

    monkeypatch.setattr(finetune_train, "predict_frames", spy_predict)
    monkeypatch.setattr(finetune_run, "suggest_layer", spy_suggest)
    config = FinetuneConfig(trunk="tiny-cnn", weights="random", from_layer="auto", folds=2,
                            val_subjects=1, epochs=2, patience=1, batch_size=8, fc_dims=(16,),
                            workers=0)
    run = finetune(clips, config=config, out=tmp_path / "run", progress=progress)
    records = {r["fold"]: r for r in run.folds}
    assert val_calls and len(layer_calls) == 2
    for k, subjects in val_calls:
        assert subjects <= set(records[k]["val_subjects"])
        assert not subjects & set(records[k]["test_subjects"])
    for k, subjects in layer_calls:  # l_s chosen per fold, on its training subjects only
        assert subjects and not subjects & set(records[k]["test_subjects"])
        assert records[k]["from_layer"] == "layer4"


def test_sweep_selects_on_training_subjects_only(tmp_path, monkeypatch):
    seqs = make_sequences(n_subjects=6, clips_per_class=1, dim=8)
    inner_calls = []
    real = sweep_module.train_head

    def spy(s, config, *, out=None, **kw):
        if out is not None and "selection" in Path(out).parts:
            inner_calls.append((int(Path(out).parent.name.removeprefix("fold")), set(s.clip_ids)))
        return real(s, config, out=out, **kw)

    monkeypatch.setattr(sweep_module, "train_head", spy)
    base = HeadConfig(arch="mean", folds=3, epochs=1, window=5, batch_size=16)
    res = run_sweep(seqs, {"arch": ["mean", "frame"]}, base=base, out=tmp_path, inner_folds=2)
    grid_run = train_head(seqs, base)  # same outer folds (same protocol, folds, seed)
    tests = {r["fold"]: set(r["test_clip_ids"]) for r in grid_run.folds}
    assert len(inner_calls) == 3 * 2
    for k, clip_ids in inner_calls:
        assert clip_ids and not clip_ids & tests[k]
        assert clip_ids | tests[k] == set(seqs.clip_ids)  # every training subject is available
    assert [c["fold"] for c in res.choices] == [0, 1, 2]


@pytest.mark.parametrize("key, values", [("seed", [0, 3]), ("folds", [2, 3]),
                                         ("protocol", ["subject-kfold", "loso"]),
                                         ("labels", ["smic4", "megc3"])])
def test_sweep_refuses_a_grid_over_what_makes_the_outer_folds(tmp_path, key, values):
    """Each grid point would make its own folds: fold k's choice, made on its training
    subjects under the base folds, would be reported on another point's fold k, whose test
    subjects it may have trained on."""
    from mer_cache.errors import ConfigError

    seqs = make_sequences(n_subjects=6, clips_per_class=1, dim=8)
    base = HeadConfig(arch="mean", folds=3, epochs=1, window=5, batch_size=16)
    with pytest.raises(ConfigError, match=f"decide the folds.*{key}|{key}.*decide the folds"):
        run_sweep(seqs, {"arch": ["mean", "frame"], key: values}, base=base, out=tmp_path)
    assert not any(tmp_path.iterdir())  # refused before anything trained


def test_selection_follows_inner_scores_not_test_scores(monkeypatch):
    """The chosen configuration is the inner winner even when another has the best test score."""
    from mer_cache.protocol.selection import choose

    inner = {"a": {"uf1": 0.4, "uar": 0.5}, "b": {"uf1": 0.6, "uar": 0.1}, "c": {"uf1": 0.6, "uar": 0.2}}
    assert choose(inner) == "c"
    assert choose({"a": {"uf1": 0.5, "uar": 0.5}, "b": {"uf1": 0.5, "uar": 0.5}}) == "a"

