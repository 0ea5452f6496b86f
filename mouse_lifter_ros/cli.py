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
    mouse-lifter analyze VIDEO... --out DIR     offline analysis: poses, table, video, plots
    mouse-lifter train-depth --out DIR          train the depth network (synthetic data)
    mouse-lifter eval-3d --synthetic|--dannce F 3D error of the whole core, and a 2D baseline
    mouse-lifter calibrate --intrinsics CAM.yaml --out ARENA.yaml ...   camera pose over the floor
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

from mouse_lifter_ros.core.errors import MouseLifterError

if TYPE_CHECKING:
    import numpy as np

    from mouse_lifter_ros.core.arena import ArenaCalibration
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


#: Seconds a graph with a recorder runs on after its source ended. Under start-up load Fast
#: DDS can match a reader up to one participant announcement period (3 s) late; the
#: recorder's transient-local subscriptions then still receive every frame, but only
#: while the publishing nodes are alive.
RECORDER_DRAIN_S: Final = 3.5


def _run_graph(graph: str, arguments: dict[str, str], namespace: str,
               config: str | None) -> int:
    """Run a graph, echoing each node's output, until its source ends, every node has
    exited, or Ctrl-C / SIGTERM; then stop every node. Another node that exits (a
    recorder refusing to overwrite) is reported and the rest of the graph runs on, as
    under ``ros2 launch``. The exit code is the worst of the nodes'."""
    from mouse_lifter_ros.runner import GraphRun

    with GraphRun(graph, arguments=arguments, namespace=namespace,
                  params_file=config) as run, _sigterm_as_interrupt():
        for name, why in run.left_out.items():
            print(f"[run] {name} left out: it {why}")
        try:
            exited: list[str] = []
            while len(exited) < len(run.processes):
                ended = run.wait_any(timeout=0.2, ignore=exited)
                _echo(run)
                if ended is None:
                    continue
                exited.append(ended)
                code = run.processes[ended].returncode
                if ended not in run.sources and len(exited) < len(run.processes):
                    print(f"[run] {ended} exited with {code}; the rest of the graph runs on")
                    continue
                drain = (RECORDER_DRAIN_S if code == 0 and "recorder" in run.processes
                         and run.processes["recorder"].poll() is None else 0.0)
                print(f"[run] {ended} exited with {code}; "
                      + (f"the recorder gets {drain:g} s to receive the rest, then " if drain
                         else "") + "stopping the graph")
                deadline = time.monotonic() + drain
                while time.monotonic() < deadline:
                    time.sleep(0.2)
                    _echo(run)
                break
        except KeyboardInterrupt:
            print("[run] interrupted: stopping the graph")
        with _signals_ignored():  # a second Ctrl-C must not cut the nodes' clean stop short
            codes = run.stop()
            _echo(run)
    return max((abs(c) for c in codes.values() if c not in (0, -2)), default=0)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (a service manager, ``kill``) stops the graph as Ctrl-C does."""
    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _signals_ignored() -> Iterator[None]:
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _echo(run: GraphRun) -> None:
    for name in run.processes:
        for line in run.new_output(name).splitlines():
            print(f"[{name}] {line}")
    sys.stdout.flush()


def _demo(ns: argparse.Namespace) -> int:
    from mouse_lifter_ros.core.democlip import truth_bouts, write_demo_clip
    from mouse_lifter_ros.core.recorder import describe_recording
    from mouse_lifter_ros.core.stats import MIN_FLOW_FRACTION

    work = Path(ns.workdir)
    print(f"== 1/3 making the demo clip in {work}")
    start = time.monotonic()
    clip = write_demo_clip(work, seconds=ns.seconds)
    print(f"   rendered by the synthetic data engine: a mouse walks, rears, walks, grooms; "
          f"{clip.frames} frames, 640x480 mono8, {clip.fps:g} fps "
          f"({time.monotonic() - start:.1f} s)\n   {clip.video}, {clip.bag}, {clip.truth}")
    print("   ground truth: " + ", ".join(f"{c} frames {a}-{b} ({t0:.2f}-{t1:.2f} s)"
                                          for c, a, b, t0, t1 in truth_bouts(clip.truth)))
    print("== 2/3 replaying it through the ROS graph 'replay' (real node processes over DDS):"
          "\n   bag_source -> camera/image_raw -> keypoint (2D model) -> keypoints\n"
          "                                  -> depth (depth model) -> depth/image\n"
          "   keypoints + depth/image -> lifter (body-model fit) -> pose (Pose3D, metres); "
          f"arena {clip.arena.name}\n   pose -> behavior -> behavior (label per frame)\n"
          "   behavior -> stimulus (its default rule: rearing p > 0.6 for 3 frames) -> trigger\n"
          "   keypoints + pose + behavior -> recorder -> files\n"
          "   the monitor reports images, keypoints, poses, behaviour and each trigger")
    records = work / "recordings"
    for old in records.glob("demo*"):  # the recorder refuses to overwrite a recording
        if old.is_dir():  # the rosbag2 folder
            shutil.rmtree(old)
        else:
            old.unlink()
    # The bag waits for every node of the graph to subscribe (config/graph.yaml), so that
    # every frame is seen.
    summary = work / "monitor_summary.json"
    summary.unlink(missing_ok=True)
    code = _run_graph("replay", {"bag": str(clip.bag), "arena": str(clip.arena),
                                 "record": "true", "record_dir": str(records),
                                 "record_prefix": "demo", "record_bag": "true",
                                 "monitor_summary": str(summary)},
                      namespace="demo", config=None)
    print(f"== 3/3 recorded by the recorder node ({time.monotonic() - start:.1f} s in all)")
    for line in describe_recording(records, "demo"):
        print(f"   {line}")
    problems = _demo_flow_problems(clip.frames, summary, records)
    if problems:
        print("== the graph did NOT carry the clip through:\n   " + "\n   ".join(problems))
        return code or 1
    print(f"== every link carried at least {MIN_FLOW_FRACTION:.0%} of the {clip.frames} "
          "frames, and the stimulus fired")
    return code


def _demo_flow_problems(frames: int, summary: Path, records: Path) -> list[str]:
    """What the demo's graph failed to carry: links below MIN_FLOW_FRACTION of the clip's
    frames (the monitor's totals, the recorder's rows) and a stimulus that never fired."""
    from mouse_lifter_ros.core.record import read_dlc_csv
    from mouse_lifter_ros.core.stats import flow_problems

    try:
        totals = json.loads(summary.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return [f"the monitor's totals {summary} cannot be read ({exc})"]
    topics = totals["messages"]
    carried = {f"{topic} at the monitor": int(topics.get(f"/demo/{topic}", 0))
               for topic in ("camera/image_raw", "keypoints", "pose", "behavior")}
    try:
        carried["rows written by the recorder"] = len(read_dlc_csv(records / "demo.csv"))
    except (OSError, ValueError, MouseLifterError) as exc:
        return [*flow_problems(frames, carried), f"the recording cannot be read ({exc})"]
    problems = flow_problems(frames, carried)
    if totals["triggers"]["on"] < 1:
        problems.append("trigger at the monitor: the stimulus never turned on (the clip's "
                        "mouse rears)")
    return problems


def _eval_behavior(ns: argparse.Namespace) -> int:
    from mouse_lifter_ros.core.behavior import evaluate_behavior

    result = evaluate_behavior(ns.model, seed=ns.seed, sequences=ns.sequences,
                               workers=ns.workers or os.cpu_count() or 1,
                               lifted=ns.lifted, cache=ns.cache, progress=not ns.quiet)
    print(json.dumps(result, indent=2))
    return 0


def _train_behavior(ns: argparse.Namespace) -> int:
    from mouse_lifter_ros.core.behavior import train_behavior

    metrics = train_behavior(ns.out, sequences=ns.sequences, seed=ns.seed,
                             eval_sequences=ns.eval_sequences,
                             workers=ns.workers or os.cpu_count() or 1,
                             lifted_sequences=ns.lifted, eval_lifted=ns.eval_lifted,
                             cache=ns.cache, progress=not ns.quiet)
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
                        lr=ns.lr, workers=ns.workers or os.cpu_count() or 1,
                        cache=Path(ns.cache) if ns.cache else None,
                        init_keypoints=Path(ns.init_keypoints) if ns.init_keypoints else None,
                        init_detector=Path(ns.init_detector) if ns.init_detector else None,
                        mine_with=Path(ns.mine_with) if ns.mine_with else None,
                        mine_fraction=ns.mine_fraction, mine_repeat=ns.mine_repeat)
    log = train_2d(cfg, resume=ns.resume)
    print(f"wrote {ns.out}/default.yaml (+ synthetic_only/) in {log['seconds']:.0f} s",
          file=sys.stderr)
    return 0


def _train_depth(ns: argparse.Namespace) -> int:
    try:
        from mouse_lifter_ros.training.traindepth import TrainDepthConfig, train_depth
    except ImportError as exc:
        raise MouseLifterError(f"train-depth needs the training extra (PyTorch): "
                               f"pip install 'mouse_lifter_ros[train]' ({exc})") from exc
    cfg = TrainDepthConfig(out=Path(ns.out), seed=ns.seed, crops=ns.crops, val=ns.val,
                           steps=ns.steps, lr=ns.lr,
                           workers=ns.workers or os.cpu_count() or 1,
                           cache=Path(ns.cache) if ns.cache else None,
                           init=Path(ns.init) if ns.init else None)
    log = train_depth(cfg)
    print(json.dumps(log["held_out"], indent=2))
    print(f"wrote {ns.out}/default.yaml and depth.onnx in {log['seconds']:.0f} s",
          file=sys.stderr)
    return 0


def _eval_3d(ns: argparse.Namespace) -> int:
    from mouse_lifter_ros.core import eval3d

    if ns.dannce:
        result = eval3d.evaluate_dannce(ns.dannce, seed=ns.seed,
                                        depth_noise_m=ns.depth_noise_mm / 1000.0)
    else:
        result = eval3d.evaluate_synthetic(seed=ns.seed, count=ns.count, seconds=ns.seconds,
                                           keypoint_model=ns.model, depth_model=ns.depth_model,
                                           device=ns.device, progress=not ns.quiet)
    print(json.dumps(result, indent=2))
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


def _lenient(kind: Callable[[str], object]) -> Callable[[str], object]:
    """An argparse type converting with ``kind`` and keeping the text when it cannot:
    ``analyze`` then lists every bad value in one error instead of stopping at the first."""
    def parse(text: str) -> object:
        try:
            return kind(text)
        except ValueError:
            return text
    return parse


def _analyze(ns: argparse.Namespace) -> int:
    from mouse_lifter_ros.core.analysis import AnalysisOptions, analyze

    parts = None if ns.bodyparts is None else tuple(
        p.strip() for p in ns.bodyparts.split(",") if p.strip())
    options = AnalysisOptions(
        out=ns.out, arena=ns.arena, keypoint_model=ns.model, depth_model=ns.depth_model,
        device=ns.device, threads=ns.threads, p_cutoff=ns.p_cutoff,
        median_window=ns.median_window, fmt=ns.format, bodyparts=parts,
        dot_size=ns.dot_size, colormap=ns.colormap, skeleton=ns.skeleton,
        keypoints_only=ns.keypoints_only, trail_points=ns.trail_points,
        output_fps=ns.output_fps, move_speed=ns.move_speed, rest_speed=ns.rest_speed,
        min_bout_s=ns.min_bout, speed_window_s=ns.speed_window, image_topic=ns.image_topic,
        max_frames=ns.max_frames, progress=not ns.quiet)
    summary = analyze(ns.videos, options)
    print(json.dumps(summary, indent=2))
    # The outputs are written; a movie that could not be read whole still fails the run.
    return 1 if any(m["problems"] for m in summary["movies"]) else 0


def _pixel_corners(text: str) -> list[tuple[float, float]]:
    """``"x1,y1 x2,y2 x3,y3 x4,y4"`` -> four (x, y) pixels (argparse type)."""
    try:
        points = [tuple(float(v) for v in item.split(",")) for item in text.split()]
    except ValueError:
        points = []
    if len(points) != 4 or any(len(p) != 2 for p in points):
        raise argparse.ArgumentTypeError(
            f"{text!r}: write four pixels 'x1,y1 x2,y2 x3,y3 x4,y4'")
    return [(p[0], p[1]) for p in points]


def _pair(kind: Callable[[str], float], example: str
          ) -> Callable[[str], tuple[float, float]]:
    """An argparse type reading ``AxB`` as two numbers of ``kind``."""
    def parse(text: str) -> tuple[float, float]:
        a, sep, b = text.lower().partition("x")
        try:
            if sep:
                return kind(a), kind(b)
        except ValueError:
            pass
        raise argparse.ArgumentTypeError(f"{text!r}: write it AxB, e.g. {example}")
    return parse


def _pick_corners(image_path: str, image: np.ndarray) -> list[tuple[float, float]]:
    """Let the user click the arena's four corners in an OpenCV window."""
    import cv2
    import numpy as np

    hint = (" (pass the corners instead: --corners 'x1,y1 x2,y2 x3,y3 x4,y4', e.g. read "
            "off an image viewer)")
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY")
                                                 or os.environ.get("WAYLAND_DISPLAY")):
        raise MouseLifterError("--pick needs a display and none is set (no DISPLAY)" + hint)
    picks: list[tuple[float, float]] = []
    title = "mouse-lifter calibrate: click corners 1-4 (right click: undo, Enter: done)"

    def on_mouse(event: int, x: int, y: int, _flags: int, _param: object) -> None:
        if event == cv2.EVENT_LBUTTONDOWN and len(picks) < 4:
            picks.append((float(x), float(y)))
        elif event == cv2.EVENT_RBUTTONDOWN and picks:
            picks.pop()

    try:
        cv2.namedWindow(title, cv2.WINDOW_NORMAL)
        cv2.setMouseCallback(title, on_mouse)
        print("click the floor's corners in order: arena (-w/2,-h/2), (+w/2,-h/2), "
              "(+w/2,+h/2), (-w/2,+h/2); Enter when done, Esc to give up", file=sys.stderr)
        while True:
            shown = np.array(image, copy=True)
            for i, (x, y) in enumerate(picks):
                cv2.circle(shown, (round(x), round(y)), 5, (0, 0, 255), 2)
                cv2.putText(shown, str(i + 1), (round(x) + 7, round(y) - 7),
                            cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 255), 2)
            cv2.imshow(title, shown)
            key = cv2.waitKey(30) & 0xFF
            if key == 27:
                raise MouseLifterError(f"--pick on {image_path}: cancelled")
            if key in (10, 13) and len(picks) == 4:
                break
    except cv2.error as exc:
        raise MouseLifterError(f"--pick cannot open a window: {exc}".strip() + hint) from exc
    finally:
        with contextlib.suppress(cv2.error):
            cv2.destroyAllWindows()
    print("picked --corners '" + " ".join(f"{x:g},{y:g}" for x, y in picks) + "'",
          file=sys.stderr)
    return picks


def _calibrate(ns: argparse.Namespace) -> int:
    import cv2
    import numpy as np

    from mouse_lifter_ros.core.arena import (
        arena_from_checkerboard,
        arena_from_corners,
        save_arena,
    )
    from mouse_lifter_ros.core.calibration import load_calibration
    from mouse_lifter_ros.core.errors import CalibrationError

    parser: argparse.ArgumentParser = ns.calibrate_parser
    corner_mode = ns.corners is not None or ns.pick
    if corner_mode and ns.arena_size is None:
        parser.error("--corners and --pick need --arena-size WxH (metres)")
    if not corner_mode and ns.arena_size is not None:
        parser.error("--arena-size goes with --corners or --pick, not --checkerboard")
    if ns.checkerboard is not None and (ns.square is None or ns.image is None):
        parser.error("--checkerboard needs --square METRES and --image IMG")
    if ns.checkerboard is None and (ns.charuco or ns.dictionary is not None
                                    or ns.marker is not None or ns.square is not None):
        parser.error("--charuco, --dictionary, --marker and --square go with --checkerboard")
    if (ns.pick or ns.preview) and ns.image is None:
        parser.error("--pick and --preview need --image IMG")
    intrinsics = load_calibration(ns.intrinsics)
    image = np.zeros((0, 0, 3), np.uint8)  # --image is required where it is used
    if ns.image is not None:
        read = cv2.imread(ns.image, cv2.IMREAD_COLOR)
        if read is None:
            raise MouseLifterError(f"image {ns.image!r} cannot be read")
        image = read
    try:
        arena: ArenaCalibration
        if ns.checkerboard is not None:
            arena = arena_from_checkerboard(
                intrinsics, image, pattern=ns.checkerboard, square=ns.square,
                charuco=ns.charuco, dictionary=ns.dictionary or "DICT_4X4_50",
                marker=ns.marker, view=ns.view, max_error=ns.max_error)
        else:
            corners = ns.corners if ns.corners is not None else _pick_corners(ns.image, image)
            arena = arena_from_corners(intrinsics, corners, ns.arena_size,
                                       max_error=ns.max_error)
    except CalibrationError as exc:
        print(f"mouse-lifter: error: calibration refused: {exc}", file=sys.stderr)
        return 1
    save_arena(ns.out, arena, comment=f"mouse-lifter calibrate ({arena.method}) with "
               f"intrinsics {ns.intrinsics}" + (f" and image {ns.image}" if ns.image else ""))
    tilt = float(np.degrees(np.arccos(min(1.0, abs(float(arena.rotation[2, 2]))))))
    print(f"reprojection error {arena.reprojection_error:.3f} px RMS ({arena.method}); camera "
          f"{abs(arena.camera_position[2]):.3f} m from the floor ({arena.view} view), optical "
          f"axis {tilt:.1f} degrees off the floor normal; wrote {ns.out}")
    if ns.preview:
        if ns.checkerboard is not None:
            cols, rows = ns.checkerboard
            span = (cols - (0 if ns.charuco else 1), rows - (0 if ns.charuco else 1))
            outline = (span[0] * ns.square, span[1] * ns.square)
        else:
            outline = ns.arena_size
        _write_preview(ns.preview, image, arena, outline)
        print(f"wrote {ns.preview}")
    return 0


def _write_preview(path: str, image: np.ndarray, arena: ArenaCalibration,
                   outline: tuple[float, float]) -> None:
    """Draw the outline (w, h metres, centred on the arena origin) and the arena axes."""
    import cv2
    import numpy as np

    canvas = np.array(image, copy=True)
    w, h = outline[0] / 2, outline[1] / 2
    s = np.linspace(-1.0, 1.0, 50)
    edge = np.concatenate([np.stack([s * w, -h + 0 * s], 1), np.stack([w + 0 * s, s * h], 1),
                           np.stack([-s * w, h + 0 * s], 1), np.stack([-w + 0 * s, -s * h], 1)])
    px, _ = arena.project(np.column_stack([edge, np.zeros(len(edge))]))
    cv2.polylines(canvas, [np.round(px).astype(np.int32)], True, (0, 255, 255), 2)
    length = 0.4 * min(outline)
    axes, _ = arena.project(np.array([[0, 0, 0], [length, 0, 0], [0, length, 0],
                                      [0, 0, length]], dtype=np.float64))
    o = tuple(int(v) for v in np.round(axes[0]))
    for end, colour in zip(axes[1:], ((0, 0, 255), (0, 255, 0), (255, 0, 0)), strict=True):
        cv2.arrowedLine(canvas, o, tuple(int(v) for v in np.round(end)), colour, 2)
    if not cv2.imwrite(path, canvas):
        raise MouseLifterError(f"preview {path!r} cannot be written")


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
    p.add_argument("graph", help="live, replay or closed_loop")
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
    p.add_argument("--lifted", type=int, default=0,
                   help="also score this many held-out sequences rendered and lifted by the "
                   "whole image-to-pose core (about 16 s each per core)")
    p.add_argument("--cache", default=None, help="folder keeping the lifted poses")
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
    p.add_argument("--lifted", type=int, default=0,
                   help="15 s sequences rendered and lifted by the whole image-to-pose core, "
                   "added to the training data (about 16 s each per core)")
    p.add_argument("--eval-lifted", type=int, default=0,
                   help="held-out lifted sequences scored after training")
    p.add_argument("--cache", default=None, help="folder keeping the lifted poses")
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
    p.add_argument("--lr", type=float, default=2e-3,
                   help="peak learning rate of the synthetic phases (fine-tuning on real "
                   "frames: half of it for the keypoints, a quarter for the detector)")
    p.add_argument("--init-keypoints", default=None,
                   help="synthetic_only/keypoints.pt of an earlier run to continue from")
    p.add_argument("--init-detector", default=None,
                   help="synthetic_only/detector.pt of an earlier run to continue from")
    p.add_argument("--mine-with", default=None, metavar="DETECTOR.yaml",
                   help="hard-example mining: a trained detector scores the synthetic "
                   "frames and the worst --mine-fraction are drawn --mine-repeat times "
                   "more often")
    p.add_argument("--mine-fraction", type=float, default=0.15)
    p.add_argument("--mine-repeat", type=int, default=3)
    p.add_argument("--workers", type=int, default=None, help="render processes")
    p.add_argument("--cache", default=None, help="folder to keep rendered data between runs")
    p.set_defaults(func=_train_2d)

    p = sub.add_parser(
        "train-depth", help="train the depth network on synthetic crops (needs PyTorch)",
        description="Render synthetic mouse crops with their height maps, train the depth "
        "network, report the held-out error and export ONNX + YAML. The defaults reproduce "
        "the shipped model.")
    p.add_argument("--out", required=True, help="folder for default.yaml, depth.onnx, logs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--crops", type=int, default=20000, help="synthetic crops rendered")
    p.add_argument("--val", type=int, default=500, help="of which held out")
    p.add_argument("--steps", type=int, default=7000, help="training batches of 32")
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate")
    p.add_argument("--init", default=None,
                   help="depth.pt of an earlier run to start from (fine-tuning)")
    p.add_argument("--workers", type=int, default=None, help="render processes")
    p.add_argument("--cache", default=None, help="folder to keep rendered data between runs")
    p.set_defaults(func=_train_depth)

    p = sub.add_parser(
        "eval-3d", help="3D error of the whole core on held-out synthetic sequences or on "
        "real DANNCE 3D labels",
        description="--synthetic: render held-out sequences (new mice, scenes, cameras and "
        "behaviour), run images -> 2D keypoints + depth -> lifter, and print JSON: mean "
        "per-joint error (mm) overall and per keypoint, height errors, and the same for a "
        "2D-only baseline that puts every keypoint on the floor. --dannce FILE.mat: project "
        "DANNCE's hand-labelled 3D poses into a virtual top camera, add the 2D model's "
        "noise, lift and print the same errors on the keypoints both sets have.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--synthetic", action="store_true", help="held-out synthetic sequences")
    src.add_argument("--dannce", default=None, metavar="FILE.mat",
                     help="DANNCE label3d_dannce.mat (e.g. ../shared/data/dannce-3d/...)")
    p.add_argument("--seed", type=int, default=7, help="draws of the sequences or the noise")
    p.add_argument("--count", type=int, default=10, help="--synthetic: sequences")
    p.add_argument("--seconds", type=float, default=2.0, help="--synthetic: seconds each")
    p.add_argument("--model", default=None, help="2D model YAML (default: shipped)")
    p.add_argument("--depth-model", default=None, help="depth model YAML (default: shipped)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--depth-noise-mm", type=float, default=3.0,
                   help="--dannce: depth reading noise (sd, mm)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_eval_3d)

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

    p = sub.add_parser(
        "analyze", help="offline analysis of videos or rosbag2 folders: DeepLabCut files, "
        "one annotations table, labelled videos, preview plots, locomotion",
        description="Run the core pipeline (2D keypoints; with --arena also depth, the 3D "
        "lifter and behaviour) over each movie without ROS and write into --out per movie "
        "STEM: STEM.h5 and STEM.csv (DeepLabCut), STEM_labelled.mp4, STEM_jumps.png, "
        "STEM_likelihood.png, STEM_coordinates.png, STEM_trajectory.png, "
        "STEM_locomotion.csv and STEM_locomotion.json; and one annotations.csv (or "
        ".parquet) across the movies (Inscopix IDEAS columns, Movie number 0, 1, ...). "
        "Prints a JSON summary. Invalid options: one error listing each, exit code 2. "
        "Details: mouse_lifter_ros/core/analysis.py.")
    p.add_argument("videos", nargs="+", metavar="VIDEO",
                   help=".mp4/.avi files or rosbag2 folders, in movie-number order")
    p.add_argument("--out", required=True, help="output folder (files in it are replaced)")
    p.add_argument("--arena", default=None, metavar="ARENA.yaml",
                   help="arena calibration (mouse-lifter calibrate) of the camera: 3D poses, "
                   "behaviour and locomotion in metres; without it 2D only, pixels")
    p.add_argument("--format", default="csv", help="annotations table: csv or parquet")
    p.add_argument("--p-cutoff", type=_lenient(float), default=0.5,
                   help="likelihood below which a keypoint is not used (lifter, video, plots, "
                   "2D locomotion); the files keep every keypoint (default 0.5)")
    p.add_argument("--median-window", type=_lenient(int), default=0, metavar="FRAMES",
                   help="median filter of the keypoint coordinates over this many frames: "
                   "odd, >= 3; 0 or 1: none (default 0)")
    v = p.add_argument_group("labelled video")
    v.add_argument("--bodyparts", default=None, metavar="A,B,...",
                   help="body parts drawn (default: all)")
    v.add_argument("--dot-size", type=_lenient(int), default=None, metavar="PX",
                   help="keypoint dot radius (default: 3 px at 480 p, scaled)")
    v.add_argument("--colormap", default=None,
                   help="matplotlib colormap of the keypoint colours, e.g. rainbow, viridis "
                   "(default: the label-video colours); the plots use it too")
    v.add_argument("--skeleton", action=argparse.BooleanOptionalAction, default=True,
                   help="draw the skeleton (default: on)")
    v.add_argument("--keypoints-only", action="store_true",
                   help="draw on black instead of the video's frames")
    v.add_argument("--trail-points", type=_lenient(int), default=0, metavar="N",
                   help="frames of fading trail per keypoint (default 0)")
    v.add_argument("--output-fps", type=_lenient(float), default=None, metavar="HZ",
                   help="frame rate of the labelled video; every frame is written "
                   "(default: the movie's)")
    g = p.add_argument_group("locomotion")
    g.add_argument("--move-speed", type=_lenient(float), default=None,
                   help="moving above this speed: m/s with --arena (default 0.02), px/s "
                   "without (default 0.2 body lengths per second, measured)")
    g.add_argument("--rest-speed", type=_lenient(float), default=None,
                   help="resting again below this speed, same unit (default: half of "
                   "--move-speed)")
    g.add_argument("--min-bout", type=_lenient(float), default=0.25, metavar="SECONDS",
                   help="shorter rest or movement bouts take the state before them "
                   "(default 0.25)")
    g.add_argument("--speed-window", type=_lenient(float), default=0.2, metavar="SECONDS",
                   help="moving average of the centre of mass before speed and distance "
                   "(default 0.2)")
    p.add_argument("--model", default=None, help="2D model YAML (default: the shipped model)")
    p.add_argument("--depth-model", default=None, help="depth model YAML (default: shipped)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--threads", type=_lenient(int), default=0,
                   help="ONNX Runtime CPU threads per network (0: its default)")
    p.add_argument("--image-topic", default="/camera/image_raw",
                   help="rosbag2 inputs: the sensor_msgs/Image topic")
    p.add_argument("--max-frames", type=_lenient(int), default=None,
                   help="analyse at most this many frames of each movie")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_analyze)

    p = sub.add_parser(
        "calibrate", help="the camera's pose over the arena floor from four picked corners "
        "or a checkerboard/ChArUco image, saved as YAML the nodes load",
        description="Calibrate the camera's pose over the arena floor (mouse_lifter_ros/core/"
        "arena.py) from the arena's four corners of known size in an image (--corners or "
        "--pick) or a checkerboard / ChArUco board lying flat on the floor "
        "(--checkerboard). Prints the reprojection error; exits 1 when the calibration "
        "is refused, saying why.")
    p.add_argument("--intrinsics", required=True, help="camera_calibration YAML (intrinsics)")
    p.add_argument("--out", required=True, help="arena calibration YAML to write")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--corners", type=_pixel_corners, metavar="'x1,y1 x2,y2 x3,y3 x4,y4'",
                      help="pixels of the floor's corners at arena (-w/2,-h/2), (+w/2,-h/2), "
                      "(+w/2,+h/2), (-w/2,+h/2)")
    mode.add_argument("--pick", action="store_true",
                      help="click the four corners in a window showing --image")
    mode.add_argument("--checkerboard", type=_pair(int, "9x6"), metavar="COLSxROWS",
                      help="inner corners of a checkerboard (squares with --charuco)")
    p.add_argument("--arena-size", type=_pair(float, "0.46x0.34"), metavar="WxH",
                   help="floor extent along arena x and y, metres (with --corners/--pick)")
    p.add_argument("--image", default=None, help="image of the arena / board")
    p.add_argument("--square", type=float, default=None, help="board square side, metres")
    p.add_argument("--charuco", action="store_true", help="the board is a ChArUco board")
    p.add_argument("--dictionary", default=None, help="ArUco dictionary (DICT_4X4_50)")
    p.add_argument("--marker", type=float, default=None,
                   help="ChArUco marker side, metres (default: 0.75 square)")
    p.add_argument("--view", choices=("top", "bottom"), default="top",
                   help="with a board: camera above the floor or below a clear floor")
    p.add_argument("--max-error", type=float, default=2.0, metavar="PX",
                   help="refuse an RMS reprojection error above this (default 2 px)")
    p.add_argument("--preview", default=None, metavar="OUT.png",
                   help="draw the outline and axes reprojected onto --image")
    p.set_defaults(func=_calibrate, calibrate_parser=p)

    ns, extra = parser.parse_known_args(argv)
    if ns.command == "run":  # launch arguments may follow the options too
        ns.arguments += [a for a in extra if ":=" in a]
        extra = [a for a in extra if ":=" not in a]
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return int(ns.func(ns))
    except MouseLifterError as exc:
        print(f"mouse-lifter: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
