"""Samples per second of the synthetic renderer, one process and a pool of workers.

    tools/ros-env.sh python benchmarks/synth_render.py [--seconds 5] [--workers 2] [--motion]

Each sample is drawn independently as the dataset writer draws a still: a mouse
(``body.sample_shape``), a pose (the default pose with a random position, heading and
small spine and tail bends; with ``--motion``, ``motion.sample_pose``, whose own cost
is then included), a scene, a 640x480 camera, then either the full frame or a 256x256
window around the mouse (``mouse_window`` + ``Camera.crop``) is rendered. Every
process runs OpenCV on one thread, so "1 process" is one core. Prints a table of
samples/s and ms/sample.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import sys
import time
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from mouse_lifter_ros.core.body import BodyState, MouseShape, Pose, forward_kinematics
from mouse_lifter_ros.core.synth.body import sample_shape
from mouse_lifter_ros.core.synth.render import (
    mouse_window,
    render,
    sample_camera,
    sample_scene,
)

WIDTH, HEIGHT, CROP = 640, 480, 256
_MOTION: Callable[..., Any] | None = None  # motion.sample_pose with --motion


def _use_motion() -> bool:
    """Pick motion.sample_pose if that module is there (it is optional)."""
    global _MOTION
    try:
        from mouse_lifter_ros.core.synth.motion import sample_pose
    except ImportError:
        return False
    _MOTION = sample_pose
    return True


def _pose(rng: np.random.Generator, shape: MouseShape, arena: tuple[float, float],
          wall_height: float) -> BodyState:
    if _MOTION is not None:
        from mouse_lifter_ros.core.synth.motion import Arena

        pose, _ = _MOTION(rng, shape, arena=Arena(size=arena, wall_height=wall_height))
        return forward_kinematics(shape, pose)
    pose = Pose()
    margin = 0.06
    pose.position = np.array([rng.uniform(-arena[0] / 2 + margin, arena[0] / 2 - margin),
                              rng.uniform(-arena[1] / 2 + margin, arena[1] / 2 - margin),
                              0.012])
    pose.heading = float(rng.uniform(-math.pi, math.pi))
    pose.spine_yaw = rng.normal(0.0, 0.15, 5)
    pose.spine_pitch = pose.spine_pitch + rng.normal(0.0, 0.08, 5)
    pose.tail_yaw = rng.normal(0.0, 0.2, 8)
    pose.tail_pitch = rng.normal(0.0, 0.05, 8)
    return forward_kinematics(shape, pose)


def one_sample(args: tuple[int, bool]) -> int:
    """Draw and render sample ``seed``; ``crop`` renders a 256x256 window. Returns 1."""
    seed, crop = args
    rng = np.random.default_rng(np.random.SeedSequence([1234, seed]))
    shape = sample_shape(rng)
    scene = sample_scene(rng, view="top" if seed % 4 else "bottom")
    camera = sample_camera(rng, scene, width=WIDTH, height=HEIGHT)
    state = _pose(rng, shape, scene.arena, scene.wall_height)
    if crop:
        camera = camera.crop(*mouse_window(camera, state, (CROP, CROP), rng))
    render(shape, state, camera, scene, rng)
    return 1


def _init_worker(motion: bool) -> None:
    cv2.setNumThreads(1)
    if motion:
        _use_motion()


def _rate_single(crop: bool, seconds: float) -> float:
    for i in range(3):  # warm up caches and imports
        one_sample((10_000_000 + i, crop))
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        one_sample((n, crop))
        n += 1
    return n / (time.perf_counter() - start)


def _rate_pool(crop: bool, seconds: float, workers: int, motion: bool) -> float:
    ctx = multiprocessing.get_context("spawn" if sys.platform == "darwin" else "fork")
    with ctx.Pool(workers, initializer=_init_worker, initargs=(motion,)) as pool:
        pool.map(one_sample, [(10_000_000 + i, crop) for i in range(2 * workers)])
        total, start, batch = 0, time.perf_counter(), 16 * workers
        while time.perf_counter() - start < seconds:
            total += sum(pool.imap_unordered(one_sample,
                                             [(total + i, crop) for i in range(batch)]))
        return total / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="time per measurement")
    parser.add_argument("--workers", type=int, default=2, help="pool size")
    parser.add_argument("--motion", action="store_true",
                        help="draw poses with motion.sample_pose (its cost included)")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    motion = args.motion and _use_motion()
    if args.motion and not motion:
        print("motion.sample_pose is not available; using the jittered default pose")
    print(f"pose source: {'motion.sample_pose' if motion else 'jittered default Pose'}")
    print(f"{'image':<24}{'processes':>10}{'samples/s':>12}{'ms/sample':>12}")
    for crop, label in ((True, f"{CROP}x{CROP} crop"), (False, f"{WIDTH}x{HEIGHT} full")):
        for workers in (1, args.workers):
            rate = (_rate_single(crop, args.seconds) if workers == 1
                    else _rate_pool(crop, args.seconds, workers, motion))
            print(f"{label:<24}{workers:>10}{rate:>12.1f}{1000.0 / rate:>12.2f}", flush=True)


if __name__ == "__main__":
    main()
