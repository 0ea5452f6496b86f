"""Tests of mouse_lifter_ros.core.democlip (the drawn demo clip) and its calibration file."""

from __future__ import annotations

import itertools
from pathlib import Path

import cv2
import numpy as np
import pytest

from mouse_lifter_ros.core.bag import bag_topics
from mouse_lifter_ros.core.calibration import load_calibration
from mouse_lifter_ros.core.democlip import (
    DEMO_CAMERA,
    demo_calibration,
    demo_frames,
    write_demo_clip,
)

DEMO_YAML = Path(__file__).resolve().parents[2] / "config" / "calibration" / "demo_camera.yaml"
W, H = demo_calibration().width, demo_calibration().height
DARK = 90  # the mouse is drawn at 30..70 grey; the floor and the arena wall are lighter
WALL = 20  # the arena wall is drawn 20 px inside the frame


def first(n: int, seed: int = 0, seconds: float = 4.0, fps: float = 30.0) -> list[np.ndarray]:
    return list(itertools.islice(demo_frames(seconds, fps, seed), n))


def mouse_pixels(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.nonzero(frame < DARK)
    return ys, xs


def test_frames_shape_and_count() -> None:
    frames = list(demo_frames(seconds=1.0, fps=12.0))
    assert len(frames) == 12
    for frame in frames:
        assert frame.shape == (H, W) and frame.dtype == np.uint8


def test_same_seed_same_pixels_other_seed_other_noise() -> None:
    a, b, c = first(3, seed=0), first(3, seed=0), first(3, seed=1)
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x, y)
    for x, z in zip(a, c, strict=True):
        assert not np.array_equal(x, z)
        # only the sensor noise differs: the drawing is the same
        assert np.abs(x.astype(int) - z.astype(int)).mean() < 10


def test_the_mouse_moves_and_stays_in_the_arena() -> None:
    frames = list(demo_frames(seconds=4.0, fps=10.0))
    centres = []
    for i, frame in enumerate(frames):
        ys, xs = mouse_pixels(frame)
        assert xs.size > 1000, f"frame {i}: no mouse ({xs.size} dark pixels)"
        assert xs.min() > WALL and xs.max() < W - 1 - WALL, i
        assert ys.min() > WALL and ys.max() < H - 1 - WALL, i
        centres.append((xs.mean(), ys.mean()))
    step = np.hypot(*np.subtract(centres[1], centres[0]))
    assert step > 5.0, f"the mouse moved only {step:.1f} px between the first frames"
    # the walk covers much of the arena
    xs_c, ys_c = zip(*centres, strict=True)
    assert max(xs_c) - min(xs_c) > W / 3 and max(ys_c) - min(ys_c) > H / 3


def test_demo_camera_yaml_matches_demo_calibration() -> None:
    loaded, drawn = load_calibration(DEMO_YAML), demo_calibration()
    assert (loaded.width, loaded.height) == (drawn.width, drawn.height)
    assert (drawn.width, drawn.height) == (DEMO_CAMERA["image_width"], DEMO_CAMERA["image_height"])
    assert np.array_equal(loaded.k, drawn.k)
    assert loaded.is_calibrated
    assert loaded == drawn  # name, distortion, R and P too


def test_write_demo_clip(tmp_path: Path) -> None:
    clip = write_demo_clip(tmp_path / "out", seconds=1.0, fps=10.0)
    assert clip.frames == 10 and clip.fps == 10.0
    assert clip.video.is_file() and clip.video.suffix == ".mp4"
    cap = cv2.VideoCapture(str(clip.video))
    try:
        assert cap.isOpened()
        assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == clip.frames
        assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(10.0)
        ok, frame = cap.read()
        assert ok and frame.shape[:2] == (H, W)
        read = 1
        while cap.read()[0]:
            read += 1
        assert read == clip.frames
    finally:
        cap.release()
    topics = {t.name: t for t in bag_topics(clip.bag)}
    assert set(topics) == {"/camera/image_raw", "/camera/camera_info"}
    assert topics["/camera/image_raw"].count == topics["/camera/camera_info"].count == 10


def test_write_demo_clip_replaces_an_existing_clip(tmp_path: Path) -> None:
    write_demo_clip(tmp_path, seconds=1.0, fps=10.0)
    clip = write_demo_clip(tmp_path, seconds=0.5, fps=10.0)
    assert clip.frames == 5
    counts = {t.name: t.count for t in bag_topics(clip.bag)}
    assert counts == {"/camera/image_raw": 5, "/camera/camera_info": 5}
