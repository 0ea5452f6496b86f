"""``mouse-lifter eval-behavior``: the behaviour classifier's F1 on held-out sequences."""

from __future__ import annotations

import argparse
import json

from mouse_lifter_ros.cli.arguments import Subparsers, add_workers_and_cache, workers


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "eval-behavior", help="per-class and macro F1 of the behaviour classifier, 3D and "
        "2D-only features, on held-out synthetic sequences (JSON)",
        description="Score the behaviour classifier (mouse_lifter_ros/core/behavior.py; "
        "training and scoring: mouse_lifter_ros/training/trainbehavior.py) on held-out "
        "synthetic sequences: SeedSequence([seed, 1000000 + i]), never training "
        "data. Prints JSON: per-class F1 and macro F1 for '3d' and '2d'.")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sequences", type=int, default=100, help="15 s sequences to score")
    p.add_argument("--model", default=None, help="model file (default: the shipped one)")
    p.add_argument("--lifted", type=int, default=0,
                   help="also score this many held-out sequences rendered and lifted by the "
                   "whole image-to-pose core (slow: the behaviour model card says how slow)")
    add_workers_and_cache(p, cache="the lifted poses")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=run)


def run(ns: argparse.Namespace) -> int:
    from mouse_lifter_ros.training.trainbehavior import evaluate_behavior

    result = evaluate_behavior(ns.model, seed=ns.seed, sequences=ns.sequences,
                               workers=workers(ns.workers), lifted=ns.lifted, cache=ns.cache,
                               progress=not ns.quiet)
    print(json.dumps(result, indent=2))
    return 0
