"""stimulus_node in its own process, over DDS: one on and one off trigger per bout."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("std_msgs.msg", reason="ROS 2 messages are not installed")

from conftest import (
    Listener,
    behavior_msg,
    mouse_keypoints,
    pose_msg,
    wait_matched,
    write_params,
)
from mouse_lifter_ros.msg import Behavior, Pose3D
from std_msgs.msg import Bool, Float64

from mouse_lifter_ros.core.body import KEYPOINTS
from mouse_lifter_ros.nodes._ros import RELIABLE_QOS
from mouse_lifter_ros.runner import GraphRun


def _probs(rearing: float) -> dict[str, float]:
    rest = (1.0 - rearing) / 3
    return {"locomotion": rest, "rearing": rearing, "grooming": rest, "stationary": rest}


def _cycle(run: GraphRun, listener: Listener, publish: Callable[[Any], None],
           triggers: list[Any], high: Callable[[int], Any], low: Callable[[int], Any],
           stamp0: int) -> None:
    """Send frames where the condition holds until ON arrives, then ones where it fails
    until OFF arrives (stamps 20 ms apart from ``stamp0``)."""
    k = 0
    deadline = time.monotonic() + 20
    for want, make in ((1, high), (2, low)):
        while len(triggers) < want and time.monotonic() < deadline:
            publish(make(stamp0 + k * 20_000_000))
            k += 1
            time.sleep(0.02)
    assert len(triggers) >= 2, (triggers, run.output("stimulus"))


def test_sustained_rearing_fires_on_once_then_off(listener: Listener, namespace: str,
                                                  ros_domain: int) -> None:
    triggers = listener.subscribe(Bool, f"/{namespace}/trigger", RELIABLE_QOS)
    latency = listener.subscribe(Float64, f"/{namespace}/trigger_latency", RELIABLE_QOS)
    pub = listener.node.create_publisher(Behavior, f"/{namespace}/behavior", RELIABLE_QOS)
    with GraphRun("stimulus", nodes=["stimulus"], namespace=namespace) as run:
        wait_matched(listener, pub, [f"/{namespace}/trigger", f"/{namespace}/trigger_latency"])
        # Priming (the first messages after matching can be lost): a full on/off cycle.
        now = time.time_ns()
        _cycle(run, listener, pub.publish, triggers, lambda s: behavior_msg(s, _probs(0.9)),
               lambda s: behavior_msg(s, _probs(0.1)), now - 60_000_000_000)
        assert listener.wait_for(lambda: len(latency) >= 2, 5)
        del triggers[:], latency[:]
        # The stream: 10 frames below the threshold, 10 above (0.9 > 0.6), 10 below.
        # Stamps are capture times on the node's clock (now), so latency is meaningful.
        sent = []
        for i in range(30):
            p = 0.9 if 10 <= i < 20 else 0.1
            sent.append(time.time_ns())
            pub.publish(behavior_msg(sent[-1], _probs(p)))
            time.sleep(0.01)
        assert listener.wait_for(lambda: len(triggers) >= 2 and len(latency) >= 2, 10)
        listener.wait_for(lambda: len(triggers) > 2, 0.5)  # nothing more may come
        codes = run.stop()
        log = run.output("stimulus")
    assert [m.data for _, m in triggers] == [True, False], log
    assert len(latency) == 2
    for _, lat in latency:
        assert 0.0 <= lat.data < 1.0, lat.data
    # The on trigger is caused by the 3rd frame above the threshold (min_frames 3):
    # its latency is measured from that frame's stamp, so it cannot exceed the time
    # from publishing frame 12 to receiving the trigger.
    assert latency[0][1].data <= (triggers[0][0] - sent[12]) / 1e9 + 0.005
    assert codes["stimulus"] == 0
    # The summary at close (priming's on/off included): frames, drops (a loaded machine
    # may drop from the queue of 4), triggers and latency percentiles.
    assert re.search(r"total: \d+ frames \(\d+ processed, \d+ dropped, 0 errors\), "
                     r"4 triggers \(2 on, 2 off\), latency p50 [\d.]+ ms p99", log), log


def test_region_rule_on_poses(listener: Listener, namespace: str, ros_domain: int,
                              tmp_path: Path) -> None:
    triggers = listener.subscribe(Bool, f"/{namespace}/trigger", RELIABLE_QOS)
    pub = listener.node.create_publisher(Pose3D, f"/{namespace}/pose", RELIABLE_QOS)
    params = write_params(tmp_path / "params.yaml", {"stimulus": {
        "rule": "builtin:region", "keypoint": "nose", "region": [0.2, 0.0, 0.05],
        "min_frames": 2}})
    inside = mouse_keypoints(0.0) + np.array([0.1, 0.0, 0.0])  # nose at x = 0.2 m
    outside = mouse_keypoints(0.0)
    with GraphRun("stimulus", nodes=["stimulus"], namespace=namespace,
                  params_file=params) as run:
        wait_matched(listener, pub, [f"/{namespace}/trigger"])
        _cycle(run, listener, pub.publish, triggers, lambda s: pose_msg(KEYPOINTS, inside, s),
               lambda s: pose_msg(KEYPOINTS, outside, s), time.time_ns())
        log = run.output("stimulus")
    assert [m.data for _, m in triggers] == [True, False], log


def test_invalid_parameters_exit_2_naming_them(namespace: str, ros_domain: int,
                                               tmp_path: Path) -> None:
    params = write_params(tmp_path / "params.yaml", {"stimulus": {
        "min_probability": 1.5, "min_frames": 0, "rule": "no_such_module:Rule"}})
    with GraphRun("stimulus", nodes=["stimulus"], namespace=namespace,
                  params_file=params) as run:
        assert run.wait_any(timeout=20) == "stimulus"
        code, out = run.processes["stimulus"].returncode, run.output("stimulus")
    assert code == 2, out
    for text in ("min_probability = 1.5", "min_frames = 0", ">= 0 and < 1", ">= 1"):
        assert text in out, out
    assert "Traceback" not in out
