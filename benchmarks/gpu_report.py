"""Collect the result files of one ``benchmarks/gpu.sh`` run into one JSON and one table.

Reads ``extract_throughput_*``, ``gpu_decode_*``, ``heads_speed*`` and
``cached_vs_end_to_end_*`` JSON files from a results folder and writes ``gpu.json`` (all
of them, keyed by file name) and ``gpu.md`` (a markdown table, one row per run, best
extraction rate first) next to them. Usage::

    python benchmarks/gpu_report.py [--results benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
PATTERNS = ("extract_throughput_*.json", "gpu_decode_*.json", "heads_speed*.json",
            "cached_vs_end_to_end_*.json")


def collect(results: Path) -> dict[str, dict]:
    """Every result file of a GPU run, keyed by its name without ``.json``."""
    runs = {}
    for pattern in PATTERNS:
        for path in sorted(results.glob(pattern)):
            runs[path.stem] = json.loads(path.read_text())
    return runs


def rows(runs: dict[str, dict]) -> list[tuple[str, str, str]]:
    """(run, setting, result) rows; extraction sweeps sorted by full-extract frames/s."""
    out = []
    extract = [(k, d) for k, d in runs.items() if k.startswith("extract_throughput_")]
    for k, d in sorted(extract, key=lambda kd: -kd[1]["extract_fps"]):
        out.append((k, f"{d['device']} amp={d['amp']} batch={d['batch_size']} workers={d['workers']}",
                    f"forward {d['forward_fps']:.0f}, decode {d['decode_fps']:.0f}, extract "
                    f"{d['extract_fps']:.0f} frames/s; efficiency {d['efficiency']:.2f}"))
    for k, d in runs.items():
        if k.startswith("gpu_decode"):
            out.append((k, f"{d['device']} amp={d['amp']} batch={d['batch_size']} workers={d['workers']}",
                        f"decode CPU {d['cpu_decode_fps']:.0f} vs GPU {d['gpu_decode_fps']:.0f}; "
                        f"decode+forward CPU {d['cpu_decode_forward_fps']:.0f} vs GPU "
                        f"{d['gpu_decode_forward_fps']:.0f} frames/s; resize diff max "
                        f"{d['pixel_diff_max']:.0f}"))
        elif k.startswith("heads_speed"):
            w = d["workloads"]
            out.append((k, f"{d.get('device', 'cpu')} {d['precision']} decoder={d['decoder']}",
                        "; ".join(f"{name} {v['projected_s']:.1f} s, {v['ratio']:.2f} of matmul"
                                  for name, v in w.items())))
        elif k.startswith("cached_vs_end_to_end"):
            out.append((k, "cpu (the script has no GPU option)",
                        f"{d['cached_epoch_s']:.3f} vs {d['e2e_epoch_s']:.1f} s/epoch, "
                        f"speedup {d['speedup']:.0f}x"))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=HERE / "results")
    args = ap.parse_args()
    runs = collect(args.results)
    if not runs:
        raise SystemExit(f"No benchmark results in {args.results}: run benchmarks/gpu.sh first.")
    machine = next(iter(runs.values())).get("machine", {})
    (args.results / "gpu.json").write_text(json.dumps({"machine": machine, "runs": runs}, indent=2))
    lines = [f"GPU: {machine.get('cuda')}; CPU: {machine.get('cpu')} ({machine.get('cores')} cores); "
             f"torch {machine.get('torch')}; {machine.get('date')}", "",
             "| run | setting | result |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows(runs)]
    (args.results / "gpu.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {args.results / 'gpu.json'} and {args.results / 'gpu.md'}")


if __name__ == "__main__":
    main()
