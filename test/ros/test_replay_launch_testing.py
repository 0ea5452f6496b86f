"""replay.launch.py under launch_testing, as a ROS 2 rig runs it (`launch_test` or colcon test).

Skips with the reason where launch_testing is not installed (it is not on PyPI).
"""

from __future__ import annotations

import tempfile
import time
import unittest
from pathlib import Path

import pytest

pytest.importorskip(
    "launch_testing", reason="launch_testing is not installed (it comes with a ROS 2 apt "
    "install, not with the PyPI wheels); the graph runner tests cover the same graph")

import launch_testing.actions
import rclpy
from ament_index_python.packages import get_package_share_directory
from launch.launch_description_sources import PythonLaunchDescriptionSource
from sensor_msgs.msg import Image

import launch
from mouse_lifter_ros.core.democlip import write_demo_clip
from mouse_lifter_ros.nodes._ros import LATEST_FRAME_QOS

NAMESPACE = "launch_test"


@pytest.mark.launch_test
def generate_test_description() -> launch.LaunchDescription:
    clip = write_demo_clip(Path(tempfile.mkdtemp()), seconds=2.0)
    replay = launch.actions.IncludeLaunchDescription(
        PythonLaunchDescriptionSource(
            str(Path(get_package_share_directory("mouse_lifter_ros")) / "launch"
                / "replay.launch.py")),
        launch_arguments={"bag": str(clip.bag), "namespace": NAMESPACE, "loop": "true",
                          "arena": str(clip.arena)}.items(),
    )
    return launch.LaunchDescription([replay, launch_testing.actions.ReadyToTest()])


class TestReplayPublishes(unittest.TestCase):
    def test_images_arrive(self) -> None:
        rclpy.init()
        node = rclpy.create_node("replay_launch_test_listener")
        got: list[Image] = []
        node.create_subscription(Image, f"/{NAMESPACE}/camera/image_raw", got.append,
                                 LATEST_FRAME_QOS)
        deadline = time.monotonic() + 15
        while len(got) < 20 and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.1)
        node.destroy_node()
        rclpy.shutdown()
        self.assertGreaterEqual(len(got), 20)
        self.assertEqual((got[0].width, got[0].height, got[0].encoding), (640, 480, "mono8"))
