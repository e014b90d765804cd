"""Two CPU processes (torchrun, gloo) write the same cache as one process."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from conftest import make_clips
from mer_cache.cache import open_cache, verify_cache


def _extract(cmd_prefix: list[str], root, out) -> subprocess.CompletedProcess:
    args = ["extract", "--dataset", "folder", "--root", str(root), "--trunk", "tiny-cnn",
            "--weights", "random", "--out", str(out), "--workers", "0", "--batch-size", "4",
            "--dtype", "float32"]
    return subprocess.run([*cmd_prefix, *args], capture_output=True, text=True, timeout=300)


def test_two_process_extraction_equals_single_process(tmp_path):
    root = tmp_path / "frames"
    # enough frames for several chunk units, so both ranks own work
    make_clips(root, [40, 9, 33, 12, 70, 4, 6, 58, 5, 11, 64, 20], subjects=4)
    one = _extract([sys.executable, "-m", "mer_cache"], root, tmp_path / "one.zarr")
    assert one.returncode == 0, one.stderr
    two = _extract([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                    "-m", "mer_cache"], root, tmp_path / "two.zarr")
    assert two.returncode == 0, two.stderr + two.stdout
    a, b = open_cache(tmp_path / "one.zarr"), open_cache(tmp_path / "two.zarr")
    assert a.fingerprint["catalogue_sha256"] == b.fingerprint["catalogue_sha256"]
    assert [c.clip_id for c in a.clips] == [c.clip_id for c in b.clips]
    for x, y in zip(a.load_all(), b.load_all()):
        np.testing.assert_allclose(x, y, atol=1e-6)
    assert verify_cache(tmp_path / "two.zarr") == []
    # each rank reported writing only its own share
    written = [int(line.split("wrote ")[1].split()[0]) for line in two.stdout.splitlines()
               if line.startswith("rank ") and " of 2: wrote " in line]
    assert len(written) == 2 and sum(written) == len(a.clips) and min(written) > 0
