"""The project's own demo clip, rendered by the synthetic data engine.

A black mouse in a white open field seen from above (640x480 mono8, 30 fps): it walks,
rears, walks on and grooms. The clip needs no outside data and the same arguments give
the same pixels. Beside the video and the rosbag2 it writes the ground truth, so that
tests and later stages can check what they see:

- ``demo_truth.csv``: per frame the time, the behaviour (fine label and class), and per
  keypoint the pixel position, visibility and arena-frame position in metres;
- ``demo_scene.json``: the camera (intrinsics, pose over the arena) and the arena;
- ``demo_arena.yaml``: the same camera as the arena calibration the depth and lifter
  nodes load (what ``mouse-lifter calibrate`` writes for a real rig).
"""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np

from mouse_lifter_ros.core.arena import ArenaCalibration, arena_from_camera, save_arena
from mouse_lifter_ros.core.bag import write_image_bag
from mouse_lifter_ros.core.body import BEHAVIOR_CLASSES, KEYPOINTS, MouseShape
from mouse_lifter_ros.core.calibration import (
    CameraCalibration,
    camera_info_fields,
    parse_calibration,
)
from mouse_lifter_ros.core.camera import Camera
from mouse_lifter_ros.core.synth.motion import Arena, script_sequence
from mouse_lifter_ros.core.synth.render import Sample, Scene, camera_over_arena, render
from mouse_lifter_ros.core.video import write_video

#: The demo camera: 640x480 pinhole, no distortion; config/calibration/demo_camera.yaml.
WIDTH, HEIGHT = 640, 480
DEMO_CAMERA: dict[str, object] = {
    "image_width": WIDTH,
    "image_height": HEIGHT,
    "camera_name": "demo_top_camera",
    "camera_matrix": {"rows": 3, "cols": 3,
                      "data": [600.0, 0.0, 319.5, 0.0, 600.0, 239.5, 0.0, 0.0, 1.0]},
    "distortion_model": "plumb_bob",
    "distortion_coefficients": {"rows": 1, "cols": 5, "data": [0.0] * 5},
}

#: The behaviour bouts of the clip (fine label, seconds) at its natural length.
SCRIPT: Final[tuple[tuple[str, float], ...]] = (
    ("walk", 2.0), ("rear", 1.3), ("walk", 1.0), ("groom", 1.5))
#: The arena (m) and the camera's height over its floor (m): the floor fills the image.
ARENA: Final = Arena(size=(0.46, 0.34), wall_height=0.25)
CAMERA_HEIGHT: Final = 0.47
#: Where the walk starts: tail base x, y (m) and heading (rad).
START: Final = (-0.13, -0.06, 0.35)


@dataclass(frozen=True)
class DemoClip:
    """Paths of a written demo clip."""

    video: Path
    bag: Path
    truth: Path
    scene: Path
    arena: Path
    frames: int
    fps: float


def demo_calibration() -> CameraCalibration:
    """The intrinsics the demo clip is rendered with."""
    return parse_calibration(DEMO_CAMERA, source="demo camera")


def demo_camera(view: str = "top") -> Camera:
    """The demo camera: straight down over the arena centre (``view`` top) or straight up
    from under its clear floor (bottom), arena +x to the right."""
    return camera_over_arena(view=view, height_m=CAMERA_HEIGHT, K=demo_calibration().k,
                             dist=None, width=WIDTH, height=HEIGHT)


def demo_arena(view: str = "top") -> ArenaCalibration:
    """The demo camera as an arena calibration (``config/calibration/demo_arena.yaml``
    for the top view)."""
    return arena_from_camera(demo_camera(view), arena_size=ARENA.size,
                             camera_name=str(DEMO_CAMERA["camera_name"]))


def demo_scene(view: str = "top") -> Scene:
    """A lit white open field with a pen line, like the DeepLabCut openfield rig; from
    the bottom, its clear floor over a dim room."""
    return Scene(view=view, arena=ARENA.size, wall_height=ARENA.wall_height, floor="white",
                 lines=(((-0.15, 0.12), (-0.05, 0.12), (0.0, -0.08), (0.12, -0.08)),),
                 line_width=0.0012, line_darkness=0.3, light="white", vignetting=1.0,
                 shadow=0.25, colour=False)


def demo_script(seconds: float | None = None) -> list[tuple[str, float]]:
    """:data:`SCRIPT`, its bouts scaled so that they last ``seconds`` in all."""
    total = sum(d for _, d in SCRIPT)
    k = 1.0 if seconds is None else seconds / total
    return [(name, d * k) for name, d in SCRIPT]


def demo_samples(seconds: float | None = None, fps: float = 30.0, seed: int = 0,
                 view: str = "top") -> Iterator[tuple[Sample, str, float]]:
    """Yield (sample, fine behaviour label, time s) for each frame of the clip, seen
    from ``view`` (top, or bottom through the clear floor).

    ``seconds`` (default: the script's 5.8 s) scales every bout; the clip has
    ``round(seconds * fps)`` frames.
    """
    rng = np.random.default_rng(seed)
    shape = MouseShape()  # an adult black mouse of the default size
    script = demo_script(seconds)
    seq = script_sequence(script, shape, fps=fps, arena=ARENA, rng=rng, start=START)
    n = max(1, round(sum(d for _, d in script) * fps))
    camera, scene = demo_camera(view), demo_scene(view)
    states, labels = seq.states(shape), seq.labels
    for i in range(n):
        j = min(i, len(states) - 1)  # a last frame lost to rounding repeats its neighbour
        yield render(shape, states[j], camera, scene, rng), labels[j], i / fps


def demo_frames(seconds: float | None = None, fps: float = 30.0, seed: int = 0,
                view: str = "top") -> Iterator[np.ndarray]:
    """Yield the clip's frames, each (480, 640) uint8 grey."""
    for sample, _, _ in demo_samples(seconds, fps, seed, view):
        yield sample.image


def _write_truth(path: Path, rows: Sequence[tuple[Sample, str, float]]) -> None:
    header = ["frame", "time_s", "behavior", "behavior_class"]
    for k in KEYPOINTS:
        header += [f"{k}_u", f"{k}_v", f"{k}_visible", f"{k}_x_m", f"{k}_y_m", f"{k}_z_m"]
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(header)
        for i, (s, label, t) in enumerate(rows):
            row: list[object] = [i, f"{t:.6f}", label, BEHAVIOR_CLASSES[label]]
            for j in range(len(KEYPOINTS)):
                u, v = s.keypoints_2d[j]
                x, y, z = s.keypoints_arena[j]
                row += [f"{u:.3f}", f"{v:.3f}", int(s.visible[j]),
                        f"{x:.6f}", f"{y:.6f}", f"{z:.6f}"]
            out.writerow(row)


def truth_bouts(truth: str | Path) -> list[tuple[str, int, int, float, float]]:
    """The behaviour classes of a ``demo_truth.csv`` as bouts: (class, first frame, last
    frame, first time s, last time s), in order."""
    bouts: list[tuple[str, int, int, float, float]] = []
    with Path(truth).open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            label, frame, t = row["behavior_class"], int(row["frame"]), float(row["time_s"])
            if bouts and bouts[-1][0] == label:
                bouts[-1] = (label, bouts[-1][1], frame, bouts[-1][3], t)
            else:
                bouts.append((label, frame, frame, t, t))
    return bouts


def write_demo_clip(out_dir: str | Path, *, seconds: float | None = None, fps: float = 30.0,
                    seed: int = 0, view: str = "top") -> DemoClip:
    """Write ``demo.mp4``, the rosbag2 ``demo_bag`` (image + camera_info), the ground
    truth ``demo_truth.csv``, ``demo_scene.json`` and ``demo_arena.yaml``, seen from
    ``view``. An existing clip is replaced."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    video, bag = out / "demo.mp4", out / "demo_bag"
    truth, scene_path = out / "demo_truth.csv", out / "demo_scene.json"
    rows = list(demo_samples(seconds, fps, seed, view))
    frames = [s.image for s, _, _ in rows]
    write_video(video, frames, fps)
    if bag.exists():
        shutil.rmtree(bag)
    info = camera_info_fields(demo_calibration())
    write_image_bag(bag, frames, fps=fps, encoding="mono8", camera_info=info)
    _write_truth(truth, rows)
    scene = {"camera": demo_camera(view).to_dict(), "arena": list(ARENA.size),
             "wall_height": ARENA.wall_height, "fps": fps,
             "script": [list(b) for b in demo_script(seconds)],
             "scene": demo_scene(view).to_dict()}
    scene_path.write_text(json.dumps(scene, indent=1) + "\n", encoding="utf-8")
    arena = out / "demo_arena.yaml"
    save_arena(arena, demo_arena(view),
               comment=f"The demo clip's camera {'over' if view == 'top' else 'under'} its "
               "arena (exact).")
    return DemoClip(video, bag, truth, scene_path, arena, len(frames), fps)
