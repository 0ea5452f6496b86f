"""``mouse-lifter demo``: make the demo clip, replay it through the ROS graph, and say
whether every link of the graph carried it."""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from mouse_lifter_ros.cli.arguments import Subparsers
from mouse_lifter_ros.cli.run import run_graph
from mouse_lifter_ros.core.errors import MouseLifterError

_GRAPH = (
    "   bag_source -> camera/image_raw -> keypoint (2D model) -> keypoints\n"
    "                                  -> depth (depth model) -> depth/image\n"
    "   keypoints + depth/image -> lifter (body-model fit) -> pose (Pose3D, metres); "
    "arena {arena}\n   pose -> behavior -> behavior (label per frame)\n"
    "   behavior -> stimulus (its default rule: rearing p > 0.6 for 3 frames) -> trigger\n"
    "   keypoints + pose + behavior -> recorder -> files\n"
    "   the monitor reports images, keypoints, poses, behaviour and each trigger")


def register(sub: Subparsers) -> None:
    p = sub.add_parser("demo", help="make the demo clip and replay it through the ROS graph")
    p.add_argument("--workdir", default="build/demo")
    p.add_argument("--seconds", type=float, default=None,
                   help="scale the clip's bouts to last this long (default: 5.8 s)")
    p.set_defaults(func=run)


def run(ns: argparse.Namespace) -> int:
    from mouse_lifter_ros.core.democlip import truth_bouts, write_demo_clip
    from mouse_lifter_ros.core.recorder import describe_recording
    from mouse_lifter_ros.core.stats import MIN_FLOW_FRACTION

    work = Path(ns.workdir)
    print(f"== 1/3 making the demo clip in {work}")
    start = time.monotonic()
    clip = write_demo_clip(work, seconds=ns.seconds)
    print(f"   rendered by the synthetic data engine: a mouse walks, rears, walks, grooms; "
          f"{clip.frames} frames, 640x480 mono8, {clip.fps:g} fps "
          f"({time.monotonic() - start:.1f} s)\n   {clip.video}, {clip.bag}, {clip.truth}")
    print("   ground truth: " + ", ".join(f"{c} frames {a}-{b} ({t0:.2f}-{t1:.2f} s)"
                                          for c, a, b, t0, t1 in truth_bouts(clip.truth)))
    print("== 2/3 replaying it through the ROS graph 'replay' (real node processes over DDS):\n"
          + _GRAPH.format(arena=clip.arena.name))
    records = work / "recordings"
    for old in records.glob("demo*"):  # the recorder refuses to overwrite a recording
        if old.is_dir():  # the rosbag2 folder
            shutil.rmtree(old)
        else:
            old.unlink()
    # The bag waits for every node of the graph to subscribe (config/graph.yaml), so that
    # every frame is seen.
    summary = work / "monitor_summary.json"
    summary.unlink(missing_ok=True)
    code = run_graph("replay", {"bag": str(clip.bag), "arena": str(clip.arena),
                                "record": "true", "record_dir": str(records),
                                "record_prefix": "demo", "record_bag": "true",
                                "monitor_summary": str(summary)},
                     namespace="demo", config=None)
    print(f"== 3/3 recorded by the recorder node ({time.monotonic() - start:.1f} s in all)")
    for line in describe_recording(records, "demo"):
        print(f"   {line}")
    problems = flow_problems(clip.frames, summary, records)
    if problems:
        print("== the graph did NOT carry the clip through:\n   " + "\n   ".join(problems))
        return code or 1
    print(f"== every link carried at least {MIN_FLOW_FRACTION:.0%} of the {clip.frames} "
          "frames, and the stimulus fired")
    return code


def flow_problems(frames: int, summary: Path, records: Path) -> list[str]:
    """What the demo's graph failed to carry: links below MIN_FLOW_FRACTION of the clip's
    ``frames`` (the monitor's totals in ``summary``, the recorder's rows in ``records``)
    and a stimulus that never fired."""
    from mouse_lifter_ros.core import stats
    from mouse_lifter_ros.core.pose_files import read_dlc_csv

    try:
        totals = json.loads(summary.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return [f"the monitor's totals {summary} cannot be read ({exc})"]
    topics = totals["messages"]
    carried = {f"{topic} at the monitor": int(topics.get(f"/demo/{topic}", 0))
               for topic in ("camera/image_raw", "keypoints", "pose", "behavior")}
    try:
        carried["rows written by the recorder"] = len(read_dlc_csv(records / "demo.csv"))
    except (OSError, ValueError, MouseLifterError) as exc:
        return [*stats.flow_problems(frames, carried),
                f"the recording cannot be read ({exc})"]
    problems = stats.flow_problems(frames, carried)
    if totals["triggers"]["on"] < 1:
        problems.append("trigger at the monitor: the stimulus never turned on (the clip's "
                        "mouse rears)")
    return problems
