"""``mouse-lifter eval-2d``: a 2D model's pixel error and PCK on DeepLabCut labels."""

from __future__ import annotations

import argparse
from pathlib import Path

from mouse_lifter_ros.cli.arguments import (
    OPENFIELD_MAP,
    Subparsers,
    add_json_output,
    add_keypoint_model,
    keypoint_model,
    labels_argument,
    name_list,
    report,
)
from mouse_lifter_ros.core.errors import MouseLifterError


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "eval-2d", help="score a 2D keypoint model on DeepLabCut labelled frames",
        description="Run the model on each labelled image (DeepLabCut 2.2+ or older CSV, or "
        ".h5; one file, several, a video's folder or a whole labeled-data/ folder, images "
        "beside the labels) and print a table per labelled set and overall: per body part "
        "the mean, median and largest pixel error over the frames where the mouse was found, "
        "and PCK at 5 and 10 px over all labelled points. A detection whose crop holds fewer "
        "than half of a frame's labels is counted as a wrong detection, not as found.")
    labels_argument(p)
    add_keypoint_model(p)
    p.add_argument("--map", default=None,
                   help="their_part=model_keypoint,... (default: the map the model was "
                   "fine-tuned with, else the body parts named as model keypoints, else the "
                   "openfield project's)")
    p.add_argument("--frames", default=None,
                   help="only these images: name or set/name, a,b,c or @file with one per "
                   "line")
    p.add_argument("--split", default="all", choices=("all", "holdout", "train"),
                   help="held-out or training frames as the model YAML records them")
    p.add_argument("--save-overlays", default=None, metavar="DIR",
                   help="draw each frame's labels (rings) and predictions (dots) into "
                   "DIR/<set>/<image>")
    add_json_output(p)
    p.set_defaults(func=run)


def run(ns: argparse.Namespace) -> int:
    from mouse_lifter_ros.core.eval2d import evaluate_2d, format_tables
    from mouse_lifter_ros.core.keypoint_maps import parse_map
    from mouse_lifter_ros.core.labels import all_bodyparts, read_labelled

    sets = read_labelled(ns.labels)
    model = keypoint_model(ns)
    training = _training_notes(model.spec.path)
    frames = name_list(ns.frames)
    if ns.split != "all":
        key = "holdout" if ns.split == "holdout" else "real_train_names"
        listed = training.get(key)
        if not isinstance(listed, list) or not listed:
            raise MouseLifterError(f"--split {ns.split}: {model.spec.path} records no "
                                   f"'{key}' list under 'training'")
        frames = [str(f) for f in listed]
    mapping = (parse_map(ns.map, targets=None) if ns.map is not None
               else _default_map(training, all_bodyparts(sets), model.names))
    result = evaluate_2d(model, sets, mapping, frames=frames, overlays=ns.save_overlays)
    result["split"] = ns.split if ns.split != "all" or frames is None else "frames"
    report(ns, result, lambda: format_tables(result))
    return 0


def _default_map(training: dict[str, object], parts: list[str], names: tuple[str, ...]
                 ) -> dict[str, str] | None:
    """The map the model was fine-tuned with when the labels have its body parts, else
    None (the parts named as model keypoints) when some are, else the openfield map."""
    from mouse_lifter_ros.core.keypoint_maps import parse_map

    recorded = training.get("label_map")
    if isinstance(recorded, dict) and recorded and all(p in parts for p in recorded):
        return {str(k): str(v) for k, v in recorded.items()}
    if any(p in names for p in parts):
        return None
    return parse_map(OPENFIELD_MAP)


def _training_notes(path: Path) -> dict[str, object]:
    """The ``training`` mapping of a model YAML (empty when it has none)."""
    import yaml

    data = yaml.safe_load(Path(path).read_text()) or {}
    notes = data.get("training") or {}
    return notes if isinstance(notes, dict) else {}
