"""monitor_node: logs what flows on an image stream (rate, size, encoding, latency).

Subscribes to ``image`` and ``camera_info`` (latest-frame QoS), ``keypoints``
(``Keypoints2D``) and ``pose`` (``Pose3D``, both reliable) and logs one line per
``report_period``, and a summary when it stops: a ``ros2 topic hz`` for machines
without ros2cli, and the visible end of ``make demo``. The keypoints' and poses'
latency (receive time minus the source image's stamp) is the pipeline's, inference
and lifting included.
"""

from __future__ import annotations

from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image

from mouse_lifter_ros.core.specs import MONITOR_PARAMS
from mouse_lifter_ros.core.stats import StreamStats
from mouse_lifter_ros.msg import Keypoints2D, Pose3D
from mouse_lifter_ros.nodes._ros import (
    LATEST_FRAME_QOS,
    RELIABLE_QOS,
    declare_parameters,
    run,
    stamp_ns,
)


class MonitorNode(Node):
    """Count images and camera infos; report periodically."""

    def __init__(self) -> None:
        super().__init__("monitor")
        p = declare_parameters(self, MONITOR_PARAMS)
        self.images = StreamStats()
        self.infos = StreamStats()
        self.keypoints = StreamStats()
        self.poses = StreamStats()
        self.image_sub = self.create_subscription(Image, "image", self._on_image, LATEST_FRAME_QOS)
        self.create_subscription(CameraInfo, "camera_info", self._on_info, LATEST_FRAME_QOS)
        self.keypoint_sub = self.create_subscription(Keypoints2D, "keypoints",
                                                     self._on_keypoints, RELIABLE_QOS)
        self.pose_sub = self.create_subscription(Pose3D, "pose", self._on_pose, RELIABLE_QOS)
        self.create_timer(p["report_period"], self._report)

    def _on_image(self, msg: Image) -> None:
        now = self.get_clock().now().nanoseconds
        self.images.add(stamp_ns(msg.header.stamp), now, (msg.width, msg.height), msg.encoding)

    def _on_info(self, msg: CameraInfo) -> None:
        now = self.get_clock().now().nanoseconds
        self.infos.add(stamp_ns(msg.header.stamp), now, (msg.width, msg.height))

    def _on_keypoints(self, msg: Keypoints2D) -> None:
        now = self.get_clock().now().nanoseconds
        self.keypoints.add(stamp_ns(msg.header.stamp), now)

    def _on_pose(self, msg: Pose3D) -> None:
        now = self.get_clock().now().nanoseconds
        self.poses.add(stamp_ns(msg.source_stamp), now)

    @staticmethod
    def _line(topic: str, stats: StreamStats) -> str:
        s = stats.summary()
        return (f"{topic}: {s.count} messages, {s.rate_hz:.1f} Hz, latency from the image "
                f"stamp p50 {s.latency_p50_ms:.1f} ms p99 {s.latency_p99_ms:.1f} ms, "
                f"{s.out_of_order} out of order")

    def _keypoint_line(self) -> str:
        return self._line(self.keypoint_sub.topic_name, self.keypoints)

    def _pose_line(self) -> str:
        return self._line(self.pose_sub.topic_name, self.poses)

    def _report(self) -> None:
        if self.images.count:
            self.get_logger().info(f"{self.image_sub.topic_name}: {self.images.summary().line()}")
        if self.keypoints.count:
            self.get_logger().info(self._keypoint_line())
        if self.poses.count:
            self.get_logger().info(self._pose_line())

    def close(self) -> None:
        """Log the totals."""
        self.get_logger().info(
            f"total: {self.image_sub.topic_name}: {self.images.summary().line()}; "
            f"camera_info: {self.infos.count} messages")
        self.get_logger().info(f"total: {self._keypoint_line()}")
        self.get_logger().info(f"total: {self._pose_line()}")


def main(args: list[str] | None = None) -> int:
    """Run the node until it is shut down."""
    return run(MonitorNode, args)
