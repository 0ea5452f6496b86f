"""behavior_node in its own process, over DDS: one Behavior per pose, source stamp kept."""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("geometry_msgs.msg", reason="ROS 2 messages are not installed")

from conftest import (
    Listener,
    mouse_keypoints,
    pose_msg,
    prime,
    run_alone,
    wait_matched,
    write_params,
)
from mouse_lifter_ros.msg import Behavior, Pose3D

from mouse_lifter_ros.core.body import KEYPOINTS
from mouse_lifter_ros.nodes._ros import RELIABLE_QOS, stamp_ns
from mouse_lifter_ros.runner import GraphRun

T0 = 1_700_000_000_000_000_000
WALK, REAR = 20, 40


def test_behavior_per_pose_with_source_stamp_and_rearing(listener: Listener, namespace: str,
                                                         ros_domain: int,
                                                         tmp_path: Path) -> None:
    # The 3D network: these stylised poses differ only in their pitch (the shipped
    # config runs the 2D-only one, which sees lifter-like input; see README).
    params = write_params(tmp_path / "params.yaml", {"behavior": {"dims": 3}})
    out = listener.subscribe(Behavior, f"/{namespace}/behavior", RELIABLE_QOS)
    pub = listener.node.create_publisher(Pose3D, f"/{namespace}/pose", RELIABLE_QOS)
    # Keypoints listed in reverse order: the node must map them by name.
    names = list(reversed(KEYPOINTS))
    stamps = [T0 + round(i * 1e9 / 30) for i in range(WALK + REAR)]
    with GraphRun("behavior", nodes=["behavior"], namespace=namespace,
                  params_file=params) as run:
        wait_matched(listener, pub, [f"/{namespace}/behavior"])
        # Priming stamps end > 1 s before T0: the classifier resets at the jump.
        n_sent = prime(listener, lambda k: pub.publish(pose_msg(
            names, mouse_keypoints(0.0)[::-1], T0 - 3_000_000_000 + k)), out)
        for i, stamp in enumerate(stamps):
            kp = mouse_keypoints(0.0 if i < WALK else 1.1)[::-1]
            # header.stamp differs from source_stamp: the output must carry the source's.
            pub.publish(pose_msg(names, kp, stamp, frame_id="arena_test",
                                 header_stamp_ns=stamp + 7_000_000))
            time.sleep(0.01)
        arrived = listener.wait_for(
            lambda: sum(stamp_ns(m.header.stamp) >= T0 for _, m in out) >= len(stamps), 20)
        codes = run.stop()
        log = run.output("behavior")
    assert arrived, (len(out), log)
    # Priming's outputs carry stamps before T0, however late they came back.
    msgs = [m for _, m in out if stamp_ns(m.header.stamp) >= T0]
    n_primed = len(out) - len(msgs)
    assert [stamp_ns(m.header.stamp) for m in msgs] == stamps
    assert {m.header.frame_id for m in msgs} == {"arena_test"}
    assert list(msgs[0].class_names) == ["locomotion", "rearing", "grooming", "stationary"]
    for m in msgs:
        assert sum(m.probabilities) == pytest.approx(1.0, abs=1e-5)
        if m.label == "unknown":  # warming up: uniform
            np.testing.assert_allclose(m.probabilities, 0.25, atol=1e-6)
        else:
            assert m.label == m.class_names[int(np.argmax(m.probabilities))]
    labels = [m.label for m in msgs]
    # The stream restarted at T0: 'unknown' for its first 0.5 s (warmup), then labels.
    assert labels[:14] == ["unknown"] * 14 and "unknown" not in labels[16:], labels
    assert "rearing" not in labels[:WALK], labels
    assert labels[-10:] == ["rearing"] * 10, labels
    assert codes["behavior"] == 0
    # Priming's first outputs may be published before the listener's reader matched.
    total = re.search(r"total: (\d+) behaviour messages published", log)
    assert total, log
    assert n_primed + len(stamps) <= int(total[1]) <= n_sent + len(stamps), (n_primed, n_sent, log)


def test_invalid_parameters_exit_2_naming_them(namespace: str, ros_domain: int,
                                               tmp_path: Path) -> None:
    params = write_params(tmp_path / "params.yaml",
                          {"behavior": {"dims": 4, "smoothing": -1.0}})
    code, out = run_alone("behavior", namespace, params, timeout=20)
    assert code == 2, out
    assert "dims = 4" in out and "2 or 3" in out and "smoothing = -1.0" in out, out
    assert "Traceback" not in out


def test_corrupt_model_is_one_clear_error(namespace: str, ros_domain: int,
                                          tmp_path: Path) -> None:
    bad = tmp_path / "model.npz"
    bad.write_bytes(b"not a zip file at all")
    params = write_params(tmp_path / "params.yaml", {"behavior": {"model": str(bad)}})
    code, out = run_alone("behavior", namespace, params, timeout=20)
    assert code == 1, out
    assert str(bad) in out and "not a readable .npz model file" in out, out
    assert "Traceback" not in out
