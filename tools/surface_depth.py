"""Measure how far each keypoint lies beyond the surface a depth map sees over it.

    tools/ros-env.sh python tools/surface_depth.py [--count 150] [--seed 123] [--view top]

Renders ``--count`` random mice (shape, pose, scene, camera) from ``--view`` with the
synthetic engine, reads the true depth map over each keypoint as the lifter does
(:func:`mouse_lifter_ros.core.lifter.sample_depth`) and prints, per keypoint, the
keypoint's camera depth minus that reading, divided by the body scale: median and 10th /
90th percentiles over all draws, and the median over the draws where the keypoint is
visible. :data:`mouse_lifter_ros.core.lifter.SURFACE_DEPTH` holds the visible medians
(per view; the paws' are left out from above, where the body hides them).
"""

from __future__ import annotations

import argparse

import numpy as np

from mouse_lifter_ros.core.body import KEYPOINTS, forward_kinematics
from mouse_lifter_ros.core.lifter import SURFACE_DEPTH, sample_depth
from mouse_lifter_ros.core.synth.body import sample_shape
from mouse_lifter_ros.core.synth.motion import Arena, sample_pose
from mouse_lifter_ros.core.synth.render import render, sample_camera, sample_scene
from mouse_lifter_ros.core.views import VIEWS


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=150)
    ap.add_argument("--seed", type=int, default=123)
    ap.add_argument("--view", choices=VIEWS, default="top")
    ns = ap.parse_args()
    rng = np.random.default_rng(ns.seed)
    below, visible = [], []
    for _ in range(ns.count):
        shape = sample_shape(rng)
        scene = sample_scene(rng, view=ns.view, colour=False)
        camera = sample_camera(rng, scene, width=640, height=480)
        arena = Arena(size=scene.arena, wall_height=scene.wall_height)
        pose, _ = sample_pose(rng, shape, arena=arena)
        sample = render(shape, forward_kinematics(shape, pose), camera, scene, rng)
        reading = sample_depth(sample.depth, (0, 0), sample.keypoints_2d)
        below.append((sample.keypoints_camera[:, 2] - reading) / shape.scale)
        visible.append(sample.visible)
    d, v = np.array(below) * 1e3, np.array(visible)
    print(f"{ns.count} draws from the {ns.view}; keypoint depth beyond the surface seen over it, "
          "mm at scale 1")
    print(f"{'keypoint':14s} {'median':>7s} {'p10':>6s} {'p90':>6s} {'visible':>8s} "
          f"{'median':>7s} {'shipped':>8s}")
    for j, k in enumerate(KEYPOINTS):
        a, av = d[:, j], d[v[:, j], j]
        print(f"{k:14s} {np.nanmedian(a):7.1f} {np.nanpercentile(a, 10):6.1f} "
              f"{np.nanpercentile(a, 90):6.1f} {len(av):8d} {np.nanmedian(av):7.1f} "
              f"{SURFACE_DEPTH[ns.view][k] * 1e3:8.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
