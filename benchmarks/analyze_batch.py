"""Batch analysis on Dask with 1 and with 2 local workers, one after the other: frames/s.

    tools/ros-env.sh python benchmarks/analyze_batch.py [--clips 4] [--seconds 8] [--2d]

Renders ``--clips`` demo clips (synthetic engine, different seeds, one camera) and runs
``analyze_batch`` over them on a local Dask cluster of 1, then 2 worker processes (the
default ``chunk_frames``; ``--chunk-frames`` to cut the clips), each into a fresh output
folder, 3D with the clips' arena unless ``--2d``. ONNX Runtime and OpenCV get
``--threads`` threads per worker (default 1: a worker is one core, so the two runs compare
one core with two; 0 is analyze's own choice, the cores divided among the workers, with
which one worker already uses both cores of a 2-core machine). ``--serial`` also runs plain
``analyze`` (one process, no Dask) for reference. Prints per run the frames, the wall
time (cluster start-up included), frames/s and the 1-minute load average before the run,
then the ratio of the 2-worker to the 1-worker frames/s. A benchmark, not a test: it
asserts nothing; run it on a quiet machine and read the load column.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path


def main() -> int:
    from mouse_lifter_ros.core.analysis import AnalysisOptions, analyze
    from mouse_lifter_ros.core.batch import CHUNK_FRAMES, BatchOptions, analyze_batch
    from mouse_lifter_ros.core.democlip import write_demo_clip

    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=4, help="number of clips (default 4)")
    parser.add_argument("--seconds", type=float, default=8.0,
                        help="length of each clip, s (30 fps; default 8)")
    parser.add_argument("--threads", type=int, default=1,
                        help="ONNX Runtime / OpenCV threads per worker (default 1)")
    parser.add_argument("--chunk-frames", type=int, default=CHUNK_FRAMES,
                        help=f"frames per task (default {CHUNK_FRAMES})")
    parser.add_argument("--2d", dest="two_d", action="store_true",
                        help="2D only (no arena: no depth, lifter or behaviour)")
    parser.add_argument("--serial", action="store_true",
                        help="also run plain analyze (one process, no Dask)")
    ns = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="analyze_batch_") as tmp:
        root = Path(tmp)
        clips = [write_demo_clip(root / f"clip{i}", seconds=ns.seconds, seed=i)
                 for i in range(ns.clips)]
        videos = [c.video.rename(c.video.with_name(f"mouse{i}.mp4"))
                  for i, c in enumerate(clips)]
        options = AnalysisOptions(out=root, arena=None if ns.two_d else clips[0].arena,
                                  progress=False, threads=ns.threads)
        print(f"{ns.clips} clips of {ns.seconds:g} s, {'2D' if ns.two_d else '3D'}, "
              f"chunk_frames {ns.chunk_frames}, threads {ns.threads}, {os.cpu_count()} cores")
        print(f"{'run':>10} {'frames':>7} {'seconds':>8} {'frames/s':>9} {'load':>5}")
        rates: dict[str, float] = {}
        runs = [("serial", None)] if ns.serial else []
        runs += [("1 worker", 1), ("2 workers", 2)]
        for name, workers in runs:
            load = os.getloadavg()[0]
            out = root / name.replace(" ", "_")
            start = time.monotonic()
            if workers is None:
                result = analyze(videos, replace(options, out=out), notice=lambda _: None)
            else:
                result = analyze_batch(
                    videos, replace(options, out=out), notice=lambda _: None,
                    batch=BatchOptions(workers=workers, chunk_frames=ns.chunk_frames,
                                       dashboard=None, resume=False))
                if result["failed"]:
                    print(f"{name}: failed: {result['failed']}")
                    return 1
            seconds = time.monotonic() - start
            frames = sum(m["frames"] for m in result["movies"])
            rates[name] = frames / seconds
            print(f"{name:>10} {frames:7d} {seconds:8.1f} {rates[name]:9.1f} {load:5.2f}")
        print(f"2 workers / 1 worker: {rates['2 workers'] / rates['1 worker']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
