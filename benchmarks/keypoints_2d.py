"""Time single-frame 2D keypoint inference at 640x480 on the CPU, against a DLC-Live-like net.

    tools/ros-env.sh python benchmarks/keypoints_2d.py [--frames 500] [--baseline-frames 40]
        [--threads 2] [--model YAML] [--source auto|real|demo]

Ours is :class:`~mouse_lifter_ros.core.keypoints.KeypointModel` with its default model:
the detector on the frame letterboxed to 160x128, a crop around the mouse, the keypoint
net on the crop. The baseline is what DeepLabCut-Live runs: a ResNet-50 over the whole
frame (``benchmarks/resnet50_onnx.py``, random weights, built once and cached under
``build/benchmarks/``), described by its own YAML (``crop: {mode: full}``, output kind
``heatmap_offset``) and run by the same class, ONNX Runtime and thread count. Both see
the same 640x480 BGR frames, one at a time: the labelled DeepLabCut openfield frames when
``../shared/data`` has them, else frames of the rendered demo clip, cycled.

Prints frames per second and latency percentiles of each, the speed-up, our detection
modes at 640x480 and 2048x2048 (whole frame only, with the second look, tracked, the
window scan where nothing was found), and
where our pipeline's time goes (detector, crop, keypoint net, decode, turned views, tail
crop; timed piece by piece in a separate pass). Ours is timed as the model's YAML runs it
(what ``analyze`` and ``eval-2d`` do) and as ``keypoint_node`` runs it by default (no tail
crop, no turn test). Wall-clock figures depend on the machine and on what
else runs on it; the load average at the start is printed with them. Exits non-zero only
on errors.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnxruntime as ort
import yaml

from mouse_lifter_ros.core import keypoints as kpmod
from mouse_lifter_ros.core.keypoints import (
    MIN_CROP,
    KeypointModel,
    crop_matrix,
    cut_crop,
)

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "openfield-dlc" / "labeled"
CACHE = ROOT / "build" / "benchmarks"
WIDTH, HEIGHT = 640, 480
#: DeepLabCut's ResNet defaults: ImageNet mean subtracted (RGB), location refinement
#: scaled by locref_stdev, stride 8 after the deconvolution.
DLC_MEAN = (123.68, 116.78, 103.94)
LOCREF_STDEV = 7.2801


def load_frames(source: str, count: int = 20) -> tuple[list[np.ndarray], str]:
    """``count`` 640x480 BGR frames and where they come from."""
    if source in ("auto", "real"):
        pngs = sorted(REAL.glob("*.png"))[:count]
        frames = [f for f in (cv2.imread(str(p), cv2.IMREAD_COLOR) for p in pngs)
                  if f is not None and f.shape[:2] == (HEIGHT, WIDTH)]
        if frames:
            return frames, f"{len(frames)} labelled openfield frames ({REAL})"
        if source == "real":
            raise SystemExit(f"no 640x480 PNG frames under {REAL}")
    from mouse_lifter_ros.core.democlip import write_demo_clip

    with tempfile.TemporaryDirectory() as tmp:
        clip = write_demo_clip(tmp, seconds=count / 30.0)
        cap = cv2.VideoCapture(str(clip.video))
        frames = []
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(frame)
        cap.release()
    return frames, f"{len(frames)} frames of the rendered demo clip"


def baseline_yaml() -> Path:
    """The ResNet-50 baseline's YAML (and ONNX, built on first use) under the cache."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from resnet50_onnx import build_resnet50_keypoints

    from mouse_lifter_ros.core.body import KEYPOINTS

    CACHE.mkdir(parents=True, exist_ok=True)
    onnx_path = CACHE / f"resnet50_dlc_{WIDTH}x{HEIGHT}.onnx"
    if not onnx_path.is_file():
        print(f"building {onnx_path} ...", file=sys.stderr)
        build_resnet50_keypoints(onnx_path, width=WIDTH, height=HEIGHT,
                                 keypoints=len(KEYPOINTS))
    desc = {
        "name": "resnet50-dlc-like (random weights)",
        "onnx": onnx_path.name,
        "keypoints": list(KEYPOINTS),
        "input": {"width": WIDTH, "height": HEIGHT, "channels": 3, "layout": "NCHW",
                  "colour": "rgb", "mean": list(DLC_MEAN), "std": [1.0, 1.0, 1.0]},
        "output": {"kind": "heatmap_offset", "heatmap": "heatmaps", "offset": "locref",
                   "stride": 8, "grid_offset": 3.5, "offset_scale": LOCREF_STDEV,
                   "activation": "sigmoid", "offset_order": "xy"},
        "crop": {"mode": "full"},
    }
    path = CACHE / "resnet50_dlc.yaml"
    path.write_text(yaml.safe_dump(desc, sort_keys=False))
    return path


def time_calls(fn: Callable[[np.ndarray], Any], frames: list[np.ndarray], n: int,
               warmup: int) -> np.ndarray:
    """Milliseconds of each of ``n`` calls (after ``warmup`` untimed), cycling frames."""
    for i in range(warmup):
        fn(frames[i % len(frames)])
    out = np.empty(n)
    for i in range(n):
        frame = frames[i % len(frames)]
        t0 = time.perf_counter()
        fn(frame)
        out[i] = (time.perf_counter() - t0) * 1e3
    return out


def split_ours(model: KeypointModel, frames: list[np.ndarray], n: int
               ) -> dict[str, tuple[float, float]]:
    """(median, mean) ms of each stage of our pipeline, timed piece by piece (as
    __call__ runs them), over ``n`` frames; frames without a mouse count for the
    detector only."""
    det_fn = model.detector
    if det_fn is None:
        raise SystemExit(f"model {model.spec.path}: no detector, nothing to split")
    inp = model.spec.input
    t: dict[str, list[float]] = {"detector": [], "crop": [], "keypoint net": [], "decode": []}
    if model.spec.flip_test:
        t["mirrored net"] = []
    if model.spec.turn_test:
        t["turned nets"] = []
    if model.spec.tail_crop:
        t["tail crop"] = []
    for i in range(n):
        frame = frames[i % len(frames)]
        t0 = time.perf_counter()
        det = det_fn(frame)
        t1 = time.perf_counter()
        t["detector"].append(t1 - t0)
        if not det.found:
            continue
        side = max(MIN_CROP, model.spec.crop_scale * det.size)
        crop = cut_crop(frame, det.centre, side, inp.width, grey=inp.channels == 1)
        to_src = crop_matrix(det.centre, side, inp.width)
        x = kpmod.normalise(crop, inp)
        t2 = time.perf_counter()
        outs = model.backend.run(x)
        t3 = time.perf_counter()
        xy, conf = model._decode(outs)
        xy = xy @ to_src[:, :2].T + to_src[:, 2]
        t4 = time.perf_counter()
        t["crop"].append(t2 - t1)
        t["keypoint net"].append(t3 - t2)
        t["decode"].append(t4 - t3)
        if model.spec.flip_test:  # the mirrored crop's pass, as __call__ runs it
            t5 = time.perf_counter()
            outs = model.backend.run(kpmod.normalise(crop[:, ::-1], inp))
            t6 = time.perf_counter()
            model._decode(outs)
            t7 = time.perf_counter()
            t["mirrored net"].append(t6 - t5)
            t["decode"][-1] += t7 - t6
        if model.spec.turn_test:  # the crop turned three ways (each mirrored too) and
            t5 = time.perf_counter()  # the views combined, as __call__ runs them
            for k in (1, 2, 3):
                turned = np.rot90(crop, k)
                views = (turned, turned[:, ::-1]) if model.spec.flip_test else (turned,)
                for v in views:
                    model._decode(model.backend.run(kpmod.normalise(v, inp)))
            n_views = 8 if model.spec.flip_test else 4
            kpmod.combine_views(np.repeat(xy[None], n_views, 0),
                                np.repeat(conf[None], n_views, 0))
            t["turned nets"].append(time.perf_counter() - t5)
        if model.spec.tail_crop:  # the crop around the tail, its net(s) and decode
            t8 = time.perf_counter()
            model._tail_crop(frame, det.size, xy.astype(np.float64), conf)
            t["tail crop"].append(time.perf_counter() - t8)
    return {k: (float(np.median(v)) * 1e3, float(np.mean(v)) * 1e3) if v else
            (float("nan"), float("nan")) for k, v in t.items()}


def modes(model: KeypointModel, frames: list[np.ndarray], n: int) -> None:
    """``model`` (ours as the node runs it by default) at 640x480 and at 2048x2048 (the
    frames upscaled): the detector on the whole
    frame only (as before the second look), with :meth:`Detector.locate`'s second look
    (what a still image gets), and with the tracker (what a video gets; frames cycled in
    order, so a far jump between unrelated frames costs a whole-frame search); then the
    window scan (:meth:`Detector.scan`) alone, which a frame pays where neither the
    whole frame nor the track found a mouse (with a tracker, one such frame in
    :data:`~mouse_lifter_ros.core.tracking.SCAN_EVERY`)."""
    from mouse_lifter_ros.core.tracking import MouseTracker

    det = model.detector
    if det is None:
        return
    for w, h in ((WIDTH, HEIGHT), (2048, 2048)):
        fr = frames if (w, h) == (WIDTH, HEIGHT) else \
            [cv2.resize(f, (w, h), interpolation=cv2.INTER_LINEAR) for f in frames[:60]]
        tracker = MouseTracker(det)
        base = time_calls(lambda f: model(f, tracker=det), fr, n, warmup=10)
        print(f"{f'detection modes, {w}x{h}, CPU':44s} {'fps':>8s} {'p50 ms':>9s} "
              f"{'p99 ms':>9s} {'mean ms':>9s} {'frames':>6s}")
        print(row("whole frame only (before)", base))
        look = time_calls(model, fr, n, warmup=10)
        print(row("+ second look (stills, default)", look))
        tracked = time_calls(partial(model, tracker=tracker), fr, n, warmup=10)
        print(row("tracked (video)", tracked))
        scan = time_calls(det.scan, fr, min(n, 100), warmup=3)
        print(row("window scan alone (where nothing was found)", scan))
        print(f"  cost against whole frame only: second look x{look.mean() / base.mean():.2f}, "
              f"tracked x{tracked.mean() / base.mean():.2f}, window scan "
              f"x{scan.mean() / base.mean():.2f} (mean ms); tracker {tracker.counts}")


def row(name: str, ms: np.ndarray) -> str:
    p50, p99 = np.percentile(ms, [50, 99])
    return (f"{name:44s} {1e3 / ms.mean():8.1f} {p50:9.2f} {p99:9.2f} {ms.mean():9.2f} "
            f"{len(ms):6d}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=500, help="timed frames, ours")
    ap.add_argument("--baseline-frames", type=int, default=40, help="timed frames, baseline")
    ap.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads")
    ap.add_argument("--model", default=None, help="our model's YAML (default: shipped)")
    ap.add_argument("--source", choices=("auto", "real", "demo"), default="auto")
    ns = ap.parse_args(argv)

    frames, where = load_frames(ns.source)
    load = os.getloadavg()
    print(f"frames: {where}, {WIDTH}x{HEIGHT} BGR, cycled")
    print(f"cpu: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load average {load[0]:.2f} at start; onnxruntime {ort.__version__}, "
          f"{ns.threads} intra-op threads")
    # one pipeline at a time: ours is timed before the baseline's session exists
    ours = KeypointModel(ns.model, device="cpu", threads=ns.threads)
    print(f"ours:     {ours.description}")
    dets = [ours(f).detection for f in frames]
    found = sum(d is not None and d.found for d in dets)
    t_ours = time_calls(ours, frames, ns.frames, warmup=20)
    # the live keypoint node's defaults: no tail crop, no turn test (its parameters)
    live = KeypointModel(replace(ours.spec, tail_crop=False, turn_test=False), device="cpu",
                         threads=ns.threads)
    t_live = time_calls(live, frames, ns.frames, warmup=20)
    split = split_ours(ours, frames, min(ns.frames, 200))
    base = KeypointModel(baseline_yaml(), device="cpu", threads=ns.threads)
    print(f"baseline: {base.description}")
    t_base = time_calls(base, frames, ns.baseline_frames, warmup=3)

    print()
    print(f"{'single frame, 640x480, CPU':44s} {'fps':>8s} {'p50 ms':>9s} {'p99 ms':>9s} "
          f"{'mean ms':>9s} {'frames':>6s}")
    print(row("ours: detector + crop + keypoint net", t_ours))
    print(row("ours as keypoint_node runs it by default", t_live))
    print(f"  (ours: the model's YAML, tail crop {'on' if ours.spec.tail_crop else 'off'}, "
          f"turn test {'on' if ours.spec.turn_test else 'off'}, as analyze and eval-2d run "
          "it; the node's tail_crop and turn_test parameters are false by default)")
    print(row("baseline: ResNet-50 full frame (DLC-Live-like)", t_base))
    print(f"speed-up (ours / baseline fps): x{t_base.mean() / t_ours.mean():.1f}   "
          f"(p50 latency x{np.median(t_base) / np.median(t_ours):.1f})")
    print()
    print(f"our pipeline per stage, ms ({found}/{len(frames)} frames with a mouse; "
          "a separate pass):")
    print(f"  {'stage':14s} {'p50':>7s} {'mean':>7s} {'share':>7s}")
    total = [sum(v[i] for v in split.values() if np.isfinite(v[i])) for i in (0, 1)]
    for k, (med, mean) in split.items():
        print(f"  {k:14s} {med:7.2f} {mean:7.2f} {100 * mean / total[1]:6.1f} %")
    print(f"  {'sum':14s} {total[0]:7.2f} {total[1]:7.2f}")
    print(f"  (flip_test {'on' if ours.spec.flip_test else 'off'}: the mirrored crop is "
          f"{'' if ours.spec.flip_test else 'not '}run too; turn_test "
          f"{'on' if ours.spec.turn_test else 'off'}: the crop turned three ways is "
          f"{'' if ours.spec.turn_test else 'not '}run too)")
    print()
    modes(live, frames, min(ns.frames, 300))  # as the node runs it
    if np.median(t_ours) > 1.5 * total[0]:
        print(f"  the whole call's p50 ({np.median(t_ours):.2f} ms) is well above the sum: "
              "threads waiting for busy cores (compare --threads 1)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
