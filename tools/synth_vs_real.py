#!/usr/bin/env python3
"""Draw docs/synth_vs_real.png: rendered top-view frames beside real open-field frames.

    tools/ros-env.sh python tools/synth_vs_real.py [--real ../shared/data/openfield-dlc/labeled]

Top rows: frames from `mouse-lifter synth` (seed 7, top view, 640x480, grey, the real
rig's look not forced); bottom rows: real frames of the DeepLabCut openfield example.
Each tile is scaled to 320x240 and captioned.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from mouse_lifter_ros.core.synth.dataset import SynthConfig, render_item

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--real", type=Path,
                        default=ROOT.parent / "shared" / "data" / "openfield-dlc" / "labeled")
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
    real_files = sorted(args.real.glob("*.png"))
    if not real_files:
        raise SystemExit(f"no PNG frames in {args.real}")
    picks = [real_files[round(i * (len(real_files) - 1) / (args.cols * 2 - 1))]
             for i in range(args.cols * 2)]
    real = [_tile(cv2.imread(str(p), cv2.IMREAD_GRAYSCALE), f"real {p.name}") for p in picks]
    rows = [np.hstack(synth[i:i + args.cols]) for i in range(0, len(synth), args.cols)]
    rows += [np.hstack(real[i:i + args.cols]) for i in range(0, len(real), args.cols)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), np.vstack(rows))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
