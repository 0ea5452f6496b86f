"""``mouse-lifter train-2d``: train the 2D detector and keypoint network (PyTorch)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mouse_lifter_ros.cli.arguments import (
    OPENFIELD_MAP,
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
        "train-2d", help="train the 2D detector and keypoint network (needs PyTorch)",
        description="Render synthetic training data, train the detector and the keypoint "
        "network on it, export the synthetic-only model, fine-tune both with the real "
        "labelled frames (the last --holdout-last held out, --gap before them unused) and "
        "export the final model (ONNX + YAML). The defaults reproduce the shipped model.")
    p.add_argument("--out", required=True, help="folder for default.yaml, *.onnx, logs")
    p.add_argument("--detector-views", default="",
                   help="views whose synthetic frames the detector also trains on "
                   "(comma-separated, e.g. top for a bottom-view model), as many as of --view")
    p.add_argument("--labels", default=None, help="DeepLabCut CollectedData.csv to fine-tune on")
    p.add_argument("--map", default=OPENFIELD_MAP, help="their_part=our_keypoint,...")
    p.add_argument("--holdout-last", type=int, default=24)
    p.add_argument("--gap", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--view", choices=VIEWS, default="top",
                   help="the synthetic camera above the arena (top) or under its clear "
                   "floor (bottom); the model YAML records it")
    p.add_argument("--windows", type=int, default=40000, help="synthetic keypoint windows")
    p.add_argument("--detector-frames", type=int, default=24000)
    p.add_argument("--dark-near", type=float, default=0.0, metavar="SHARE",
                   help="share of the detector frames showing the mouse with a dark "
                   "mouse-sized object placed beside it: 0.3 trained the shipped second "
                   "detector network (detector.yaml's second_detector), 0 the first")
    p.add_argument("--det-steps", type=int, default=4000)
    p.add_argument("--det-real-steps", type=int, default=800)
    p.add_argument("--kp-steps", type=int, default=4000)
    p.add_argument("--finetune-steps", type=int, default=2500)
    p.add_argument("--real-per-batch", type=int, default=12,
                   help="real frames in each fine-tuning batch of 32")
    p.add_argument("--synth-weight", type=float, default=None, metavar="W",
                   help="while fine-tuning, the weight of the synthetic samples on the "
                   "keypoints the real labels supervise, 0 to 1 (default small: the "
                   "labellers' placement wins; 1: ours is kept, the real frames teach the "
                   "look of a rig)")
    p.add_argument("--tail-windows", type=int, default=0, metavar="N",
                   help="synthetic windows centred on the tail's middle, for crops around "
                   "the tail; the model written then cuts one (tail_crop: true)")
    p.add_argument("--tail-per-batch", type=int, default=0, metavar="M",
                   help="tail crops among each keypoint batch's synthetic samples")
    p.add_argument("--parts", default="detector,keypoints",
                   help="networks to train: detector, keypoints or both; the other's files "
                   "in OUT stay as they are")
    p.add_argument("--resume", action="store_true",
                   help="reuse OUT/synthetic_only/*.pt from an earlier run with the same "
                   "arguments (same result as a full run)")
    p.add_argument("--lr", type=float, default=2e-3,
                   help="peak learning rate of the synthetic phases (fine-tuning on real "
                   "frames: half of it for the keypoints, a quarter for the detector)")
    p.add_argument("--init-keypoints", default=None,
                   help="synthetic_only/keypoints.pt of an earlier run, or a model's "
                   "keypoints.onnx, to continue from")
    p.add_argument("--init-detector", default=None,
                   help="synthetic_only/detector.pt of an earlier run, or a model's "
                   "detector.onnx, to continue from")
    p.add_argument("--mine-with", default=None, metavar="DETECTOR.yaml",
                   help="hard-example mining: a trained detector scores the synthetic "
                   "frames and the worst --mine-fraction are drawn --mine-repeat times "
                   "more often")
    p.add_argument("--mine-keypoints-with", default=None, metavar="MODEL.yaml",
                   help="the same for the keypoint network: a trained 2D model's keypoint "
                   "network scores the synthetic windows, and the worst --mine-fraction "
                   "are drawn --mine-repeat times more often")
    p.add_argument("--mine-fraction", type=float, default=0.15)
    p.add_argument("--mine-repeat", type=int, default=3)
    add_workers_and_cache(p, cache="the rendered synthetic data")
    add_training_device(p)
    p.set_defaults(func=run)


def run(ns: argparse.Namespace) -> int:
    try:
        from mouse_lifter_ros.training.train2d import Train2DConfig, train_2d
    except ImportError as exc:
        raise training_extra("train-2d", exc) from exc
    from mouse_lifter_ros.core.keypoint_maps import parse_map

    cfg = Train2DConfig(out=Path(ns.out), seed=ns.seed, view=ns.view,
                        detector_views=tuple(v for v in ns.detector_views.split(",") if v),
                        labels=optional_path(ns.labels), label_map=parse_map(ns.map),
                        holdout_last=ns.holdout_last, gap=ns.gap,
                        windows=ns.windows, detector_frames=ns.detector_frames,
                        dark_near=ns.dark_near,
                        det_steps=ns.det_steps, det_real_steps=ns.det_real_steps,
                        kp_steps=ns.kp_steps, finetune_steps=ns.finetune_steps,
                        real_per_batch=ns.real_per_batch, tail_windows=ns.tail_windows,
                        **({} if ns.synth_weight is None
                           else {"synth_weight_labelled": ns.synth_weight}),
                        tail_per_batch=ns.tail_per_batch,
                        parts=tuple(p.strip() for p in ns.parts.split(",") if p.strip()),
                        lr=ns.lr, workers=workers(ns.workers),
                        cache=optional_path(ns.cache),
                        init_keypoints=optional_path(ns.init_keypoints),
                        init_detector=optional_path(ns.init_detector),
                        mine_with=optional_path(ns.mine_with),
                        mine_keypoints_with=optional_path(ns.mine_keypoints_with),
                        mine_fraction=ns.mine_fraction, mine_repeat=ns.mine_repeat,
                        **training_device_args(ns))
    log = train_2d(cfg, resume=ns.resume)
    print(f"wrote {ns.out}/default.yaml (+ synthetic_only/) in {log['seconds']:.0f} s",
          file=sys.stderr)
    return 0
