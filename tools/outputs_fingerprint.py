"""Fingerprints of what the shipped models and the core compute, to show that a change
meant to keep behaviour (a restructuring) keeps it bit for bit.

    tools/ros-env.sh python tools/outputs_fingerprint.py [--seconds 3]

Runs the demo clip's frames (rendered by the synthetic engine) through the whole core
(:class:`~mouse_lifter_ros.core.pipeline.PosePipeline`: detector, keypoint and depth
networks, lifter) and the behaviour classifier, and prints one SHA-256 per output: 2D
keypoints and confidences, depth maps, depth readings, lifted 3D poses, behaviour labels
and probabilities, and the rendered frames themselves. Run it before and after: equal
lines mean equal outputs, to the last bit.
"""

from __future__ import annotations

import argparse
import hashlib
import sys

import numpy as np


def main() -> int:
    from mouse_lifter_ros.core.behavior import BehaviorClassifier
    from mouse_lifter_ros.core.democlip import demo_arena, demo_frames
    from mouse_lifter_ros.core.pipeline import PosePipeline

    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0,
                        help="length of the demo clip (its bouts scaled), seconds")
    ns = parser.parse_args()
    hashes = {name: hashlib.sha256() for name in (
        "frames", "keypoints_2d", "depth_maps", "depth_readings", "poses_3d", "behaviour")}
    pipe = PosePipeline(demo_arena(), threads=1)
    classifier = BehaviorClassifier()
    count = 0
    for i, frame in enumerate(demo_frames(ns.seconds)):
        t = i / 30.0
        hashes["frames"].update(np.ascontiguousarray(frame).tobytes())
        result = pipe(frame, t)
        kp = result.uncut if result.uncut is not None else result.keypoints
        hashes["keypoints_2d"].update(np.asarray(kp.xy, np.float64).tobytes())
        hashes["keypoints_2d"].update(np.asarray(kp.confidence, np.float64).tobytes())
        if result.depth.depth is not None:
            hashes["depth_maps"].update(np.asarray(result.depth.depth, np.float64).tobytes())
        hashes["depth_readings"].update(np.asarray(result.readings, np.float64).tobytes())
        if result.lifted is not None:
            lifted = result.lifted
            hashes["poses_3d"].update(np.asarray(lifted.positions, np.float64).tobytes())
            hashes["poses_3d"].update(np.asarray(lifted.valid, np.bool_).tobytes())
            label, names, p = classifier.update(t, lifted.positions, lifted.valid)
            hashes["behaviour"].update(f"{label}|{','.join(names)}".encode())
            hashes["behaviour"].update(np.asarray(p, np.float64).tobytes())
        count += 1
    print(f"{count} frames of the demo clip ({ns.seconds:g} s) through the core")
    for name, h in hashes.items():
        print(f"{name:15s} {h.hexdigest()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
