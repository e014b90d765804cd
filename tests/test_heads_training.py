"""Training runs: learning, determinism, resume, early stopping, run-directory contents."""

import csv
import json
import resource

import numpy as np
import torch
import pytest

from heads_synth import make_sequences
from mer_cache.errors import ConfigError
from mer_cache.heads.models import load_head
from mer_cache.heads.config import HeadConfig
from mer_cache.heads.training import _glibc, deterministic, predict_sequences, retained_heap
from mer_cache.pipelines import train_head

SMALL = dict(proj_dims=(32, 32, 16), hidden=16, fc=16, window=9, batch_size=20, lr=3e-3)


@pytest.fixture(scope="module")
def seqs():
    return make_sequences(n_subjects=12, clips_per_class=3, dim=16)


def _config(**kw):
    return HeadConfig(**{**SMALL, "epochs": 3, "folds": 3, **kw})


def test_bilstm_learns_the_temporal_class_well_above_chance(seqs):
    res = train_head(seqs, _config(arch="bilstm", epochs=8))
    assert res.metrics["pooled"]["uf1"] > 0.6  # chance is 0.25 for four classes
    assert res.metrics["pooled"]["n"] == len(seqs)


def test_same_seed_gives_identical_metrics_bytes(seqs, tmp_path):
    a = train_head(seqs, _config(), out=tmp_path / "a")
    b = train_head(seqs, _config(), out=tmp_path / "b")
    assert (tmp_path / "a/metrics.json").read_bytes() == (tmp_path / "b/metrics.json").read_bytes()
    assert (tmp_path / "a/predictions.csv").read_bytes() == (tmp_path / "b/predictions.csv").read_bytes()
    c = train_head(seqs, _config(seed=1))
    assert c.folds[0]["logits"] != a.folds[0]["logits"]  # another seed, another run
    assert a.seconds > 0 and b.out == tmp_path / "b"


def test_interrupted_run_resumes_and_matches_an_uninterrupted_one(seqs, tmp_path):
    full = tmp_path / "full"
    train_head(seqs, _config(), out=full)

    def stop_at_third_fold(ev):
        if ev.kind == "fold" and ev.fold == 2:
            raise KeyboardInterrupt

    part = tmp_path / "part"
    with pytest.raises(KeyboardInterrupt):
        train_head(seqs, _config(), out=part, progress=stop_at_third_fold)
    assert (part / "fold1.json").exists() and not (part / "fold2.json").exists()
    assert not (part / "metrics.json").exists()
    events = []
    train_head(seqs, _config(), out=part, progress=events.append)
    assert [(e.kind, e.fold) for e in events if e.kind in ("skip", "fold")] == \
        [("skip", 0), ("skip", 1), ("fold", 2)]
    assert (part / "metrics.json").read_bytes() == (full / "metrics.json").read_bytes()


def test_a_torn_fold_record_is_trained_again(seqs, tmp_path):
    train_head(seqs, _config(), out=tmp_path)
    (tmp_path / "fold1.json").write_text('{"fold": 1, "logi')
    events = []
    train_head(seqs, _config(), out=tmp_path, progress=events.append)
    assert [e.fold for e in events if e.kind == "fold"] == [1]


def test_resume_with_another_config_is_refused_naming_the_difference(seqs, tmp_path):
    train_head(seqs, _config(epochs=1), out=tmp_path)
    with pytest.raises(ConfigError, match=r"config\.epochs: 1 there, 2 now"):
        train_head(seqs, _config(epochs=2), out=tmp_path)


def test_run_directory_holds_config_predictions_confusions_and_checkpoints(seqs, tmp_path):
    seqs_fp = make_sequences(n_subjects=12, clips_per_class=3, dim=16)
    object.__setattr__(seqs_fp, "fingerprint", {"trunk": "tiny", "dim": 16})
    res = train_head(seqs_fp, _config(arch="gru", balance="loss"), out=tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["config"]["arch"] == "gru" and cfg["seed"] == 0
    assert cfg["fingerprint"] == {"trunk": "tiny", "dim": 16}
    assert "torch" in cfg["versions"] and cfg["data"]["n_clips"] == len(seqs_fp)
    rows = list(csv.DictReader(open(tmp_path / "predictions.csv")))
    assert len(rows) == len(seqs_fp)
    assert list(rows[0]) == ["clip", "subject", "dataset", "fold", "true", "predicted",
                             "p_negative", "p_positive", "p_surprise", "p_non_micro"]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert len(metrics["confusion_pooled"]) == 4 and len(metrics["folds"]) == 3
    assert np.sum(metrics["confusion_pooled"]) == len(seqs_fp)
    pngs = sorted(p.name for p in tmp_path.glob("confusion_*.png"))
    assert pngs == ["confusion_fold0.png", "confusion_fold1.png", "confusion_fold2.png",
                    "confusion_pooled.png"]
    # a checkpoint rebuilds its head and reproduces the fold's test logits
    head, meta = load_head(tmp_path / "fold1.pt")
    record = res.folds[1]
    assert meta["test_clip_ids"] == record["test_clip_ids"]
    logits = predict_sequences(head, [seqs_fp.embeddings[i] for i in record["test_clips"]],
                               window=meta["window"], stride=meta["window_stride"],
                               precision=meta["precision"], reference=meta["reference"])
    np.testing.assert_allclose(logits, np.array(record["logits"]), rtol=1e-5, atol=1e-5)


def test_early_stopping_uses_validation_subjects_never_the_test_fold(seqs):
    res = train_head(seqs, _config(epochs=4, val_subjects=2, patience=1))
    for rec, detail in zip(res.folds, res.metrics["fold_details"]):
        assert len(detail["val_subjects"]) == 2
        assert not set(detail["val_subjects"]) & set(detail["test_subjects"])
        assert rec["best_epoch"] >= 1 and rec["best_epoch"] <= rec["epochs_run"] <= 4
        assert len(rec["val_uf1_history"]) == rec["epochs_run"]


def test_bad_inputs_give_clear_errors(seqs):
    with pytest.raises(ConfigError, match="longer than every clip"):
        train_head(seqs, _config(window=31))
    with pytest.raises(ConfigError, match="labels 'megc3'.*labelled with 'smic4'"):
        train_head(seqs, _config(labels="megc3"))
    with pytest.raises(ConfigError, match="arch 'tcn' is unknown.*balance 'x' is unknown"):
        HeadConfig(arch="tcn", balance="x")


def test_reference_first_removes_identity_and_frame_stays_static(seqs):
    """`first` subtracts each clip's first frame; the static baseline resolves to `none`."""
    from mer_cache.heads.data import reference_frames

    shifted = [e + 5.0 for e in seqs.embeddings]  # an identity offset per clip changes nothing
    for a, b in zip(reference_frames(seqs.embeddings, "first"), reference_frames(shifted, "first")):
        np.testing.assert_allclose(a, b, atol=1e-4)
        np.testing.assert_array_equal(a[0], 0)
    assert _config(arch="frame").resolved_reference == "none"
    assert _config(arch="bilstm").resolved_reference == "first"
    assert _config(arch="frame", reference="first").resolved_reference == "first"


def test_config_records_what_ran_and_resume_refuses_another_thread_count(tmp_path):
    """Same seed gives byte-identical metrics only for the same precision and thread count,
    so both are recorded and a resume under others is refused."""
    import json

    from mer_cache.errors import ConfigError

    seqs = make_sequences(n_subjects=4, clips_per_class=1, dim=8)
    config = HeadConfig(arch="mean", folds=2, epochs=1, window=5, batch_size=16, precision="auto")
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        train_head(seqs, config, out=tmp_path / "run")
        runtime = json.loads((tmp_path / "run" / "config.json").read_text())["runtime"]
        assert runtime["precision"] in ("fp32", "bf16") and runtime["torch_threads"] == 1
        torch.set_num_threads(2)
        with pytest.raises(ConfigError, match="runtime.torch_threads"):
            train_head(seqs, config, out=tmp_path / "run")
    finally:
        torch.set_num_threads(before)


def test_deterministic_runs_skip_the_uninitialized_memory_fill_and_restore_the_caller():
    before = torch.are_deterministic_algorithms_enabled(), torch.utils.deterministic.fill_uninitialized_memory
    with deterministic():
        assert torch.are_deterministic_algorithms_enabled()
        assert not torch.utils.deterministic.fill_uninitialized_memory
    assert (torch.are_deterministic_algorithms_enabled(),
            torch.utils.deterministic.fill_uninitialized_memory) == before


def _page_faults_of_reallocation() -> int:
    """Minor page faults of allocating, writing and freeing 64 MiB in 8 MiB tensors, 5 times."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        blocks = [torch.ones(2 << 20) for _ in range(8)]
        del blocks
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@pytest.mark.skipif(_glibc() is None,
                    reason="retained_heap tunes glibc's malloc; elsewhere it does nothing")
def test_retained_heap_reuses_freed_blocks_without_page_faults():
    _page_faults_of_reallocation()
    outside = _page_faults_of_reallocation()  # glibc trims the freed top of the heap each round
    with retained_heap():
        _page_faults_of_reallocation()  # the heap grows once
        inside = _page_faults_of_reallocation()
        with retained_heap():  # nested (a sweep's runs): the outer settings stay
            pass
        assert _page_faults_of_reallocation() < outside / 10
    assert outside > 1000 and inside < outside / 10
