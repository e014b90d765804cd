"""JPEG frames decoded on the GPU (``torchvision.io.decode_jpeg(device='cuda')``) against the
extractor's CPU path (DataLoader workers running Pillow), each feeding the trunk.

Per path it times, over the same seeded JPEG frames (CASME II / SAMM / CAS(ME)^3 ship JPEG):

- ``decode``: file -> uint8 trunk input on the device (decode, resize, crop);
- ``decode+forward``: the same followed by the trunk's forward pass under autocast, i.e.
  extraction throughput including decode (no cache writing).

The GPU path resizes with ``torchvision.transforms.v2.functional.resize`` (bilinear,
antialiased) on the device, which is close to but not bit-equal to Pillow's resize: the
pixel differences to the CPU path are printed. The extractor itself decodes on the CPU.

    python benchmarks/gpu_decode.py --device cuda --amp bf16 --batch-size 256 --workers 8
    python benchmarks/gpu_decode.py --device cpu --dry-run    # tiny, checks the code path

Prints a table and writes ``benchmarks/results/gpu_decode[_TAG].json``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_result  # noqa: E402

from mer_cache.catalogue.clip import Clip, list_frames  # noqa: E402
from mer_cache.extract.loader import FrameDataset, frame_loader  # noqa: E402
from mer_cache.trunks import create_trunk  # noqa: E402


def write_jpeg_frames(root: Path, *, n_clips: int, frames_per_clip: int, size=(170, 140),
                      seed: int = 0) -> list[Clip]:
    """Seeded face-crop-sized JPEG frames (quality 95), one folder per clip."""
    rng = np.random.default_rng(seed)
    clips = []
    for i in range(n_clips):
        folder = root / f"clip{i:04d}"
        folder.mkdir(parents=True)
        base = rng.integers(0, 255, (size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
        img = Image.fromarray(base).resize(size, Image.BILINEAR)
        for f in range(frames_per_clip):
            img.save(folder / f"img{f:05d}.jpg", quality=95)
        clips.append(Clip("bench", f"s{i % 8}", f"bench/s{i % 8}/clip{i:04d}", "negative",
                          list_frames(folder), 100.0))
    return clips


def gpu_batches(paths: list[Path], pre, *, batch_size: int, device: torch.device, readers: int):
    """Yield uint8 (B, C, H, W) trunk inputs decoded and resized on ``device``."""
    from torchvision.io import ImageReadMode, decode_jpeg, read_file
    from torchvision.transforms.v2 import functional as TF

    h, w = pre.input_size
    mode = ImageReadMode.GRAY if pre.channels == "gray" else ImageReadMode.RGB
    with ThreadPoolExecutor(readers) as pool:  # file reads overlap the device work
        chunks = [paths[i:i + batch_size] for i in range(0, len(paths), batch_size)]
        pending = pool.map(lambda c: [read_file(str(p)) for p in c], chunks)
        for data in pending:
            images = decode_jpeg(data, mode=mode, device=device)  # list of (C, h_i, w_i) uint8
            out = []
            for img in images:
                if pre.resize_mode == "stretch":
                    out.append(TF.resize(img, [h, w], antialias=True))
                    continue
                ih, iw = img.shape[-2:]  # centre crop after scaling the short side (frames.py)
                scale = round(min(h, w) * 256 / 224) / min(ih, iw)
                nh, nw = max(h, round(ih * scale)), max(w, round(iw * scale))
                img = TF.resize(img, [nh, nw], antialias=True)
                top, left = (nh - h) // 2, (nw - w) // 2
                out.append(img[:, top:top + h, left:left + w])
            yield torch.stack(out)


def cpu_batches(clips, pre, *, batch_size: int, workers: int, device: torch.device):
    ds = FrameDataset(clips, list(range(len(clips))), pre)
    loader = frame_loader(ds, batch_size=batch_size, workers=workers, pin_memory=device.type == "cuda")
    for images, *_ in loader:
        yield images.to(device, non_blocking=True)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def frames_per_s(batches, n: int, device: torch.device, trunk=None, amp: str = "bf16") -> float:
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    ctx = torch.autocast(device.type, dtype=dtype, enabled=amp != "off" and device.type == "cuda")
    t0 = time.perf_counter()
    with torch.inference_mode(), ctx:
        for b in batches:
            if trunk is not None:
                b = trunk(b.contiguous(memory_format=torch.channels_last)
                          if device.type == "cuda" else b)
    _sync(device)
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--trunk", default="vggface2-resnet50")
    ap.add_argument("--amp", default="bf16", choices=["bf16", "fp16", "off"])
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--workers", type=int, default=8, help="CPU path: DataLoader workers")
    ap.add_argument("--readers", type=int, default=4, help="GPU path: file-reading threads")
    ap.add_argument("--clips", type=int, default=64)
    ap.add_argument("--frames-per-clip", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--tag", default="", help="suffix of the result file name")
    ap.add_argument("--dry-run", action="store_true",
                    help="tiny sizes and the tiny-cnn trunk: checks the code path, times nothing useful")
    args = ap.parse_args()
    if args.dry_run:
        args.trunk, args.clips, args.frames_per_clip, args.batch_size = "tiny-cnn", 2, 6, 4
        args.workers, args.repeats = 0, 1
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA device here; use --device cpu --dry-run.")
    trunk = create_trunk(args.trunk, weights="random")
    pre = trunk.preprocessing
    model = trunk.to(device).eval()
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    work = Path(tempfile.mkdtemp(prefix="mer-cache-gpudec-"))
    try:
        clips = write_jpeg_frames(work, n_clips=args.clips, frames_per_clip=args.frames_per_clip)
        paths = [p for c in clips for p in c.frames]
        n = len(paths)

        def gpu():
            return gpu_batches(paths, pre, batch_size=args.batch_size, device=device, readers=args.readers)

        def cpu():
            return cpu_batches(clips, pre, batch_size=args.batch_size, workers=args.workers, device=device)

        frames_per_s(gpu(), n, device, model, args.amp)  # warm-up: decoder and cuDNN plans
        runs: dict[str, list[float]] = {k: [] for k in ("cpu_decode", "gpu_decode", "cpu_decode_forward",
                                                        "gpu_decode_forward")}
        for _ in range(args.repeats):  # interleaved, so every path sees the same machine state
            runs["cpu_decode"].append(frames_per_s(cpu(), n, device))
            runs["gpu_decode"].append(frames_per_s(gpu(), n, device))
            runs["cpu_decode_forward"].append(frames_per_s(cpu(), n, device, model, args.amp))
            runs["gpu_decode_forward"].append(frames_per_s(gpu(), n, device, model, args.amp))
        ref = next(cpu_batches(clips, pre, batch_size=args.batch_size, workers=0, device=device))
        got = next(gpu())
        diff = (ref.int() - got.int()).abs().float()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    best = {k: max(v) for k, v in runs.items()}
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"trunk={args.trunk} device={device} ({name}) amp={args.amp} batch={args.batch_size} "
          f"workers={args.workers} frames={n}")
    for k, v in best.items():
        print(f"{k:<20} {v:10.1f} frames/s")
    print(f"GPU vs CPU resize: max |diff| {diff.max():.0f}, mean {diff.mean():.3f} (0..255 levels)")
    path = write_result("gpu_decode" + (f"_{args.tag}" if args.tag else ""), {
        "trunk": args.trunk, "device": str(device), "device_name": name, "amp": args.amp,
        "batch_size": args.batch_size, "workers": args.workers, "frames": n, "dry_run": args.dry_run,
        **{f"{k}_fps": v for k, v in best.items()}, "runs": runs,
        "pixel_diff_max": float(diff.max()), "pixel_diff_mean": float(diff.mean())})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
