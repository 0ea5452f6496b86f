"""``mouse-lifter label-video``: draw the 2D model's skeleton and trails on a video."""

from __future__ import annotations

import argparse
import json

from mouse_lifter_ros.cli.arguments import Subparsers, add_keypoint_model, keypoint_model
from mouse_lifter_ros.core.keypoints import P_CUTOFF


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "label-video", help="run the 2D model over a video and draw skeleton and trails",
        description="Write a labelled copy of VIDEO (skeleton, keypoints, trails) and, with "
        "--dlc, the predictions as DeepLabCut .h5/.csv.")
    p.add_argument("video")
    p.add_argument("--out", required=True, help="labelled video to write (.mp4)")
    add_keypoint_model(p)
    p.add_argument("--p-cutoff", type=float, default=P_CUTOFF,
                   help=f"keypoints below this likelihood are not drawn (default {P_CUTOFF})")
    p.add_argument("--trail", type=int, default=15, help="frames of trail per keypoint")
    p.add_argument("--max-frames", type=int, default=None)
    p.add_argument("--dlc", default=None, help="also write PATH.h5 and PATH.csv")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def run(ns: argparse.Namespace) -> int:
    from mouse_lifter_ros.core.overlay import write_labelled_video

    model = keypoint_model(ns)
    stats = write_labelled_video(ns.video, ns.out, model, p_cutoff=ns.p_cutoff,
                                 trail=ns.trail, max_frames=ns.max_frames,
                                 dlc_stem=ns.dlc, progress=not ns.quiet)
    print(json.dumps(stats, indent=2))
    return 0
