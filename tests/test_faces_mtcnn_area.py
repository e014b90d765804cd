"""MTCNN's area resampling from an integral image equals PyTorch's ``mode="area"`` exactly.

The cascade's image pyramid and its R/O-Net crops are read from one integral image per
frame instead of adaptive pooling; detections (and so every stored face transform) must not
change by a single bit.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn.functional import interpolate

from mer_cache.faces.mtcnn import MTCNN, _AreaSampler


def _reference(rgb: np.ndarray, window, oh: int, ow: int) -> torch.Tensor:
    y0, y1, x0, x1 = window
    img = torch.from_numpy(rgb).permute(2, 0, 1)[None].float()
    return interpolate(img[:, :, y0:y1, x0:x1], size=(oh, ow), mode="area")


@pytest.mark.parametrize("seed", range(4))
def test_pyramid_levels_and_crops_equal_adaptive_pooling_bit_for_bit(seed: int, monkeypatch) -> None:
    if seed % 2:  # the float64 integral that images too large for int32 sums get
        monkeypatch.setattr("mer_cache.faces.mtcnn._INT32_PIXELS", 0)
    rng = np.random.default_rng(seed)
    for _ in range(25):
        h, w = rng.integers(16, 400, size=2)
        rgb = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        area = _AreaSampler(rgb)
        # a whole-image level, down or up
        oh, ow = rng.integers(1, 2 * h), rng.integers(1, 2 * w)
        got = area.resize(np.array([0, h, 0, w]), int(oh), int(ow))
        assert torch.equal(got, _reference(rgb, (0, h, 0, w), int(oh), int(ow)))
        # a batch of crops of different windows
        windows = []
        for _ in range(5):
            y0, x0 = rng.integers(0, h - 1), rng.integers(0, w - 1)
            windows.append((y0, rng.integers(y0 + 1, h + 1), x0, rng.integers(x0 + 1, w + 1)))
        size = int(rng.choice([24, 48]))
        got = area.resize(np.array(windows), size, size)
        want = torch.cat([_reference(rgb, win, size, size) for win in windows])
        assert torch.equal(got, want)


def test_detect_refuses_images_that_are_not_8_bit() -> None:
    with pytest.raises(ValueError, match="uint8"):
        MTCNN().detect(np.zeros((64, 64, 3), dtype=np.float32))


@pytest.mark.parametrize("score, scans", [(0.99, 1), (0.79, 2)])
def test_first_pass_ends_the_scan_only_on_a_sure_face(score: float, scans: int, monkeypatch) -> None:
    """A face the coarse levels give with an O-Net score under FIRST_PASS_SCORE goes on to
    the whole pyramid (a less sure face came from a coarse box: 11 px off on a synthetic
    frame); a sure one ends the scan there."""
    from mer_cache.faces.mtcnn import FIRST_PASS_SCORE, Detections

    assert score < FIRST_PASS_SCORE or scans == 1
    net = MTCNN(min_face_px=20, first_pass=0.25).eval()
    levels = []

    def cascade(imgs, found):
        levels.append(sum(len(f) for f in found))  # pyramid levels scanned so far
        return [Detections(np.array([[1.0, 1, 30, 30]]), np.array([score]),
                           np.full((1, 5, 2), 10.0 * len(levels))) for _ in imgs]

    monkeypatch.setattr(net, "_cascade", cascade)
    det = net.detect(np.zeros((240, 320, 3), dtype=np.uint8))
    assert len(levels) == scans
    if scans == 2:
        assert levels[1] > levels[0]  # the finer levels too
    assert det.landmarks[0, 0, 0] == 10.0 * scans  # the last scan's face
