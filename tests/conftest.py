"""Shared fixtures: tiny frame folders and clips built in tmp_path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mer_cache.catalogue.clip import Clip, list_frames


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Run torch on one thread in every test: tiny tensors gain nothing from intra-op
    threads, and on a busy 2-core machine the OpenMP barrier of two threads costs ~5x.
    Session scope, so module-scoped fixtures compute with the same thread count as tests
    (float reductions differ between thread counts)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def write_clip_frames(folder: Path, n_frames: int, *, seed: int, size: int = 24) -> tuple[Path, ...]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
    for f in range(n_frames):
        img = np.clip(base.astype(int) + f * 3, 0, 255).astype(np.uint8)
        Image.fromarray(img).save(folder / f"img{f + 1}.png")
    return list_frames(folder)


def make_clips(root: Path, lengths: list[int], *, subjects: int = 3,
               labels=("negative", "positive", "surprise")) -> list[Clip]:
    """Clips with frames on disk (``root/subject/label/clip/``), cycling subjects and labels."""
    clips = []
    for k, n in enumerate(lengths):
        subject = f"s{k % subjects + 1}"
        label = labels[k % len(labels)]
        name = f"clip{k:03d}"
        frames = write_clip_frames(root / subject / label / name, n, seed=k)
        clips.append(Clip(dataset="folder", subject=subject, clip_id=f"folder/{subject}/{name}",
                          label=label, frames=frames, fps=100.0, onset=0, apex=n // 2,
                          offset=n - 1))
    return clips


@pytest.fixture
def tiny_clips(tmp_path: Path) -> list[Clip]:
    return make_clips(tmp_path / "frames", [5, 9, 3, 12, 7, 4, 6, 8])
