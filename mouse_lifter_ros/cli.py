"""The ``mouse-lifter`` command line.

    mouse-lifter synth --out DIR --count N      render a synthetic dataset (see synth --help)
    mouse-lifter demo-clip --out DIR            write the demo clip (mp4 + rosbag2)
    mouse-lifter bag-info BAG                   list a rosbag2's topics
    mouse-lifter run GRAPH [name:=value ...]    start a graph of config/graph.yaml (needs rclpy)
    mouse-lifter demo [--workdir DIR]           demo clip -> replay graph -> what flowed
    mouse-lifter eval-behavior [--seed S]       behaviour F1, 3D vs 2D-only, held-out synthetic
    mouse-lifter train-behavior --out PATH      train the behaviour classifier (synthetic data)
    mouse-lifter eval-2d --labels CSV           2D keypoint error and PCK on DLC-labelled frames
    mouse-lifter train-2d --out DIR             train the 2D detector and keypoint network
    mouse-lifter label-video VIDEO --out MP4    draw the 2D model's skeleton on a video
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mouse_lifter_ros.core.errors import MouseLifterError

if TYPE_CHECKING:
    from mouse_lifter_ros.runner import GraphRun


def _demo_clip(ns: argparse.Namespace) -> int:
    from mouse_lifter_ros.core.democlip import write_demo_clip

    clip = write_demo_clip(ns.out, seconds=ns.seconds, fps=ns.fps, seed=ns.seed)
    print(f"wrote {clip.frames} frames at {clip.fps:g} fps: {clip.video} and {clip.bag}")
    return 0


def _synth(ns: argparse.Namespace) -> int:
    from mouse_lifter_ros.core.synth.dataset import SynthConfig, write_dataset

    width, sep, height = ns.size.partition("x")
    if not (sep and width.isdigit() and height.isdigit()):
        raise MouseLifterError(f"--size {ns.size!r}: write it WIDTHxHEIGHT, e.g. 640x480")
    colour = {"grey": False, "colour": True, "mixed": None}[ns.colour]
    config = SynthConfig(count=ns.count, seed=ns.seed, view=ns.view, width=int(width),
                         height=int(height), crop=ns.crop, sequence_s=ns.sequence, fps=ns.fps,
                         colour=colour)
    start = time.monotonic()
    out = write_dataset(ns.out, config, workers=ns.workers, progress=not ns.quiet)
    n = config.count * config.frames_per_item
    elapsed = time.monotonic() - start
    print(f"wrote {n} samples to {out} in {elapsed:.1f} s ({n / elapsed:.1f} samples/s)")
    return 0


def _bag_info(ns: argparse.Namespace) -> int:
    from mouse_lifter_ros.core.bag import bag_topics

    for topic in bag_topics(ns.bag):
        print(f"{topic.name}\t{topic.msgtype}\t{topic.count}")
    return 0


def _parse_assignments(items: Sequence[str]) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, value = item.partition(":=")
        if not sep:
            raise MouseLifterError(f"launch argument {item!r} must be written name:=value")
        out[name] = value
    return out


def _run(ns: argparse.Namespace) -> int:
    return _run_graph(ns.graph, _parse_assignments(ns.arguments), ns.namespace, ns.config)


def _run_graph(graph: str, arguments: dict[str, str], namespace: str,
               config: str | None) -> int:
    """Run a graph, echoing each node's output, until a node exits or Ctrl-C."""
    from mouse_lifter_ros.runner import GraphRun

    with GraphRun(graph, arguments=arguments, namespace=namespace, params_file=config) as run:
        try:
            ended = None
            while ended is None:
                ended = run.wait_any(timeout=0.2)
                _echo(run)
            code = run.processes[ended].returncode
            print(f"[run] {ended} exited with {code}; stopping the graph")
        except KeyboardInterrupt:
            pass
        codes = run.stop()
        _echo(run)
    return max((abs(c) for c in codes.values() if c not in (0, -2)), default=0)


def _echo(run: GraphRun) -> None:
    for name in run.processes:
        for line in run.new_output(name).splitlines():
            print(f"[{name}] {line}")
    sys.stdout.flush()


def _demo(ns: argparse.Namespace) -> int:
    from mouse_lifter_ros.core.democlip import write_demo_clip

    work = Path(ns.workdir)
    print(f"== 1/2 making the demo clip in {work}")
    start = time.monotonic()
    clip = write_demo_clip(work, seconds=ns.seconds)
    print(f"   rendered by the synthetic data engine: a mouse walks, rears, walks, grooms; "
          f"{clip.frames} frames, 640x480 mono8, {clip.fps:g} fps "
          f"({time.monotonic() - start:.1f} s)\n   {clip.video}, {clip.bag}, {clip.truth}")
    print("== 2/2 replaying it through the ROS graph 'replay' (real node processes over DDS):"
          "\n   bag_source -> camera/image_raw -> keypoint (2D model) -> keypoints; the "
          "monitor reports both")
    # The bag waits for the keypoint node and the monitor, so that every frame is seen.
    return _run_graph("replay", {"bag": str(clip.bag), "wait_for_subscribers": "2"},
                      namespace="demo", config=None)


def _eval_behavior(ns: argparse.Namespace) -> int:
    from mouse_lifter_ros.core.behavior import evaluate_behavior

    result = evaluate_behavior(ns.model, seed=ns.seed, sequences=ns.sequences,
                               workers=ns.workers or os.cpu_count() or 1,
                               progress=not ns.quiet)
    print(json.dumps(result, indent=2))
    return 0


def _train_behavior(ns: argparse.Namespace) -> int:
    from mouse_lifter_ros.core.behavior import train_behavior

    metrics = train_behavior(ns.out, sequences=ns.sequences, seed=ns.seed,
                             eval_sequences=ns.eval_sequences,
                             workers=ns.workers or os.cpu_count() or 1, progress=not ns.quiet)
    print(json.dumps(metrics, indent=2))
    print(f"wrote {ns.out}", file=sys.stderr)
    return 0


_OPENFIELD_MAP = "snout=nose,leftear=left_ear,rightear=right_ear,tailbase=tail_base"


def _frames_arg(text: str | None) -> list[str] | None:
    if not text:
        return None
    if text.startswith("@"):
        return [ln.strip() for ln in Path(text[1:]).read_text().splitlines() if ln.strip()]
    return [t.strip() for t in text.split(",") if t.strip()]


def _eval_2d(ns: argparse.Namespace) -> int:
    from mouse_lifter_ros.core.eval2d import evaluate_2d
    from mouse_lifter_ros.core.keypoints import KeypointModel
    from mouse_lifter_ros.core.synth.keypoint_maps import parse_map

    model = KeypointModel(ns.model, device=ns.device)
    print(f"model: {model.description}", file=sys.stderr)
    frames = _frames_arg(ns.frames)
    if ns.split != "all":
        training = _model_training_notes(model.spec.path)
        key = "holdout" if ns.split == "holdout" else "real_train_names"
        if not training.get(key):
            raise MouseLifterError(f"--split {ns.split}: {model.spec.path} records no "
                                   f"'{key}' list under 'training'")
        frames = [str(f) for f in training[key]]  # type: ignore[attr-defined]
    result = evaluate_2d(model, ns.labels, parse_map(ns.map), frames=frames)
    result["split"] = ns.split if ns.split != "all" or frames is None else "frames"
    print(json.dumps(result, indent=2))
    return 0


def _model_training_notes(path: Path) -> dict[str, object]:
    import yaml

    data = yaml.safe_load(Path(path).read_text()) or {}
    notes = data.get("training") or {}
    return notes if isinstance(notes, dict) else {}


def _train_2d(ns: argparse.Namespace) -> int:
    try:
        from mouse_lifter_ros.training.train2d import Train2DConfig, train_2d
    except ImportError as exc:
        raise MouseLifterError(f"train-2d needs the training extra (PyTorch): "
                               f"pip install 'mouse_lifter_ros[train]' ({exc})") from exc
    from mouse_lifter_ros.core.synth.keypoint_maps import parse_map

    cfg = Train2DConfig(out=Path(ns.out), seed=ns.seed,
                        labels=Path(ns.labels) if ns.labels else None,
                        label_map=parse_map(ns.map), holdout_last=ns.holdout_last, gap=ns.gap,
                        windows=ns.windows, detector_frames=ns.detector_frames,
                        det_steps=ns.det_steps, det_real_steps=ns.det_real_steps,
                        kp_steps=ns.kp_steps, finetune_steps=ns.finetune_steps,
                        real_per_batch=ns.real_per_batch,
                        parts=tuple(p.strip() for p in ns.parts.split(",") if p.strip()),
                        workers=ns.workers or os.cpu_count() or 1,
                        cache=Path(ns.cache) if ns.cache else None)
    log = train_2d(cfg, resume=ns.resume)
    print(f"wrote {ns.out}/default.yaml (+ synthetic_only/) in {log['seconds']:.0f} s",
          file=sys.stderr)
    return 0


def _label_video(ns: argparse.Namespace) -> int:
    from mouse_lifter_ros.core.keypoints import KeypointModel
    from mouse_lifter_ros.core.overlay import write_labelled_video

    model = KeypointModel(ns.model, device=ns.device)
    print(f"model: {model.description}", file=sys.stderr)
    stats = write_labelled_video(ns.video, ns.out, model, p_cutoff=ns.p_cutoff,
                                 trail=ns.trail, max_frames=ns.max_frames,
                                 dlc_stem=ns.dlc, progress=not ns.quiet)
    print(json.dumps(stats, indent=2))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = argparse.ArgumentParser(prog="mouse-lifter", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo-clip", help="write the demo clip as demo.mp4 and demo_bag/")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--seconds", type=float, default=None,
                   help="scale the clip's bouts to last this long (default: 5.8 s)")
    p.add_argument("--fps", type=float, default=30.0)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_demo_clip)

    p = sub.add_parser(
        "synth", help="render a synthetic dataset: images, depth, masks, keypoints, cameras",
        description="Render a versioned synthetic dataset (format: mouse_lifter_ros/core/synth/"
        "dataset.py). The same arguments give the same bytes.")
    p.add_argument("--out", required=True, help="output folder (replaced if it holds a dataset)")
    p.add_argument("--count", type=int, required=True,
                   help="number of stills, or of sequences with --sequence")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--view", choices=("top", "bottom"), default="top")
    p.add_argument("--sequence", type=float, default=0.0, metavar="SECONDS",
                   help="render sequences this long instead of stills")
    p.add_argument("--fps", type=float, default=30.0, help="frame rate of sequences")
    p.add_argument("--size", default="640x480", help="camera image size WIDTHxHEIGHT")
    p.add_argument("--crop", type=int, default=0,
                   help="render only a square window this big around the mouse (0: full image)")
    p.add_argument("--colour", choices=("grey", "colour", "mixed"), default="grey")
    p.add_argument("--workers", type=int, default=None, help="processes (default: CPU cores)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_synth)

    p = sub.add_parser("bag-info", help="list the topics of a rosbag2 folder")
    p.add_argument("bag")
    p.set_defaults(func=_bag_info)

    p = sub.add_parser("run", help="start a graph of config/graph.yaml as node processes "
                       "(what `ros2 launch` starts); stops when a node exits or on Ctrl-C")
    p.add_argument("graph", help="live or replay")
    p.add_argument("arguments", nargs="*", help="launch arguments, name:=value")
    p.add_argument("--namespace", default="")
    p.add_argument("--config", default=None, help="parameter file (default: the installed one)")
    p.set_defaults(func=_run)

    p = sub.add_parser("demo", help="make the demo clip and replay it through the ROS graph")
    p.add_argument("--workdir", default="build/demo")
    p.add_argument("--seconds", type=float, default=None,
                   help="scale the clip's bouts to last this long (default: 5.8 s)")
    p.set_defaults(func=_demo)

    p = sub.add_parser(
        "eval-behavior", help="per-class and macro F1 of the behaviour classifier, 3D and "
        "2D-only features, on held-out synthetic sequences (JSON)",
        description="Score the behaviour classifier (mouse_lifter_ros/core/behavior.py) on "
        "held-out synthetic sequences: SeedSequence([seed, 1000000 + i]), never training "
        "data. Prints JSON: per-class F1 and macro F1 for '3d' and '2d'.")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sequences", type=int, default=100, help="15 s sequences to score")
    p.add_argument("--model", default=None, help="model file (default: the shipped one)")
    p.add_argument("--workers", type=int, default=None, help="processes (default: CPU cores)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=_eval_behavior)

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
    p.add_argument("--workers", type=int, default=None, help="processes (default: CPU cores)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=_train_behavior)
    p = sub.add_parser(
        "eval-2d", help="score a 2D keypoint model on a DeepLabCut labelled folder (JSON)",
        description="Run the model on each image of a DeepLabCut-format labelled folder and "
        "print JSON: per-keypoint and mean pixel error, PCK at 5 and 10 px, frame count.")
    p.add_argument("--labels", required=True, help="PATH/CollectedData.csv (images beside it)")
    p.add_argument("--model", default=None, help="model YAML (default: the shipped model)")
    p.add_argument("--map", default=_OPENFIELD_MAP,
                   help="their_part=our_keypoint,... (default: the openfield project's)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--frames", default=None,
                   help="only these image names: a,b,c or @file with one per line")
    p.add_argument("--split", default="all", choices=("all", "holdout", "train"),
                   help="held-out or training frames as the model YAML records them")
    p.set_defaults(func=_eval_2d)

    p = sub.add_parser(
        "train-2d", help="train the 2D detector and keypoint network (needs PyTorch)",
        description="Render synthetic training data, train the detector and the keypoint "
        "network on it, export the synthetic-only model, fine-tune both with the real "
        "labelled frames (the last --holdout-last held out, --gap before them unused) and "
        "export the final model (ONNX + YAML). The defaults reproduce the shipped model.")
    p.add_argument("--out", required=True, help="folder for default.yaml, *.onnx, logs")
    p.add_argument("--labels", default=None, help="DeepLabCut CollectedData.csv to fine-tune on")
    p.add_argument("--map", default=_OPENFIELD_MAP, help="their_part=our_keypoint,...")
    p.add_argument("--holdout-last", type=int, default=24)
    p.add_argument("--gap", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--windows", type=int, default=40000, help="synthetic keypoint windows")
    p.add_argument("--detector-frames", type=int, default=24000)
    p.add_argument("--det-steps", type=int, default=4000)
    p.add_argument("--det-real-steps", type=int, default=800)
    p.add_argument("--kp-steps", type=int, default=4000)
    p.add_argument("--finetune-steps", type=int, default=2500)
    p.add_argument("--real-per-batch", type=int, default=12,
                   help="real frames in each fine-tuning batch of 32")
    p.add_argument("--parts", default="detector,keypoints",
                   help="networks to train: detector, keypoints or both; the other's files "
                   "in OUT stay as they are")
    p.add_argument("--resume", action="store_true",
                   help="reuse OUT/synthetic_only/*.pt from an earlier run with the same "
                   "arguments (same result as a full run)")
    p.add_argument("--workers", type=int, default=None, help="render processes")
    p.add_argument("--cache", default=None, help="folder to keep rendered data between runs")
    p.set_defaults(func=_train_2d)

    p = sub.add_parser(
        "label-video", help="run the 2D model over a video and draw skeleton and trails",
        description="Write a labelled copy of VIDEO (skeleton, keypoints, trails) and, with "
        "--dlc, the predictions as DeepLabCut .h5/.csv.")
    p.add_argument("video")
    p.add_argument("--out", required=True, help="labelled video to write (.mp4)")
    p.add_argument("--model", default=None, help="model YAML (default: the shipped model)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--p-cutoff", type=float, default=0.5)
    p.add_argument("--trail", type=int, default=15, help="frames of trail per keypoint")
    p.add_argument("--max-frames", type=int, default=None)
    p.add_argument("--dlc", default=None, help="also write PATH.h5 and PATH.csv")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_label_video)

    ns = parser.parse_args(argv)
    try:
        return int(ns.func(ns))
    except MouseLifterError as exc:
        print(f"mouse-lifter: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
