"""Head-training speed on a SMIC-sized cache of random embeddings (seeded).

The issue's floors on a 2-core CPU: 5-fold ``bilstm``, 20 epochs, N = 13 on 328 clips of
~34 frames x 2048-d in at most 60 s; a sweep of 8 configurations x 5 folds in at most 10
minutes. Usage::

    python benchmarks/heads_speed.py [--sweep] [--threads 2]

Prints a table and writes ``benchmarks/results/heads_speed.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_result  # noqa: E402

from mer_cache.heads.data import sequences_from_arrays  # noqa: E402
from mer_cache.pipelines import run_sweep  # noqa: E402
from mer_cache.heads.config import HeadConfig
from mer_cache.pipelines import train_head  # noqa: E402

# SMIC-HS: 16 subjects, 164 micro clips (70 negative, 51 positive, 43 surprise) + 164 non-micro
COUNTS = {"negative": 70, "positive": 51, "surprise": 43, "non_micro": 164}


def smic_sized(seed: int = 0, dim: int = 2048):
    rng = np.random.default_rng(seed)
    labels = [lab for lab, n in COUNTS.items() for _ in range(n)]
    subjects = [f"s{rng.integers(16):02d}" for _ in labels]
    lengths = np.clip(rng.normal(34, 8, len(labels)).round().astype(int), 11, 60)
    emb = [rng.standard_normal((t, dim), dtype=np.float32).astype(np.float16).astype(np.float32)
           for t in lengths]
    return sequences_from_arrays(emb, clip_ids=[f"smic/{s}/{i}" for i, s in enumerate(subjects)],
                                 subjects=subjects, datasets=["smic"] * len(labels), labels=labels,
                                 scheme="smic4")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sweep", action="store_true", help="also time the 8-config sweep")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    seqs = smic_sized()
    print(f"{len(seqs)} clips, {int(seqs.lengths.sum())} frames, D={seqs.dim}")
    t0 = time.perf_counter()
    res = train_head(seqs, HeadConfig(arch="bilstm", window=13, epochs=20, folds=5,
                                                precision=args.precision))
    single = time.perf_counter() - t0
    print(f"bilstm 5-fold 20 epochs N=13 ({args.precision}): {single:.1f} s (floor 60 s); "
          f"fold seconds {[r['seconds'] for r in res.folds]}")
    payload = {"precision": args.precision, "notes": res.notes, "single_run_s": round(single, 2), "single_floor_s": 60,
               "windows_per_epoch": [r["windows_per_epoch"] for r in res.folds]}
    if args.sweep:
        t0 = time.perf_counter()
        sweep = run_sweep(seqs, {"arch": ["lstm", "bilstm"], "window": [11, 13, 15, 17]},
                          base=HeadConfig(epochs=20, folds=5, precision=args.precision), out=None)
        total = time.perf_counter() - t0
        print(f"sweep 8 configs x 5 folds: {total:.1f} s (floor 600 s)")
        for row in sweep.rows:
            print(f"  {row['name']:<28} {row['seconds']:7.1f} s")
        payload.update({"sweep_s": round(total, 2), "sweep_floor_s": 600,
                        "sweep_runs": [{"name": r["name"], "seconds": r["seconds"]} for r in sweep.rows]})
    print("wrote", write_result("heads_speed", payload))


if __name__ == "__main__":
    main()
