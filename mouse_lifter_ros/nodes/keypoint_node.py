"""keypoint_node: 2D keypoints of the mouse in every image it can keep up with.

Subscribes to ``image`` (``sensor_msgs/Image``, latest-frame QoS: best effort, depth 1,
so a slow model skips frames instead of building a backlog) and publishes one
``Keypoints2D`` per image on ``keypoints`` (reliable), stamped with the image's stamp
and frame, coordinates in pixels of the full image, NaN below ``p_cutoff``. The model
(:class:`mouse_lifter_ros.core.keypoints.KeypointModel`) finds the mouse and runs the
keypoint network on a crop around it. mono8 and bgr8 images are used in place (no copy);
rgb8, bgra8 and rgba8 as BGR views. A missing or corrupt model is one error and exit 1.
"""

from __future__ import annotations

import array
import time
from dataclasses import replace

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import Image

from mouse_lifter_ros.core.arena import load_arena
from mouse_lifter_ros.core.errors import InputError
from mouse_lifter_ros.core.images import image_to_grey_or_bgr
from mouse_lifter_ros.core.keypoints import KeypointModel, check_model_view, load_model_spec
from mouse_lifter_ros.core.node_params import KEYPOINT_PARAMS
from mouse_lifter_ros.core.process import lower_priority
from mouse_lifter_ros.core.stats import StageCounts
from mouse_lifter_ros.core.tracking import MouseTracker
from mouse_lifter_ros.msg import Keypoints2D
from mouse_lifter_ros.nodes._diagnostics import publish_stage
from mouse_lifter_ros.nodes._ros import (
    LATEST_FRAME_QOS,
    PUBLISH_QOS,
    declare_parameters,
    resolve_path,
    run,
)


def _floats(values: np.ndarray) -> array.array:  # type: ignore[type-arg]
    """A float32 ``array.array``: what a float32[] message field takes without a check
    per element."""
    return array.array("f", np.ascontiguousarray(values, np.float32).tobytes())


class KeypointNode(Node):
    """Run the 2D keypoint model on each image; publish the keypoints."""

    def __init__(self) -> None:
        super().__init__("keypoint")
        p = declare_parameters(self, KEYPOINT_PARAMS)
        if (why := lower_priority(p["niceness"])) is not None:  # before the networks' threads
            self.get_logger().warning(why)
        self.p_cutoff = p["p_cutoff"]
        self.roi = tuple(p["crop"]) if any(p["crop"]) else None
        path = resolve_path(p["model"]) if p["model"] else None
        view = p["view"] or (load_arena(resolve_path(p["arena_file"])).view
                             if p["arena_file"] else "top")
        spec = load_model_spec(path, view=view)
        spec = replace(spec, tail_crop=spec.tail_crop and p["tail_crop"],
                       turn_test=spec.turn_test and p["turn_test"])
        self.model = KeypointModel(spec, device=p["device"], threads=p["threads"], view=view)
        check_model_view(self.model.spec, view)
        self.tracker = (MouseTracker(self.model.detector, redetect_every=p["redetect_every"],
                                     scan_every=p["scan_every"])
                        if self.model.detector is not None else None)
        self.counts = StageCounts()
        publish_stage(self, "keypoints", lambda: (
            self.counts.skipped == 0, self.counts.line("keypoint messages"),
            self.counts.values()))
        self.pub = self.create_publisher(Keypoints2D, "keypoints", PUBLISH_QOS)
        self.sub = self.create_subscription(Image, "image", self._on_image, LATEST_FRAME_QOS)
        self.get_logger().info(
            f"model {self.model.spec.path} ({view} view): {self.model.description}; p_cutoff "
            f"{self.p_cutoff:g}, crop {list(self.roi) if self.roi else 'none'}, threads "
            f"{p['threads'] or 'default'}, tail crop {'on' if spec.tail_crop else 'off'}, "
            f"turn test {'on' if spec.turn_test else 'off'}; "
            f"{self.sub.topic_name} -> {self.pub.topic_name}")

    def _on_image(self, msg: Image) -> None:
        c = self.counts
        c.frames_in += 1
        try:
            frame = image_to_grey_or_bgr(msg)
            start = time.perf_counter()
            kp = self.model(frame, self.roi, tracker=self.tracker).with_cutoff(self.p_cutoff)
            c.busy_s += time.perf_counter() - start
        except InputError as exc:
            c.skipped += 1
            self.get_logger().warning(f"image skipped: {exc}", throttle_duration_sec=5.0)
            return
        if kp.detection is not None and not kp.detection.found:
            c.no_mouse += 1
        out = Keypoints2D(names=list(kp.names), x=_floats(kp.xy[:, 0]), y=_floats(kp.xy[:, 1]),
                          confidence=_floats(kp.confidence), image_width=msg.width,
                          image_height=msg.height)
        out.header = msg.header
        self.pub.publish(out)
        c.frames_out += 1

    def close(self) -> None:
        """Log the totals."""
        self.get_logger().info(f"total: {self.counts.line('keypoint messages')}")


def main(args: list[str] | None = None) -> int:
    """Run the node; the exit code says how it ended (0 ok, 1 model error, 2 parameters)."""
    return run(KeypointNode, args)
