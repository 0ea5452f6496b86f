"""The ``mouse-lifter`` command line: one module per command, each with ``register``
(its parser) and ``run`` (what it does).

    mouse-lifter synth --out DIR --count N      render a synthetic dataset (see synth --help)
    mouse-lifter demo-clip --out DIR            write the demo clip (mp4 + rosbag2)
    mouse-lifter bag-info BAG                   list a rosbag2's topics
    mouse-lifter run GRAPH [name:=value ...]    start a graph of config/graph.yaml (needs rclpy)
    mouse-lifter demo [--workdir DIR]           demo clip -> replay graph -> what flowed
    mouse-lifter eval-behavior [--seed S]       behaviour F1, 3D vs 2D-only, held-out synthetic
    mouse-lifter train-behavior --out PATH      train the behaviour classifier (synthetic data)
    mouse-lifter eval-2d --labels CSV           2D keypoint error and PCK on DLC-labelled frames
    mouse-lifter compare-2d OURS THEIRS --map M distance to another tool's predictions of a video
    mouse-lifter train-2d --out DIR             train the 2D detector and keypoint network
    mouse-lifter train-verifier --out DIR       teach the detector a mouse from a cup
    mouse-lifter extract-frames VIDEO... --out PROJECT   frames to label, with the model's guesses
    mouse-lifter finetune --labels PROJECT --out DIR     fit the 2D model to a lab's labels
    mouse-lifter label-video VIDEO --out MP4    draw the 2D model's skeleton on a video
    mouse-lifter analyze VIDEO... --out DIR     offline analysis: poses, table, video, plots
    mouse-lifter train-depth --out DIR          train the depth network (synthetic data)
    mouse-lifter eval-3d --synthetic|--dannce F 3D error of the whole core, and a 2D baseline
    mouse-lifter calibrate --intrinsics CAM.yaml --out ARENA.yaml ...   camera pose over the floor
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mouse_lifter_ros.cli import (
    analyze,
    bag_info,
    calibrate,
    compare_2d,
    demo,
    demo_clip,
    eval_2d,
    eval_3d,
    eval_behavior,
    extract_frames,
    finetune,
    label_video,
    run,
    synth,
    train_2d,
    train_behavior,
    train_depth,
    train_verifier,
)
from mouse_lifter_ros.core.errors import MouseLifterError

#: The command modules, in ``--help`` order.
COMMANDS = (demo_clip, synth, bag_info, run, demo, eval_behavior, train_behavior, eval_2d,
            compare_2d, train_2d, train_verifier, extract_frames, finetune, train_depth, eval_3d,
            label_video, analyze, calibrate)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = argparse.ArgumentParser(prog="mouse-lifter", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(sub)
    ns, extra = parser.parse_known_args(argv)
    if ns.command == "run":  # launch arguments may follow the options too
        ns.arguments += [a for a in extra if ":=" in a]
        extra = [a for a in extra if ":=" not in a]
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return int(ns.func(ns))
    except MouseLifterError as exc:
        print(f"mouse-lifter: error: {exc}", file=sys.stderr)
        return 2
