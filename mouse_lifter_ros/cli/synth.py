"""``mouse-lifter synth``: render a versioned synthetic dataset."""

from __future__ import annotations

import argparse
import time

from mouse_lifter_ros.cli.arguments import Subparsers
from mouse_lifter_ros.core.errors import MouseLifterError
from mouse_lifter_ros.core.views import VIEWS


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "synth", help="render a synthetic dataset: images, depth, masks, keypoints, cameras",
        description="Render a versioned synthetic dataset (format: mouse_lifter_ros/core/synth/"
        "dataset.py). The same arguments give the same bytes.")
    p.add_argument("--out", required=True, help="output folder (replaced if it holds a dataset)")
    p.add_argument("--count", type=int, required=True,
                   help="number of stills, or of sequences with --sequence")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--view", choices=VIEWS, default="top")
    p.add_argument("--sequence", type=float, default=0.0, metavar="SECONDS",
                   help="render sequences this long instead of stills")
    p.add_argument("--fps", type=float, default=30.0, help="frame rate of sequences")
    p.add_argument("--size", default="640x480", help="camera image size WIDTHxHEIGHT")
    p.add_argument("--crop", type=int, default=0,
                   help="render only a square window this big around the mouse (0: full image)")
    p.add_argument("--colour", choices=("grey", "colour", "mixed"), default="grey")
    p.add_argument("--no-objects", action="store_true",
                   help="no distractor objects (cups, shelters, tubes, cables...) in the "
                   "scenes; every other draw is the same")
    p.add_argument("--workers", type=int, default=None, help="processes (default: CPU cores)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(ns: argparse.Namespace) -> int:
    from mouse_lifter_ros.core.synth.dataset import SynthConfig, write_dataset

    width, sep, height = ns.size.partition("x")
    if not (sep and width.isdigit() and height.isdigit()):
        raise MouseLifterError(f"--size {ns.size!r}: write it WIDTHxHEIGHT, e.g. 640x480")
    colour = {"grey": False, "colour": True, "mixed": None}[ns.colour]
    config = SynthConfig(count=ns.count, seed=ns.seed, view=ns.view, width=int(width),
                         height=int(height), crop=ns.crop, sequence_s=ns.sequence, fps=ns.fps,
                         colour=colour, objects=not ns.no_objects)
    start = time.monotonic()
    out = write_dataset(ns.out, config, workers=ns.workers, progress=not ns.quiet)
    n = config.count * config.frames_per_item
    elapsed = time.monotonic() - start
    print(f"wrote {n} samples to {out} in {elapsed:.1f} s ({n / elapsed:.1f} samples/s)")
    return 0
