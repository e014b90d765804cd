"""``predict`` and ``embed`` on inputs without a face, for runs and trunks fed aligned faces.

A clip folder with no face in its first frames fails alone, as in ``extract``: the other
clips are predicted, the failed one is listed with a reason written for predict, and the
exit code is 1. ``embed --face align`` stops at an image without a face (its rows carry no
names), with a message about that image and embed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cli_run import run_cli
from mer_cache.catalogue import load_catalogue
from mer_cache.errors import DatasetError
from mer_cache.faces.align import FaceConfig, align_from_detections
from mer_cache.faces.mtcnn import Detections
from mer_cache.pipelines.predict import predict_clips
from mer_cache.synth import SynthConfig, generate_dataset
from real_footage import mtcnn_weights  # noqa: F401 (fixture)

SMALL = dict(subjects=2, clips_per_class=1, max_frames=14)
EXTRACT_ADVICE = "extract this dataset"  # extract's remedy; predict and embed have their own


def _grey_copy(clip_dir: Path, dest: Path) -> Path:
    """The clip folder with every frame flat grey: same files and sizes, no face."""
    shutil.copytree(clip_dir, dest)
    for p in dest.iterdir():
        with Image.open(p) as img:
            mode, size = img.mode, img.size
        Image.new(mode, size, 128 if mode == "L" else (128, 128, 128)).save(p)
    return dest


@pytest.fixture(scope="module")
def aligned_run(tmp_path_factory, mtcnn_weights):  # noqa: F811
    """Raw synthetic CASME II -> aligned tiny-cnn cache -> 2-fold LOSO run; plus a faceless clip."""
    base = tmp_path_factory.mktemp("predict-faces")
    root = base / "raw"
    generate_dataset(root, config=SynthConfig(**SMALL, layout="raw"))
    env = {"MER_CACHE_WEIGHTS": str(mtcnn_weights)}
    cache, run = base / "c.zarr", base / "run"
    res = run_cli("extract", "--dataset", "casme2", "--root", root, "--trunk", "tiny-cnn",
                  "--out", cache, "--face", "align", env=env)
    assert res.exit_code == 0, res.output
    res = run_cli("train-head", "--cache", cache, "--out", run, "--epochs", "2", "--labels",
                  "casme2-5", "--protocol", "loso", "--precision", "fp32",
                  "--reference", "none", env=env)  # raw embeddings: clips get distinct outputs
    assert res.exit_code == 0, res.output
    clips = [c.frames[0].parent for c in load_catalogue("casme2", root)]
    grey = _grey_copy(clips[1], base / "grey")
    return {"run": run, "good": [clips[0], clips[2]], "grey": grey, "env": env, "base": base}


def test_a_clip_without_a_face_fails_alone_and_the_others_are_predicted(aligned_run):
    good1, good2 = aligned_run["good"]
    grey = aligned_run["grey"]
    res = run_cli("predict", "--run", aligned_run["run"], good1, grey, good2, env=aligned_run["env"])
    assert res.exit_code == 1, res.output  # clips failed, not "bad input" (2)
    text = " ".join(res.output.split())  # rich wraps lines
    assert "Predictions of" in text  # the table of the two clips that were predicted
    assert "1 of 3 clip folder(s) could not be predicted" in text
    assert f"{grey}: no face found" in text
    assert "trained on aligned face crops" in text and "--face none" in text
    assert EXTRACT_ADVICE not in text, text


def test_json_keeps_every_folder_in_order_with_the_failure_in_error(aligned_run):
    good1, good2 = aligned_run["good"]
    grey = aligned_run["grey"]
    res = run_cli("predict", "--run", aligned_run["run"], "--json", good1, grey, good2,
                  env=aligned_run["env"])
    assert res.exit_code == 1, res.output
    doc = json.loads(res.stdout)  # the failure summary goes to stderr
    assert [d["path"] for d in doc] == [str(good1), str(grey), str(good2)]
    assert doc[1]["predicted"] is None and doc[1]["probabilities"] == {}
    assert "no face found" in doc[1]["error"]
    assert doc[0]["error"] is None and doc[2]["error"] is None and doc[0]["predicted"]
    assert "could not be predicted" in res.stderr


def test_the_failed_clip_does_not_shift_the_others_predictions(aligned_run, monkeypatch):
    monkeypatch.setenv("MER_CACHE_WEIGHTS", aligned_run["env"]["MER_CACHE_WEIGHTS"])
    good1, good2 = aligned_run["good"]
    mixed = predict_clips(aligned_run["run"], [aligned_run["grey"], good1, good2])
    alone = predict_clips(aligned_run["run"], [good1, good2])
    assert mixed[0].failed and not mixed[1].failed and not mixed[2].failed
    assert mixed[1].probabilities != mixed[2].probabilities  # so a shifted row would show
    for got, want in zip(mixed[1:], alone):
        assert got.predicted == want.predicted and got.n_frames == want.n_frames
        np.testing.assert_allclose(list(got.probabilities.values()),
                                   list(want.probabilities.values()), atol=1e-6)


def test_a_frame_that_does_not_decode_fails_its_clip_alone(aligned_run, monkeypatch, tmp_path):
    monkeypatch.setenv("MER_CACHE_WEIGHTS", aligned_run["env"]["MER_CACHE_WEIGHTS"])
    good1, good2 = aligned_run["good"]
    broken = tmp_path / "broken"
    shutil.copytree(good2, broken)
    sorted(broken.iterdir())[-1].write_bytes(b"not an image")
    preds = predict_clips(aligned_run["run"], [broken, good1])
    assert preds[0].failed and "Cannot decode frame" in preds[0].error
    assert not preds[1].failed


def test_every_clip_failing_still_exits_1_without_a_table(aligned_run):
    res = run_cli("predict", "--run", aligned_run["run"], aligned_run["grey"], env=aligned_run["env"])
    assert res.exit_code == 1, res.output
    assert "Predictions of" not in res.output and "1 of 1 clip folder(s)" in res.output


def test_a_missing_folder_still_stops_before_any_clip_is_embedded(aligned_run, tmp_path,
                                                                  monkeypatch):
    """A wrong path is a wrong argument (exit 2), found before minutes of embedding."""
    import mer_cache.pipelines.predict as predict

    res = run_cli("predict", "--run", aligned_run["run"], aligned_run["good"][0],
                  tmp_path / "nope", env=aligned_run["env"])
    assert res.exit_code == 2 and "does not exist" in " ".join(res.output.split())
    embedded = []
    monkeypatch.setattr(predict, "embed_clip", lambda *a, **k: embedded.append(a))
    with pytest.raises(DatasetError, match="does not exist"):
        predict_clips(aligned_run["run"], [aligned_run["good"][0], tmp_path / "nope"])
    assert embedded == []


def test_embed_names_the_faceless_image_and_speaks_of_embed(aligned_run, tmp_path):
    face = sorted(aligned_run["good"][0].iterdir())[0]
    wall = sorted(aligned_run["grey"].iterdir())[0]
    res = run_cli("embed", "--trunk", "tiny-cnn", "--weights", "random", "--face", "align",
                  "--out", tmp_path / "e.npy", face, wall, env=aligned_run["env"])
    assert res.exit_code == 2, res.output
    text = " ".join(res.output.split())
    assert f"{wall}: no face found in the image" in text
    assert "embed --face align" in text and "--face none" in text
    assert EXTRACT_ADVICE not in text and "reference frames" not in text, text
    assert not (tmp_path / "e.npy").exists()


def test_extract_keeps_its_own_advice():
    empty = Detections(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2)))
    a = align_from_detections([(empty, (480, 640))] * 5, FaceConfig(), "casme2/sub01/EP01")
    assert "no face found in its first 5 frames (the reference frames" in a.error
    assert a.error.endswith("extract this dataset with --face none.")
