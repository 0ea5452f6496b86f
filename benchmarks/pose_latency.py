"""Frame-to-Pose3D latency and throughput through the ROS graph, on this machine.

    tools/ros-env.sh python benchmarks/pose_latency.py [--seconds 10] [--fast-rate 20]
        [--repeat 3]

Renders the demo clip (640x480 mono8, 30 fps, ``--seconds`` long), then replays it
twice through the ``replay`` graph of ``config/graph.yaml`` in real node processes
(bag_source -> keypoint, depth -> lifter; monitor, behaviour and stimulus off;
``benchmarks/trigger_latency.py`` times the whole loop):

1. at the clip's own 30 fps, restamped with the publish time like a live camera: the
   latency of each ``Pose3D`` is its arrival here minus its source stamp (the moment the
   bag source offered the frame), so it covers DDS transport of the image, both
   networks, pairing, the body-model fit and the pose's own transport;
2. at ``--fast-rate`` times the clip's speed (default 3, 6 and 20), looping over the
   clip for ``--seconds`` of wall time, faster than the nodes can take it, as a fast
   camera would offer frames (``when_busy: skip``): the
   source's flow control sends a frame only when the keypoint and depth stages have
   given the previous one back and skips the rest (counted), so both stages work on the
   same frames and the throughput should stay at the best the machine can compute.

Prints p50/p90/p99/max latency, the rate and drop figures of each run, the source's flow
counts and the nodes' own totals (inference and lift means), then a table of every row
with its poses per second against the best row's. Wall-clock figures depend on what else
runs on the machine; the load average at the start is printed with them. On a shared
machine whose speed drifts from one minute to the next, ``--repeat N`` runs every row N
times, the rows in turn, and the table gives each row's best poses per second (what the
graph gets out of the machine when nothing else takes it) beside its worst p99 and the
range of both over the repeats.
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import rclpy
from mouse_lifter_ros.msg import Pose3D
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import Image

from mouse_lifter_ros.core.democlip import write_demo_clip
from mouse_lifter_ros.nodes._ros import LATEST_FRAME_QOS, RELIABLE_QOS, stamp_ns
from mouse_lifter_ros.runner import GraphRun

NS = "bench"


def _params(path: Path, rate: float, subscribers: int, loop: bool) -> Path:
    import yaml

    from mouse_lifter_ros.runner import package_share

    doc = yaml.safe_load((package_share() / "config" / "params.yaml").read_text())
    doc["/**/bag_source"]["ros__parameters"].update(
        {"rate": rate, "restamp": True, "wait_for_subscribers": subscribers,
         "when_busy": "skip", "loop": loop})
    path.write_text(yaml.safe_dump(doc))
    return path


def replay(clip_bag: Path, arena: Path, rate: float, work: Path, seconds: float
           ) -> tuple[list[tuple[int, int]], dict[str, str], float]:
    """Replay at ``rate`` (1: the clip once; faster: the clip in a loop for ``seconds``
    of wall time from the first pose, so that every row measures as long a steady
    state); (source stamp ns, arrival ns) per pose, node logs, seconds."""
    got: list[tuple[int, int]] = []
    context = rclpy.context.Context()
    rclpy.init(context=context)
    node = Node("pose_latency_bench", context=context)
    node.create_subscription(Pose3D, f"/{NS}/pose",
                             lambda m: got.append((stamp_ns(m.source_stamp), time.time_ns())),
                             RELIABLE_QOS)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            executor.spin_once(timeout_sec=0.05)

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    # the bag starts once the keypoint and depth nodes and (last) this script subscribe
    looped = rate != 1.0
    params = _params(work / f"p{rate:g}.yaml", rate, 3, looped)
    start = time.monotonic()
    with GraphRun("replay", arguments={"bag": str(clip_bag), "arena": str(arena),
                                       "monitor": "false", "behavior": "false",
                                       "stimulus": "false"},
                  namespace=NS, params_file=params) as run:
        # the lifter must be up (its publisher matched to this reader) before the bag
        # starts: this script's image subscription is the bag's last awaited subscriber
        while node.count_publishers(f"/{NS}/pose") < 1 and time.monotonic() - start < 60:
            time.sleep(0.05)
        time.sleep(0.5)
        node.create_subscription(Image, f"/{NS}/camera/image_raw", lambda _: None,
                                 LATEST_FRAME_QOS)
        if looped:
            while not got and time.monotonic() - start < 120:
                time.sleep(0.05)
            time.sleep(seconds)
        else:
            run.wait_any(timeout=600)
        time.sleep(1.0)  # the last frames' poses
        elapsed = time.monotonic() - start
        run.stop()
        logs = {n: run.output(n) for n in ("bag_source", "keypoint", "depth", "lifter")}
    stop.set()
    thread.join(timeout=2)
    executor.shutdown()
    node.destroy_node()
    rclpy.shutdown(context=context)
    return got, logs, elapsed


def _total(log: str, pattern: str) -> str:
    m = re.search(pattern, log)
    return m.group(1) if m else "?"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="clip length (s)")
    ap.add_argument("--fast-rate", type=float, nargs="+", default=[3.0, 6.0, 20.0],
                    help="speed factors of the faster-than-real-time runs")
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs of every row, the rows in turn (table: best poses/s, worst p99)")
    ns = ap.parse_args()
    if ns.repeat < 1:
        ap.error(f"--repeat {ns.repeat}: must be >= 1")
    load = os.getloadavg()
    print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
          f"{os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        clip = write_demo_clip(work / "clip", seconds=ns.seconds)
        print(f"demo clip: {clip.frames} frames, 640x480 mono8, {clip.fps:g} fps")
        runs = [("at 30 fps", 1.0)] + [(f"offered x{r:g} ({30 * r:g} fps)", r)
                                       for r in ns.fast_rate]
        table: dict[str, list[tuple[int, float, float]]] = {label: [] for label, _ in runs}
        for label, rate in [run for _ in range(ns.repeat) for run in runs]:
            got, logs, _ = replay(clip.bag, clip.arena, rate, work, ns.seconds)
            offered = _total(logs["bag_source"], r"flow: (\d+) frames offered")
            frames = int(offered) if offered.isdigit() else clip.frames
            lat = np.array([(arr - src) / 1e6 for src, arr in got])
            src = np.array([s for s, _ in got], dtype=np.int64)
            span = (src.max() - src.min()) / 1e9 if len(src) > 1 else float("nan")
            print(f"\n== replay {label}: {len(got)}/{frames} frames offered gave a Pose3D "
                  f"({len(got) / frames:.1%})")
            if len(lat):
                p50, p90, p99 = np.percentile(lat, [50, 90, 99])
                rate_out = (len(got) - 1) / span
                print(f"   frame-to-Pose3D latency: p50 {p50:.1f} ms, p90 {p90:.1f} ms, "
                      f"p99 {p99:.1f} ms, max {lat.max():.1f} ms")
                print(f"   poses per second of source time: {rate_out:.1f}")
                table[label].append((len(got), rate_out, float(p99)))
            flow = _total(logs["bag_source"], r"flow: ([^\n]*)")
            print(f"   bag_source flow: {flow}")
            infer = r"inference mean ([\d.]+ ms)"
            kp_ms, depth_ms = _total(logs["keypoint"], infer), _total(logs["depth"], infer)
            lift_ms = _total(logs["lifter"], r"lift_mean_ms ([\d.]+)")
            drops = [_total(logs["lifter"], rf"dropped_{k} (\d+)") for k in ("keypoints", "depth")]
            print(f"   keypoint node: inference mean {kp_ms}; depth node: {depth_ms}; lifter: "
                  f"lift mean {lift_ms} ms, dropped keypoints {drops[0]}, depth {drops[1]}")
        print_table(table)
    return 0


def print_table(table: dict[str, list[tuple[int, float, float]]]) -> None:
    """One line per row: poses of its best run, best poses/s and its share of the best
    row's, worst p99 ms; with repeats also the range of poses/s and p99 over them."""
    best = max((r for runs in table.values() for _, r, _ in runs), default=float("nan"))
    print(f"\n{'row':<30} {'poses':>6} {'poses/s':>8} {'of best':>8} {'p99 ms':>7}"
          + ("   poses/s range   p99 range" if any(len(r) > 1 for r in table.values()) else ""))
    for label, runs in table.items():
        if not runs:
            print(f"{label:<30} no pose")
            continue
        poses, rate_out, _ = max(runs, key=lambda r: r[1])
        rates, p99s = [r for _, r, _ in runs], [p for _, _, p in runs]
        spread = (f"   {min(rates):6.1f}-{max(rates):<6.1f}  {min(p99s):5.1f}-{max(p99s):<5.1f}"
                  if len(runs) > 1 else "")
        print(f"{label:<30} {poses:6d} {rate_out:8.1f} {rate_out / best:8.0%} "
              f"{max(p99s):7.1f}{spread}")


if __name__ == "__main__":
    raise SystemExit(main())
