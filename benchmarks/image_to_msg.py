"""Time turning a frame into a sensor_msgs/Image, against the two-copy baseline.

    tools/ros-env.sh python benchmarks/image_to_msg.py

Prints microseconds per frame (best of 5 x 200) for a full 640x480 bgr8 frame and for
a 640x480 crop of a 1920x1080 frame, with the node's path (nodes._ros.to_image_msg:
frombytes into the message's own array) and the baseline that assigns ``msg.data``
(rclpy's setter copies the buffer once more). Figures depend on the allocator: large
fresh buffers cost page faults, so the run keeps the previous message alive, as a
node does until publish() returns.
"""

from __future__ import annotations

import array
import timeit

import numpy as np
from builtin_interfaces.msg import Time
from sensor_msgs.msg import Image

from mouse_lifter_ros.core.images import numpy_to_image_fields
from mouse_lifter_ros.nodes._ros import to_image_msg


def baseline(image: np.ndarray) -> Image:
    fields = numpy_to_image_fields(image, "bgr8")
    msg = Image(height=fields.height, width=fields.width, encoding="bgr8", step=fields.step)
    data = array.array("B")
    data.frombytes(fields.data)
    msg.data = data
    return msg


def best_us(fn: object, image: np.ndarray) -> float:
    keep = [None]

    def once() -> None:
        keep[0] = fn(image)  # type: ignore[operator]

    return min(timeit.repeat(once, number=200, repeat=5)) / 200 * 1e6


def main() -> None:
    rng = np.random.default_rng(0)
    full = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    crop = rng.integers(0, 256, (1080, 1920, 3), dtype=np.uint8)[300:780, 600:1240]
    stamp = Time()
    for name, image in (("full 640x480", full), ("crop 640x480 of 1080p", crop)):
        node = best_us(lambda im: to_image_msg(im, "bgr8", stamp, "cam"), image)
        base = best_us(baseline, image)
        print(f"{name:24s} to_image_msg {node:7.1f} us   baseline {base:7.1f} us   "
              f"speed-up x{base / node:.1f}")


if __name__ == "__main__":
    main()
