"""depth_node: metric depth of the mouse region in every image it can keep up with.

Subscribes to ``image`` (``sensor_msgs/Image``, latest-frame QoS) and publishes, per
image, ``depth/image`` (``32FC1``: camera-frame z in metres, the mouse's surface on the
mouse and the floor around it) over the window around the mouse, and
``depth/camera_info`` whose ``roi`` is that window's place in the full image (K, D, R, P
those of the full image, REP-104). Both carry the source image's stamp and frame. When
no mouse is found both are still published, with an empty (0 x 0) depth image and a zero
roi, so that the lifter learns of the frame. The depth network
(:class:`mouse_lifter_ros.core.depth.DepthModel`) is made metric by ``arena_file``.
"""

from __future__ import annotations

import time

from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image

from mouse_lifter_ros.core.arena import load_arena
from mouse_lifter_ros.core.calibration import camera_info_fields
from mouse_lifter_ros.core.depth import DepthModel
from mouse_lifter_ros.core.errors import InputError
from mouse_lifter_ros.core.images import image_to_grey_or_bgr
from mouse_lifter_ros.core.node_params import DEPTH_PARAMS
from mouse_lifter_ros.core.process import lower_priority
from mouse_lifter_ros.core.stats import StageCounts
from mouse_lifter_ros.core.tracking import MouseTracker
from mouse_lifter_ros.nodes._diagnostics import publish_stage
from mouse_lifter_ros.nodes._ros import (
    LATEST_FRAME_QOS,
    declare_parameters,
    resolve_path,
    run,
    to_camera_info_msg,
    to_image_msg,
)


class DepthNode(Node):
    """Run the depth model on each image; publish the depth window and its roi."""

    def __init__(self) -> None:
        super().__init__("depth")
        p = declare_parameters(self, DEPTH_PARAMS)
        if (why := lower_priority(p["niceness"])) is not None:  # before the networks' threads
            self.get_logger().warning(why)
        arena = load_arena(resolve_path(p["arena_file"]))
        path = resolve_path(p["model"]) if p["model"] else None
        self.model = DepthModel(path, arena=arena, device=p["device"], threads=p["threads"])
        self.tracker = MouseTracker(self.model.detector, redetect_every=p["redetect_every"])
        self.counts = StageCounts()
        publish_stage(self, "depth", lambda: (
            self.counts.skipped == 0, self.counts.line("depth images"), self.counts.values()))
        self.pub = self.create_publisher(Image, "depth/image", LATEST_FRAME_QOS)
        self.info_pub = self.create_publisher(CameraInfo, "depth/camera_info",
                                              LATEST_FRAME_QOS)
        self.sub = self.create_subscription(Image, "image", self._on_image, LATEST_FRAME_QOS)
        self.get_logger().info(
            f"model {self.model.spec.path}: {self.model.description}; arena "
            f"{p['arena_file']} ({arena.describe()}); {self.sub.topic_name} -> "
            f"{self.pub.topic_name}")

    def _on_image(self, msg: Image) -> None:
        c = self.counts
        c.frames_in += 1
        try:
            start = time.perf_counter()
            frame = image_to_grey_or_bgr(msg)
            d = self.model(frame, self.tracker(frame))
            info = camera_info_fields(self.model.arena.intrinsics,
                                      frame_size=(msg.width, msg.height),
                                      crop=d.roi if d.found else None)
            c.busy_s += time.perf_counter() - start
        except InputError as exc:
            c.skipped += 1
            self.get_logger().warning(f"image skipped: {exc}", throttle_duration_sec=5.0)
            return
        c.no_mouse += not d.found
        stamp, frame = msg.header.stamp, msg.header.frame_id
        self.info_pub.publish(to_camera_info_msg(info, stamp, frame))
        self.pub.publish(to_image_msg(d.depth, "32FC1", stamp, frame))
        c.frames_out += 1

    def close(self) -> None:
        """Log the totals."""
        self.get_logger().info(f"total: {self.counts.line('depth images')}")


def main(args: list[str] | None = None) -> int:
    """Run the node; the exit code says how it ended (0 ok, 1 model error, 2 parameters)."""
    return run(DepthNode, args)
