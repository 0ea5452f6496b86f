#!/usr/bin/env python3
"""Draw docs/synth_vs_real.png: rendered top-view frames beside real open-field frames.

    tools/ros-env.sh python tools/synth_vs_real.py [--real ../shared/data/openfield-dlc/labeled]

Top rows: frames from `mouse-lifter synth` (seed 7, top view, 640x480, grey, the real
rig's look not forced), then one held-out frame of each scene kind the engine draws for
the detector's hard cases (a dark object near the mouse, infrared, bedding, a small mouse
in a large frame; :mod:`~mouse_lifter_ros.core.synth.heldout`); bottom rows: real frames
of the DeepLabCut openfield example and, where it is there, of the XMWell beige box
(`--real2`).
Each tile is scaled to 320x240 and captioned. It also prints head geometry as seen from
above, real labels against synthetic poses: snout to ear midpoint and ear spacing as
fractions of the snout to tail base distance (10/50/90th percentiles).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from mouse_lifter_ros.core.body import KEYPOINTS, forward_kinematics
from mouse_lifter_ros.core.pose_files import read_dlc_csv
from mouse_lifter_ros.core.synth.body import sample_shape
from mouse_lifter_ros.core.synth.dataset import SynthConfig, render_item
from mouse_lifter_ros.core.synth.heldout import HELD_OUT_KINDS, held_out_frame
from mouse_lifter_ros.core.synth.motion import sample_pose

ROOT = Path(__file__).resolve().parents[1]
TILE = (320, 240)


def _tile(image: np.ndarray, caption: str) -> np.ndarray:
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    tile = cv2.resize(grey, TILE, interpolation=cv2.INTER_AREA)
    tile = cv2.cvtColor(tile, cv2.COLOR_GRAY2BGR)
    cv2.rectangle(tile, (0, 0), (TILE[0] - 1, 17), (0, 0, 0), -1)
    cv2.putText(tile, caption, (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1,
                cv2.LINE_AA)
    return tile


def _head_ratios(snout: np.ndarray, left: np.ndarray, right: np.ndarray,
                 tail: np.ndarray) -> str:
    """(N, 2) points -> percentiles of the two head ratios, as text."""
    length = np.linalg.norm(snout - tail, axis=1)
    ear_mid = np.linalg.norm(snout - (left + right) / 2, axis=1) / length
    spacing = np.linalg.norm(left - right, axis=1) / length
    pct = [10, 50, 90]
    return (f"snout-ear midpoint {np.round(np.nanpercentile(ear_mid, pct), 3)}, "
            f"ear spacing {np.round(np.nanpercentile(spacing, pct), 3)} (n={len(length)})")


def _real_labels(labels: Path) -> str:
    df = read_dlc_csv(labels)

    def col(part: str) -> np.ndarray:
        sub = df.xs(part, level="bodyparts", axis=1)
        return np.column_stack([sub.xs("x", level="coords", axis=1).iloc[:, 0],
                                sub.xs("y", level="coords", axis=1).iloc[:, 0]])

    return _head_ratios(col("snout"), col("leftear"), col("rightear"), col("tailbase"))


def _synth_poses(n: int = 300) -> str:
    k = {name: i for i, name in enumerate(KEYPOINTS)}
    pts = []
    for seed in range(n):
        rng = np.random.default_rng(seed)
        shape = sample_shape(rng)
        pose, label = sample_pose(rng, shape)
        if label in ("walk", "trot", "turn", "sniff", "rest"):  # not rearing or grooming
            pts.append(forward_kinematics(shape, pose).keypoints[:, :2])
    a = np.array(pts)
    return _head_ratios(a[:, k["nose"]], a[:, k["left_ear"]], a[:, k["right_ear"]],
                        a[:, k["tail_base"]])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--real", type=Path,
                        default=ROOT.parent / "shared" / "data" / "openfield-dlc" / "labeled")
    parser.add_argument("--real2", type=Path,
                        default=ROOT.parent / "shared" / "data" / "xmwell-oft" / "labeled-data")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "synth_vs_real.png")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--cols", type=int, default=4)
    args = parser.parse_args()

    config = SynthConfig(count=args.cols * 2, seed=args.seed, view="top", colour=False)
    synth = []
    for item in range(config.count):
        drawn = render_item(config, item)
        sample, label, _ = next(drawn.frames)
        synth.append(_tile(sample.image, f"synth {item}: {drawn.shape.fur_name}, "
                                         f"{drawn.scene.floor} floor, {label}"))
    for kind in HELD_OUT_KINDS:
        f = held_out_frame(kind, args.seed, 0)
        synth.append(_tile(f.image, f"held-out {kind}, mouse {f.mouse_length_px:.0f} px"))
    real_files = sorted(args.real.glob("*.png"))
    if not real_files:
        raise SystemExit(f"no PNG frames in {args.real}")
    picks = [real_files[round(i * (len(real_files) - 1) / (args.cols * 2 - 1))]
             for i in range(args.cols * 2)]
    real = [_tile(cv2.imread(str(p), cv2.IMREAD_GRAYSCALE), f"real {p.name}") for p in picks]
    other = sorted(args.real2.glob("*/*.png"))
    real += [_tile(cv2.imread(str(p), cv2.IMREAD_COLOR), f"real xmwell {p.parent.name}/{p.name}")
             for p in other[:: max(1, len(other) // args.cols)][:args.cols]]
    rows = [np.hstack(synth[i:i + args.cols]) for i in range(0, len(synth), args.cols)]
    rows += [np.hstack(real[i:i + args.cols]) for i in range(0, len(real), args.cols)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), np.vstack(rows))
    print(f"wrote {args.out}")
    labels = args.real / "CollectedData.csv"
    if labels.is_file():
        print(f"real labels, head seen from above: {_real_labels(labels)}")
    print(f"synthetic poses, head seen from above: {_synth_poses()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
