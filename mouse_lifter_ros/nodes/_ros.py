"""ROS glue shared by the nodes: named QoS, parameters from specs, message conversion.

It converts between ROS types and the core's plain types: no image math, model or format.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from rclpy.utilities import try_shutdown
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

from mouse_lifter_ros.core.body import SKELETON_EDGES
from mouse_lifter_ros.core.calibration import CameraInfoFields
from mouse_lifter_ros.core.errors import MouseLifterError, ParameterError
from mouse_lifter_ros.core.images import numpy_to_image_fields
from mouse_lifter_ros.core.params import ParamSpec, validate
from mouse_lifter_ros.core.recorder import PUBLISHER_HISTORY
from mouse_lifter_ros.nodes._ready import announce_when_ready
from mouse_lifter_ros.nodes._signals import STOP

#: Images and camera info: only the newest frame matters; a late frame is worthless.
LATEST_FRAME_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                              reliability=ReliabilityPolicy.BEST_EFFORT,
                              durability=DurabilityPolicy.VOLATILE)

#: Depth images at the lifter, which pairs them by stamp: none replaced while it is busy.
PAIRING_QOS = QoSProfile(depth=4, reliability=ReliabilityPolicy.BEST_EFFORT)

#: Poses, behaviour and events: every message counts.
RELIABLE_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                          reliability=ReliabilityPolicy.RELIABLE,
                          durability=DurabilityPolicy.VOLATILE)

#: Keypoints, poses, behaviour and triggers: reliable, and the publisher keeps its last
#: PUBLISHER_HISTORY messages for readers that ask for them (transient local), such as the
#: recorder when discovery matches it late. Volatile readers receive only new messages.
PUBLISH_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=PUBLISHER_HISTORY,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)


def record_qos(durability: str) -> QoSProfile:
    """Recording: reliable, 1000 deep (5 s of three streams at 60 fps); ``"transient_local"``
    (cannot match a volatile publisher) or ``"volatile"``."""
    transient = durability == "transient_local"
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1000,
                      reliability=ReliabilityPolicy.RELIABLE,
                      durability=(DurabilityPolicy.TRANSIENT_LOCAL if transient
                                  else DurabilityPolicy.VOLATILE))


def declare_parameters(node: Node, specs: Sequence[ParamSpec]) -> dict[str, Any]:
    """Declare ``specs`` on ``node`` (read-only, described) and return validated values;
    with ``expect_publishers`` among them, start the node's start-up handshake.

    Raises
    ------
    ParameterError
        Listing every invalid value (see :func:`mouse_lifter_ros.core.params.validate`).
    """
    for spec in specs:
        descriptor = ParameterDescriptor(  # dynamic: 30 for a float, 30.0 for an int
            description=spec.description, additional_constraints=spec.allowed,
            read_only=True, dynamic_typing=True)
        node.declare_parameter(spec.name, spec.default, descriptor)
    values = validate(specs, {spec.name: node.get_parameter(spec.name).value for spec in specs},
                      owner=node.get_fully_qualified_name())
    announce_when_ready(node)  # a timer: it looks at the subscriptions made after this
    return values


def resolve_path(url: str) -> Path:
    """A file path from ``/abs/path``, ``file:///abs/path`` or ``package://pkg/rel/path``."""
    if url.startswith("file://"):
        return Path(url.removeprefix("file://"))
    if url.startswith("package://"):
        from ament_index_python.packages import get_package_share_directory

        package, _, rest = url.removeprefix("package://").partition("/")
        return Path(get_package_share_directory(package)) / rest
    return Path(url)


def to_image_msg(image: np.ndarray, encoding: str, stamp: Time, frame_id: str) -> Image:
    """A ``sensor_msgs/Image`` holding ``image`` (H, W[, C]), copied once into the message.

    The pixels go straight into the message's own ``data`` array: assigning ``msg.data``
    would run rclpy's setter, which copies the whole buffer again
    (``benchmarks/image_to_msg.py``). A crop is made contiguous first.
    """
    fields = numpy_to_image_fields(image, encoding)
    msg = Image(
        height=fields.height, width=fields.width, encoding=fields.encoding,
        is_bigendian=fields.is_bigendian, step=fields.step,
    )
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.data.frombytes(fields.data)
    return msg


def to_camera_info_msg(info: CameraInfoFields, stamp: Time, frame_id: str) -> CameraInfo:
    """A ``sensor_msgs/CameraInfo`` from the core's plain fields."""
    msg = CameraInfo(
        height=info.height, width=info.width, distortion_model=info.distortion_model,
        d=list(info.d), k=list(info.k), r=list(info.r), p=list(info.p),
        binning_x=info.binning_x, binning_y=info.binning_y,
    )
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.roi.x_offset, msg.roi.y_offset = info.roi_x_offset, info.roi_y_offset
    msg.roi.width, msg.roi.height = info.roi_width, info.roi_height
    msg.roi.do_rectify = info.roi_do_rectify
    return msg


def stamp_ns(stamp: Time) -> int:
    """Nanoseconds since the epoch of a ``builtin_interfaces/Time``."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def run(factory: Callable[[], Node], args: list[str] | None = None) -> int:
    """Create a node, spin it until it is done or signalled, and return an exit code.

    A :class:`ParameterError` at start-up exits with 2, any other core error (a source
    that cannot be opened, a bad file) with 1, each after one clear log line. A node
    may set ``done`` (a ``threading.Event``) to end on its own (a video ended) and
    ``exit_code``. SIGINT and SIGTERM, in any burst, end the spin (or the start: ``STOP``);
    ``close()`` then runs in a valid ROS context, to log and flush.
    """
    STOP.install()  # the executables install it first thing; again for other callers
    if STOP.requested:  # signalled while the process was still importing
        return 0
    # Not `with rclpy.init(...)`: Jazzy's init returns None (Kilted's a context manager).
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    try:
        try:
            node = factory()
        except MouseLifterError as exc:
            rclpy.logging.get_logger("mouse_lifter_ros").fatal(str(exc))
            return 2 if isinstance(exc, ParameterError) else 1
        done = getattr(node, "done", None) or threading.Event()
        try:
            while rclpy.ok() and not STOP.requested and not done.is_set():
                rclpy.spin_once(node, timeout_sec=0.1)
        except ExternalShutdownException:
            pass
        finally:
            if (close := getattr(node, "close", None)) is not None:
                close()
            STOP.finish(int(getattr(node, "exit_code", 0)))  # the teardown is bounded
            node.destroy_node()
        return int(getattr(node, "exit_code", 0))
    finally:
        try_shutdown()


_OBSERVED = ColorRGBA(r=0.1, g=0.9, b=0.2, a=1.0)
_FILLED = ColorRGBA(r=0.6, g=0.6, b=0.6, a=0.8)
_BONE = ColorRGBA(r=1.0, g=0.6, b=0.1, a=1.0)


def skeleton_markers(stamp: Time, frame_id: str, positions: np.ndarray, valid: np.ndarray
                     ) -> MarkerArray:
    """RViz markers of one pose: keypoints (14, 3) m as spheres, green where ``valid``
    (observed) and grey where the body model filled them in, and the skeleton's bones
    as orange lines; they expire after 0.5 s."""
    points = [Point(x=x, y=y, z=z) for x, y, z in np.asarray(positions).tolist()]
    dots = Marker(ns="mouse_lifter", id=0, type=Marker.SPHERE_LIST, action=Marker.ADD)
    dots.points = points
    dots.colors = [_OBSERVED if v else _FILLED for v in np.asarray(valid).tolist()]
    dots.scale.x = dots.scale.y = dots.scale.z = 0.006
    bones = Marker(ns="mouse_lifter", id=1, type=Marker.LINE_LIST, action=Marker.ADD)
    bones.points = [points[i] for edge in SKELETON_EDGES for i in edge]
    bones.color = _BONE
    bones.scale.x = 0.002
    for m in (dots, bones):
        m.header.stamp = stamp
        m.header.frame_id = frame_id
        m.pose.orientation.w = 1.0
        m.lifetime.nanosec = 500_000_000
    return MarkerArray(markers=[dots, bones])
