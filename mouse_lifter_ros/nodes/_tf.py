"""The calibrated arena -> camera transform, broadcast on ``/tf_static``.

``tf2_ros`` comes with a ROS 2 install (not with the PyPI wheels): without it the node
logs that it broadcasts nothing and goes on; poses and markers still carry their frame.
"""

from __future__ import annotations

from typing import Any

from builtin_interfaces.msg import Time
from geometry_msgs.msg import TransformStamped
from rclpy.node import Node

from mouse_lifter_ros.core.arena import ArenaCalibration


def camera_transform(arena: ArenaCalibration, parent: str, child: str,
                     stamp: Time) -> TransformStamped:
    """The camera frame ``child`` in the arena frame ``parent`` (metres, REP-103)."""
    msg = TransformStamped()
    msg.header.stamp = stamp
    msg.header.frame_id = parent
    msg.child_frame_id = child
    t, q = msg.transform.translation, msg.transform.rotation
    t.x, t.y, t.z = (float(v) for v in arena.camera_position)
    q.x, q.y, q.z, q.w = (float(v) for v in arena.camera_orientation)
    return msg


def broadcast_camera(node: Node, arena: ArenaCalibration, parent: str, child: str) -> Any:
    """Broadcast ``parent`` -> ``child`` once (latched); return the broadcaster, or None
    where ``child`` is empty or ``tf2_ros`` is not installed."""
    if not child:
        return None
    try:
        from tf2_ros.static_transform_broadcaster import StaticTransformBroadcaster
    except ImportError:
        node.get_logger().info(f"tf2_ros is not installed: no {parent} -> {child} transform "
                               "on /tf_static")
        return None
    broadcaster = StaticTransformBroadcaster(node)
    broadcaster.sendTransform(camera_transform(arena, parent, child,
                                               node.get_clock().now().to_msg()))
    return broadcaster
