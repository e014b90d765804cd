"""Loading a whole cache into memory versus a raw sequential read of the same bytes.

Builds a SMIC-sized cache (328 clips x ~34 frames x 2048-d float16 by default) in a few
layouts, then times, side by side and alternating, ``open_cache(...).load_all()`` against
``np.fromfile`` of a flat file holding the same bytes. Floor: ratio >= 0.5 for the default
layout's read (``load_all(verify=False)``). Also reported: ``load_all`` as called by default,
which checks every clip's CRC-32 (catching chunks changed on disk), and that check alone.

    python benchmarks/cache_io.py [--clips 328 --dim 2048 --repeats 5]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import zarr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import best_of, write_result  # noqa: E402

from mer_cache.cache import CacheWriter, open_cache, prepare_cache, store  # noqa: E402
from mer_cache.cache.api import damaged_clips  # noqa: E402
from mer_cache.catalogue.clip import Clip  # noqa: E402


def fake_clips(n: int, seed: int) -> list[Clip]:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(11, 58, n)  # SMIC-HS: shortest 11, mean ~34 frames
    return [Clip("smic", f"s{i % 16}", f"smic/s{i % 16}/c{i:04d}", "negative",
                 tuple(Path(f"f{k}.bmp") for k in range(int(t))), 100.0) for i, t in enumerate(lengths)]


def build_packed(path: Path, clips, dim: int, chunk_bytes: int) -> None:
    fp = {"trunk": "bench", "layer": "pool5", "dim": dim, "dtype": "float16",
          "weights_sha256": None, "preprocessing": None, "catalogue_sha256": "x", "n_clips": len(clips)}
    prepare_cache(path, fingerprint=fp, clips=clips, chunk_bytes=chunk_bytes)
    w = CacheWriter(path)
    rng = np.random.default_rng(0)
    for i, c in enumerate(clips):
        w.write(i, rng.standard_normal((c.n_frames, dim), dtype=np.float32))
    w.finalize()


def build_per_clip_arrays(path: Path, clips, dim: int) -> None:
    """The obvious alternative: one Zarr array per clip."""
    root = zarr.open_group(str(path), mode="w")
    rng = np.random.default_rng(0)
    for i, c in enumerate(clips):
        a = root.create_array(f"c{i:05d}", shape=(c.n_frames, dim), dtype="float16",
                              chunks=(c.n_frames, dim), compressors=None)
        a[:] = rng.standard_normal((c.n_frames, dim), dtype=np.float32)


def load_per_clip_arrays(path: Path, n: int) -> list[np.ndarray]:
    root = zarr.open_group(str(path), mode="r")
    return [root[f"c{i:05d}"][:] for i in range(n)]


def time_checksum_check(path: Path, repeats: int) -> float:
    """Seconds of the CRC-32 check alone, on rows already in memory (best of ``repeats``)."""
    cache = open_cache(path)
    flat = store.read_embeddings(cache._root)
    sums = store.read_checksums(cache._root, cache._attrs)
    done = np.ones(len(cache.clips), bool)
    assert not damaged_clips(cache.clips, flat, sums, done)
    return best_of(lambda: damaged_clips(cache.clips, flat, sums, done), repeats)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=328)
    ap.add_argument("--dim", type=int, default=2048)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="mer-cache-io-"))
    clips = fake_clips(args.clips, 0)
    n_bytes = sum(c.n_frames for c in clips) * args.dim * 2
    raw = work / "raw.bin"
    np.random.default_rng(0).standard_normal(n_bytes // 2, dtype=np.float32).astype(np.float16).tofile(raw)

    layouts = {
        "packed 4 MiB chunks (default)": lambda p: build_packed(p, clips, args.dim, 4 * 2**20),
        "same, load_all with CRC-32 check": lambda p: build_packed(p, clips, args.dim, 4 * 2**20),
        "packed 256 KiB chunks": lambda p: build_packed(p, clips, args.dim, 256 * 2**10),
        "one array per clip": lambda p: build_per_clip_arrays(p, clips, args.dim),
    }
    loaders = {
        "same, load_all with CRC-32 check": lambda p: open_cache(p).load_all(dtype=np.float16),
        "one array per clip": lambda p: load_per_clip_arrays(p, len(clips)),
    }
    rows = []
    for name, build in layouts.items():
        path = work / (name.split()[0] + name.split()[1].strip(",") + ".zarr")
        shutil.rmtree(path, ignore_errors=True)
        t0 = time.perf_counter()
        build(path)
        build_s = time.perf_counter() - t0
        # the layouts compare reads; the CRC check's cost is its own row
        load = loaders.get(name, lambda p: open_cache(p).load_all(dtype=np.float16, verify=False))
        # alternate raw and cache reads so both see the same machine state
        t_raw, t_cache = [], []
        for _ in range(3):
            t_raw.append(best_of(lambda: np.fromfile(raw, dtype=np.float16), args.repeats))
            t_cache.append(best_of(lambda: load(path), args.repeats))
        raw_s, cache_s = min(t_raw), min(t_cache)
        rows.append({"layout": name, "bytes": n_bytes, "raw_s": raw_s, "cache_s": cache_s,
                     "raw_MBps": n_bytes / raw_s / 1e6, "cache_MBps": n_bytes / cache_s / 1e6,
                     "ratio": raw_s / cache_s, "build_s": build_s})
    print(f"SMIC-sized cache: {args.clips} clips, {sum(c.n_frames for c in clips)} frames, "
          f"D={args.dim}, float16, {n_bytes / 1e6:.1f} MB")
    print(f"{'layout':32s} {'raw MB/s':>10s} {'cache MB/s':>11s} {'ratio':>7s}")
    for r in rows:
        print(f"{r['layout']:32s} {r['raw_MBps']:10.0f} {r['cache_MBps']:11.0f} {r['ratio']:7.2f}")
    check_s = time_checksum_check(work / "packed4.zarr", args.repeats)
    out = write_result("cache_io", {"clips": args.clips, "dim": args.dim, "rows": rows,
                                    "floor": 0.5, "default_ratio": rows[0]["ratio"],
                                    "verified_ratio": rows[1]["ratio"], "checksum_check_s": check_s,
                                    "checksum_share_of_load": check_s / rows[1]["cache_s"]})
    print(f"ratio (default layout) = {rows[0]['ratio']:.2f} (floor 0.5); wrote {out}")
    print(f"CRC-32 check inside load_all: {check_s * 1e3:.1f} ms of {rows[1]['cache_s'] * 1e3:.1f} ms "
          f"({100 * check_s / rows[1]['cache_s']:.0f} % of a default load_all)")
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
