"""monitor_node: logs what flows on an image stream (rate, size, encoding, latency).

Subscribes to ``image`` and ``camera_info`` (latest-frame QoS) and logs one line per
``report_period``, and a summary when it stops: a ``ros2 topic hz`` for machines
without ros2cli, and the visible end of ``make demo``.
"""

from __future__ import annotations

from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image

from mouse_lifter_ros.core.specs import MONITOR_PARAMS
from mouse_lifter_ros.core.stats import StreamStats
from mouse_lifter_ros.nodes._ros import LATEST_FRAME_QOS, declare_parameters, run, stamp_ns


class MonitorNode(Node):
    """Count images and camera infos; report periodically."""

    def __init__(self) -> None:
        super().__init__("monitor")
        p = declare_parameters(self, MONITOR_PARAMS)
        self.images = StreamStats()
        self.infos = StreamStats()
        self.image_sub = self.create_subscription(Image, "image", self._on_image, LATEST_FRAME_QOS)
        self.create_subscription(CameraInfo, "camera_info", self._on_info, LATEST_FRAME_QOS)
        self.create_timer(p["report_period"], self._report)

    def _on_image(self, msg: Image) -> None:
        now = self.get_clock().now().nanoseconds
        self.images.add(stamp_ns(msg.header.stamp), now, (msg.width, msg.height), msg.encoding)

    def _on_info(self, msg: CameraInfo) -> None:
        now = self.get_clock().now().nanoseconds
        self.infos.add(stamp_ns(msg.header.stamp), now, (msg.width, msg.height))

    def _report(self) -> None:
        if self.images.count:
            self.get_logger().info(f"{self.image_sub.topic_name}: {self.images.summary().line()}")

    def close(self) -> None:
        """Log the totals."""
        self.get_logger().info(
            f"total: {self.image_sub.topic_name}: {self.images.summary().line()}; "
            f"camera_info: {self.infos.count} messages")


def main(args: list[str] | None = None) -> int:
    """Run the node until it is shut down."""
    return run(MonitorNode, args)
