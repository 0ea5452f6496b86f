"""monitor_node: logs what flows on an image stream (rate, size, encoding, latency).

Subscribes to ``image`` and ``camera_info`` (latest-frame QoS), ``keypoints``
(``Keypoints2D``), ``pose`` (``Pose3D``), ``behavior`` (``Behavior``), ``trigger``
(``std_msgs/Bool``) and ``trigger_latency`` (``std_msgs/Float64``), all reliable, and
``/diagnostics`` (each stage of its namespace: frames offered, sent and skipped at the
source, in and out of the keypoint and depth nodes, poses of the lifter), and logs one
line per ``report_period``, one per trigger, and a summary when it stops: a
``ros2 topic hz`` for machines without ros2cli, and the visible end of ``make demo``.
The keypoints', poses' and behaviour's latency (receive time minus the source image's
stamp) is the pipeline's, inference and lifting included; a trigger's is the stimulus
node's (its clock when it fired, minus the source image's stamp).
"""

from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Bool, Float64

from mouse_lifter_ros.core.node_params import MONITOR_PARAMS
from mouse_lifter_ros.core.stats import (
    LabelStats,
    StreamStats,
    TriggerEvent,
    TriggerLog,
    write_json,
)
from mouse_lifter_ros.msg import Behavior, Keypoints2D, Pose3D
from mouse_lifter_ros.nodes._diagnostics import DIAGNOSTICS_QOS, DIAGNOSTICS_TOPIC
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
        self.behaviors, self.labels, self.triggers = StreamStats(), LabelStats(), TriggerLog()
        self.behavior_sub = self.create_subscription(Behavior, "behavior", self._on_behavior,
                                                     RELIABLE_QOS)
        self.trigger_sub = self.create_subscription(Bool, "trigger", self._on_trigger,
                                                    RELIABLE_QOS)
        self.create_subscription(Float64, "trigger_latency", self._on_latency, RELIABLE_QOS)
        # Every stage's counts (nodes/_diagnostics.py), the newest of each node in this
        # namespace: source offered/sent/skipped, keypoint and depth in/out, lifter.
        self.stages: dict[str, DiagnosticStatus] = {}
        self.create_subscription(DiagnosticArray, DIAGNOSTICS_TOPIC, self._on_diagnostics,
                                 DIAGNOSTICS_QOS)
        self.create_timer(p["report_period"], self._report)
        self.summary_file = p["summary_file"]

    def _on_image(self, msg: Image) -> None:
        now = self.get_clock().now().nanoseconds
        if self.triggers.origin_ns is None:  # trigger times are given from the first image
            self.triggers.origin_ns = stamp_ns(msg.header.stamp)
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

    def _on_behavior(self, msg: Behavior) -> None:
        self.behaviors.add(stamp_ns(msg.header.stamp), self.get_clock().now().nanoseconds)
        self.labels.add(msg.label)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        prefix = self.get_namespace().rstrip("/") + "/"
        for status in msg.status:
            if status.name.startswith(prefix) and status.name.count("/") == prefix.count("/"):
                self.stages[status.name] = status

    def _stage_lines(self) -> list[str]:
        return [f"stage {name}: {s.message}" for name, s in sorted(self.stages.items())]

    def _on_trigger(self, msg: Bool) -> None:
        self._log_triggers(self.triggers.add_value(msg.data))

    def _on_latency(self, msg: Float64) -> None:
        now = self.get_clock().now().nanoseconds
        self._log_triggers(self.triggers.add_latency(msg.data, now))

    def _log_triggers(self, events: list[TriggerEvent]) -> None:
        for e in events:
            self.get_logger().info(
                f"{self.trigger_sub.topic_name}: {'ON' if e.value else 'OFF'}, source frame "
                f"at {e.at_s:.3f} s of the stream, latency {1e3 * e.latency_s:.1f} ms")

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

    def _behavior_lines(self) -> list[str]:
        return [self._line(self.behavior_sub.topic_name, self.behaviors),
                f"{self.behavior_sub.topic_name} labels: {self.labels.line()}"]

    def _report(self) -> None:
        if self.images.count:
            self.get_logger().info(f"{self.image_sub.topic_name}: {self.images.summary().line()}")
        if self.keypoints.count:
            self.get_logger().info(self._keypoint_line())
        if self.poses.count:
            self.get_logger().info(self._pose_line())
        if self.behaviors.count:
            self.get_logger().info(self._behavior_lines()[0])
        for line in self._stage_lines():
            self.get_logger().info(line)

    def close(self) -> None:
        """Log the totals."""
        self.get_logger().info(
            f"total: {self.image_sub.topic_name}: {self.images.summary().line()}; "
            f"camera_info: {self.infos.count} messages")
        for line in (self._keypoint_line(), self._pose_line(), *self._behavior_lines(),
                     f"{self.trigger_sub.topic_name}: {self.triggers.line()}",
                     *self._stage_lines()):
            self.get_logger().info(f"total: {line}")
        if self.summary_file:
            on = sum(e.value for e in self.triggers.events)
            totals = {"messages": {sub.topic_name: stats.count for sub, stats in (
                (self.image_sub, self.images), (self.keypoint_sub, self.keypoints),
                (self.pose_sub, self.poses), (self.behavior_sub, self.behaviors))},
                "triggers": {"on": on, "off": len(self.triggers.events) - on},
                "stages": {name: {kv.key: kv.value for kv in s.values}
                           for name, s in sorted(self.stages.items())}}
            try:
                write_json(self.summary_file, totals)
            except OSError as exc:
                self.get_logger().error(f"summary_file {self.summary_file!r}: {exc}")


def main(args: list[str] | None = None) -> int:
    """Run the node until it is shut down."""
    return run(MonitorNode, args)
