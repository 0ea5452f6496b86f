"""``mouse-lifter train-depth``: train the depth network on synthetic crops (PyTorch)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mouse_lifter_ros.cli.arguments import (
    Subparsers,
    add_training_device,
    add_workers_and_cache,
    optional_path,
    training_device_args,
    training_extra,
    workers,
)
from mouse_lifter_ros.core.views import VIEWS


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "train-depth", help="train the depth network on synthetic crops (needs PyTorch)",
        description="Render synthetic mouse crops with their height maps, train the depth "
        "network, report the held-out error and export ONNX + YAML. The defaults reproduce "
        "the shipped model.")
    p.add_argument("--out", required=True, help="folder for default.yaml, depth.onnx, logs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--view", choices=VIEWS, default="top",
                   help="the synthetic camera above the arena (top) or under its clear "
                   "floor (bottom); the model YAML records it")
    p.add_argument("--crops", type=int, default=20000, help="synthetic crops rendered")
    p.add_argument("--val", type=int, default=500, help="of which held out")
    p.add_argument("--steps", type=int, default=7000, help="training batches of 32")
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate")
    p.add_argument("--init", default=None,
                   help="depth.pt of an earlier run, or a model's depth.onnx, to start "
                   "from (fine-tuning)")
    p.add_argument("--raised-weight", type=float, default=1.0, metavar="W",
                   help="weight of the height loss on mouse cells 5 cm or more over the "
                   "floor (rearing heads) against the others' 1")
    add_workers_and_cache(p, cache="the rendered synthetic data")
    add_training_device(p)
    p.set_defaults(func=run)


def run(ns: argparse.Namespace) -> int:
    try:
        from mouse_lifter_ros.training.traindepth import TrainDepthConfig, train_depth
    except ImportError as exc:
        raise training_extra("train-depth", exc) from exc
    cfg = TrainDepthConfig(out=Path(ns.out), seed=ns.seed, view=ns.view, crops=ns.crops, val=ns.val,
                           steps=ns.steps, lr=ns.lr, workers=workers(ns.workers),
                           cache=optional_path(ns.cache), init=optional_path(ns.init),
                           raised_weight=ns.raised_weight,
                           **training_device_args(ns))
    log = train_depth(cfg)
    print(json.dumps(log["held_out"], indent=2))
    print(f"wrote {ns.out}/default.yaml and depth.onnx in {log['seconds']:.0f} s",
          file=sys.stderr)
    return 0
