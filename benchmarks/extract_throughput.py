"""Extraction efficiency: the full `extract` against its two halves, side by side.

On one device, batch size and dtype it measures
  (a) the bare trunk forward on preloaded uint8 tensors,
  (b) decoding + preprocessing alone (the same DataLoader, no trunk),
  (c) the full extraction into a Zarr cache,
and prints frames/s for each, the efficiency c / min(a, b) and, for trunks where decoding
and the forward pass share the same cores, c / (1 / (1/a + 1/b)) (the serial bound).
Floors on a 2-core CPU: efficiency >= 0.9 for vggface2-resnet50; for fer-minixception,
c >= 0.9 x the serial bound.

    python benchmarks/extract_throughput.py --trunk vggface2-resnet50 --weights random
    python benchmarks/extract_throughput.py --trunk fer-minixception --weights random
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_result  # noqa: E402

from mer_cache.catalogue.clip import Clip, list_frames  # noqa: E402
from mer_cache.extract import ExtractOptions, extract_clips, resolve_device  # noqa: E402
from mer_cache.extract.loader import FrameDataset, frame_loader  # noqa: E402
from mer_cache.trunks import create_trunk  # noqa: E402


def write_frames(root: Path, *, n_clips: int, frames_per_clip: int, size: tuple[int, int],
                 seed: int) -> list[Clip]:
    """Seeded face-crop-sized BMP frames (SMIC-HS cropped frames are BMPs of ~130-190 px)."""
    rng = np.random.default_rng(seed)
    clips = []
    for i in range(n_clips):
        folder = root / f"s{i % 8}" / f"clip{i:04d}"
        folder.mkdir(parents=True)
        base = rng.integers(0, 255, (size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
        img = Image.fromarray(base).resize(size, Image.BILINEAR)
        for f in range(frames_per_clip):
            img.save(folder / f"image{f:06d}.bmp")
        clips.append(Clip("bench", f"s{i % 8}", f"bench/s{i % 8}/clip{i:04d}", "negative",
                          list_frames(folder), 100.0))
    return clips


def time_forward(trunk, device, frames: torch.Tensor, batch: int, amp: str) -> float:
    """(a): the trunk alone on the real decoded frames, preloaded as uint8 tensors."""
    batches = [frames[i:i + batch].to(device) for i in range(0, len(frames), batch)]
    if device.type == "cuda":
        batches = [b.contiguous(memory_format=torch.channels_last) for b in batches]
    ctx = (torch.autocast("cuda", dtype=torch.bfloat16 if amp == "bf16" else torch.float16)
           if device.type == "cuda" and amp != "off" else torch.autocast("cpu", enabled=False))
    with torch.inference_mode(), ctx:
        trunk(batches[0]).float().cpu()  # warm-up
        t0 = time.perf_counter()
        for b in batches:
            trunk(b).float().cpu()  # the copy back is part of every real batch
        return len(frames) / (time.perf_counter() - t0)


def preload(clips, trunk) -> torch.Tensor:
    ds = FrameDataset(clips, list(range(len(clips))), trunk.preprocessing)
    return torch.stack([ds[k][0] for k in range(len(ds))])  # (N, C, H, W) uint8


def time_decode(clips, trunk, batch: int, workers: int) -> float:
    ds = FrameDataset(clips, list(range(len(clips))), trunk.preprocessing)
    t0 = time.perf_counter()
    n = sum(len(b[0]) for b in frame_loader(ds, batch_size=batch, workers=workers, pin_memory=False))
    return n / (time.perf_counter() - t0)


def time_extract(clips, trunk, out: Path, options: ExtractOptions) -> float:
    shutil.rmtree(out, ignore_errors=True)
    r = extract_clips(clips, trunk, out, options=options)
    assert r.complete, r.failed
    return r.frames / r.seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trunk", default="vggface2-resnet50")
    ap.add_argument("--weights", default="random")
    ap.add_argument("--clips", type=int, default=8)
    ap.add_argument("--frames-per-clip", type=int, default=32)
    ap.add_argument("--frame-size", type=int, nargs=2, default=(170, 140), metavar=("W", "H"))
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--workers", type=int, default=None, help="default: the extractor's default")
    ap.add_argument("--dtype", default="float16")
    ap.add_argument("--amp", default="bf16")
    ap.add_argument("--gpu", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--tag", default="", help="suffix of the result file name (sweeps)")
    args = ap.parse_args()

    device, note = resolve_device(args.gpu)
    if note:
        print(note)
    workers = args.workers
    if workers is None:  # the extractor's own default for this device
        workers = min(8, os.cpu_count() or 1) if device.type == "cuda" else 0
    trunk = create_trunk(args.trunk, weights=args.weights)
    work = Path(tempfile.mkdtemp(prefix="mer-cache-xt-"))
    try:
        clips = write_frames(work / "frames", n_clips=args.clips, frames_per_clip=args.frames_per_clip,
                             size=tuple(args.frame_size), seed=0)
        n = sum(c.n_frames for c in clips)
        options = ExtractOptions(batch_size=args.batch_size, workers=workers, device=str(device),
                                 amp=args.amp, dtype=args.dtype)
        trunk_dev = trunk.to(device)
        frames = preload(clips, trunk)
        a_runs, b_runs, c_runs = [], [], []
        for _ in range(args.repeats):  # interleaved so (a), (b), (c) see the same machine state
            a_runs.append(time_forward(trunk_dev, device, frames, args.batch_size, args.amp))
            b_runs.append(time_decode(clips, trunk, args.batch_size, workers))
            c_runs.append(time_extract(clips, trunk, work / "cache.zarr", options))
        a, b, c = max(a_runs), max(b_runs), max(c_runs)
        serial = 1 / (1 / a + 1 / b)
        eff, eff_serial = c / min(a, b), c / serial
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"trunk={args.trunk} device={device} batch={args.batch_size} workers={workers} "
          f"dtype={args.dtype} frames={n} torch_threads={torch.get_num_threads()}")
    print(f"(a) trunk forward         {a:9.1f} frames/s")
    print(f"(b) decode + preprocess   {b:9.1f} frames/s")
    print(f"(c) full extract -> Zarr  {c:9.1f} frames/s")
    print(f"efficiency c / min(a, b)          = {eff:.3f}")
    print(f"c / serial bound 1/(1/a + 1/b)    = {eff_serial:.3f}")
    tag = f"_{args.tag}" if args.tag else ""
    path = write_result(f"extract_throughput_{args.trunk.replace(':', '_')}{tag}", {
        "trunk": args.trunk, "device": str(device), "batch_size": args.batch_size, "workers": workers,
        "dtype": args.dtype, "amp": args.amp, "frames": n, "forward_fps": a, "decode_fps": b,
        "extract_fps": c, "efficiency": eff, "efficiency_vs_serial": eff_serial,
        "runs": {"forward": a_runs, "decode": b_runs, "extract": c_runs}})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
