"""How the estimated apex agrees with the annotated one, on synthetic clips with known truth.

For every micro clip of seeded synthetic datasets (``synth.json`` holds each clip's true
onset and apex) the apex is estimated as ``extract --features flow`` does for SMIC (largest
mean absolute grey difference from frame 0, :func:`mer_cache.flow.estimate_apex`) and
compared with the truth, with the generator's nuisances (head motion, blinks, flicker,
sensor noise) on, as in the demo data, and off. On the CASME II layout the apex the
loader reads from the xlsx is compared with the truth as well.

    python benchmarks/flow_apex_agreement.py --subjects 8 --clips-per-class 4
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_result  # noqa: E402

from mer_cache.catalogue import load_catalogue  # noqa: E402
from mer_cache.flow import FlowConfig, estimate_apex  # noqa: E402
from mer_cache.flow.extract import read_all_greys  # noqa: E402
from mer_cache.synth.generator import SynthConfig, generate_dataset  # noqa: E402


def agreement(root: Path, layout: str) -> dict:
    truth = {c["clip_id"]: c for c in json.loads((root / "synth.json").read_text())["clips"]}
    size = FlowConfig().frame_size
    err, loader_err = [], []
    for clip in load_catalogue(layout, root):
        t = truth[clip.clip_id]
        if t["apex"] is None:
            continue
        err.append(estimate_apex(read_all_greys(clip, size), 0) - t["apex"])
        if clip.apex is not None:
            loader_err.append(clip.apex - t["apex"])
    e = np.abs(np.array(err))
    out = {"clips": len(e), "median_abs_frames": float(np.median(e)), "mean_abs_frames": float(e.mean()),
           "max_abs_frames": int(e.max()), "within_1": float(np.mean(e <= 1)),
           "within_2": float(np.mean(e <= 2)), "within_5": float(np.mean(e <= 5))}
    if loader_err:
        out["annotated_apex_equals_truth"] = bool(np.all(np.array(loader_err) == 0))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subjects", type=int, default=8)
    ap.add_argument("--clips-per-class", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="apexbench-"))
    rows = {}
    try:
        for layout, nuisances in (("smic", True), ("smic", False), ("casme2", True)):
            root = tmp / f"{layout}-{nuisances}"
            generate_dataset(root, config=SynthConfig(subjects=args.subjects, layout=layout,
                                                      clips_per_class=args.clips_per_class,
                                                      seed=args.seed, nuisances=nuisances))
            rows[f"{layout}, nuisances {'on' if nuisances else 'off'}"] = agreement(root, layout)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    path = write_result("flow_apex_agreement", {"rule": FlowConfig().apex_rule, "rows": rows})
    for name, r in rows.items():
        print(f"{name:28s} {r['clips']:4d} clips  |err| median {r['median_abs_frames']:.1f}, "
              f"mean {r['mean_abs_frames']:.1f}, max {r['max_abs_frames']}; within 1 / 2 / 5 "
              f"frames {r['within_1']:.0%} / {r['within_2']:.0%} / {r['within_5']:.0%}"
              + (f"; xlsx apex = truth: {r['annotated_apex_equals_truth']}"
                 if "annotated_apex_equals_truth" in r else ""))
    print(f"-> {path}")


if __name__ == "__main__":
    main()
