"""``mer-cache predict``: the fold ensemble on a clip folder equals the ensemble on its cache row."""

import json
import shutil

import numpy as np
import pytest
import torch

from conftest import make_clips
from mer_cache.cache import open_cache
from mer_cache.errors import ConfigError, DatasetError, WeightsError
from mer_cache.heads.models import load_head
from mer_cache.heads.training import predict_sequences
from mer_cache.pipelines.predict import predict_clips
from cli_run import run_cli


_run = run_cli


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny folder dataset -> tiny-cnn cache (float16) -> 2-fold mean head run."""
    base = tmp_path_factory.mktemp("predict")
    clips = make_clips(base / "frames", [6, 7, 5, 8, 6, 7, 5, 6, 7, 8, 6, 5], subjects=4)
    cache, run = base / "c.zarr", base / "run"
    res = _run("extract", "--dataset", "folder", "--root", base / "frames", "--trunk", "tiny-cnn",
               "--weights", "random", "--out", cache, "--workers", "0", "--batch-size", "16")
    assert res.exit_code == 0, res.output
    res = _run("train-head", "--cache", cache, "--out", run, "--arch", "mean", "--folds", "2",
               "--epochs", "2", "--window", "3", "--batch-size", "8", "--precision", "fp32")
    assert res.exit_code == 0, res.output
    return {"clips": clips, "cache": cache, "run": run, "base": base}


def _ensemble_from_cache(run, cache, clip_id):
    c = open_cache(cache)
    emb = c.load_all(dtype=np.float32)[[x.clip_id for x in c.clips].index(clip_id)]
    probs = []
    for path in sorted(run.glob("fold*.pt")):
        head, meta = load_head(path)
        assert meta["reference"] == "first"  # the mean head's default: the run's own setting is used
        logits = predict_sequences(head, [emb], window=meta["window"], stride=meta["window_stride"],
                                   precision=meta["precision"], reference=meta["reference"])[0].astype(np.float64)
        p = np.exp(logits - logits.max())
        probs.append(p / p.sum())
    return np.mean(probs, axis=0), meta["classes"]


def test_prediction_equals_the_fold_ensemble_on_the_cached_embeddings(trained):
    clip = trained["clips"][3]
    folder = clip.frames[0].parent
    (pred,) = predict_clips(trained["run"], [folder])
    want, classes = _ensemble_from_cache(trained["run"], trained["cache"], clip.clip_id)
    got = np.array([pred.probabilities[c] for c in classes])
    assert pred.n_frames == len(clip.frames) and not pred.padded
    assert abs(got.sum() - 1.0) < 1e-6
    np.testing.assert_allclose(got, want, atol=1e-4)
    assert pred.predicted == classes[int(want.argmax())]
    assert [f["fold"] for f in pred.folds] == [0, 1]
    fold_mean = np.mean([[f["probabilities"][c] for c in classes] for f in pred.folds], axis=0)
    np.testing.assert_allclose(fold_mean, got, atol=1e-9)


def test_cli_prints_a_table_and_json(trained):
    folders = [c.frames[0].parent for c in trained["clips"][:2]]
    res = _run("predict", "--run", trained["run"], *folders)
    assert res.exit_code == 0, res.output
    assert "predicted" in res.output and "p(negative)" in res.output
    res = _run("predict", "--run", trained["run"], "--json", *folders)
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert [d["path"] for d in doc] == [str(f) for f in folders]
    assert all(abs(sum(d["probabilities"].values()) - 1) < 1e-6 for d in doc)


def test_a_clip_shorter_than_the_window_is_padded(trained, tmp_path):
    short = tmp_path / "short"
    short.mkdir()
    src = trained["clips"][0].frames
    for p in src[:2]:
        shutil.copy(p, short / p.name)
    (pred,) = predict_clips(trained["run"], [short])
    assert pred.n_frames == 2 and pred.padded
    assert abs(sum(pred.probabilities.values()) - 1) < 1e-6


def _tampered_run(trained, tmp_path, **changes):
    run = tmp_path / "run"
    shutil.copytree(trained["run"], run)
    doc = json.loads((run / "config.json").read_text())
    doc["fingerprint"].update(changes)
    (run / "config.json").write_text(json.dumps(doc))
    return run


def test_other_weights_in_the_fingerprint_are_refused_with_exit_2(trained, tmp_path):
    run = _tampered_run(trained, tmp_path, weights_sha256="0" * 64)
    folder = trained["clips"][0].frames[0].parent
    with pytest.raises(WeightsError, match="weights_sha256"):
        predict_clips(run, [folder])
    res = _run("predict", "--run", run, folder)
    assert res.exit_code == 2
    assert "Weights problem" in res.output and "--weights" in " ".join(res.output.split())


def test_other_preprocessing_is_refused_naming_the_field(trained, tmp_path):
    doc = json.loads((trained["run"] / "config.json").read_text())
    pre = dict(doc["fingerprint"]["preprocessing"], mean=[0.0, 0.0, 0.0])
    run = _tampered_run(trained, tmp_path, preprocessing=pre)
    with pytest.raises(ConfigError, match="preprocessing"):
        predict_clips(run, [trained["clips"][0].frames[0].parent])


def test_fine_tuned_runs_are_refused(trained, tmp_path):
    run = _tampered_run(trained, tmp_path, finetune={"fold": 0, "checkpoint": "fold0.pt"})
    with pytest.raises(ConfigError, match="fine-tuned fold caches"):
        predict_clips(run, [trained["clips"][0].frames[0].parent])


def test_empty_or_missing_clip_folders_and_bad_runs_are_clear_errors(trained, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no frames here")
    with pytest.raises(DatasetError, match="holds no image frames"):
        predict_clips(trained["run"], [empty])
    with pytest.raises(DatasetError, match="does not exist"):
        predict_clips(trained["run"], [tmp_path / "nope"])
    res = _run("predict", "--run", trained["run"], empty)
    assert res.exit_code == 2 and "Dataset problem" in res.output
    with pytest.raises(ConfigError, match="no config.json"):
        predict_clips(tmp_path, [empty])
    unfinished = tmp_path / "unfinished"
    shutil.copytree(trained["run"], unfinished)
    (unfinished / "fold1.pt").unlink()
    with pytest.raises(ConfigError, match=r"folds \[1\]"):
        predict_clips(unfinished, [empty])
