"""The GPU benchmark scripts run on a CPU in their dry-run mode and report what they measured.

``benchmarks/gpu.sh`` is meant for a CUDA machine; its GPU-decode script and its report
run here on the CPU (tiny sizes, the tiny trunk), so they are known to work before a GPU
is lent.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(argv, results: Path, **env):
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "MER_BENCH_RESULTS": str(results), **env})


def test_gpu_decode_dry_run_on_cpu_and_report(tmp_path):
    proc = _run([sys.executable, "benchmarks/gpu_decode.py", "--device", "cpu", "--dry-run",
                 "--tag", "t"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    d = json.loads((tmp_path / "gpu_decode_t.json").read_text())
    assert d["frames"] == 12 and d["dry_run"]
    for key in ("cpu_decode_fps", "gpu_decode_fps", "cpu_decode_forward_fps", "gpu_decode_forward_fps"):
        assert d[key] > 0
    assert d["pixel_diff_max"] <= 2  # torchvision's antialiased resize vs Pillow's: close, not equal
    proc = _run([sys.executable, "benchmarks/gpu_report.py", "--results", str(tmp_path)], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "gpu_decode_t" in json.loads((tmp_path / "gpu.json").read_text())["runs"]
    assert "| gpu_decode_t | cpu amp=bf16 batch=4" in (tmp_path / "gpu.md").read_text()


def test_gpu_report_without_results_says_what_to_run(tmp_path):
    proc = _run([sys.executable, "benchmarks/gpu_report.py", "--results", str(tmp_path)], tmp_path)
    assert proc.returncode != 0 and "run benchmarks/gpu.sh first" in proc.stderr


@pytest.mark.slow
def test_gpu_sh_dry_run_writes_one_json_and_table(tmp_path):
    proc = subprocess.run(["bash", "benchmarks/gpu.sh"], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "DRY_RUN": "1", "OUT": str(tmp_path),
                                            "PYTHON": sys.executable})
    assert proc.returncode == 0, proc.stderr
    runs = json.loads((tmp_path / "gpu.json").read_text())["runs"]
    assert {"extract_throughput_tiny-cnn_bf16_b4_w0", "extract_throughput_tiny-cnn_fp16_b4_w0",
            "gpu_decode_bf16_b4", "gpu_decode_fp16_b4"} <= set(runs)
    assert (tmp_path / "gpu.md").read_text().count("\n| ") == 1 + 4  # header + one row per run
