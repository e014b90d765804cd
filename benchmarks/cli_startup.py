"""CLI start-up: wall time of ``mer-cache --help`` and ``mer-cache <command> --help`` as
whole processes (interpreter start, imports, typer), the best of a few runs each.

Floor: under 1 s each on a 2-core CPU. Usage::

    python benchmarks/cli_startup.py [--repeats 5] [--command train-head --command extract]

Prints a table and writes ``benchmarks/results/cli_startup.json``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_result  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FLOOR_S = 1.0


def time_process(argv: list[str], repeats: int) -> float:
    """Best wall time of running ``argv`` to completion; a failing command is an error."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
        best = min(best, time.perf_counter() - t0)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--command", action="append", default=None,
                    help="sub-command whose --help to time (repeatable; default: train-head)")
    args = ap.parse_args()
    base = [sys.executable, "-m", "mer_cache"]
    cases = {"python -c pass": [sys.executable, "-c", "pass"], "mer-cache --help": [*base, "--help"]}
    for cmd in args.command or ["train-head"]:
        cases[f"mer-cache {cmd} --help"] = [*base, cmd, "--help"]
    rows = {name: time_process(argv, args.repeats) for name, argv in cases.items()}
    print(f"{'process':<32} {'best s':>7}  (of {args.repeats}; floor {FLOOR_S} s for mer-cache)")
    for name, s in rows.items():
        print(f"{name:<32} {s:7.2f}")
    slowest = max(s for name, s in rows.items() if name.startswith("mer-cache"))
    print("wrote", write_result("cli_startup", {"seconds": rows, "slowest_s": slowest,
                                                "floor_s": FLOOR_S, "repeats": args.repeats}))


if __name__ == "__main__":
    main()
