"""Frame decoding: Pillow against torchvision's decoder on the built-in synthetic frames.

For every frame format of the demo datasets (SMIC layout: BMP; CASME II layout: JPEG) it
times, on one thread, over every frame of the dataset:

- ``decode``: the file -> an RGB uint8 array, Pillow (``Image.open(...).convert('RGB')``)
  against ``torchvision.io.decode_image(read_file(path), mode=RGB)``;
- ``load_frame``: what extraction runs per frame (``mer_cache.frames.load_frame``: decode,
  resize/crop to the trunk input) for the ``vggface2-resnet50`` preprocessing, and the same
  with torchvision's decoder in place of Pillow's (the resize stays Pillow's);

and checks whether the two decoders give the same pixels. torchvision decodes JPEG, PNG,
GIF and WebP only, so BMP (SMIC's format) has no torchvision row. Usage::

    python -m mer_cache synth --out /tmp/synth-smic --subjects 8 --clips-per-class 4 --seed 0
    python -m mer_cache synth --out /tmp/synth-casme2 --layout casme2 --subjects 8 \\
        --clips-per-class 4 --seed 0
    python benchmarks/frame_decode.py --root /tmp/synth-smic --root /tmp/synth-casme2

Without ``--root`` it renders a small seeded set of both layouts (2 subjects) in a
temporary folder first.
Prints a table and writes ``benchmarks/results/frame_decode.json``.
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
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_result  # noqa: E402

from mer_cache.frames import load_frame, resize_image  # noqa: E402
from mer_cache.trunks.registry import get_spec  # noqa: E402

SUFFIXES = {".bmp": "bmp", ".jpg": "jpeg", ".jpeg": "jpeg", ".png": "png"}
TV_FORMATS = {"jpeg", "png"}  # of these, what torchvision.io.decode_image reads


def pil_decode(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))  # (H, W, 3)


def tv_decode(path: Path) -> np.ndarray:
    from torchvision.io import ImageReadMode, decode_image, read_file

    return decode_image(read_file(str(path)), mode=ImageReadMode.RGB).permute(1, 2, 0).numpy()


def tv_load_frame(path: Path, pre) -> np.ndarray:
    """``load_frame`` with torchvision's decoder, then the same Pillow resize (same pixels)."""
    img = Image.fromarray(tv_decode(path)).convert("L" if pre.channels == "gray" else "RGB")
    arr = np.array(resize_image(img, pre), dtype=np.uint8)
    return np.ascontiguousarray(arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1))


def rate(fn, paths: list[Path], repeats: int) -> float:
    """Best frames/s over ``repeats`` passes over ``paths`` (after one warm-up pass)."""
    for p in paths[: min(len(paths), 20)]:
        fn(p)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for p in paths:
            fn(p)
        best = min(best, time.perf_counter() - t0)
    return len(paths) / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, action="append", default=None,
                    help="a dataset folder (repeatable; default: render a small synthetic set)")
    ap.add_argument("--max-frames", type=int, default=2000, help="frames per format to time")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)  # extraction decodes on one core (or one per DataLoader worker)
    pre = get_spec("vggface2-resnet50").preprocessing
    tmp = None
    if not args.root:
        from mer_cache.synth import SynthConfig, generate_dataset

        tmp = Path(tempfile.mkdtemp(prefix="mer-cache-decode-"))
        args.root = [tmp / layout for layout in ("smic", "casme2")]
        for root in args.root:
            generate_dataset(root, config=SynthConfig(subjects=2, clips_per_class=1, seed=0,
                                                      layout=root.name))
    try:
        rows = measure(args.root, pre, max_frames=args.max_frames, repeats=args.repeats)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    print_table(rows)
    print("wrote", write_result("frame_decode", {"roots": [str(r) for r in args.root], "formats": rows}))


def measure(roots: list[Path], pre, *, max_frames: int, repeats: int) -> dict:
    """Per frame format: decode rates both ways, whether the pixels agree, load_frame rate."""
    by_format: dict[str, list[Path]] = {}
    for root in roots:
        for p in sorted(root.rglob("*")):
            if p.suffix.lower() in SUFFIXES:
                by_format.setdefault(SUFFIXES[p.suffix.lower()], []).append(p)
    rows = {}
    for fmt, paths in sorted(by_format.items()):
        paths = paths[:max_frames]
        with Image.open(paths[0]) as img:
            size = img.size
        row = {"frames": len(paths), "size_wh": list(size),
               "pil_decode_fps": rate(pil_decode, paths, repeats),
               "pil_load_frame_fps": rate(lambda p: load_frame(p, pre), paths, repeats)}
        if fmt in TV_FORMATS:
            row["torchvision_decode_fps"] = rate(tv_decode, paths, repeats)
            row["torchvision_load_frame_fps"] = rate(lambda p: tv_load_frame(p, pre), paths, repeats)
            row["identical_pixels"] = all(np.array_equal(pil_decode(p), tv_decode(p)) for p in paths)
        rows[fmt] = row
    return rows


def print_table(rows: dict) -> None:
    print(f"{'format':<6} {'frames':>6} {'size':>9} {'PIL decode':>11} {'tv decode':>10} "
          f"{'same pixels':>11} {'load_frame':>11} {'tv load_frame':>13}   (frames/s, 1 thread)")
    for fmt, r in rows.items():
        tv = f"{r['torchvision_decode_fps']:10.0f}" if "torchvision_decode_fps" in r else f"{'n/a':>10}"
        same = str(r.get("identical_pixels", "n/a"))
        tv_load = r.get("torchvision_load_frame_fps")
        tv_load = f"{tv_load:13.0f}" if tv_load else f"{'n/a':>13}"
        print(f"{fmt:<6} {r['frames']:>6} {'x'.join(map(str, r['size_wh'])):>9} "
              f"{r['pil_decode_fps']:11.0f} {tv} {same:>11} {r['pil_load_frame_fps']:11.0f} {tv_load}")


if __name__ == "__main__":
    main()
