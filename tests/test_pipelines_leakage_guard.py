"""Fold-aware caches and the leakage guard: fold k's features, never from a trunk that saw its test subjects."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import make_clips
from mer_cache.cache import open_cache
from mer_cache.errors import CacheError, ProtocolError
from mer_cache.extract import ExtractOptions, extract_clips
from mer_cache.finetune import FinetuneConfig
from mer_cache.heads.config import HeadConfig
from mer_cache.heads.data import load_sequences
from mer_cache.pipelines import (
    extract_finetuned, finetune, is_fold_cache_dir, load_fold_features, open_fold_caches,
    run_sweep, train_head,
)
from mer_cache.protocol.folds import make_folds
from mer_cache.protocol.leakage import assignment_sha256, check_same_folds, fold_assignment
from mer_cache.trunks import create_trunk
from mer_cache.trunks.weights.hashing import sha256_file

CONFIG = FinetuneConfig(trunk="tiny-cnn", weights="random", from_layer="layer4", folds=2,
                        epochs=1, batch_size=8, fc_dims=(16,), workers=0)
OPTIONS = ExtractOptions(batch_size=32, workers=0, dtype="float32")




@pytest.fixture(scope="module")
def fold_caches(tmp_path_factory):
    root = tmp_path_factory.mktemp("guard")
    clips = make_clips(root / "frames", [4] * 12, subjects=4)
    run = finetune(clips, config=CONFIG, out=root / "run")
    result = extract_finetuned(run.out, clips=clips, out_dir=root / "caches", options=OPTIONS)
    assert result.complete and not result.failed
    return run, root / "caches", clips


def head_folds(seqs, *, seed: int):
    return make_folds(seqs.y, seqs.groups, protocol="subject-kfold", folds=2, seed=seed,
                      classes=seqs.classes)


def test_one_cache_per_fold_records_checkpoint_and_subjects(fold_caches):
    run, path, _ = fold_caches
    assert is_fold_cache_dir(path) and not is_fold_cache_dir(run.out)
    caches = open_fold_caches(path)
    assert caches.n_folds == 2
    for k, record in enumerate(run.folds):
        fp = open_cache(caches.cache_path(k)).fingerprint
        assert fp["weights_sha256"] == sha256_file(run.out / f"fold{k}.pt")
        meta = fp["finetune"]
        assert meta["fold"] == k and meta["checkpoint_sha256"] == record["checkpoint_sha256"]
        assert meta["train_subjects"] == record["train_subjects"]
        assert meta["test_subjects"] == record["test_subjects"]


def test_matching_folds_pass_and_each_fold_has_its_own_features(fold_caches):
    _, path, _ = fold_caches
    features = load_fold_features(path, labels="smic4")
    seqs = features.sequences[0]
    features.check(head_folds(seqs, seed=CONFIG.seed), seqs)  # no error: the run's own folds
    assert not np.allclose(features.embeddings(0)[0], features.embeddings(1)[0])


def test_refuses_features_from_a_trunk_that_saw_the_test_subjects(fold_caches):
    run, path, _ = fold_caches
    features = load_fold_features(path, labels="smic4")
    seqs = features.sequences[0]
    ours = fold_assignment(head_folds(seqs, seed=CONFIG.seed), seqs.groups)
    seed = next(s for s in range(1, 50)
                if fold_assignment(head_folds(seqs, seed=s), seqs.groups) != ours)
    folds = head_folds(seqs, seed=seed)
    with pytest.raises(ProtocolError, match="trained on subject") as err:
        features.check(folds, seqs)
    k = int(str(err.value).split(":")[0].split()[-1])
    leaked = set(seqs.groups[folds[k].test]) & set(run.folds[k]["train_subjects"])
    assert leaked and all(s in str(err.value) for s in leaked)


def test_refuses_a_fold_assignment_that_differs(fold_caches):
    run, path, _ = fold_caches
    meta = open_fold_caches(path).fold_meta[0]
    # the head tests fold 0 on the run's fold-0 subjects, but places an extra subject elsewhere
    head = {**meta["assignment"], "folder/s9": 1}
    with pytest.raises(ProtocolError, match="assignment differs") as err:
        check_same_folds(meta, fold_index=0, test_subjects=meta["test_subjects"],
                            assignment_hash=assignment_sha256(head), head_assignment=head)
    assert "folder/s9" in str(err.value)
    # without the full map, the differing subjects of this fold are named
    with pytest.raises(ProtocolError, match="folder/s9"):
        check_same_folds(meta, fold_index=0, test_subjects=[*meta["test_subjects"], "folder/s9"],
                            assignment_hash=assignment_sha256(head))
    check_same_folds(meta, fold_index=0, test_subjects=meta["test_subjects"],
                        assignment_hash=meta["assignment_sha256"])  # the run's own: accepted


def test_refuses_another_fold_count_and_a_plain_folder(fold_caches, tmp_path):
    _, path, _ = fold_caches
    features = load_fold_features(path, labels="smic4")
    seqs = features.sequences[0]
    loso = make_folds(seqs.y, seqs.groups, protocol="loso", folds=2, seed=0, classes=seqs.classes)
    with pytest.raises(ProtocolError, match="4 folds"):
        features.check(loso, seqs)
    with pytest.raises(CacheError, match="folds.json"):
        open_fold_caches(tmp_path)


def test_rerun_resumes_and_other_run_is_refused(fold_caches, tmp_path):
    run, path, clips = fold_caches
    again = extract_finetuned(run.out, clips=clips, out_dir=path, options=OPTIONS)
    assert all(r.n_written == 0 for r in again.results)
    other = finetune(clips, config=FinetuneConfig(**{**CONFIG.to_dict(), "seed": 7,
                                                      "fc_dims": (16,)}), out=tmp_path / "run7")
    with pytest.raises(CacheError):
        extract_finetuned(other.out, clips=clips, out_dir=path, options=OPTIONS)


HEAD = HeadConfig(arch="mean", folds=2, epochs=1, window=3, batch_size=8, seed=CONFIG.seed)


def _assert_names_seen_subjects(err, record):
    text = str(err.value)
    assert "trained on subject" in text
    assert any(s in text for s in record["train_subjects"])


@pytest.mark.parametrize("k", [0, 1])
def test_library_route_one_fold_cache_for_every_fold_is_refused(fold_caches, k, tmp_path):
    """README's notebook route: load_sequences(fold_k.zarr) then train_head / run_sweep."""
    _, path, _ = fold_caches
    seqs = load_sequences(path / f"fold{k}.zarr", labels="smic4")
    record = seqs.fingerprint["finetune"]
    with pytest.raises(ProtocolError) as err:
        train_head(seqs, HEAD, out=tmp_path / "run")
    _assert_names_seen_subjects(err, record)
    assert not (tmp_path / "run").exists()  # refused before anything was written
    with pytest.raises(ProtocolError) as err:
        run_sweep(seqs, {"arch": ["mean", "frame"]}, base=HEAD, inner_folds=2)
    _assert_names_seen_subjects(err, record)


def test_weights_route_a_fold_checkpoint_as_plain_weights_is_recorded_and_refused(fold_caches, tmp_path):
    """`extract --weights runs/ft/fold0.pt`: the cache still says which subjects the trunk saw."""
    run, _, clips = fold_caches
    trunk = create_trunk("tiny-cnn", weights=run.out / "fold0.pt")
    extract_clips(clips, trunk, tmp_path / "c.zarr", options=OPTIONS)
    seqs = load_sequences(tmp_path / "c.zarr", labels="smic4")
    record = seqs.fingerprint["finetune"]
    assert record["fold"] == 0 and record["train_subjects"] == run.folds[0]["train_subjects"]
    assert record["checkpoint_sha256"] == sha256_file(run.out / "fold0.pt")
    with pytest.raises(ProtocolError) as err:
        train_head(seqs, HEAD)
    _assert_names_seen_subjects(err, record)


def test_plain_weights_pass_the_guard(fold_caches, tmp_path):
    _, _, clips = fold_caches
    extract_clips(clips, create_trunk("tiny-cnn", weights="random"), tmp_path / "c.zarr", options=OPTIONS)
    seqs = load_sequences(tmp_path / "c.zarr", labels="smic4")
    assert seqs.fingerprint["finetune"] is None
    assert train_head(seqs, HEAD).metrics["pooled"]["n"] == len(seqs)


def test_a_trunk_that_saw_no_test_subject_is_accepted(fold_caches, tmp_path):
    """The guard refuses leaks, not fine-tuned features: a fold whose trunk never saw its test
    subjects trains (here a head whose every fold tests only subjects outside the trunk's set)."""
    run, path, _ = fold_caches
    seqs = load_sequences(path / "fold0.zarr", labels="smic4")
    seen = set(run.folds[0]["train_subjects"]) | set(run.folds[0]["val_subjects"])
    unseen = np.array([g not in seen for g in seqs.groups])
    from mer_cache.pipelines.sweep import _inner_sequences

    sub = _inner_sequences(seqs, np.flatnonzero(unseen), seqs.embeddings, seqs.fingerprint)
    if len(set(sub.groups)) >= 2 and len(set(sub.y.tolist())) == len(sub.classes):
        res = train_head(sub, HEAD)
        assert res.metrics["pooled"]["n"] == len(sub)
