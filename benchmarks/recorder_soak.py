"""A long recording at speed through the core Recorder: memory, time, and the files' rows.

    tools/ros-env.sh python benchmarks/recorder_soak.py              # 6 h at 30 fps
    tools/ros-env.sh python benchmarks/recorder_soak.py --hours 0.5 --fmt parquet

Feeds a synthetic stream (14 keypoints, a pose and a behaviour per frame, random values
as long as a real stream's) through ``mouse_lifter_ros.core.recorder.Recorder`` as fast
as it goes, on a simulated clock that advances 1/fps per frame, so the ``.h5`` is
appended every ``flush_period`` of simulated time, as in a live session (21 600 appends
for 6 hours). Prints, every simulated 30 minutes, the resident memory (current, from
``/proc/self/statm``, and the peak, ``ru_maxrss``) and the wall time; at the end the
files' sizes and then reads every file back and checks that they hold the same rows:
frames 0..N-1 in each, the ``.h5`` equal to the DeepLabCut CSV, the annotations'
x, y, likelihood equal to both, and the values of sampled frames equal to what was sent.
No timed assertions: it prints figures, and exits 1 if the files disagree.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from mouse_lifter_ros.core.body import KEYPOINTS
from mouse_lifter_ros.core.pose_files import read_annotations, read_dlc_csv, read_dlc_h5
from mouse_lifter_ros.core.recorder import Behavior, Keypoints, Pose, Recorder

K = len(KEYPOINTS)
LABELS = ("locomotion", "rearing", "grooming", "stationary")


def frame(i: int) -> tuple[Keypoints, Pose, Behavior]:
    """Frame i's messages; values float32-exact, as they arrive in ROS messages."""
    rng = np.random.default_rng(i)
    xy = rng.uniform(0, 640, (K, 2)).astype(np.float32).astype(np.float64)
    conf = rng.uniform(0, 1, K).astype(np.float32).astype(np.float64)
    pos = rng.uniform(-0.3, 0.3, (K, 3))
    return (Keypoints(KEYPOINTS, xy, conf), Pose(KEYPOINTS, pos),
            Behavior(LABELS[i // 90 % 4], float(conf[0])))


def rss_mib() -> tuple[float, float]:
    """(current, peak) resident memory of this process, MiB."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20, peak_kib / 1024


def record(out: Path, frames: int, fps: float, fmt: str) -> tuple[str, float, float]:
    """Record ``frames`` frames; the summary line, wall seconds and the peak RSS, MiB."""
    now = [0.0]
    rec = Recorder(out, "soak", fmt=fmt, clock=lambda: now[0])  # type: ignore[arg-type]
    t0 = time.perf_counter()
    step_ns, report = round(1e9 / fps), round(fps * 1800)
    print(f"{'simulated':>9} {'frames':>8} {'RSS MiB':>8} {'peak MiB':>8} {'wall s':>7}")
    for i in range(frames):
        stamp = 1_700_000_000_000_000_000 + i * step_ns
        kp, pose, beh = frame(i)
        rec.add(stamp, "keypoints", kp)
        rec.add(stamp, "pose", pose)
        rec.add(stamp, "behavior", beh)
        now[0] += 1.0 / fps
        if (i + 1) % report == 0:
            cur, peak = rss_mib()
            print(f"{(i + 1) / fps / 3600:8.1f}h {i + 1:8d} {cur:8.1f} {peak:8.1f} "
                  f"{time.perf_counter() - t0:7.0f}", flush=True)
    line = rec.close()
    return line, time.perf_counter() - t0, rss_mib()[1]


def check(out: Path, frames: int, fmt: str) -> list[str]:
    """Read every file back; the problems found (none: they hold the same rows)."""
    h5 = read_dlc_h5(out / "soak.h5")
    dlc = read_dlc_csv(out / "soak.csv")
    table = read_annotations(out / f"soak_annotations.{fmt}")
    problems = []
    want = list(range(frames))
    for name, rows in (("soak.h5", h5.index), ("soak.csv", dlc.index),
                       (f"soak_annotations.{fmt}", table["Frame number"])):
        if rows.tolist() != want:
            problems.append(f"{name}: {len(rows)} rows, not frames 0..{frames - 1}")
        print(f"{name}: {len(rows)} rows")
    if not h5.equals(dlc):
        problems.append("soak.h5 and soak.csv differ")
    coords = table[[f"{p} {c}" for p in KEYPOINTS for c in ("x", "y", "likelihood")]]
    if not np.array_equal(coords.to_numpy(), h5.to_numpy(), equal_nan=True):
        problems.append("the annotations' x, y, likelihood differ from the .h5")
    for i in np.linspace(0, frames - 1, 50).astype(int).tolist():
        kp, pose, beh = frame(i)
        sent = np.column_stack([kp.xy, kp.confidence]).ravel()
        if not (np.array_equal(h5.iloc[i].to_numpy(), sent)
                and np.array_equal(table.iloc[i][[f"{p} X (m)" for p in KEYPOINTS]]
                                   .to_numpy(np.float64), pose.positions[:, 0])
                and table["Behavior"].iloc[i] == beh.label):
            problems.append(f"frame {i}: values differ from those sent")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hours", type=float, default=6.0, help="simulated session length")
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--fmt", choices=("csv", "parquet"), default="csv",
                        help="the annotations table's format")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder of the files (default: a temporary one, removed)")
    args = parser.parse_args()
    frames = round(args.hours * 3600 * args.fps)
    out = args.out or Path(tempfile.mkdtemp(prefix="recorder_soak_"))
    try:
        print(f"{frames} frames ({args.hours:g} h at {args.fps:g} fps) into {out}")
        line, wall, peak = record(out, frames, args.fps, args.fmt)
        print(f"closed: {line}")
        print(f"recording: {wall:.0f} s wall ({frames / wall:.0f} frames/s), "
              f"peak RSS {peak:.0f} MiB")
        for path in sorted(out.iterdir()):
            print(f"{path.name}: {path.stat().st_size / 1e6:.1f} MB")
        t0 = time.perf_counter()
        problems = check(out, frames, args.fmt)
        print(f"read back in {time.perf_counter() - t0:.0f} s: "
              + ("every file holds the same rows" if not problems else "; ".join(problems)))
        return 1 if problems else 0
    finally:
        if args.out is None:
            shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    pd.set_option("display.width", 120)
    sys.exit(main())
