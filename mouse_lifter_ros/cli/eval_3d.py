"""``mouse-lifter eval-3d``: 3D error of the whole core (synthetic or DANNCE labels)."""

from __future__ import annotations

import argparse
import json

from mouse_lifter_ros.cli.arguments import Subparsers, add_device
from mouse_lifter_ros.core.eval3d import TRUE_INPUTS
from mouse_lifter_ros.core.views import VIEWS


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "eval-3d", help="3D error of the whole core on held-out synthetic sequences or on "
        "real DANNCE 3D labels",
        description="--synthetic: render held-out sequences (new mice, scenes, cameras and "
        "behaviour), run images -> 2D keypoints + depth -> lifter, and print JSON: mean "
        "per-joint error (mm) overall and per keypoint, height errors, and the same for a "
        "2D-only baseline that puts every keypoint on the floor; then the mean and nose height "
        "error per sequence and per scene kind (floor, light, coat, colour). --dannce "
        "FILE.mat: project "
        "DANNCE's hand-labelled 3D poses into a virtual top camera, add the 2D model's "
        "noise, lift and print the same errors on the keypoints both sets have.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--synthetic", action="store_true", help="held-out synthetic sequences")
    src.add_argument("--dannce", default=None, metavar="FILE.mat",
                     help="DANNCE label3d_dannce.mat (e.g. ../shared/data/dannce-3d/...)")
    p.add_argument("--seed", type=int, default=7, help="draws of the sequences or the noise")
    p.add_argument("--count", type=int, default=10, help="--synthetic: sequences")
    p.add_argument("--seconds", type=float, default=2.0, help="--synthetic: seconds each")
    p.add_argument("--model", default=None, help="2D model YAML (default: shipped)")
    p.add_argument("--depth-model", default=None, help="depth model YAML (default: shipped)")
    add_device(p)
    p.add_argument("--view", choices=VIEWS, default="top",
                   help="--synthetic: the camera above the arena (top) or under its clear "
                   "floor (bottom); the shipped models of that view")
    p.add_argument("--bedding", type=float, default=0.0, metavar="METRES",
                   help="--synthetic: the mouse stands on bedding this deep over the floor "
                   "the arena calibration was made on, which gives the depth (calibrate "
                   "--bedding) unless --bedding-undeclared")
    known = p.add_mutually_exclusive_group()
    known.add_argument("--bedding-undeclared", action="store_true",
                       help="--synthetic: the calibration knows only the floor under the "
                       "bedding")
    known.add_argument("--bedding-measured", action="store_true",
                       help="--synthetic: the calibration knows only the floor, and the "
                       "bedding's depth is measured where it meets the walls in each "
                       "sequence's first image (as calibrate --walls)")
    p.add_argument("--true", action="append", default=[], choices=TRUE_INPUTS,
                   dest="true_inputs", metavar="STAGE",
                   help="--synthetic: give the lifter the renderer's truth in place of "
                   "this stage's answer, to see which stage leaves which error: "
                   "keypoints (all 14 true pixels, hidden ones too) or depth (the true "
                   "depth of each keypoint the depth map reads); may be given twice")
    p.add_argument("--depth-noise-mm", type=float, default=3.0,
                   help="--dannce: depth reading noise (sd, mm)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def run(ns: argparse.Namespace) -> int:
    from mouse_lifter_ros.core import eval3d

    if ns.dannce:
        result = eval3d.evaluate_dannce(ns.dannce, seed=ns.seed,
                                        depth_noise_m=ns.depth_noise_mm / 1000.0)
    else:
        result = eval3d.evaluate_synthetic(seed=ns.seed, count=ns.count, seconds=ns.seconds,
                                           keypoint_model=ns.model, depth_model=ns.depth_model,
                                           device=ns.device, progress=not ns.quiet,
                                           bedding=ns.bedding, view=ns.view,
                                           bedding_declared=not ns.bedding_undeclared,
                                           measure_bedding=ns.bedding_measured,
                                           true_inputs=ns.true_inputs)
    print(json.dumps(result, indent=2, allow_nan=False))  # JSON has no NaN: null instead
    return 0
