"""Head-training speed on a SMIC-sized cache of random embeddings (seeded), against the
machine's own dense matmul rate.

Two workloads of 5-fold ``bilstm``, N = 13, batch 40, 20 epochs on 328 clips of ~34 frames
x 2048-d:

- ``default``: one class-balanced window per training clip per epoch (``epoch_windows='sample'``);
  floor 60 s on a 2-core CPU.
- ``paper``: every stride-1 window of every training clip each epoch, class-balanced up to
  the largest class (``epoch_windows='all'``, the paper's Aug.-II). It is ~40x the default's
  work, so ``--paper-epochs`` (default 1) epochs of every fold are timed and the 20-epoch
  time is projected from them (epochs cost the same: same window count, same shapes).

For each it prints seconds and the achieved matmul FLOP rate of the training steps (FLOPs
counted from the layer shapes per step, ``heads_flops.py``, divided by the time spent in
training epochs) as a ratio of the best dense 2048^3 matmul rate at the same precision,
measured in the same run. ``--plain-bilstm`` times the decoder as it was before (both
directions of ``nn.LSTM`` over every frame) for a before/after comparison. Usage::

    python benchmarks/heads_speed.py [--workload both] [--paper-epochs 1] [--plain-bilstm]

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
from heads_flops import matmul_rate, step_flops  # noqa: E402

from mer_cache.heads import models, training  # noqa: E402
from mer_cache.heads.data import sequences_from_arrays  # noqa: E402
from mer_cache.heads.config import HeadConfig  # noqa: E402
from mer_cache.heads.training import resolve_precision  # noqa: E402
from mer_cache.pipelines import run_sweep, train_head  # noqa: E402

# SMIC-HS: 16 subjects, 164 micro clips (70 negative, 51 positive, 43 surprise) + 164 non-micro
COUNTS = {"negative": 70, "positive": 51, "surprise": 43, "non_micro": 164}
EPOCHS = 20


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


def time_run(seqs, config: HeadConfig) -> dict:
    """Train ``config``; seconds in training epochs vs in all, and the counted FLOPs."""
    steps: list[tuple[int, int]] = []  # (B, U) of every training step
    plain_loss = training.batch_loss

    def counted_loss(head, bank, rows, targets, **kw):
        steps.append((int(rows.shape[0]), int(torch.unique(rows).numel())))
        return plain_loss(head, bank, rows, targets, **kw)

    train_s, fold_t0 = 0.0, [0.0]

    def progress(ev):
        nonlocal train_s
        now = time.perf_counter()
        if ev.kind == "fold":
            fold_t0[0] = now
        elif ev.kind == "epoch":  # epoch ends: the time since the fold (or last epoch) began
            train_s += now - fold_t0[0]
            fold_t0[0] = now

    training.batch_loss = counted_loss
    try:
        t0 = time.perf_counter()
        res = train_head(seqs, config, progress=progress)
        wall = time.perf_counter() - t0
    finally:
        training.batch_loss = plain_loss
    flops = sum(step_flops(arch=config.arch, distinct_frames=u, batch=b, window=config.window,
                           in_dim=seqs.dim, n_classes=len(seqs.classes), proj_dims=config.proj_dims,
                           hidden=config.hidden, fc=config.fc) for b, u in steps)
    return {"wall_s": wall, "train_s": train_s, "steps": len(steps), "flops": flops,
            "mean_distinct_frames": float(np.mean([u for _, u in steps])),
            "windows_per_epoch": [r["windows_per_epoch"] for r in res.folds], "notes": res.notes}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workload", default="both", choices=["default", "paper", "both"])
    ap.add_argument("--paper-epochs", type=int, default=1,
                    help=f"epochs of the paper workload to time; the {EPOCHS}-epoch time is projected")
    ap.add_argument("--plain-bilstm", action="store_true",
                    help="time the previous decoder (nn.LSTM both ways over every frame)")
    ap.add_argument("--sweep", action="store_true", help="also time the 8-config sweep")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:k]")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.plain_bilstm:
        models.BiLSTMHead.decode = models.LSTMHead.decode  # the full two-way nn.LSTM readout
    seqs = smic_sized()
    base = HeadConfig(arch="bilstm", window=13, epochs=EPOCHS, folds=5, batch_size=40,
                      precision=args.precision, device=args.device)
    precision = resolve_precision(base, torch.device(args.device))
    print(f"{len(seqs)} clips, {int(seqs.lengths.sum())} frames, D={seqs.dim}; precision "
          f"{args.precision} -> {precision}; decoder {'plain' if args.plain_bilstm else 'fast'}")
    peaks = [matmul_rate(precision, device=args.device)]
    workloads = {}
    names = ["default", "paper"] if args.workload == "both" else [args.workload]
    for name in names:
        epochs = EPOCHS if name == "default" else args.paper_epochs
        config = HeadConfig(**{**base.__dict__, "epochs": epochs,
                               "epoch_windows": "sample" if name == "default" else "all"})
        r = time_run(seqs, config)
        peaks.append(matmul_rate(precision, device=args.device))
        projected = r["wall_s"] + r["train_s"] * (EPOCHS / epochs - 1)
        workloads[name] = {**r, "epochs_run": epochs, "projected_s": round(projected, 1),
                           "flop_rate": r["flops"] / r["train_s"]}
    peak = max(peaks)
    print(f"dense 2048^3 matmul, {precision}: best {peak / 1e9:.0f} GFLOP/s "
          f"(measured {len(peaks)} times in this run: {', '.join(f'{p / 1e9:.0f}' for p in peaks)})")
    print(f"{'workload':<9} {'epochs run':>10} {'steps':>6} {'train s':>8} {'20-epoch s':>11} "
          f"{'GFLOP/step':>10} {'GFLOP/s':>8} {'ratio':>6}")
    for name, w in workloads.items():
        w["ratio"] = round(w["flop_rate"] / peak, 3)
        print(f"{name:<9} {w['epochs_run']:>10} {w['steps']:>6} {w['train_s']:>8.1f} "
              f"{w['projected_s']:>11.1f} {w['flops'] / w['steps'] / 1e9:>10.2f} "
              f"{w['flop_rate'] / 1e9:>8.0f} {w['ratio']:>6.2f}")
    payload = {"precision": precision, "device": args.device,
               "decoder": "plain" if args.plain_bilstm else "fast", "matmul_flops_best": peak, "matmul_flops_all": peaks, "workloads": workloads}
    if "default" in workloads:
        payload.update(single_run_s=round(workloads["default"]["wall_s"], 2), single_floor_s=60)
    if args.sweep:
        t0 = time.perf_counter()
        sweep = run_sweep(seqs, {"arch": ["lstm", "bilstm"], "window": [11, 13, 15, 17]},
                          base=HeadConfig(epochs=EPOCHS, folds=5, precision=args.precision,
                                          device=args.device), out=None)
        total = time.perf_counter() - t0
        print(f"sweep 8 configs x 5 folds: {total:.1f} s (floor 600 s)")
        for row in sweep.rows:
            print(f"  {row['name']:<28} {row['seconds']:7.1f} s")
        payload.update({"sweep_s": round(total, 2), "sweep_floor_s": 600,
                        "sweep_runs": [{"name": r["name"], "seconds": r["seconds"]} for r in sweep.rows]})
    print("wrote", write_result("heads_speed" + ("_plain" if args.plain_bilstm else ""), payload))


if __name__ == "__main__":
    main()
