"""recorder_node: 2D keypoints, 3D poses and behaviour to DeepLabCut and annotation files.

Subscribes to ``keypoints`` (``Keypoints2D``), ``pose`` (``Pose3D``) and ``behavior``
(``Behavior``), reliable with a deep queue (:func:`record_qos`); transient local by
default, so that what our publishers sent before discovery matched them still arrives,
and a warning names the ``durability`` parameter when a publisher cannot match. The core's
:class:`~mouse_lifter_ros.core.recorder.Recorder` pairs them by the source image's
stamp and writes every complete frame
(``<output_dir>/<prefix>.h5``, ``.csv`` and ``<prefix>_annotations.csv|parquet``). On
SIGINT or SIGTERM, ``close()`` drops the incomplete frames and closes the files, complete
up to the last frame written; the final log line says how many that is, and how many rows
each file could not take. A folder that cannot be written, or with less than
``min_free_mb`` free, stops the node at start-up (exit code 1); a write that fails later
(a full disk, a file-size limit: ``SIGXFSZ`` is ignored so that it is an error, not a
kill) is a throttled warning, and the node records on: it never takes the graph down.
A timer appends the rows held to the ``.h5`` every ``flush_period`` when frames stop.
With ``rosbag`` true it also writes every message of those topics and of ``trigger``
(``std_msgs/Bool``), as received, to the rosbag2 folder ``<output_dir>/<prefix>_bag``
(core :class:`~mouse_lifter_ros.core.bag.TopicBagWriter`), finished on close.
"""

from __future__ import annotations

import signal
from typing import Any

import numpy as np
from rclpy.event_handler import QoSRequestedIncompatibleQoSInfo, SubscriptionEventCallbacks
from rclpy.node import Node
from rclpy.qos import QoSPolicyKind
from rclpy.serialization import serialize_message
from std_msgs.msg import Bool

from mouse_lifter_ros.core.bag import TopicBagWriter
from mouse_lifter_ros.core.node_params import RECORDER_PARAMS
from mouse_lifter_ros.core.recorder import Behavior as BehaviorItem
from mouse_lifter_ros.core.recorder import Keypoints, Pose, Recorder, behavior_of
from mouse_lifter_ros.msg import Behavior, Keypoints2D, Pose3D
from mouse_lifter_ros.nodes._ros import declare_parameters, record_qos, run, stamp_ns

#: Log a progress line after every this many frames written.
LOG_EVERY = 100


class RecorderNode(Node):
    """Hand each message's content to the recorder."""

    def __init__(self) -> None:
        super().__init__("recorder")
        p = declare_parameters(self, RECORDER_PARAMS)
        self.recorder = Recorder(
            p["output_dir"], p["prefix"], fmt=p["annotations_format"],
            flush_period=p["flush_period"], min_free_mb=p["min_free_mb"],
            overwrite=p["overwrite"])
        # A file-size limit (RLIMIT_FSIZE) is then a failed write (EFBIG), not a kill.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        self._failed_writes = 0
        self.create_timer(p["flush_period"] / 4, self._poll)
        qos = record_qos(p["durability"])
        self._durability = p["durability"]

        def subscribe(msg_type: Any, topic: str, callback: Any) -> Any:
            events = SubscriptionEventCallbacks(
                incompatible_qos=lambda info: self._incompatible(topic, info))
            return self.create_subscription(msg_type, topic, callback, qos,
                                            event_callbacks=events)

        subs = [subscribe(Keypoints2D, "keypoints", self._on_keypoints),
                subscribe(Pose3D, "pose", self._on_pose),
                subscribe(Behavior, "behavior", self._on_behavior)]
        self.bag: TopicBagWriter | None = None
        if p["rosbag"]:
            from mouse_lifter_ros.runner import package_share

            subs.append(subscribe(Bool, "trigger", self._to_bag))
            self.bag = TopicBagWriter(
                f"{self.recorder.stem}_bag", storage=p["rosbag_storage"],
                topics={s.topic_name: _type_name(s.msg_type) for s in subs},
                definitions={_type_name(t): (package_share() / "msg" / f"{t.__name__}.msg")
                             .read_text() for t in (Keypoints2D, Pose3D, Behavior)})
        self.get_logger().info(
            f"recording to {self.recorder.stem}.h5, .csv and {self.recorder.annotations_path}"
            + (f", and the topics to {self.bag.path}" if self.bag else ""))
        self._topics = {s.msg_type: s.topic_name for s in subs}

    def _incompatible(self, topic: str, info: QoSRequestedIncompatibleQoSInfo) -> None:
        policy = QoSPolicyKind(info.last_policy_kind).name
        self.get_logger().warning(
            f"{topic}: {info.total_count} publisher(s) cannot match this subscription "
            f"(incompatible QoS policy {policy}). With durability {self._durability!r}, a "
            "publisher that offers only volatile is not recorded: set the recorder "
            "parameter durability to 'volatile' for it")

    def _to_bag(self, msg: Any) -> None:
        if self.bag is not None:
            try:
                self.bag.write(self._topics[type(msg)], self.get_clock().now().nanoseconds,
                               serialize_message(msg))
            except OSError as exc:  # a full disk: the bag misses it, the files go on
                self.get_logger().warning(f"{self.bag.path}: message not written: {exc}",
                                          throttle_duration_sec=5.0)

    def _poll(self) -> None:
        self.recorder.poll()
        self._report_failures()

    def _report_failures(self) -> None:
        """A warning (at most one per 5 s) when writes failed since the last one."""
        failed = self.recorder.failed_writes
        if failed > self._failed_writes:
            self._failed_writes = failed
            now = "; ".join(f"{p.name}: {f.rows} rows not written (last: {f.last})"
                            for p, f in self.recorder.failures.items() if f.writes)
            self.get_logger().warning(f"write failures, recording on: {now}",
                                      throttle_duration_sec=5.0)

    def _on_keypoints(self, msg: Keypoints2D) -> None:
        self._to_bag(msg)
        xy = np.stack([np.asarray(msg.x, dtype=np.float64),
                       np.asarray(msg.y, dtype=np.float64)], axis=1)
        item = Keypoints(tuple(msg.names), xy, np.asarray(msg.confidence, dtype=np.float64))
        self._add(stamp_ns(msg.header.stamp), "keypoints", item)

    def _on_pose(self, msg: Pose3D) -> None:
        self._to_bag(msg)
        positions = np.array([(q.x, q.y, q.z) for q in msg.positions], dtype=np.float64)
        self._add(stamp_ns(msg.source_stamp), "pose",
                  Pose(tuple(msg.names), positions.reshape(-1, 3)))

    def _on_behavior(self, msg: Behavior) -> None:
        self._to_bag(msg)
        self._add(stamp_ns(msg.header.stamp), "behavior",
                  behavior_of(msg.label, list(msg.class_names), list(msg.probabilities)))

    def _add(self, stamp: int, stream: str, item: Keypoints | Pose | BehaviorItem) -> None:
        try:
            written = self.recorder.add(stamp, stream, item)
        except ValueError as exc:  # a malformed message: one line, and keep recording
            self.get_logger().warning(f"{stream} message skipped: {exc}",
                                      throttle_duration_sec=5.0)
            return
        if written and self.recorder.frames % LOG_EVERY == 0:
            self.get_logger().info(f"{self.recorder.frames} frames written")
        self._report_failures()

    def close(self) -> None:
        """Close the files (the final .h5 and Parquet are written here); log the totals."""
        self.get_logger().info(f"closed: {self.recorder.close()}")
        if self.bag is not None:
            try:
                self.get_logger().info(
                    f"bag closed: {self.bag.close()} messages in {self.bag.path}")
            except OSError as exc:
                self.get_logger().error(f"{self.bag.path}: could not be finished: {exc}")


def _type_name(msg_type: Any) -> str:
    """``package/msg/Name`` of a generated message class."""
    return f"{msg_type.__module__.split('.')[0]}/msg/{msg_type.__name__}"


def main(args: list[str] | None = None) -> int:
    """Run the node until it is shut down."""
    return run(RecorderNode, args)
