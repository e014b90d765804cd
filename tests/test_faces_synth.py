"""``synth --layout raw`` and the face stage end to end on it (extract, preview)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from mer_cache.cache import open_cache
from mer_cache.catalogue import load_catalogue
from mer_cache.cli import app
from mer_cache.extract.loader import FrameDataset
from mer_cache.faces import ClipAlignment, aligned_input
from mer_cache.faces.stage import aligned_frame, read_rgb
from mer_cache.pipelines.predict import embed_clip
from mer_cache.synth import SynthConfig, generate_dataset
from mer_cache.synth.raw import RAW_SIZE
from mer_cache.trunks import create_trunk
from real_footage import mtcnn_weights  # noqa: F401 (fixture)

SMALL = dict(subjects=2, clips_per_class=1, max_frames=14)


@pytest.fixture(scope="module")
def raw_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("raw")
    generate_dataset(root, config=SynthConfig(**SMALL, layout="raw"))
    return root


def _boxes(root: Path) -> dict[str, list[int]]:
    clips = json.loads((root / "synth.json").read_text())["clips"]
    return {c["clip_id"]: c["raw_face_box"] for c in clips}


def test_raw_layout_puts_each_face_somewhere_else_in_a_larger_frame(raw_root):
    clips = load_catalogue("casme2", raw_root)
    assert len(clips) == 8
    boxes = _boxes(raw_root)
    assert set(boxes) == {c.clip_id for c in clips}
    w, h = RAW_SIZE
    for clip in clips:
        with Image.open(clip.frames[0]) as img:
            assert img.size == (w, h)
        x0, y0, x1, y1 = boxes[clip.clip_id]
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h and x1 - x0 < w / 2
    assert len({tuple(b) for b in boxes.values()}) == len(boxes)  # head offset per clip


def _iou(a, b) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_parallel_alignment_gives_the_serial_result(raw_root, mtcnn_weights):  # noqa: F811
    from mer_cache.faces import FaceConfig, align_clips

    clips = load_catalogue("casme2", raw_root)
    serial = align_clips(clips, FaceConfig(), weights=mtcnn_weights, workers=1)
    parallel = align_clips(clips, FaceConfig(), weights=mtcnn_weights, workers=2)
    assert len(parallel) == len(serial) and all(a.error is None for a in serial + parallel)
    for a, b in zip(parallel, serial):  # in clip order; one thread per worker may round
        np.testing.assert_allclose(a.matrix, b.matrix, atol=1e-4)  # differently from two


def test_clips_are_aligned_in_batches_by_threads_of_the_calling_process(raw_root, mtcnn_weights,  # noqa: F811
                                                                       monkeypatch):
    """By default no worker process starts (they cost ~0.2 s): batches of clips go to one
    thread per torch thread of this process (one torch thread each, restored after), and
    the result is the one-thread result, in clip order."""
    import threading

    import torch
    import torch.utils.data

    from mer_cache.faces import FaceConfig, align_clips
    from mer_cache.faces import stage

    clips = load_catalogue("casme2", raw_root)
    want = align_clips(clips, FaceConfig(), weights=mtcnn_weights, workers=1)

    def no_workers(*args, **kwargs):
        raise AssertionError("worker processes were started by default")

    seen, align_batch = [], stage.align_batch

    def spy(batch, detector, config):
        seen.append((threading.current_thread().name, torch.get_num_threads()))
        return align_batch(batch, detector, config)

    monkeypatch.setattr(torch.utils.data, "DataLoader", no_workers)
    monkeypatch.setattr(stage, "align_batch", spy)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        got = align_clips(clips, FaceConfig(), weights=mtcnn_weights)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert all(name.startswith("mer-cache-faces") for name, _ in seen)  # pool threads
    assert {n for _, n in seen} == {1} and len(seen) < len(clips)  # batches of clips
    for a, b in zip(got, want):  # in clip order (threads may round differently)
        np.testing.assert_allclose(a.box, b.box, atol=1e-3)
        np.testing.assert_allclose(a.matrix, b.matrix, atol=1e-4)


def test_extract_auto_aligns_raw_synthetic_faces(raw_root, mtcnn_weights, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("MER_CACHE_WEIGHTS", str(mtcnn_weights))
    out = tmp_path / "cache.zarr"
    res = CliRunner().invoke(app, ["extract", "--dataset", "casme2", "--root", str(raw_root),
                                   "--trunk", "tiny-cnn", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "align (auto)" in res.output  # the summary says which face stage made the frames
    cache = open_cache(out)
    assert cache.fingerprint["face"]["detector"].startswith("mtcnn")
    alignments = [ClipAlignment.from_json(d) for d in cache.column("face")]
    boxes = _boxes(raw_root)
    for c, a in zip(cache.clips, alignments):
        assert a.error is None and a.found_in == a.n_ref == 1  # the onset frame had a face
        assert _iou(a.box, boxes[c.clip_id]) > 0.5  # the detector found the pasted face
    # what the trunk is fed is the warp of the raw frame, not the stretched frame
    clips = load_catalogue("casme2", raw_root)
    pre = create_trunk("tiny-cnn").preprocessing
    item = FrameDataset(clips, [0], pre, alignments=alignments)[2][0].numpy()
    np.testing.assert_array_equal(item, aligned_frame(clips[0].frames[2], alignments[0], pre))
    colour = aligned_input(read_rgb(clips[0].frames[2]), alignments[0], pre)  # warp RGB, then grey
    assert np.abs(item.astype(int) - colour).max() <= 1
    # predict aligns a clip folder as the run's cache says, so its heads get the same features
    rows = embed_clip(create_trunk("tiny-cnn"), clips[0].frames[0].parent, device=torch.device("cpu"),
                      dtype=cache.dtype, face=cache.fingerprint["face"])
    np.testing.assert_allclose(rows, cache.load_clip(0), atol=1e-3)


def test_the_library_default_aligns_raw_layouts_as_the_cli_does(raw_root, mtcnn_weights,  # noqa: F811
                                                                 tmp_path, monkeypatch):
    """A notebook calling the job API (or extract_clips) with default options gets the
    CLI's default, ``auto``: the same aligned cache, not whole stretched frames."""
    from mer_cache.extract.extractor import extract_clips
    from mer_cache.pipelines import ExtractJob, run_extract_job

    monkeypatch.setenv("MER_CACHE_WEIGHTS", str(mtcnn_weights))
    cli = tmp_path / "cli.zarr"
    res = CliRunner().invoke(app, ["extract", "--dataset", "casme2", "--root", str(raw_root),
                                   "--trunk", "tiny-cnn", "--out", str(cli)])
    assert res.exit_code == 0, res.output
    run_extract_job(ExtractJob(dataset="casme2", root=raw_root, trunk="tiny-cnn",
                               out=tmp_path / "job.zarr"))
    clips = load_catalogue("casme2", raw_root)
    extract_clips(clips, create_trunk("tiny-cnn"), tmp_path / "lib.zarr")
    want = open_cache(cli)
    assert want.fingerprint["face"]["detector"].startswith("mtcnn")
    for name in ("job.zarr", "lib.zarr"):
        got = open_cache(tmp_path / name)
        assert got.fingerprint["face"] == want.fingerprint["face"]
        np.testing.assert_allclose(got.load_clip(0), want.load_clip(0), atol=1e-3)


def test_stabilised_extraction_is_recorded_and_reproduced_by_predict(raw_root, mtcnn_weights,  # noqa: F811
                                                                     tmp_path, monkeypatch):
    """`--face-stabilise` enters the fingerprint, changes frames after the first (the
    synthetic head sways), and predict's per-clip loader stabilises the same way."""
    monkeypatch.setenv("MER_CACHE_WEIGHTS", str(mtcnn_weights))
    caches = {}
    for name, extra in (("plain", []), ("stable", ["--face-stabilise"])):
        caches[name] = tmp_path / f"{name}.zarr"
        res = CliRunner().invoke(app, ["extract", "--dataset", "casme2", "--root", str(raw_root),
                                       "--trunk", "tiny-cnn", "--out", str(caches[name]), *extra])
        assert res.exit_code == 0, res.output
    plain, stable = open_cache(caches["plain"]), open_cache(caches["stable"])
    assert stable.fingerprint["face"]["stabilise"] and not plain.fingerprint["face"]["stabilise"]
    a, b = plain.load_clip(0), stable.load_clip(0)
    np.testing.assert_array_equal(a[0], b[0])  # the first frame is the reference
    assert np.linalg.norm(a[1:] - b[1:]) > 0.01 * np.linalg.norm(a[1:])
    clip_dir = load_catalogue("casme2", raw_root)[0].frames[0].parent
    rows = embed_clip(create_trunk("tiny-cnn"), clip_dir, device=torch.device("cpu"),
                      dtype=stable.dtype, face=stable.fingerprint["face"])
    np.testing.assert_allclose(rows, b, atol=1e-3)
    res = CliRunner().invoke(app, ["extract", "--dataset", "casme2", "--root", str(raw_root),
                                   "--face", "none", "--face-stabilise", "--trunk", "tiny-cnn",
                                   "--out", str(tmp_path / "x.zarr")])
    assert res.exit_code != 0 and "--face-stabilise" in res.output


def test_preview_draws_a_sheet_row_per_clip(raw_root, mtcnn_weights, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("MER_CACHE_WEIGHTS", str(mtcnn_weights))
    png = tmp_path / "sheet.png"
    res = CliRunner().invoke(app, ["faces", "preview", "--dataset", "casme2", "--root",
                                   str(raw_root), "--clips", "3", "--out", str(png)])
    assert res.exit_code == 0, res.output
    assert res.output.count(" ok ") == 3
    with Image.open(png) as img:
        assert img.height >= 3 * 240 and img.width > 2 * 240


def test_flow_runs_after_the_face_stage(raw_root, mtcnn_weights, tmp_path, monkeypatch):  # noqa: F811
    """`extract --features flow` on raw frames aligns faces first, as every flow method does:
    the fingerprint says so and the maps differ from flow on the unaligned frames."""
    from mer_cache.cache import open_flow_cache
    from mer_cache.flow.extract import clip_flow
    from mer_cache.flow.config import FlowConfig

    monkeypatch.setenv("MER_CACHE_WEIGHTS", str(mtcnn_weights))
    out = tmp_path / "flow.zarr"
    res = CliRunner().invoke(app, ["extract", "--features", "flow", "--dataset", "casme2",
                                   "--root", str(raw_root), "--out", str(out)])
    assert res.exit_code == 0, res.output
    flow = open_flow_cache(out)
    assert flow.fingerprint["face"]["detector"].startswith("mtcnn")
    none = tmp_path / "flow-none.zarr"
    res = CliRunner().invoke(app, ["extract", "--features", "flow", "--face", "none", "--dataset",
                                   "casme2", "--root", str(raw_root), "--out", str(none)])
    assert res.exit_code == 0, res.output
    assert open_flow_cache(none).fingerprint["face"] is None
    clips = load_catalogue("casme2", raw_root)
    plain, _ = clip_flow(clips[0], FlowConfig())
    assert not np.allclose(plain, flow.load_all()[0], atol=1e-3)  # aligned crops, other flow
