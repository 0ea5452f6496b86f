"""``mouse-lifter train-verifier``: teach a 2D model's detector to tell a mouse from a cup."""

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
from mouse_lifter_ros.core.keypoints import DEFAULT_MODEL


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "train-verifier", help="train the detector's verifier on synthetic crops (PyTorch)",
        description="Render synthetic frames (objects, glare, every floor, light and coat), "
        "cut the model's detector peaks and the mouse, train a small network that says "
        "whether a crop is a mouse, and write a copy of the model whose detector uses it: "
        "the peak with the highest detector confidence x mouse probability is taken.")
    p.add_argument("--model", default=str(DEFAULT_MODEL),
                   help="2D model YAML whose detector is extended (default: shipped)")
    p.add_argument("--out", required=True,
                   help="folder for the extended copy (the model's own folder: in place)")
    shipped = "(default: as the shipped verifier was trained)"
    p.add_argument("--frames", type=int, help=f"synthetic frames rendered {shipped}")
    p.add_argument("--steps", type=int, help=f"training batches of 128 {shipped}")
    p.add_argument("--lr", type=float, help=f"peak learning rate {shipped}")
    p.add_argument("--real-frames", action="store_true",
                   help="also crops of the real frames the model's YAML records as its "
                   "training frames (training: real_labels, real_train_names)")
    p.add_argument("--seed", type=int, default=0)
    add_workers_and_cache(p, cache="the rendered crops")
    add_training_device(p)
    p.set_defaults(func=run)


def run(ns: argparse.Namespace) -> int:
    try:
        from mouse_lifter_ros.training.verifier import VerifierConfig, train_verifier
    except ImportError as exc:
        raise training_extra("train-verifier", exc) from exc
    given = {k: v for k, v in (("frames", ns.frames), ("steps", ns.steps), ("lr", ns.lr))
             if v is not None}  # the rest: VerifierConfig's defaults, defined once there
    cfg = VerifierConfig(model=Path(ns.model), out=Path(ns.out), seed=ns.seed,
                         workers=workers(ns.workers), real_frames=ns.real_frames,
                         cache=optional_path(ns.cache), **given, **training_device_args(ns))
    log = train_verifier(cfg, say=lambda m: print(m, file=sys.stderr))
    print(json.dumps(log, indent=2))
    print(f"wrote {ns.out}/verifier.onnx", file=sys.stderr)
    return 0
