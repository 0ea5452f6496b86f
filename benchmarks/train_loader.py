"""Batches per second of the training loader, built in the main process and by workers.

    tools/ros-env.sh python benchmarks/train_loader.py [--workers 0,1,2] [--batches 60]
        [--kind keypoints|detector|depth] [--count 64] [--cache DIR]

Renders ``--count`` synthetic samples of the kind (or reads them from ``--cache``), then
for each worker count draws ``--batches`` training batches of 32 through
:class:`~mouse_lifter_ros.training.loader.BatchLoader` as ``train-2d`` / ``train-depth``
do (crop, augmentation, targets), with nothing training: the rate at which batches can
be fed. The time counts from starting the workers to the last batch. Prints batches/s
and the ratio to 0 workers (the main process) of this run. Needs the ``train`` extra.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from mouse_lifter_ros.training.data2d import synth_detector_frames, synth_keypoint_windows
from mouse_lifter_ros.training.datadepth import synth_depth_crops
from mouse_lifter_ros.training.loader import BatchLoader
from mouse_lifter_ros.training.train2d import det_batch, kp_batch
from mouse_lifter_ros.training.traindepth import depth_batch

BATCH = 32


def make_batches(kind: str, count: int, cache: Path | None
                 ) -> Callable[[np.random.Generator], tuple[torch.Tensor, ...]]:
    if kind == "keypoints":
        windows = synth_keypoint_windows(count, 0, workers=2, cache=cache)
        return lambda r: kp_batch(windows, None, BATCH, 0, r)
    if kind == "detector":
        frames = synth_detector_frames(count, 0, workers=2, cache=cache)
        return lambda r: det_batch(frames, [], BATCH, 0, r)
    crops = synth_depth_crops(count, 0, workers=2, cache=cache)
    return lambda r: depth_batch(crops, r.integers(0, count, BATCH), r)


def rate(make: Callable[[np.random.Generator], Any], batches: int, workers: int) -> float:
    seeds = np.random.SeedSequence(0).spawn(batches)
    t0 = time.perf_counter()
    with BatchLoader(make, seeds, workers=workers) as loader:
        for _ in loader:
            pass
    return batches / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workers", default="0,1,2", help="worker counts, comma separated")
    ap.add_argument("--batches", type=int, default=60)
    ap.add_argument("--kind", default="keypoints", choices=("keypoints", "detector", "depth"))
    ap.add_argument("--count", type=int, default=64, help="synthetic samples rendered")
    ap.add_argument("--cache", default=None, help="folder keeping the rendered samples")
    ns = ap.parse_args()
    counts = [int(w) for w in ns.workers.split(",")]
    torch.set_num_threads(1)
    cv2.setNumThreads(1)  # as train-2d and train-depth run it
    make = make_batches(ns.kind, ns.count, Path(ns.cache) if ns.cache else None)
    rate(make, 2, 0)  # warm up: first calls, imports
    rows = [(w, rate(make, ns.batches, w)) for w in counts]
    base = dict(rows).get(0)
    print(f"\n{ns.kind} batches of {BATCH}, {ns.batches} per run, "
          f"{len(os.sched_getaffinity(0))} CPUs available")
    print(f"{'workers':>8} {'batches/s':>10} {'vs 0':>6}")
    for w, r in rows:
        ratio = f"{r / base:.2f}" if base else "-"
        print(f"{w:>8} {r:>10.1f} {ratio:>6}")


if __name__ == "__main__":
    main()
