"""Tests of mouse_lifter_ros.core.democlip (the rendered demo clip) and its calibration file."""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from mouse_lifter_ros.core.bag import bag_topics
from mouse_lifter_ros.core.body import KEYPOINTS
from mouse_lifter_ros.core.calibration import load_calibration
from mouse_lifter_ros.core.camera import Camera
from mouse_lifter_ros.core.democlip import (
    DEMO_CAMERA,
    SCRIPT,
    demo_calibration,
    demo_camera,
    demo_frames,
    demo_samples,
    truth_bouts,
    write_demo_clip,
)

DEMO_YAML = Path(__file__).resolve().parents[2] / "config" / "calibration" / "demo_camera.yaml"
W, H = demo_calibration().width, demo_calibration().height
KP = {k: i for i, k in enumerate(KEYPOINTS)}


def test_frames_shape_and_count() -> None:
    frames = list(demo_frames(seconds=1.0, fps=12.0))
    assert len(frames) == 12
    for frame in frames:
        assert frame.shape == (H, W) and frame.dtype == np.uint8


def test_same_seed_same_pixels_other_seed_other_noise() -> None:
    a = list(itertools.islice(demo_frames(seconds=1.0, fps=10.0, seed=0), 3))
    b = list(itertools.islice(demo_frames(seconds=1.0, fps=10.0, seed=0), 3))
    c = list(itertools.islice(demo_frames(seconds=1.0, fps=10.0, seed=1), 3))
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x, y)
    assert any(not np.array_equal(x, z) for x, z in zip(a, c, strict=True))


def test_the_clip_walks_rears_and_grooms_in_the_arena() -> None:
    rows = list(demo_samples(fps=10.0))
    labels = [label for _, label, _ in rows]
    bouts = [k for k, _ in itertools.groupby(labels)]
    assert bouts == [name for name, _ in SCRIPT]
    assert len(rows) == round(sum(d for _, d in SCRIPT) * 10.0)
    nose_z = np.array([s.keypoints_arena[KP["nose"], 2] for s, _, _ in rows])
    rear = np.array([lab == "rear" for lab in labels])
    assert nose_z[rear].max() > 0.06 and nose_z[~rear].max() < 0.05
    for i, (s, _, _) in enumerate(rows):
        assert s.mask.sum() > 1500, f"frame {i}: the mouse covers only {s.mask.sum()} px"
        ys, xs = np.nonzero(s.mask)
        assert xs.min() > 0 and xs.max() < W - 1 and ys.min() > 0 and ys.max() < H - 1, i
        # the mouse is darker than the floor around it
        assert s.image[s.mask > 0].mean() < s.image[s.mask == 0].mean() - 60
    centre = np.array([s.keypoints_2d[KP["spine_center"]] for s, _, _ in rows])
    walked = np.linalg.norm(centre[: labels.index("rear")] - centre[0], axis=1).max()
    assert walked > 100, f"the walk covers only {walked:.0f} px"


def test_demo_camera_yaml_matches_demo_calibration() -> None:
    loaded, drawn = load_calibration(DEMO_YAML), demo_calibration()
    assert (loaded.width, loaded.height) == (drawn.width, drawn.height)
    assert (drawn.width, drawn.height) == (DEMO_CAMERA["image_width"], DEMO_CAMERA["image_height"])
    assert np.array_equal(loaded.k, drawn.k)
    assert loaded.is_calibrated
    assert loaded == drawn  # name, distortion, R and P too
    assert np.array_equal(demo_camera().K, drawn.k)


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
    # the ground truth: one row per frame, pixels that the saved camera reproduces
    with clip.truth.open(newline="") as fh:
        truth = list(csv.DictReader(fh))
    bouts = truth_bouts(clip.truth)
    assert [b[0] for b in bouts] == ["locomotion", "rearing", "locomotion", "grooming"]
    assert bouts[0][1] == 0 and bouts[-1][2] == 9
    assert all(a[2] + 1 == b[1] for a, b in itertools.pairwise(bouts))  # contiguous
    assert bouts[1][3] == pytest.approx(bouts[1][1] / 10.0, abs=1e-5)  # times, seconds
    assert [int(r["frame"]) for r in truth] == list(range(10))
    scene = json.loads(clip.scene.read_text())
    camera = Camera.from_dict(scene["camera"])
    for r in truth:
        arena = np.array([[float(r[f"{k}_{a}_m"]) for a in "xyz"] for k in KEYPOINTS])
        px, _ = camera.project(arena)
        uv = np.array([[float(r[f"{k}_u"]), float(r[f"{k}_v"])] for k in KEYPOINTS])
        assert np.abs(px - uv).max() < 0.01


def test_write_demo_clip_replaces_an_existing_clip(tmp_path: Path) -> None:
    write_demo_clip(tmp_path, seconds=1.0, fps=10.0)
    clip = write_demo_clip(tmp_path, seconds=0.5, fps=10.0)
    assert clip.frames == 5
    counts = {t.name: t.count for t in bag_topics(clip.bag)}
    assert counts == {"/camera/image_raw": 5, "/camera/camera_info": 5}
