"""behavior_node: the behaviour of the mouse from its 3D poses.

Subscribes to ``pose`` (``Pose3D``, reliable) and publishes one ``Behavior`` per pose
(reliable), stamped with the pose's ``source_stamp`` (the capture time of the source
image) and in the pose's frame. The classifier (:mod:`mouse_lifter_ros.core.behavior`)
needs one usable pose before it has a label; nothing is published until then.
"""

from __future__ import annotations

import numpy as np
from rclpy.node import Node

from mouse_lifter_ros.core.behavior import BehaviorClassifier, KeypointMapper
from mouse_lifter_ros.core.node_params import BEHAVIOR_PARAMS
from mouse_lifter_ros.msg import Behavior, Pose3D
from mouse_lifter_ros.nodes._ros import (
    PUBLISH_QOS,
    RELIABLE_QOS,
    declare_parameters,
    resolve_path,
    run,
    stamp_ns,
)


class BehaviorNode(Node):
    """Classify every pose; publish the label and the class probabilities."""

    def __init__(self) -> None:
        super().__init__("behavior")
        p = declare_parameters(self, BEHAVIOR_PARAMS)
        model = resolve_path(p["model"]) if p["model"] else None
        self.classifier = BehaviorClassifier(model, dims=p["dims"], smooth_tau_s=p["smoothing"],
                                             warmup_s=p["warmup"])
        self.mapper = KeypointMapper()
        self.count = 0
        self._warned: tuple[str, ...] = ()
        self.pub = self.create_publisher(Behavior, "behavior", PUBLISH_QOS)
        self.create_subscription(Pose3D, "pose", self._on_pose, RELIABLE_QOS)
        self.get_logger().info(
            f"model {model or 'shipped default'}, {p['dims']}D, smoothing {p['smoothing']} s, "
            f"warm-up {p['warmup']} s")

    def _on_pose(self, msg: Pose3D) -> None:
        positions = np.array([(q.x, q.y, q.z) for q in msg.positions], dtype=np.float64)
        try:
            keypoints, valid = self.mapper.map(list(msg.names), positions, list(msg.valid))
        except ValueError as exc:
            self.get_logger().warning(f"pose skipped: {exc}", throttle_duration_sec=5.0)
            return
        if self.mapper.missing != self._warned:
            self._warned = self.mapper.missing
            if self._warned:
                self.get_logger().warning(f"poses lack keypoints {', '.join(self._warned)}: "
                                          "treated as not observed")
        label, names, probs = self.classifier.update(
            stamp_ns(msg.source_stamp) / 1e9, keypoints, valid)
        if not self.classifier.started:  # no usable pose yet ("unknown" while warming up
            return                       # is published: one Behavior per pose)
        out = Behavior(label=label, class_names=list(names),
                       probabilities=[float(x) for x in probs])
        out.header.stamp = msg.source_stamp
        out.header.frame_id = msg.header.frame_id
        self.pub.publish(out)
        self.count += 1

    def close(self) -> None:
        """Log the total."""
        self.get_logger().info(f"total: {self.count} behaviour messages published")


def main(args: list[str] | None = None) -> int:
    """Run the node until it is shut down."""
    return run(BehaviorNode, args)
