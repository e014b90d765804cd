"""Flow features: strain of known fields, TV-L1 on a known shift, apex estimation."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from mer_cache.errors import ConfigError
from mer_cache.flow import FlowConfig, estimate_apex, flow_maps, optical_strain, tvl1_flow


def test_strain_of_an_affine_flow_is_exact_everywhere():
    # u = a x + b y + c, v = d x + e y + f: e_xx = a, e_yy = e, e_xy = (b + d) / 2, constant
    y, x = np.mgrid[0:20, 0:30].astype(np.float64)
    a, b, c, d, e, f = 0.03, -0.02, 1.5, 0.05, -0.04, -0.7
    strain = optical_strain(a * x + b * y + c, d * x + e * y + f)
    expected = np.sqrt(a ** 2 + e ** 2 + 2 * ((b + d) / 2) ** 2)
    assert strain.shape == (20, 30)
    np.testing.assert_allclose(strain, expected, rtol=1e-6)  # borders included


def test_strain_ignores_translation_and_sees_pure_shear():
    y, x = np.mgrid[0:16, 0:16].astype(np.float64)
    np.testing.assert_allclose(optical_strain(np.full_like(x, 2.0), np.full_like(x, -1.0)), 0.0)
    # u = s y, v = s x: e_xy = s, so |e| = sqrt(2) s
    np.testing.assert_allclose(optical_strain(0.1 * y, 0.1 * x), np.sqrt(2) * 0.1, rtol=1e-6)


def _texture(size=128, seed=0):
    rng = np.random.default_rng(seed)
    tex = cv2.GaussianBlur(rng.uniform(0, 255, (size, size)).astype(np.float32), (0, 0), 2.0)
    return (tex - tex.min()) / (tex.max() - tex.min()) * 255


@pytest.mark.parametrize("dx, dy", [(0.4, -0.25), (1.3, 0.7)])
def test_tvl1_recovers_a_subpixel_shift(dx, dy):
    """Tolerance: 0.02 px on the mean and 0.05 px median error, 16 px from the border."""
    first = _texture()
    moved = cv2.warpAffine(first, np.float32([[1, 0, dx], [0, 1, dy]]), (128, 128),
                           flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    flow = tvl1_flow(first.round().astype(np.uint8), moved.round().clip(0, 255).astype(np.uint8))
    inner = flow[16:-16, 16:-16]  # (96, 96, 2)
    assert abs(inner[..., 0].mean() - dx) < 0.02 and abs(inner[..., 1].mean() - dy) < 0.02
    assert np.median(np.abs(inner[..., 0] - dx)) < 0.05
    assert np.median(np.abs(inner[..., 1] - dy)) < 0.05


def test_tvl1_refuses_float_frames_that_opencv_would_rescale():
    with pytest.raises(ConfigError, match="uint8"):
        tvl1_flow(np.zeros((8, 8), np.float32), np.zeros((8, 8), np.float32))


def test_flow_maps_are_u_v_strain_at_the_output_size_in_output_pixels():
    first = _texture()
    moved = cv2.warpAffine(first, np.float32([[1, 0, 2.0], [0, 1, 0]]), (128, 128),
                           flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    maps = flow_maps(first.astype(np.uint8), moved.clip(0, 255).astype(np.uint8), FlowConfig())
    assert maps.shape == (3, 28, 28) and maps.dtype == np.float32
    # 2 px at 128 px is 2 * 28 / 128 = 0.4375 px on the stored grid
    assert abs(np.median(maps[0]) - 2.0 * 28 / 128) < 0.02
    assert abs(np.median(maps[1])) < 0.02
    assert np.median(maps[2]) < 0.02  # a translation has no strain


def test_flow_config_is_validated():
    with pytest.raises(ConfigError, match="scale_step"):
        FlowConfig(scale_step=1.5)
    with pytest.raises(ConfigError, match="apex_rule"):
        FlowConfig(apex_rule="magic")


@pytest.fixture(scope="module")
def clean_synth(tmp_path_factory):
    """Synthetic SMIC clips without nuisances (no head motion, blinks, flicker, noise)."""
    from mer_cache.synth.generator import SynthConfig, generate_dataset

    out = tmp_path_factory.mktemp("synth") / "smic"
    generate_dataset(out, config=SynthConfig(subjects=2, clips_per_class=1, seed=3, nuisances=False))
    return out


def test_estimated_apex_matches_the_synthetic_truth_without_nuisances(clean_synth):
    """Within 1 frame of synth.json's apex, searching from frame 0 as for SMIC (measured: 0)."""
    from mer_cache.catalogue import load_catalogue
    from mer_cache.flow.extract import read_all_greys

    truth = {c["clip_id"]: c for c in json.loads((clean_synth / "synth.json").read_text())["clips"]}
    checked = 0
    for clip in load_catalogue("smic", clean_synth):
        t = truth[clip.clip_id]
        if t["apex"] is None:
            continue
        greys = read_all_greys(clip, 128)
        assert abs(estimate_apex(greys, 0) - t["apex"]) <= 1, clip.clip_id
        checked += 1
    assert checked == 6


def test_estimate_apex_searches_only_after_the_onset_up_to_the_offset():
    greys = [np.zeros((8, 8), np.uint8) for _ in range(10)]
    greys[7] = np.full((8, 8), 200, np.uint8)  # the largest change, after the offset
    greys[3] = np.full((8, 8), 50, np.uint8)
    assert estimate_apex(greys, 0) == 7
    assert estimate_apex(greys, 0, offset=5) == 3
    with pytest.raises(ValueError, match="no frame after the onset"):
        estimate_apex(greys, 9)


def test_flow_reads_16_bit_frames_scaled_like_the_trunk_path(tmp_path):
    """A 16-bit greyscale frame (SAMM-style) is scaled to 8 bit (v / 257), not clipped."""
    from PIL import Image

    from mer_cache.catalogue.clip import Clip
    from mer_cache.flow.extract import read_grey

    path = tmp_path / "f.png"
    Image.fromarray(np.full((32, 32), 100 * 257, np.uint16)).save(path)
    clip = Clip(dataset="folder", subject="s", clip_id="c", label="x", frames=(path,), fps=30.0)
    assert (read_grey(clip, 0, 16) == 100).all()
