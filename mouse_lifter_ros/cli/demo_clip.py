"""``mouse-lifter demo-clip``: write the demo clip (mp4 + rosbag2 + ground truth)."""

from __future__ import annotations

import argparse

from mouse_lifter_ros.cli.arguments import Subparsers


def register(sub: Subparsers) -> None:
    p = sub.add_parser("demo-clip", help="write the demo clip as demo.mp4 and demo_bag/")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--seconds", type=float, default=None,
                   help="scale the clip's bouts to last this long (default: 5.8 s)")
    p.add_argument("--fps", type=float, default=30.0)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def run(ns: argparse.Namespace) -> int:
    from mouse_lifter_ros.core.democlip import write_demo_clip

    clip = write_demo_clip(ns.out, seconds=ns.seconds, fps=ns.fps, seed=ns.seed)
    print(f"wrote {clip.frames} frames at {clip.fps:g} fps: {clip.video} and {clip.bag}")
    return 0
