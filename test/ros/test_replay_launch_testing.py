"""replay.launch.py under launch_testing, as a ROS 2 rig runs it (`launch_test` or colcon test).

pytest runs it through launch_testing's plugin. Skips with the reason where launch_testing
is not installed: it is not on the package index; `make test` installs it from
../shared/ros2-launch when that folder is beside the clone.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import time
import unittest
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip(
    "launch_testing", reason="launch_testing is not installed (it is not on the package "
    "index: `make test` installs it from ../shared/ros2-launch when that folder is beside "
    "the clone; a ROS 2 apt install has it); the graph runner tests cover the same graph")

import launch_testing.actions
import launch_testing.asserts
import rclpy
from ament_index_python.packages import get_package_share_directory
from conftest import _take_domain_id
from launch.launch_description_sources import PythonLaunchDescriptionSource
from mouse_lifter_ros.msg import Pose3D
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

import launch
from mouse_lifter_ros.core.democlip import write_demo_clip
from mouse_lifter_ros.nodes._ros import LATEST_FRAME_QOS

#: This run's own namespace, so that two runs on one machine never share topics.
NAMESPACE = f"launch_test_{os.getpid()}"
#: The domain id lock, held while this module is loaded (see conftest.py).
_DOMAIN: list[Any] = []


@pytest.mark.launch_test
def generate_test_description() -> launch.LaunchDescription:
    # A domain id of this run's own: the session's (conftest's ros_domain fixture, when
    # another test already took it) or one locked here. The nodes and the test inherit it.
    if "ROS_DOMAIN_ID" not in os.environ:
        domain, handle = _take_domain_id()
        _DOMAIN.append(handle)
        os.environ["ROS_DOMAIN_ID"] = str(domain)
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    folder = tempfile.mkdtemp(prefix="mouse_lifter_replay_launch_test_")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)  # the clip: ~20 MB
    # launch_ros writes each node's parameters to a temporary file it never removes
    tempfile.tempdir = folder
    clip = write_demo_clip(Path(folder), seconds=2.0)
    replay = launch.actions.IncludeLaunchDescription(
        PythonLaunchDescriptionSource(
            str(Path(get_package_share_directory("mouse_lifter_ros")) / "launch"
                / "replay.launch.py")),
        launch_arguments={"bag": str(clip.bag), "namespace": NAMESPACE, "loop": "true",
                          "arena": str(clip.arena)}.items(),
    )
    return launch.LaunchDescription([replay, launch_testing.actions.ReadyToTest()])


class TestReplayPublishes(unittest.TestCase):
    def test_images_and_poses_arrive(self) -> None:
        rclpy.init()
        node = rclpy.create_node("replay_launch_test_listener")
        images: list[Image] = []
        poses: list[Pose3D] = []
        node.create_subscription(Image, f"/{NAMESPACE}/camera/image_raw", images.append,
                                 LATEST_FRAME_QOS)
        node.create_subscription(Pose3D, f"/{NAMESPACE}/pose", poses.append,
                                 QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE))
        deadline = time.monotonic() + 60
        while (len(images) < 20 or len(poses) < 5) and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.1)
        node.destroy_node()
        rclpy.shutdown()
        self.assertGreaterEqual(len(images), 20)
        self.assertEqual((images[0].width, images[0].height, images[0].encoding),
                         (640, 480, "mono8"))
        self.assertGreaterEqual(len(poses), 5)
        self.assertEqual(poses[0].header.frame_id, "arena")


@launch_testing.post_shutdown_test()
class TestReplayShutdown(unittest.TestCase):
    def test_every_node_exited_cleanly(self, proc_info: Any) -> None:
        """launch_testing ends the launch with SIGINT; each node then exits with 0."""
        launch_testing.asserts.assertExitCodes(proc_info)
        self.assertEqual(len(proc_info.process_names()), 7, proc_info.process_names())
