"""Per-keypoint accuracy of a 2D model on held-out synthetic frames (all 14 keypoints).

    tools/ros-env.sh python tools/eval_2d_synth.py [--model YAML] [--count 300] [--seed 999]
        [--kinds distractor,infrared,bedding,small_mouse] [--kind-count 100]
        [--empty-count 80]

Real labels cover 4 of the 14 keypoints; this scores every one on full 640x480 frames of
the synthetic engine drawn from a seed training never used (training draws from seed 0
with its own streams). Only keypoints the renderer marks visible are scored. Then the same
per held-out scene kind (:func:`~mouse_lifter_ros.core.synth.heldout.held_out_frames`: a
dark object near the mouse, infrared, bedding, a small mouse in a 1500-2048 px frame),
with how often the detection was on the mouse (``found``), elsewhere (``wrong_detection``:
its crop holds fewer than half the visible keypoints, as eval-2d counts it) or absent
(``missed``). Then ``--empty-count`` arenas without a mouse (640x480 windows of
1600x1200 frames, away from the mouse) and how many the model took for one. Prints JSON
(a median is null where half the points or more were not found; ``found_%``: the
visible points given a confidence of ``P_CUTOFF`` (0.5) or more, and their median error).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mouse_lifter_ros.core.body import KEYPOINTS
from mouse_lifter_ros.core.eval2d import OUTCOMES, detection_outcome
from mouse_lifter_ros.core.keypoints import P_CUTOFF, KeypointModel
from mouse_lifter_ros.core.synth.dataset import SynthConfig, render_item
from mouse_lifter_ros.core.synth.heldout import HELD_OUT_KINDS, held_out_frames


def score(model: KeypointModel,
          frames: Iterable[tuple[NDArray[np.uint8], NDArray[Any], NDArray[np.bool_]]]
          ) -> dict[str, Any]:
    """Outcome counts and per-keypoint figures over (image, keypoints (14, 2) px,
    visible (14,)) frames."""
    errs: list[list[float]] = [[] for _ in KEYPOINTS]
    sure: list[list[bool]] = [[] for _ in KEYPOINTS]
    counts = dict.fromkeys(OUTCOMES, 0)
    n = 0
    for image, truth, visible in frames:
        n += 1
        kp = model(image)
        shown = np.where(visible[:, None], truth, np.nan)
        outcome = detection_outcome(kp, shown)
        counts[outcome] += 1
        for k in range(len(KEYPOINTS)):
            if visible[k]:
                e = float(np.linalg.norm(kp.xy[k] - truth[k])) if outcome == "found" \
                    else np.inf
                errs[k].append(e if np.isfinite(e) else np.inf)
                sure[k].append(outcome == "found" and kp.confidence[k] >= P_CUTOFF)
    out: dict[str, Any] = {"frames": n, **counts, "keypoints": {}}
    for name, e, ok in zip(KEYPOINTS, errs, sure, strict=True):
        a = np.array(e)
        median = float(np.median(a)) if a.size else np.inf
        found = a[np.array(ok, bool)]
        out["keypoints"][name] = {  # median null: none, or half of them or more not found
            "n": int(a.size), "median_px": round(median, 2) if np.isfinite(median) else None,
            "found_%": round(100 * found.size / a.size, 1) if a.size else None,
            "median_px_where_found": round(float(np.median(found)), 2) if found.size else None,
            "pck@5px": round(100 * float((a <= 5).mean()), 1) if a.size else None,
            "pck@10px": round(100 * float((a <= 10).mean()), 1) if a.size else None}
    return out


def empty_windows(seed: int, count: int) -> list[NDArray[np.uint8]]:
    """``count`` 640x480 windows of 1600x1200 synthetic frames (``seed``) at a corner
    farther than 80 px from every keypoint of the mouse: arenas with no mouse."""
    cfg = SynthConfig(count=10 * count, seed=seed, colour=None, width=1600, height=1200)
    out: list[NDArray[np.uint8]] = []
    for i in range(cfg.count):
        if len(out) >= count:
            break
        s = next(render_item(cfg, i).frames)[0]
        x, y = s.keypoints_2d[:, 0], s.keypoints_2d[:, 1]
        for x0, y0 in ((0, 0), (960, 0), (0, 720), (960, 720)):
            near = (x > x0 - 80) & (x < x0 + 720) & (y > y0 - 80) & (y < y0 + 560)
            if not near.any():
                out.append(s.image[y0:y0 + 480, x0:x0 + 640])
                break
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--seed", type=int, default=999)
    ap.add_argument("--kinds", default=",".join(HELD_OUT_KINDS),
                    help="held-out scene kinds, comma-separated ('' for none)")
    ap.add_argument("--kind-count", type=int, default=100)
    ap.add_argument("--empty-count", type=int, default=80)
    ns = ap.parse_args()
    model = KeypointModel(ns.model, threads=2)
    cfg = SynthConfig(count=ns.count, seed=ns.seed, colour=None)

    def mixed() -> Iterable[tuple[NDArray[np.uint8], NDArray[Any], NDArray[np.bool_]]]:
        for i in range(ns.count):
            s = next(render_item(cfg, i).frames)[0]
            yield s.image, s.keypoints_2d, s.visible

    out = {"model": model.spec.name, "seed": ns.seed, **score(model, mixed()), "kinds": {}}
    for kind in filter(None, ns.kinds.split(",")):
        frames = held_out_frames(kind, ns.seed, ns.kind_count)
        out["kinds"][kind] = score(model, ((f.image, f.keypoints, f.visible) for f in frames))
    empty = empty_windows(ns.seed, ns.empty_count)
    out["empty"] = {"windows": len(empty),
                    "reported_a_mouse": sum(bool(np.isfinite(model(w).xy).any()) for w in empty)}
    print(json.dumps(out, indent=1, allow_nan=False))


if __name__ == "__main__":
    main()
