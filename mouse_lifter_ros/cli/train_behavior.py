"""``mouse-lifter train-behavior``: train the behaviour classifier on synthetic sequences."""

from __future__ import annotations

import argparse
import json
import sys

from mouse_lifter_ros.cli.arguments import Subparsers, add_workers_and_cache, workers


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "train-behavior", help="train the behaviour classifier on synthetic sequences",
        description="Train the 3D and 2D-only behaviour networks on synthetic sequences "
        "SeedSequence([seed, i]) and write the model file (.npz); then score them on "
        "held-out sequences. The same arguments give the same weights.")
    p.add_argument("--out", required=True, help="model file to write (.npz)")
    p.add_argument("--sequences", type=int, default=300, help="15 s training sequences")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-sequences", type=int, default=100,
                   help="held-out sequences scored after training (0: none)")
    p.add_argument("--lifted", type=int, default=0,
                   help="15 s sequences rendered and lifted by the whole image-to-pose core, "
                   "added to the training data (slow: the behaviour model card says how slow)")
    p.add_argument("--eval-lifted", type=int, default=0,
                   help="held-out lifted sequences scored after training")
    add_workers_and_cache(p, cache="the lifted poses")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=run)


def run(ns: argparse.Namespace) -> int:
    from mouse_lifter_ros.training.trainbehavior import train_behavior

    metrics = train_behavior(ns.out, sequences=ns.sequences, seed=ns.seed,
                             eval_sequences=ns.eval_sequences, workers=workers(ns.workers),
                             lifted_sequences=ns.lifted, eval_lifted=ns.eval_lifted,
                             cache=ns.cache, progress=not ns.quiet)
    print(json.dumps(metrics, indent=2))
    print(f"wrote {ns.out}", file=sys.stderr)
    return 0
