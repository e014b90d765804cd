"""Shared pieces of the benchmark scripts: machine description and JSON results."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from pathlib import Path

# MER_BENCH_RESULTS redirects every script's JSON (gpu.sh keeps one run's files together)
RESULTS = Path(os.environ.get("MER_BENCH_RESULTS") or Path(__file__).resolve().parent / "results")


def machine() -> dict:
    import numpy
    import torch
    import zarr

    from mer_cache import __version__

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "zarr": zarr.__version__,
        "mer_cache": __version__,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def write_result(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"benchmark": name, "machine": machine(), **payload}, indent=2))
    return path


def best_of(fn, repeats: int) -> float:
    """Median wall time of ``repeats`` calls (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)
