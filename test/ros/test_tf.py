"""The lifter's arena -> camera transform on /tf_static.

The message is checked here against the calibration; the broadcast itself needs
``tf2_ros`` (a ROS 2 install), whose test skips without it, while the test of the
fallback (one log line, the node runs on) runs only where it is absent.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("geometry_msgs.msg", reason="ROS 2 messages are not installed")

from conftest import Listener, write_params

from mouse_lifter_ros.core.arena import save_arena
from mouse_lifter_ros.core.democlip import demo_arena
from mouse_lifter_ros.nodes._tf import camera_transform
from mouse_lifter_ros.runner import GraphRun

HAVE_TF2 = importlib.util.find_spec("tf2_ros") is not None


def _params(tmp_path: Path) -> Path:
    arena_file = tmp_path / "arena.yaml"
    save_arena(arena_file, demo_arena())
    return write_params(tmp_path / "p.yaml", {"lifter": {
        "arena_file": str(arena_file), "camera_frame": "rig_camera"}})


def test_transform_is_the_calibrated_camera_in_the_arena() -> None:
    from builtin_interfaces.msg import Time

    arena = demo_arena()
    msg = camera_transform(arena, "arena", "rig_camera", Time(sec=5))
    assert (msg.header.frame_id, msg.child_frame_id, msg.header.stamp.sec) == \
        ("arena", "rig_camera", 5)
    t, q = msg.transform.translation, msg.transform.rotation
    np.testing.assert_allclose([t.x, t.y, t.z], arena.camera_position, atol=1e-12)
    np.testing.assert_allclose([q.x, q.y, q.z, q.w], arena.camera_orientation, atol=1e-12)
    assert t.z > 0.2  # the demo camera hangs over the arena


@pytest.mark.skipif(HAVE_TF2, reason="tf2_ros is installed: the broadcast test runs instead")
def test_without_tf2_ros_the_lifter_says_so_and_runs(listener: Listener, namespace: str,
                                                      tmp_path: Path) -> None:
    with GraphRun("lifter", nodes=["lifter"], namespace=namespace,
                  params_file=_params(tmp_path)) as run:
        assert listener.wait_for(lambda: "/tf_static" in run.output("lifter"), 30), \
            run.output("lifter")
        assert run.processes["lifter"].poll() is None
        log = run.output("lifter")
    assert "tf2_ros is not installed: no arena -> rig_camera transform" in log, log


@pytest.mark.skipif(not HAVE_TF2, reason="tf2_ros is not installed (it comes with a ROS 2 "
                    "apt install, not with the PyPI wheels)")
def test_lifter_broadcasts_the_camera_frame(listener: Listener, namespace: str,
                                            tmp_path: Path) -> None:
    from rclpy.time import Time
    from tf2_ros.buffer import Buffer
    from tf2_ros.transform_listener import TransformListener

    buffer = Buffer()
    tf_listener = TransformListener(buffer, listener.node)
    try:
        with GraphRun("lifter", nodes=["lifter"], namespace=namespace,
                      params_file=_params(tmp_path)) as run:
            deadline = time.monotonic() + 30
            while not buffer.can_transform("arena", "rig_camera", Time()):
                assert time.monotonic() < deadline, run.output("lifter")
                listener.wait_for(lambda: False, 0.1)
            got = buffer.lookup_transform("arena", "rig_camera", Time())
    finally:
        tf_listener.unregister()
    t, q = got.transform.translation, got.transform.rotation
    arena = demo_arena()
    np.testing.assert_allclose([t.x, t.y, t.z], arena.camera_position, atol=1e-9)
    np.testing.assert_allclose([q.x, q.y, q.z, q.w], arena.camera_orientation, atol=1e-9)
