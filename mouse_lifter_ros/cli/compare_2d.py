"""``mouse-lifter compare-2d``: how far two pose files of one video agree."""

from __future__ import annotations

import argparse

from mouse_lifter_ros.cli.arguments import Subparsers, add_json_output, report


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "compare-2d", help="distance per body part between two pose files of one video",
        description="Pair the frames of two DeepLabCut pose files (.h5 or .csv) of the same "
        "video, e.g. analyze's output and another tool's predictions, and print per mapped "
        "body part the median, mean and 90th percentile distance in pixels over the frames "
        "where the other file's likelihood reaches --min-likelihood, and how many of those "
        "frames the first file has the point in. Details: mouse_lifter_ros/core/agreement.py.")
    p.add_argument("ours", help="our pose file (mouse-lifter analyze's STEM.h5 or STEM.csv)")
    p.add_argument("theirs", help="the other tool's pose file of the same video")
    p.add_argument("--map", required=True,
                   help="their_part=our_part,... or the name of a keypoint set of "
                   "core/keypoint_maps.py (e.g. vame_bottom6)")
    p.add_argument("--min-likelihood", type=float, default=0.9,
                   help="only frames where their likelihood is at least this (0..1; "
                   "default 0.9)")
    add_json_output(p)
    p.set_defaults(func=run)


def _read(path: str) -> object:
    from mouse_lifter_ros.core.pose_files import read_dlc_csv, read_dlc_h5

    return read_dlc_h5(path) if path.endswith((".h5", ".hdf5")) else read_dlc_csv(path)


def run(ns: argparse.Namespace) -> int:
    from mouse_lifter_ros.core.agreement import agreement, format_agreement
    from mouse_lifter_ros.core.keypoint_maps import KEYPOINT_MAPS, keypoint_map, parse_map

    mapping = (keypoint_map(ns.map) if ns.map in KEYPOINT_MAPS
               else parse_map(ns.map, targets=None))
    result = agreement(_read(ns.ours), _read(ns.theirs), mapping,  # type: ignore[arg-type]
                       min_likelihood=ns.min_likelihood)
    report(ns, result, lambda: format_agreement(result))
    return 0
