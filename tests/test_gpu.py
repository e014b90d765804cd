"""GPU checks (opt-in: `pytest -m gpu`); they fail, not skip, when no CUDA device exists."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mer_cache.cache import open_cache
from mer_cache.extract import ExtractOptions, extract_clips
from mer_cache.trunks import create_trunk

pytestmark = pytest.mark.gpu


def test_cuda_extraction_matches_cpu(tmp_path, tiny_clips):
    assert torch.cuda.is_available(), "pytest -m gpu needs a CUDA device"
    trunk = create_trunk("tiny-cnn", weights="random")
    extract_clips(tiny_clips, trunk, tmp_path / "cpu.zarr",
                  options=ExtractOptions(batch_size=4, workers=0, dtype="float32"))
    extract_clips(tiny_clips, create_trunk("tiny-cnn", weights="random"), tmp_path / "gpu.zarr",
                  options=ExtractOptions(batch_size=4, workers=2, dtype="float32", device="cuda:0",
                                         amp="off"))
    for a, b in zip(open_cache(tmp_path / "cpu.zarr").load_all(),
                    open_cache(tmp_path / "gpu.zarr").load_all()):
        np.testing.assert_allclose(a, b, atol=1e-3)
