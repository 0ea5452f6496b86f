"""A short top-view clip of a drawn mouse, made here, for the demo and the tests.

A stand-in until the synthetic data engine renders the articulated body model: a dark
body, head, ears and tail drawn over a lit white arena with sensor noise, walking a
loop, then pausing with a short body (as when rearing) and wiggling (as when grooming).
It needs no outside data and the same arguments give the same pixels.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from mouse_lifter_ros.core.bag import write_image_bag
from mouse_lifter_ros.core.calibration import (
    CameraCalibration,
    camera_info_fields,
    parse_calibration,
)
from mouse_lifter_ros.core.video import write_video

#: The demo camera: 640x480 pinhole, no distortion; config/calibration/demo_camera.yaml.
WIDTH, HEIGHT = 640, 480
DEMO_CAMERA: dict[str, object] = {
    "image_width": WIDTH,
    "image_height": HEIGHT,
    "camera_name": "demo_top_camera",
    "camera_matrix": {"rows": 3, "cols": 3,
                      "data": [600.0, 0.0, 319.5, 0.0, 600.0, 239.5, 0.0, 0.0, 1.0]},
    "distortion_model": "plumb_bob",
    "distortion_coefficients": {"rows": 1, "cols": 5, "data": [0.0] * 5},
}


@dataclass(frozen=True)
class DemoClip:
    """Paths of a written demo clip."""

    video: Path
    bag: Path
    frames: int
    fps: float


def demo_calibration() -> CameraCalibration:
    """The intrinsics the demo clip is drawn with."""
    return parse_calibration(DEMO_CAMERA, source="demo camera")


def demo_frames(seconds: float = 4.0, fps: float = 30.0, seed: int = 0) -> Iterator[np.ndarray]:
    """Yield the clip's frames, each (480, 640) uint8 grey.

    The first half walks a loop, the next quarter stands with a short body (rearing),
    the last quarter wiggles the head (grooming).
    """
    rng = np.random.default_rng(seed)
    h, w = HEIGHT, WIDTH
    yy, xx = np.mgrid[0:h, 0:w]
    floor = (225 - 30 * ((xx - w / 2) ** 2 + (yy - h / 2) ** 2) / (w * w / 4)).astype(np.uint8)
    cv2.rectangle(floor, (20, 20), (w - 21, h - 21), 120, 3)  # arena wall
    n = max(1, round(seconds * fps))
    for i in range(n):
        phase = i / n
        walk = min(phase, 0.5) / 0.5
        angle = 2 * math.pi * walk
        cx, cy = w / 2 + 170 * math.cos(angle), h / 2 + 110 * math.sin(angle)
        heading = angle + math.pi / 2
        length = 60.0 if phase < 0.5 or phase >= 0.75 else 38.0  # rearing: foreshortened
        wiggle = 0.35 * math.sin(2 * math.pi * 6 * phase) if phase >= 0.75 else 0.0
        frame = floor.copy()
        _draw_mouse(frame, (cx, cy), heading, length, wiggle)
        noise = rng.normal(0.0, 3.0, frame.shape)
        yield np.clip(frame + noise, 0, 255).astype(np.uint8)


def _draw_mouse(img: np.ndarray, centre: tuple[float, float], heading: float,
                length: float, wiggle: float) -> None:
    ux, uy = math.cos(heading), math.sin(heading)
    cx, cy = centre

    def at(d: float, side: float = 0.0) -> tuple[int, int]:
        return (round(cx + d * ux - side * uy), round(cy + d * uy + side * ux))

    body_deg = math.degrees(heading)
    cv2.ellipse(img, at(0), (round(length / 2), 17), body_deg, 0, 360, 35, -1, cv2.LINE_AA)
    hx, hy = cx + (length / 2 + 6) * ux, cy + (length / 2 + 6) * uy
    hdir = heading + wiggle
    cv2.ellipse(img, (round(hx), round(hy)), (16, 11), math.degrees(hdir), 0, 360, 30, -1,
                cv2.LINE_AA)
    for side in (-9.0, 9.0):
        ex = round(hx - 4 * math.cos(hdir) - side * math.sin(hdir))
        ey = round(hy - 4 * math.sin(hdir) + side * math.cos(hdir))
        cv2.circle(img, (ex, ey), 6, 55, -1, cv2.LINE_AA)
    tail = np.array([at(-length / 2 - t, 6 * math.sin(t / 12)) for t in range(0, 70, 5)])
    cv2.polylines(img, [tail.astype(np.int32)], False, 70, 3, cv2.LINE_AA)


def write_demo_clip(out_dir: str | Path, *, seconds: float = 4.0, fps: float = 30.0,
                    seed: int = 0) -> DemoClip:
    """Write ``demo.mp4`` and the rosbag2 folder ``demo_bag`` (image + camera_info).

    An existing clip in ``out_dir`` is replaced.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    video, bag = out / "demo.mp4", out / "demo_bag"
    frames = list(demo_frames(seconds, fps, seed))
    write_video(video, frames, fps)
    if bag.exists():
        shutil.rmtree(bag)
    info = camera_info_fields(demo_calibration())
    write_image_bag(bag, frames, fps=fps, encoding="mono8", camera_info=info)
    return DemoClip(video, bag, len(frames), fps)
