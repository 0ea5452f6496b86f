"""Measure how far each keypoint lies beyond the surface a depth map sees over it.

    tools/ros-env.sh python tools/surface_depth.py [--count 150] [--seed 123] [--view top]
        [--network]

Renders ``--count`` random mice (shape, pose, scene, camera) from ``--view`` with the
synthetic engine, reads the true depth map over each keypoint as the lifter does
(:func:`mouse_lifter_ros.core.lifter.sample_depth`) and prints, per keypoint, the
keypoint's camera depth minus that reading, divided by the body scale: median and 10th /
90th percentiles over all draws, and the median over the draws where the keypoint is
visible. With ``--network`` the reading is the shipped depth network's map of the
rendered image instead (the mouse found by its detector; draws where it finds none are
left out), at the true keypoints: what the lifter sees, the network's own bias included.
:data:`mouse_lifter_ros.core.lifter.SURFACE_DEPTH` holds the visible medians (from
below of ``--network``, from above of the true maps but for the nose; see there why and
which are left out).
"""

from __future__ import annotations

import argparse

import numpy as np

from mouse_lifter_ros.core.arena import arena_from_camera
from mouse_lifter_ros.core.body import KEYPOINTS, forward_kinematics
from mouse_lifter_ros.core.depth import DepthModel
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
    ap.add_argument("--network", action="store_true",
                    help="read the shipped depth network's map, not the true one")
    ns = ap.parse_args()
    rng = np.random.default_rng(ns.seed)
    below, visible = [], []
    skipped = 0
    network: DepthModel | None = None
    for _ in range(ns.count):
        shape = sample_shape(rng)
        scene = sample_scene(rng, view=ns.view, colour=False)
        camera = sample_camera(rng, scene, width=640, height=480)
        arena = Arena(size=scene.arena, wall_height=scene.wall_height)
        pose, _ = sample_pose(rng, shape, arena=arena)
        sample = render(shape, forward_kinematics(shape, pose), camera, scene, rng)
        if ns.network:
            arena_cal = arena_from_camera(camera)
            if network is None:
                network = DepthModel(arena=arena_cal)
            network.arena = arena_cal
            seen = network(sample.image)
            if not seen.found:
                skipped += 1
                continue
            reading = sample_depth(seen.depth, seen.roi[:2], sample.keypoints_2d)
        else:
            reading = sample_depth(sample.depth, (0, 0), sample.keypoints_2d)
        below.append((sample.keypoints_camera[:, 2] - reading) / shape.scale)
        visible.append(sample.visible)
    d, v = np.array(below) * 1e3, np.array(visible)
    source = "the shipped depth network's map" if ns.network else "the true depth map"
    print(f"{len(d)} draws from the {ns.view} ({skipped} without a mouse found); keypoint "
          f"depth beyond the surface {source} sees over it, mm at scale 1")
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
