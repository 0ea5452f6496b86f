"""``mouse-lifter extract-frames``: frames of a lab's videos to label, as a DeepLabCut
project folder with the 2D model's predictions to correct."""

from __future__ import annotations

import argparse
import sys

from mouse_lifter_ros.cli.arguments import Subparsers, add_keypoint_model, keypoint_model, name_list
from mouse_lifter_ros.core.extract_frames import DEFAULT_CANDIDATES, DEFAULT_UNSURE_FRACTION
from mouse_lifter_ros.core.keypoints import P_CUTOFF


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "extract-frames", help="pick frames to label and write a DeepLabCut labelled-data "
        "folder with the model's predictions",
        description="Per video, pick --count frames from --candidates spread over it: "
        "diverse ones (k-means on small grey frames, as DeepLabCut does) and the ones the 2D "
        "model is least sure of. Writes OUT/labeled-data/<video>/img<frame>.png, the model's "
        "predictions as machinelabels-iter0.h5 (to correct in DeepLabCut's GUI or "
        "napari-deeplabcut, which save them as CollectedData_<scorer>.h5) and "
        "OUT/config.yaml. Then: mouse-lifter finetune --labels OUT.")
    p.add_argument("videos", nargs="+", metavar="VIDEO")
    p.add_argument("--out", required=True, help="project folder (created or extended)")
    p.add_argument("--count", type=int, default=20, help="frames per video (default 20)")
    p.add_argument("--candidates", type=int, default=DEFAULT_CANDIDATES,
                   help=f"frames considered per video (default {DEFAULT_CANDIDATES})")
    p.add_argument("--unsure", type=float, default=DEFAULT_UNSURE_FRACTION,
                   help="part of --count given to the frames the model is least sure of "
                   f"(default {DEFAULT_UNSURE_FRACTION})")
    p.add_argument("--start", type=float, default=0.0, help="from this fraction of a video")
    p.add_argument("--stop", type=float, default=1.0, help="to this fraction of a video")
    p.add_argument("--bodyparts", default=None,
                   help="model keypoints to label, a,b,c (default: all of them)")
    p.add_argument("--scorer", default="lab", help="the labeller's name in config.yaml")
    p.add_argument("--p-cutoff", type=float, default=P_CUTOFF,
                   help=f"predictions below this confidence are left out (default {P_CUTOFF})")
    add_keypoint_model(p)
    p.add_argument("--seed", type=int, default=0, help="k-means seed")
    p.set_defaults(func=run)


def run(ns: argparse.Namespace) -> int:
    from mouse_lifter_ros.core.extract_frames import extract_frames

    model = keypoint_model(ns)
    picked = extract_frames(ns.videos, ns.out, model, count=ns.count,
                            candidates=ns.candidates, unsure_fraction=ns.unsure,
                            start=ns.start, stop=ns.stop, scorer=ns.scorer,
                            bodyparts=name_list(ns.bodyparts), p_cutoff=ns.p_cutoff,
                            seed=ns.seed, progress=lambda s: print(s, file=sys.stderr))
    for video, frames in picked.items():
        print(f"{ns.out}/labeled-data/{video}: {len(frames)} frames")
        for f in frames:
            print(f"  frame {f.index:6d}  {f.reason:7s}  model certainty {f.certainty:.2f}")
    print(f"next: correct the predictions in napari-deeplabcut or DeepLabCut's GUI (open "
          f"{ns.out}/labeled-data/<video> with {ns.out}/config.yaml, save), then "
          f"mouse-lifter finetune --labels {ns.out} --out MODEL_DIR")
    return 0
