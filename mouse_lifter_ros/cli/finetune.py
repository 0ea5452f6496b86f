"""``mouse-lifter finetune``: fit the 2D model to a lab's rig and label placement."""

from __future__ import annotations

import argparse
from pathlib import Path

from mouse_lifter_ros.cli.arguments import (
    Subparsers,
    add_training_device,
    add_workers_and_cache,
    labels_argument,
    name_list,
    optional_path,
    training_device_args,
    training_extra,
)


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "finetune", help="fine-tune the 2D model on a lab's labelled frames (needs PyTorch)",
        description="Start from the shipped 2D model (or --base), learn the lab's rig and "
        "label placement from its DeepLabCut labels, and write a model YAML + ONNX that "
        "keypoint_node model:=, analyze --model and eval-2d --model take. Body parts named "
        "as our keypoints (or given with --map) supervise them; --add learns parts that have "
        "no counterpart among ours as new keypoints; the others are listed and not used. "
        "Our keypoints the lab does not label keep their synthetic supervision. Some frames "
        "are held out and the figures before and after are printed.")
    labels_argument(p)
    p.add_argument("--out", required=True, help="folder for default.yaml, *.onnx and the log")
    p.add_argument("--map", default=None,
                   help="their_part=our_keypoint,... (default: the parts named as ours)")
    p.add_argument("--add", default=None,
                   help="their parts with no counterpart among ours, learnt as new "
                   "keypoints: a,b")
    p.add_argument("--base", default=None, help="model YAML to start from (default: shipped)")
    p.add_argument("--holdout", type=int, default=None,
                   help="frames held out for the before/after figures (default: a fifth "
                   "from 10 frames on)")
    p.add_argument("--steps", type=int, default=None, help="keypoint network batches")
    p.add_argument("--det-steps", type=int, default=None, help="detector batches")
    p.add_argument("--windows", type=int, default=None,
                   help="synthetic keypoint windows rendered (or read from --cache)")
    p.add_argument("--detector-frames", type=int, default=None,
                   help="synthetic detector frames rendered (or read from --cache)")
    p.add_argument("--parts", default="detector,keypoints",
                   help="networks to fine-tune: detector, keypoints or both")
    add_training_device(p)
    p.add_argument("--threads", type=int, default=None, help="PyTorch threads (default: cores)")
    add_workers_and_cache(p, cache="the rendered synthetic data", workers=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", default=None, help="the new model's name")
    p.set_defaults(func=run)


def run(ns: argparse.Namespace) -> int:
    import os

    try:
        from mouse_lifter_ros.training.finetune import FinetuneConfig, finetune
    except ImportError as exc:
        raise training_extra("finetune", exc) from exc
    from mouse_lifter_ros.core.keypoint_maps import parse_map

    defaults = FinetuneConfig(labels=(), out=Path(ns.out))
    cfg = FinetuneConfig(
        labels=tuple(Path(p) for p in ns.labels), out=Path(ns.out),
        mapping=parse_map(ns.map) if ns.map else None,
        add=tuple(name_list(ns.add) or ()), base=optional_path(ns.base), holdout=ns.holdout,
        steps=defaults.steps if ns.steps is None else ns.steps,
        det_steps=defaults.det_steps if ns.det_steps is None else ns.det_steps,
        windows=defaults.windows if ns.windows is None else ns.windows,
        detector_frames=(defaults.detector_frames if ns.detector_frames is None
                         else ns.detector_frames),
        parts=tuple(name_list(ns.parts) or ()), **training_device_args(ns),
        threads=ns.threads or os.cpu_count() or 1, workers=ns.workers,
        cache=optional_path(ns.cache), seed=ns.seed, name=ns.name)
    finetune(cfg, say=lambda s: print(s, flush=True))
    return 0
