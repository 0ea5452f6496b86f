"""Per-keypoint accuracy of a 2D model on held-out synthetic frames (all 14 keypoints).

    tools/ros-env.sh python tools/eval_2d_synth.py [--model YAML] [--count 300] [--seed 999]

Real labels cover 4 of the 14 keypoints; this scores every one on full 640x480 frames of
the synthetic engine drawn from a seed training never used (training draws from seed 0
with its own streams). Only keypoints the renderer marks visible are scored. Prints JSON.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from mouse_lifter_ros.core.body import KEYPOINTS
from mouse_lifter_ros.core.keypoints import KeypointModel
from mouse_lifter_ros.core.synth.dataset import SynthConfig, render_item


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--seed", type=int, default=999)
    ns = ap.parse_args()
    model = KeypointModel(ns.model, threads=2)
    cfg = SynthConfig(count=ns.count, seed=ns.seed, colour=None)
    errs: list[list[float]] = [[] for _ in KEYPOINTS]
    found = 0
    for i in range(ns.count):
        s = next(render_item(cfg, i).frames)[0]
        kp = model(s.image)
        found += bool(kp.detection and kp.detection.found)
        for k in range(len(KEYPOINTS)):
            if s.visible[k]:
                e = float(np.linalg.norm(kp.xy[k] - s.keypoints_2d[k]))
                errs[k].append(e if np.isfinite(e) else np.inf)
    out = {"model": model.spec.name, "frames": ns.count, "seed": ns.seed,
           "detected": found, "keypoints": {}}
    for name, e in zip(KEYPOINTS, errs, strict=True):
        a = np.array(e)
        out["keypoints"][name] = {
            "n": int(a.size), "median_px": round(float(np.median(a)), 2),
            "pck@5px": round(100 * float((a <= 5).mean()), 1),
            "pck@10px": round(100 * float((a <= 10).mean()), 1)}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
