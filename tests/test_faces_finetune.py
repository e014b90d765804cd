"""`finetune` and `gradcam` on raw frames: the trunk gets each clip's aligned face crop.

One transform per clip, estimated once per run and kept in the run folder (``faces.json``);
training, the Grad-CAM choice of l_s, the fold caches and ``gradcam --checkpoint`` all warp
with it. Checked on ``synth --layout raw`` (a 128 px face somewhere in a 320x240 frame).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from mer_cache.cache import open_cache
from mer_cache.catalogue import load_catalogue
from mer_cache.cli import app
from mer_cache.errors import ConfigError
from mer_cache.extract import ExtractOptions, extract_clips
from mer_cache.faces import ClipAlignment, FaceConfig, align_clips, warp_frame
from mer_cache.faces.stage import aligned_frame, read_rgb
from mer_cache.finetune import FinetuneConfig
from mer_cache.finetune.model import FinetuneModel
from mer_cache.frames import array_to_input, load_frame
from mer_cache.gradcam import GradCAM
from mer_cache.gradcam.focus import _in_raw_frame, _through_alignment, region_mask, synth_regions
from mer_cache.pipelines import extract_finetuned, finetune, resolve_regions, run_gradcam
from mer_cache.synth import SynthConfig, generate_dataset
from mer_cache.trunks import create_trunk
from mer_cache.trunks.checkpoints import read_checkpoint
from real_footage import mtcnn_weights  # noqa: F401 (fixture)

SMALL = dict(subjects=2, clips_per_class=1, max_frames=14)
# casme2-5 keeps all 8 raw clips (2 subjects x happiness, others, repression, surprise)
CONFIG = FinetuneConfig(trunk="tiny-cnn", weights="random", from_layer="auto", labels="casme2-5",
                        folds=2, epochs=1, batch_size=8, fc_dims=(8,), workers=0)
PRE = create_trunk("tiny-cnn").preprocessing


def _recording(cls, name: str, seen: list, mp: pytest.MonkeyPatch) -> None:
    """Record the first tensor argument of ``cls.name`` (the uint8 frames) on every call."""
    original = getattr(cls, name)

    def spy(self, frames, *args, **kwargs):
        seen.append(frames.detach().clone())
        return original(self, frames, *args, **kwargs)
    mp.setattr(cls, name, spy)


@pytest.fixture(scope="module")
def aligned_run(tmp_path_factory, mtcnn_weights):  # noqa: F811
    """A finetune run on raw frames with the default --face auto and from_layer auto, with
    every batch the model and Grad-CAM were given."""
    root = tmp_path_factory.mktemp("ftraw")
    generate_dataset(root / "raw", config=SynthConfig(**SMALL, layout="raw"))
    clips = load_catalogue("casme2", root / "raw")
    fed, cam_fed = [], []
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MER_CACHE_WEIGHTS", str(mtcnn_weights))
        _recording(FinetuneModel, "forward", fed, mp)
        _recording(GradCAM, "__call__", cam_fed, mp)
        result = finetune(clips, config=CONFIG, out=root / "run",
                          regions=resolve_regions("auto", root / "raw"))
    return root, clips, result, fed, cam_fed


def _stored(run_dir: Path) -> dict[str, ClipAlignment]:
    saved = json.loads((run_dir / "faces.json").read_text())
    return {cid: ClipAlignment.from_json(e["alignment"]) for cid, e in saved["clips"].items()}


def _aligned_frames(clips, alignments: dict[str, ClipAlignment]) -> dict[bytes, tuple[str, int]]:
    """Every frame's aligned trunk input (bytes) -> (clip id, frame index)."""
    return {aligned_frame(p, alignments[c.clip_id], PRE).tobytes(): (c.clip_id, k)
            for c in clips if c.clip_id in alignments for k, p in enumerate(c.frames)}


def test_finetune_auto_aligns_raw_frames_and_trains_on_the_crops(aligned_run):
    root, clips, result, fed, _ = aligned_run
    run = json.loads((result.out / "run.json").read_text())
    assert result.config.face == run["config"]["face"] == "align"  # auto -> align on raw
    assert run["face"]["detector"].startswith("mtcnn") and not result.failed
    stored = _stored(result.out)
    kept = clips
    assert sorted(stored) == sorted(c.clip_id for c in kept) and len(kept) == 8
    assert all(a.error is None for a in stored.values())
    for k in range(2):  # the checkpoint says how its training frames were made
        assert read_checkpoint(result.out / f"fold{k}.pt").meta["face"] == run["face"]
    # every frame the model got (training batches and test frames) is an aligned crop,
    # warped by its clip's one stored transform
    crops = _aligned_frames(kept, stored)
    whole = {load_frame(p, PRE).tobytes() for c in kept for p in c.frames}
    samples = [x.numpy().tobytes() for batch in fed for x in batch]
    assert len(samples) >= sum(len(c.frames) for c in kept)
    assert all(s in crops for s in samples) and not any(s in whole for s in samples)
    assert {crops[s] for s in samples} == set(crops.values())  # and every crop was used


def test_layer_choice_scores_the_aligned_apex_frames(aligned_run):
    root, clips, result, _, cam_fed = aligned_run
    assert set(result.layer_rankings) == {0, 1}
    crops = _aligned_frames(clips, _stored(result.out))
    apex = {c["clip_id"]: c["apex"] for c in json.loads((root / "raw" / "synth.json").read_text())["clips"]}
    samples = [x.numpy().tobytes() for batch in cam_fed for x in batch]
    assert samples and all(s in crops for s in samples)
    assert all(crops[s][1] == apex[crops[s][0]] for s in samples)


def test_resumed_run_warps_with_the_stored_transforms(aligned_run, tmp_path, monkeypatch):
    _, clips, result, _, _ = aligned_run
    out = tmp_path / "run"
    shutil.copytree(result.out, out)
    (out / "fold1.json").unlink()  # fold 1 trains again
    faces = (out / "faces.json").read_text()

    def detect(*args, **kwargs):
        raise AssertionError("a resumed run detected faces again")
    monkeypatch.setattr("mer_cache.faces.stage.align_clips", detect)
    again = finetune(clips, config=CONFIG, out=out)
    assert again.skipped == [0] and again.metrics["pooled"] == result.metrics["pooled"]
    assert (out / "faces.json").read_text() == faces
    with pytest.raises(ConfigError, match="config.face: run folder has 'align'"):
        finetune(clips, config=FinetuneConfig(**{**CONFIG.to_dict(), "face": "none"}), out=out)


def test_fold_caches_embed_with_the_runs_face_stage(aligned_run, tmp_path, monkeypatch):
    _, clips, result, _, _ = aligned_run
    monkeypatch.setattr("mer_cache.faces.stage.align_clips", None)  # known clips: no detection
    kept = clips[:5]
    stored = _stored(result.out)
    # ExtractOptions' face ("auto" by default, "align" here) does not matter: the run decides
    caches = extract_finetuned(result.out, clips=kept, out_dir=tmp_path / "caches",
                               options=ExtractOptions(workers=0, dtype="float32"))
    assert caches.complete and not caches.failed
    with pytest.raises(ConfigError, match="face_stabilise cannot be combined with the fine-tuning run"):
        extract_finetuned(result.out, clips=kept, out_dir=tmp_path / "stable",
                          options=ExtractOptions(workers=0, face_stabilise=True))
    face = json.loads((result.out / "run.json").read_text())["face"]
    for k in range(2):
        cache = open_cache(tmp_path / "caches" / f"fold{k}.zarr")
        assert cache.fingerprint["face"] == face and cache.fingerprint["finetune"]["face"] == face
        assert [ClipAlignment.from_json(d) for d in cache.column("face")] == [stored[c.clip_id] for c in kept]
        trunk = create_trunk("tiny-cnn", weights=result.out / f"fold{k}.pt").eval()
        x = torch.from_numpy(np.stack([aligned_frame(p, stored[kept[0].clip_id], PRE)
                                       for p in kept[0].frames]))
        with torch.inference_mode():
            np.testing.assert_allclose(cache.load_clip(0), trunk(x).numpy(), atol=1e-4)
    # the same checkpoint as plain weights is refused whole frames
    with pytest.raises(ConfigError, match="fine-tuned on aligned face crops.*--face align"):
        extract_clips(kept, create_trunk("tiny-cnn", weights=result.out / "fold0.pt"),
                      tmp_path / "plain.zarr", options=ExtractOptions(workers=0, face="none"))
    assert not (tmp_path / "plain.zarr").exists()
    # and so is `embed` with whole images (each image is aligned alone with --face align)
    from mer_cache.embed import embed_images

    with pytest.raises(ConfigError, match="fine-tuned on aligned face crops.*embed with --face align"):
        embed_images(kept[0].frames[:2], trunk="tiny-cnn", weights=result.out / "fold0.pt",
                     face="none")


def test_gradcam_follows_the_checkpoints_run(aligned_run, tmp_path, monkeypatch):
    root, clips, result, _, _ = aligned_run
    monkeypatch.setattr("mer_cache.faces.stage.align_clips", None)  # stored transforms only
    seen: list = []
    _recording(GradCAM, "__call__", seen, monkeypatch)
    regions = resolve_regions("auto", root / "raw")
    report = run_gradcam(clips, trunk=create_trunk("tiny-cnn", weights="random"), out=tmp_path / "cam",
                         layers=["layer3", "layer4"], n_clips=3, regions=regions,
                         checkpoint=result.out / "fold0.pt")
    assert report.face == json.loads((result.out / "run.json").read_text())["face"]
    assert json.loads((tmp_path / "cam" / "focus.json").read_text())["face"] == report.face
    stored = _stored(result.out)
    by_id = {c.clip_id: c for c in clips}
    want = np.stack([aligned_frame(by_id[cid].frames[regions.apex[cid]], stored[cid], PRE)
                     for cid in report.clip_ids])
    assert len(seen) == 2  # base trunk ("before") and the fold's trunk ("after")
    for frames in seen:
        np.testing.assert_array_equal(frames.numpy(), want)
    with pytest.raises(ConfigError, match="fine-tuned on aligned face crops, so --face none"):
        run_gradcam(clips, trunk=create_trunk("tiny-cnn", weights="random"), out=tmp_path / "x",
                    checkpoint=result.out / "fold0.pt", face="none")


def test_cli_gradcam_aligns_raw_frames_by_default(aligned_run, tmp_path, monkeypatch, mtcnn_weights):  # noqa: F811
    root, clips, _, _, _ = aligned_run
    monkeypatch.setenv("MER_CACHE_WEIGHTS", str(mtcnn_weights))
    args = ["gradcam", "--dataset", "casme2", "--root", str(root / "raw"), "--trunk", "tiny-cnn",
            "--weights", "random", "--layers", "layer4", "--clips", "2"]
    seen: list = []
    _recording(GradCAM, "__call__", seen, monkeypatch)
    res = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "auto")])
    assert res.exit_code == 0, res.output
    assert "frames: aligned face crops" in res.output
    focus = json.loads((tmp_path / "auto" / "focus.json").read_text())
    picked = [c for c in clips if c.clip_id in focus["clips"]]
    crops = _aligned_frames(picked, dict(zip(
        [c.clip_id for c in picked], align_clips(picked, FaceConfig(), weights=mtcnn_weights))))
    assert len(seen) == 1 and all(x.numpy().tobytes() in crops for x in seen[0])
    res = CliRunner().invoke(app, [*args, "--face", "none", "--out", str(tmp_path / "none")])
    assert res.exit_code == 0 and "frames: whole frames" in res.output
    assert json.loads((tmp_path / "none" / "focus.json").read_text())["face"] is None


def test_synth_regions_follow_the_face_into_the_raw_frame_and_the_crop(aligned_run):
    root, clips, result, _, _ = aligned_run
    manifest = json.loads((root / "raw" / "synth.json").read_text())
    stored = _stored(result.out)
    regions = synth_regions(root / "raw")
    for record in manifest["clips"]:
        a = stored.get(record["clip_id"])
        if a is None:
            continue
        # synth's eye centres, moved onto the raw frame, are where MTCNN finds the eyes (the
        # face is pasted >= 20 px from the frame's corner, so unmoved ones would miss)
        marks = manifest["subjects"][record["subject"]]["landmarks"]
        eyes = [_in_raw_frame([*marks[e], *marks[e]], record["raw_face_box"])[:2]
                for e in ("eye_l", "eye_r")]
        np.testing.assert_allclose(eyes, np.asarray(a.landmarks)[:2], atol=8)  # head motion
        # a box follows the warp of the frame into the crop
        if not regions.boxes[record["clip_id"]]:
            continue  # "others": no action unit moves
        box = regions.boxes[record["clip_id"]][0]
        img = np.zeros((240, 320, 3), np.uint8)
        x0, y0, x1, y1 = (round(v) for v in box)
        img[y0:y1, x0:x1] = 255
        ys, xs = np.nonzero(warp_frame(img, a)[..., 0] > 127)
        np.testing.assert_allclose([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1],
                                   _through_alignment([x0, y0, x1, y1], a), atol=1.5)
    # the moving-region mask at the trunk's input is where the boxes' pixels land
    for clip in [c for c in clips if regions.boxes[c.clip_id]]:
        img = np.zeros((240, 320, 3), np.uint8)
        for x0, y0, x1, y1 in regions.boxes[clip.clip_id]:
            img[round(y0):round(y1), round(x0):round(x1)] = 255
        landed = array_to_input(warp_frame(img, stored[clip.clip_id]), PRE)[0] > 127  # (H, W)
        frame = np.zeros((PRE.n_channels, *PRE.input_size), np.uint8)
        mask = region_mask(clip, regions, PRE, onset_frame=frame, apex_frame=frame,
                           alignment=stored[clip.clip_id])
        assert (mask & landed).sum() / (mask | landed).sum() > 0.7


def test_a_clip_without_a_face_is_left_out_with_its_reason(aligned_run, tmp_path, monkeypatch,
                                                           mtcnn_weights):  # noqa: F811
    root, clips, _, _, _ = aligned_run
    monkeypatch.setenv("MER_CACHE_WEIGHTS", str(mtcnn_weights))
    shutil.copytree(root / "raw", tmp_path / "raw")
    faceless = load_catalogue("casme2", tmp_path / "raw")[0]
    for p in faceless.frames:  # a grey frame: nothing to detect
        with Image.open(p) as img:
            size = img.size
        Image.new("RGB", size, (128, 128, 128)).save(p)
    res = CliRunner().invoke(app, [
        "finetune", "--dataset", "casme2", "--root", str(tmp_path / "raw"), "--labels", "casme2-5",
        "--trunk", "tiny-cnn", "--weights", "random", "--from-layer", "layer4", "--folds", "2",
        "--epochs", "1", "--batch-size", "8", "--out", str(tmp_path / "run")])
    text = " ".join(res.output.split())
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output and "--face align" in text
    assert f"{faceless.clip_id}: no face found in its first 5 frames" in text
    assert text.count(f"{faceless.clip_id}:") == 1  # the id once, not twice
    assert (tmp_path / "run" / "fold1.pt").is_file()  # the others trained
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["pooled"]["n"] == sum(len(c.frames) for c in clips) - len(faceless.frames)
    res = CliRunner().invoke(app, [
        "gradcam", "--dataset", "casme2", "--root", str(tmp_path / "raw"), "--trunk", "tiny-cnn",
        "--weights", "random", "--layers", "layer4", "--clips", "8", "--out", str(tmp_path / "cam")])
    text = " ".join(res.output.split())
    assert res.exit_code == 1 and "Traceback" not in res.output, res.output
    assert "1 clip(s) not drawn" in text and f"{faceless.clip_id}: no face found" in text
    assert (tmp_path / "cam" / "gradcam_01.png").is_file()
