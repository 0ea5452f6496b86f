"""Frame-to-trigger latency of the closed loop through the ROS graph, on this machine.

    tools/ros-env.sh python benchmarks/trigger_latency.py [--passes 5]

Renders the demo clip (a mouse walks, rears, walks and grooms; 174 frames, 640x480
mono8, 30 fps) and replays it ``--passes`` times in a row through the ``replay`` graph
of ``config/graph.yaml`` in real node processes, every node on but the monitor:
bag_source -> keypoint, depth -> lifter -> behavior -> stimulus (the shipped rule:
rearing above 0.6 for 3 frames) -> trigger, and the recorder. The bag is restamped
with the publish time, like a live camera, so a message's latency is its arrival (or,
for the stimulus node's own figure, the moment the rule fired) minus the moment the
bag source published the frame it comes from. Prints p50/p99/max of:

- each trigger, as the stimulus node measured it (``trigger_latency``: its clock when
  the rule fired minus the frame's stamp);
- every frame's ``Behavior`` message (the stimulus rule's input) at its arrival here, a
  many-sample view of the same path (DDS delivery to a subscriber included).

Each pass has one rearing bout (one on and one off trigger), and each seam between
passes, where the mouse jumps back to where the clip starts, fires one more short bout:
about four triggers a pass, each as good a latency sample as any. Wall-clock figures
depend on what else runs on the machine; the load average at the start is printed.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import rclpy
import yaml
from mouse_lifter_ros.msg import Behavior
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import Image
from std_msgs.msg import Bool, Float64

from mouse_lifter_ros.core.democlip import write_demo_clip
from mouse_lifter_ros.nodes._ros import LATEST_FRAME_QOS, RELIABLE_QOS, stamp_ns
from mouse_lifter_ros.runner import GraphRun, package_share

NS = "bench"


def _stats(name: str, ms: list[float]) -> str:
    if not ms:
        return f"{name}: none"
    p50, p99 = np.percentile(ms, [50, 99])
    return f"{name}: p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {max(ms):.1f} ms (n={len(ms)})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--passes", type=int, default=5, help="times the clip is replayed")
    ns = ap.parse_args()
    load = os.getloadavg()
    print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
          f"{os.cpu_count()} CPUs")
    lock = threading.Lock()
    behavior: list[float] = []
    on_off: list[bool] = []
    node_ms: list[float] = []
    context = rclpy.context.Context()
    rclpy.init(context=context)
    node = Node("trigger_latency_bench", context=context)

    def on_behavior(m: Behavior) -> None:
        with lock:
            behavior.append((time.time_ns() - stamp_ns(m.header.stamp)) / 1e6)

    node.create_subscription(Behavior, f"/{NS}/behavior", on_behavior, RELIABLE_QOS)
    node.create_subscription(Bool, f"/{NS}/trigger",
                             lambda m: on_off.append(m.data), RELIABLE_QOS)
    node.create_subscription(Float64, f"/{NS}/trigger_latency",
                             lambda m: node_ms.append(1e3 * m.data), RELIABLE_QOS)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    stop = threading.Event()
    thread = threading.Thread(target=lambda: [executor.spin_once(timeout_sec=0.05)
                                              for _ in iter(stop.is_set, True)], daemon=True)
    thread.start()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        clip = write_demo_clip(work / "clip")
        doc = yaml.safe_load((package_share() / "config" / "params.yaml").read_text())
        doc["/**/bag_source"]["ros__parameters"].update(
            {"rate": 1.0, "restamp": True, "wait_for_subscribers": 3, "loop": True})
        (work / "p.yaml").write_text(yaml.safe_dump(doc))
        with GraphRun("replay", arguments={
                "bag": str(clip.bag), "arena": str(clip.arena), "monitor": "false",
                "record": "true", "record_dir": str(work / "rec")},
                namespace=NS, params_file=work / "p.yaml") as run:
            # the whole path must be up before the bag starts: this script's image
            # subscription is the bag's last awaited subscriber
            start = time.monotonic()
            while (node.count_publishers(f"/{NS}/trigger") < 1
                   or node.count_subscribers(f"/{NS}/behavior") < 3) \
                    and time.monotonic() - start < 60:
                time.sleep(0.05)
            time.sleep(1.0)
            node.create_subscription(Image, f"/{NS}/camera/image_raw", lambda _: None,
                                     LATEST_FRAME_QOS)
            ended = run.wait_any(timeout=ns.passes * clip.frames / clip.fps + 2.0)
            time.sleep(1.0)
            run.stop()
            print(f"{ns.passes} passes of the demo clip ({clip.frames} frames each); "
                  f"{'a node ended early: ' + ended if ended else 'all nodes ran'}")
            print(run.output("stimulus").strip().splitlines()[-1])
    stop.set()
    thread.join(timeout=2)
    executor.shutdown()
    node.destroy_node()
    rclpy.shutdown(context=context)
    print(_stats("trigger, stimulus node's own (trigger_latency)", node_ms))
    print(_stats("behaviour message per frame, at this script", behavior))
    print(f"triggers received: {sum(on_off)} on, {len(on_off) - sum(on_off)} off")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
