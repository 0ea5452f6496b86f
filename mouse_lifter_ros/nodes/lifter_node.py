"""lifter_node: 2D keypoints + depth -> the mouse's 3D pose in the arena.

Subscribes to ``keypoints`` (``Keypoints2D``, reliable) and ``depth/image`` with
``depth/camera_info`` (latest-frame QoS, as the depth node publishes them), pairs them by
the source image's stamp (:class:`~mouse_lifter_ros.core.lifter.StampPairer`: bounded,
an unmatched message is dropped and counted, nothing blocks) and lifts each pair
(:class:`~mouse_lifter_ros.core.lifter.Lifter`: depth sampled at each keypoint,
back-projected, body model fitted, occluded keypoints filled, one-euro filtered).

Publishes ``pose`` (``Pose3D``, reliable, arena frame ``frame_id`` with z from the
bedding the calibration gives, metres; the source image's stamp), ``markers`` (keypoints
green where observed, grey where filled, and the skeleton, for RViz) and ``/diagnostics``
(frame rate, drops, latency p50/p99) every ``diagnostics_period``. Frames without a
mouse publish nothing and are counted. With ``tf2_ros`` it broadcasts the calibrated
``frame_id`` -> ``camera_frame`` on /tf_static."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Point
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image
from visualization_msgs.msg import MarkerArray

from mouse_lifter_ros.core.arena import ArenaCalibration, load_arena
from mouse_lifter_ros.core.body import KEYPOINTS
from mouse_lifter_ros.core.bodyfit import SPINE_SCALE_PAIRS
from mouse_lifter_ros.core.errors import InputError
from mouse_lifter_ros.core.images import image_to_numpy
from mouse_lifter_ros.core.lifter import (
    Lifted,
    Lifter,
    StampPairer,
    keypoints_by_name,
    sample_depth,
)
from mouse_lifter_ros.core.node_params import LIFTER_PARAMS
from mouse_lifter_ros.core.stats import StreamStats
from mouse_lifter_ros.msg import Keypoints2D, Pose3D
from mouse_lifter_ros.nodes._ros import (
    PAIRING_QOS,
    PUBLISH_QOS,
    RELIABLE_QOS,
    declare_parameters,
    resolve_path,
    run,
    skeleton_markers,
    stamp_ns,
)
from mouse_lifter_ros.nodes._tf import broadcast_camera


class LifterNode(Node):
    """Pair keypoints with depth; publish Pose3D, markers and diagnostics."""

    def __init__(self) -> None:
        super().__init__("lifter")
        p = declare_parameters(self, LIFTER_PARAMS)
        self.arena = load_arena(resolve_path(p["arena_file"]))
        self.frame_id = p["frame_id"]
        self.lifter_args: dict[str, Any] = {
            "p_cutoff": p["p_cutoff"], "scale": p["body_scale"] or None,
            "iterations": p["iterations"], "min_cutoff": p["min_cutoff"], "beta": p["beta"],
            "scale_pairs": SPINE_SCALE_PAIRS}  # our 2D model's ears follow DLC's labellers
        self.lifters: dict[tuple[int, int], Lifter] = {}
        # the lifter of the calibrated frame size is ready before the first frame
        self._lifter(self.arena.width, self.arena.height)
        self.pairer: StampPairer[Keypoints2D, tuple[Image, tuple[int, int]]] = \
            StampPairer(p["queue_size"])
        self.rois: OrderedDict[int, tuple[int, int]] = OrderedDict()
        self.roi_capacity = 2 * p["queue_size"]
        self.no_roi = self.no_mouse = self.skipped = 0
        self.lift_s = 0.0
        self.stats = StreamStats()
        self.pub = self.create_publisher(Pose3D, "pose", PUBLISH_QOS)
        self.marker_pub = (self.create_publisher(MarkerArray, "markers", RELIABLE_QOS)
                           if p["markers"] else None)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", RELIABLE_QOS)
        self.kp_sub = self.create_subscription(Keypoints2D, "keypoints", self._on_keypoints,
                                               RELIABLE_QOS)
        self.create_subscription(CameraInfo, "depth/camera_info", self._on_info,
                                 PAIRING_QOS)
        self.depth_sub = self.create_subscription(Image, "depth/image", self._on_depth,
                                                  PAIRING_QOS)
        self.create_timer(p["diagnostics_period"], self._diagnostics)
        self.tf = broadcast_camera(self, self.arena, self.frame_id, p["camera_frame"])
        self.get_logger().info(
            f"arena {p['arena_file']} ({self.arena.describe()}); body scale "
            f"{p['body_scale'] or 'estimated'}; {self.kp_sub.topic_name} + "
            f"{self.depth_sub.topic_name} -> {self.pub.topic_name}")

    def _lifter(self, width: int, height: int) -> Lifter:
        lifter = self.lifters.get((width, height))
        if lifter is None:
            arena: ArenaCalibration = self.arena.scaled(width, height)
            lifter = self.lifters[(width, height)] = Lifter(arena.camera, **self.lifter_args)
        return lifter

    def _on_info(self, msg: CameraInfo) -> None:
        self.rois[stamp_ns(msg.header.stamp)] = (msg.roi.x_offset, msg.roi.y_offset)
        while len(self.rois) > self.roi_capacity:
            self.rois.popitem(last=False)

    def _on_depth(self, msg: Image) -> None:
        stamp = stamp_ns(msg.header.stamp)
        offset = self.rois.pop(stamp, None)
        if offset is None:  # its camera_info was lost: the window's place is unknown
            self.no_roi += 1
            return
        for pair in self.pairer.push_depth(stamp, (msg, offset)):
            self._lift(*pair)

    def _on_keypoints(self, msg: Keypoints2D) -> None:
        for pair in self.pairer.push_keypoints(stamp_ns(msg.header.stamp), msg):
            self._lift(*pair)

    def _lift(self, stamp: int, kp: Keypoints2D, depth: tuple[Image, tuple[int, int]]) -> None:
        image, offset = depth
        xy = np.stack([np.asarray(kp.x, np.float64), np.asarray(kp.y, np.float64)], axis=1)
        if image.width == 0 or not np.isfinite(xy).any():
            self.no_mouse += 1
            return
        start = time.perf_counter()
        try:
            if image.encoding != "32FC1":
                raise InputError(f"depth image encoding {image.encoding!r}: 32FC1 needed")
            xy, conf = keypoints_by_name(tuple(kp.names), xy,
                                         np.asarray(kp.confidence, np.float64))
            lifter = self._lifter(kp.image_width, kp.image_height)
            d = lifter.keypoint_depth(sample_depth(image_to_numpy(image), offset, xy))
            lifted = lifter.lift(stamp * 1e-9, xy, conf, d)
        except InputError as exc:
            self.skipped += 1
            self.get_logger().warning(f"frame skipped: {exc}", throttle_duration_sec=5.0)
            return
        self.lift_s += time.perf_counter() - start
        self.pub.publish(self._pose(kp, lifted))
        self.stats.add(stamp, self.get_clock().now().nanoseconds)
        if self.marker_pub is not None:
            self.marker_pub.publish(skeleton_markers(kp.header.stamp, self.frame_id,
                                                     lifted.positions, lifted.valid))

    def _pose(self, kp: Keypoints2D, lifted: Lifted) -> Pose3D:
        msg = Pose3D(names=list(KEYPOINTS), valid=lifted.valid.tolist(),
                     residual=float(lifted.residual_px), surface_height=self.arena.bedding)
        msg.header.stamp = kp.header.stamp
        msg.header.frame_id = self.frame_id
        msg.source_stamp = kp.header.stamp
        msg.positions = [Point(x=x, y=y, z=z) for x, y, z in lifted.positions.tolist()]
        msg.confidence = lifted.confidence.astype(np.float32).tolist()
        c = lifted.centroid.tolist()
        msg.body_pose.position = Point(x=c[0], y=c[1], z=c[2])
        msg.body_pose.orientation.z = math.sin(lifted.heading / 2)
        msg.body_pose.orientation.w = math.cos(lifted.heading / 2)
        return msg

    def _status(self) -> DiagnosticStatus:
        s = self.stats.summary()
        kp_drop, depth_drop = self.pairer.dropped_keypoints, self.pairer.dropped_depth
        drops = kp_drop + depth_drop + self.no_roi + self.skipped
        level = DiagnosticStatus.OK if s.count and drops <= s.count // 20 else \
            DiagnosticStatus.WARN
        values = {"frame_rate_hz": f"{s.rate_hz:.2f}", "poses": str(s.count),
                  "latency_p50_ms": f"{s.latency_p50_ms:.1f}",
                  "latency_p99_ms": f"{s.latency_p99_ms:.1f}",
                  "lift_mean_ms": f"{1e3 * self.lift_s / max(s.count, 1):.2f}",
                  "dropped_keypoints": str(kp_drop), "dropped_depth": str(depth_drop),
                  "depth_without_camera_info": str(self.no_roi),
                  "frames_without_mouse": str(self.no_mouse), "skipped": str(self.skipped)}
        return DiagnosticStatus(
            level=level, name=f"{self.get_fully_qualified_name()}: lifter",
            hardware_id=self.frame_id,
            message=f"{s.rate_hz:.1f} Hz, {drops} dropped, latency p50 "
                    f"{s.latency_p50_ms:.1f} ms",
            values=[KeyValue(key=k, value=v) for k, v in values.items()])

    def _diagnostics(self) -> None:
        msg = DiagnosticArray(status=[self._status()])
        msg.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(msg)

    def close(self) -> None:
        """Log the totals."""
        st = self._status()
        self.get_logger().info("total: " + ", ".join(f"{kv.key} {kv.value}"
                                                     for kv in st.values))


def main(args: list[str] | None = None) -> int:
    """Run the node; the exit code says how it ended (0 ok, 1 bad file, 2 parameters)."""
    return run(LifterNode, args)
