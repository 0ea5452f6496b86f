"""``mouse-lifter eval-2d``: a 2D model's pixel error and PCK on DeepLabCut labels."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mouse_lifter_ros.cli.arguments import DEVICES, OPENFIELD_MAP, Subparsers, name_list
from mouse_lifter_ros.core.errors import MouseLifterError


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "eval-2d", help="score a 2D keypoint model on a DeepLabCut labelled folder (JSON)",
        description="Run the model on each image of a DeepLabCut-format labelled folder and "
        "print JSON: per-keypoint and mean pixel error, PCK at 5 and 10 px, frame count.")
    p.add_argument("--labels", required=True, help="PATH/CollectedData.csv (images beside it)")
    p.add_argument("--model", default=None, help="model YAML (default: the shipped model)")
    p.add_argument("--map", default=OPENFIELD_MAP,
                   help="their_part=our_keypoint,... (default: the openfield project's)")
    p.add_argument("--device", default="auto", choices=DEVICES)
    p.add_argument("--frames", default=None,
                   help="only these image names: a,b,c or @file with one per line")
    p.add_argument("--split", default="all", choices=("all", "holdout", "train"),
                   help="held-out or training frames as the model YAML records them")
    p.set_defaults(func=run)


def run(ns: argparse.Namespace) -> int:
    from mouse_lifter_ros.core.eval2d import evaluate_2d
    from mouse_lifter_ros.core.keypoints import KeypointModel
    from mouse_lifter_ros.core.synth.keypoint_maps import parse_map

    model = KeypointModel(ns.model, device=ns.device)
    print(f"model: {model.description}", file=sys.stderr)
    frames = name_list(ns.frames)
    if ns.split != "all":
        training = _training_notes(model.spec.path)
        key = "holdout" if ns.split == "holdout" else "real_train_names"
        listed = training.get(key)
        if not isinstance(listed, list) or not listed:
            raise MouseLifterError(f"--split {ns.split}: {model.spec.path} records no "
                                   f"'{key}' list under 'training'")
        frames = [str(f) for f in listed]
    result = evaluate_2d(model, ns.labels, parse_map(ns.map), frames=frames)
    result["split"] = ns.split if ns.split != "all" or frames is None else "frames"
    print(json.dumps(result, indent=2))
    return 0


def _training_notes(path: Path) -> dict[str, object]:
    """The ``training`` mapping of a model YAML (empty when it has none)."""
    import yaml

    data = yaml.safe_load(Path(path).read_text()) or {}
    notes = data.get("training") or {}
    return notes if isinstance(notes, dict) else {}
