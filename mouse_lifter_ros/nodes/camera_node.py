"""camera_node: frames from a camera device or a video file as sensor_msgs/Image.

Publishes ``image_raw`` (sensor_msgs/Image) and ``camera_info`` (sensor_msgs/CameraInfo,
REP-104: full-frame intrinsics, the crop in ``roi``), stamped at capture time, with the
latest-frame QoS. A video file that ends shuts the node down (exit 0) unless ``loop``;
a source that cannot be opened is one error and exit 1.
"""

from __future__ import annotations

from rclpy.time import Time
from sensor_msgs.msg import CameraInfo, Image

from mouse_lifter_ros.core.calibration import camera_info_fields, load_calibration, uncalibrated
from mouse_lifter_ros.core.node_params import CAMERA_PARAMS
from mouse_lifter_ros.core.video import FramePacer, VideoSource, VideoSourceConfig
from mouse_lifter_ros.nodes._ros import (
    LATEST_FRAME_QOS,
    declare_parameters,
    resolve_path,
    run,
    to_camera_info_msg,
    to_image_msg,
)
from mouse_lifter_ros.nodes._source import SourceNode


class CameraNode(SourceNode):
    """Capture in a thread of its own; publish each frame as soon as it is read."""

    def __init__(self) -> None:
        super().__init__("camera")
        p = declare_parameters(self, CAMERA_PARAMS)
        self.encoding, self.frame_id = p["encoding"], p["frame_id"]
        crop = tuple(p["crop"])
        self.source = VideoSource(VideoSourceConfig(
            source=p["source"], fps=p["fps"], width=p["width"], height=p["height"],
            crop=crop, loop=p["loop"], encoding=self.encoding,
        ))
        calib = (load_calibration(resolve_path(p["calibration_file"]))
                 if p["calibration_file"] else uncalibrated(*self.source.frame_size))
        info = camera_info_fields(calib, frame_size=self.source.frame_size,
                                  crop=crop if any(crop) else None)
        self.info_msg = to_camera_info_msg(info, self.get_clock().now().to_msg(), self.frame_id)
        self.image_pub = self.create_publisher(Image, "image_raw", LATEST_FRAME_QOS)
        self.info_pub = self.create_publisher(CameraInfo, "camera_info", LATEST_FRAME_QOS)
        if not calib.is_calibrated:
            # Not a problem for 3D: the depth and lifter nodes take the intrinsics from
            # their arena calibration, not from camera_info.
            self.get_logger().info("no calibration_file: camera_info carries K = 0 "
                                   "(uncalibrated); the depth and lifter nodes use the "
                                   "intrinsics of their arena calibration")
        w, h = self.source.output_size
        self.get_logger().info(
            f"publishing {p['source']} as {w}x{h} {self.encoding} at {self.source.fps:g} fps "
            f"on {self.image_pub.topic_name}")
        # A device cannot wait for the stages: it delivers at its own rate.
        self.start_source(self.image_pub, {**p, "when_busy": p["when_busy"]
                                           if self.source.is_file else "skip"},
                          wait=self.source.is_file)

    def produce(self) -> None:
        """Read, stamp and publish frames until the file ends or the node stops."""
        # Devices deliver at their own rate; files are paced to theirs (or to `fps`).
        pacer = FramePacer(self.source.fps if self.source.is_file else 0.0)
        interval = 1.0 / self.source.fps if self.source.fps > 0 else 0.0
        while not self.done.is_set():
            pacer.wait()
            frame = self.source.read()
            if frame is None:
                self.get_logger().info(
                    f"video ended after {self.source.frames_read} frames; shutting down")
                return
            captured = self.get_clock().now().nanoseconds
            if not self.reserve(interval):
                continue
            now = self.frame_stamp_ns(captured)
            self.sent(now)
            stamp = Time(nanoseconds=now).to_msg()
            self.image_pub.publish(to_image_msg(frame, self.encoding, stamp, self.frame_id))
            self.info_msg.header.stamp = stamp
            self.info_pub.publish(self.info_msg)

    def release(self) -> None:
        """Release the device or file."""
        self.source.close()


def main(args: list[str] | None = None) -> int:
    """Run the node; the exit code says how it ended (0 ok, 1 source error, 2 parameters)."""
    return run(CameraNode, args)
