"""stimulus_node: closed-loop triggers from poses and behaviour.

Subscribes to ``pose`` (``Pose3D``) and ``behavior`` (``Behavior``), both reliable, and
runs the configured rule (:mod:`mouse_lifter_ros.core.stimulus`) behind a bounded queue
in a worker thread. Each trigger is published on ``trigger`` (``std_msgs/Bool``: True =
stimulus on) and its latency on ``trigger_latency`` (``std_msgs/Float64``, seconds from
the capture of the source frame that caused it to the trigger, on this node's clock).
Both are reliable. A ``Bool`` is what a TTL bridge or a lab's own node acts on; the
latency travels beside it so the on/off topic stays a plain standard message.
"""

from __future__ import annotations

import numpy as np
from rclpy.node import Node
from std_msgs.msg import Bool, Float64

from mouse_lifter_ros.core.node_params import STIMULUS_PARAMS
from mouse_lifter_ros.core.stimulus.interface import BehaviorFrame, PoseFrame, Trigger
from mouse_lifter_ros.core.stimulus.loader import rule_from_params
from mouse_lifter_ros.core.stimulus.runner import StimulusRunner
from mouse_lifter_ros.msg import Behavior, Pose3D
from mouse_lifter_ros.nodes._ros import PUBLISH_QOS, RELIABLE_QOS, declare_parameters, run, stamp_ns


class StimulusNode(Node):
    """Feed poses and behaviour to a rule; publish its triggers and their latency."""

    def __init__(self) -> None:
        super().__init__("stimulus")
        p = declare_parameters(self, STIMULUS_PARAMS)
        rule = rule_from_params(p)
        self.trigger_pub = self.create_publisher(Bool, "trigger", PUBLISH_QOS)
        self.latency_pub = self.create_publisher(Float64, "trigger_latency", RELIABLE_QOS)
        self.runner = StimulusRunner(
            rule, self._on_trigger, queue_size=p["queue_size"],
            clock=lambda: self.get_clock().now().nanoseconds, on_error=self._on_error)
        self.create_subscription(Pose3D, "pose", self._on_pose, RELIABLE_QOS)
        self.create_subscription(Behavior, "behavior", self._on_behavior, RELIABLE_QOS)
        self.get_logger().info(f"rule {p['rule']} ({type(rule).__name__})")

    def _on_pose(self, msg: Pose3D) -> None:
        try:
            frame = PoseFrame(
                stamp_ns(msg.source_stamp), tuple(msg.names),
                np.array([(q.x, q.y, q.z) for q in msg.positions], dtype=float).reshape(-1, 3),
                np.array(msg.valid, dtype=bool), np.array(msg.confidence, dtype=np.float64))
        except ValueError as exc:
            self.get_logger().warning(f"pose skipped: {exc}", throttle_duration_sec=5.0)
            return
        self.runner.submit_pose(frame)

    def _on_behavior(self, msg: Behavior) -> None:
        try:
            frame = BehaviorFrame(stamp_ns(msg.header.stamp), msg.label,
                                  tuple(msg.class_names),
                                  np.array(msg.probabilities, dtype=np.float64))
        except ValueError as exc:
            self.get_logger().warning(f"behaviour skipped: {exc}", throttle_duration_sec=5.0)
            return
        self.runner.submit_behavior(frame)

    def _on_trigger(self, trigger: Trigger, latency_ns: int) -> None:
        # Called from the runner's worker thread; rclpy publishers are thread-safe.
        self.trigger_pub.publish(Bool(data=trigger.value))
        self.latency_pub.publish(Float64(data=latency_ns / 1e9))
        self.get_logger().info(f"trigger {'ON' if trigger.value else 'OFF'}: {trigger.reason} "
                               f"(latency {latency_ns / 1e6:.1f} ms)")

    def _on_error(self, exc: BaseException) -> None:
        self.get_logger().error(f"rule failed: {type(exc).__name__}: {exc}",
                                throttle_duration_sec=5.0)

    def close(self) -> None:
        """Process what is queued, stop the worker and log the summary."""
        self.runner.flush(timeout=1.0)
        self.runner.close()
        self.get_logger().info(f"total: {self.runner.summary().line()}")


def main(args: list[str] | None = None) -> int:
    """Run the node until it is shut down."""
    return run(StimulusNode, args)
