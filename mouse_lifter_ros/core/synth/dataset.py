"""Synthetic datasets on disk: write them in parallel, read them back.

A dataset folder holds::

    dataset.json       what it is: format, version, seed, view, sizes, keypoints, units
    manifest.jsonl     one JSON object per sample, in index order (see below)
    images/NNNNNN.png  grey (mono8) or colour (bgr8) image
    depth/NNNNNN.npy   float32 (H, W) camera-frame z in metres; 0 where nothing is hit
    regions/NNNNNN.png uint8 (H, W): what each pixel sees: 0 nothing, 1 floor, 2 wall,
                       3 clutter or object, 4 mouse (the mouse mask is ``regions == 4``)

Each manifest record has: ``index``, ``sequence`` and ``frame`` (which sequence and
which frame of it; stills are sequences of one frame), ``time`` (s since the sequence
start), ``behavior`` (fine label), ``behavior_class``, the three file paths (``image``,
``depth``, ``regions``), ``camera``
(K, dist, R, t, width, height, roi: the window of the full sensor image this image
is), ``keypoints_2d`` (14 x 2 px), ``keypoints_camera`` and ``keypoints_arena``
(14 x 3 m), ``visible`` and ``in_view`` (14 booleans), ``shape`` and ``scene``.

The same arguments give the same bytes, whatever the number of worker processes:
sample (or sequence) ``i`` draws everything from ``SeedSequence([seed, i])``.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Final

import cv2
import numpy as np
from numpy.typing import NDArray

from mouse_lifter_ros.core.body import (
    BEHAVIOR_CLASSES,
    KEYPOINTS,
    SKELETON_EDGES,
    MouseShape,
    forward_kinematics,
)
from mouse_lifter_ros.core.camera import Camera
from mouse_lifter_ros.core.errors import InputError, ParameterError
from mouse_lifter_ros.core.synth.body import sample_shape
from mouse_lifter_ros.core.synth.motion import Arena, generate_sequence, sample_pose
from mouse_lifter_ros.core.synth.objects import clear_of_mouse
from mouse_lifter_ros.core.synth.render import (
    REGION_MOUSE,
    Sample,
    Scene,
    mouse_window,
    render,
    sample_camera,
    sample_scene,
)
from mouse_lifter_ros.core.views import VIEWS

FORMAT: Final = "mouse_lifter_synth"
VERSION: Final = 1


@dataclass(frozen=True)
class SynthConfig:
    """What to generate.

    Attributes
    ----------
    count:
        Number of stills, or of sequences when ``sequence_s > 0``.
    seed:
        Seed of everything; the same config gives the same bytes.
    view:
        ``top`` or ``bottom``.
    width, height:
        Camera image size, pixels.
    crop:
        Side of a square window around the mouse to render instead of the full
        image (0 = the full image). The saved camera is the window's.
    sequence_s, fps:
        Length of each sequence (s; 0 = independent stills) and its frame rate.
    colour:
        ``True`` colour, ``False`` grey, ``None`` either (drawn per scene).
    objects:
        Draw distractor objects (cups, shelters, tubes...; half the scenes have some).
        ``False`` renders the scenes as they were before objects existed (every other
        draw is the same either way).
    """

    count: int
    seed: int = 0
    view: str = "top"
    width: int = 640
    height: int = 480
    crop: int = 0
    sequence_s: float = 0.0
    fps: float = 30.0
    colour: bool | None = False
    objects: bool = True

    def validate(self) -> None:
        """Raise one :class:`ParameterError` listing every bad field."""
        problems = []
        if self.count < 1:
            problems.append(f"count={self.count}: must be at least 1")
        if self.view not in VIEWS:
            problems.append(f"view={self.view!r}: allowed {', '.join(VIEWS)}")
        if not (32 <= self.width <= 4096 and 32 <= self.height <= 4096):
            problems.append(f"size={self.width}x{self.height}: each side 32..4096 px")
        if self.crop and not 32 <= self.crop <= min(self.width, self.height):
            side = min(self.width, self.height)
            problems.append(f"crop={self.crop}: 0 (full image) or 32..{side}")
        if self.sequence_s < 0 or self.sequence_s > 600:
            problems.append(f"sequence={self.sequence_s}: 0 (stills) or up to 600 s")
        if not 1.0 <= self.fps <= 1000.0:
            problems.append(f"fps={self.fps}: 1..1000")
        if problems:
            raise ParameterError("synthetic dataset: " + "; ".join(problems))

    @property
    def frames_per_item(self) -> int:
        """Frames per sequence (1 for stills)."""
        return max(1, round(self.sequence_s * self.fps)) if self.sequence_s > 0 else 1


def item_rng(seed: int, item: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, item]))


def _floats(a: NDArray[Any], digits: int = 7) -> list[Any]:
    return np.round(np.asarray(a, dtype=np.float64), digits).tolist()  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Item:
    """One still or sequence: its mouse, scene, and frames rendered on demand."""

    shape: MouseShape
    scene: Scene
    frames: Iterator[tuple[Sample, str, float]]  # (sample, fine behaviour label, time s)


def render_item(config: SynthConfig, item: int) -> Item:
    """Draw still or sequence ``item`` of ``config`` (its mouse, scene, camera, motion).

    The scene's distractor objects (half the scenes have some) are drawn from their own
    generator, so the mouse, its motion, the camera and the rest of the scene of an
    item are those it had before objects existed; objects the mouse would pass through
    are dropped (:func:`~.synth.objects.clear_of_mouse`).
    """
    rng = item_rng(config.seed, item)
    shape = sample_shape(rng)
    scene = sample_scene(rng, view=config.view, colour=config.colour, objects=config.objects)
    arena = Arena(size=scene.arena, wall_height=scene.wall_height)
    camera = sample_camera(rng, scene, width=config.width, height=config.height)
    if config.sequence_s > 0:
        seq = generate_sequence(rng, shape, seconds=config.sequence_s, fps=config.fps,
                                arena=arena)
        motion = list(zip(seq.states(shape), seq.labels, seq.times.tolist(), strict=True))
    else:
        pose, label = sample_pose(rng, shape, arena=arena)
        motion = [(forward_kinematics(shape, pose), label, 0.0)]
    if scene.objects:  # no object where the mouse goes (it may go under a shelter)
        scene = replace(scene, objects=clear_of_mouse(scene.objects, shape,
                                                      [m[0] for m in motion]))

    def frames() -> Iterator[tuple[Sample, str, float]]:
        for state, label, t in motion:
            cam = camera
            if config.crop:
                # stills jitter the window; a sequence's window follows the mouse smoothly
                jitter = rng if config.sequence_s == 0 else None
                cam = camera.crop(*mouse_window(camera, state, (config.crop,) * 2, jitter))
            yield render(shape, state, cam, scene, rng), label, float(t)

    return Item(shape, scene, frames())


def _record(sample: Sample, *, index: int, item: int, frame: int, label: str, time: float,
            shape: dict[str, Any], scene: dict[str, Any]) -> dict[str, Any]:
    name = f"{index:06d}"
    return {
        "index": index, "sequence": item, "frame": frame, "time": round(time, 6),
        "behavior": label, "behavior_class": BEHAVIOR_CLASSES[label],
        "image": f"images/{name}.png", "depth": f"depth/{name}.npy",
        "regions": f"regions/{name}.png",
        "camera": sample.camera.to_dict(),
        "keypoints_2d": _floats(sample.keypoints_2d, 4),
        "keypoints_camera": _floats(sample.keypoints_camera, 6),
        "keypoints_arena": _floats(sample.keypoints_arena, 6),
        "visible": sample.visible.tolist(), "in_view": sample.in_view.tolist(),
        "shape": shape, "scene": scene,
    }


def _write_item(args: tuple[SynthConfig, int, str]) -> list[str]:
    """Worker: render one item, write its files, return its manifest lines."""
    config, item, out = args
    root = Path(out)
    drawn = render_item(config, item)
    shape, scene = asdict(drawn.shape), drawn.scene.to_dict()
    lines = []
    n = config.frames_per_item
    for frame, (sample, label, t) in enumerate(drawn.frames):
        index = item * n + frame
        rec = _record(sample, index=index, item=item, frame=frame, label=label, time=t,
                      shape=shape, scene=scene)
        for key, pixels in (("image", sample.image), ("regions", sample.region)):
            if not cv2.imwrite(str(root / rec[key]), pixels):
                raise OSError(f"could not write {root / rec[key]}")
        np.save(root / rec["depth"], sample.depth)
        lines.append(json.dumps(rec, separators=(",", ":")))
    return lines


def write_dataset(out_dir: str | Path, config: SynthConfig, *, workers: int | None = None,
                  progress: bool = True) -> Path:
    """Render ``config`` into ``out_dir`` (replaced if it holds a dataset); return it.

    ``workers`` processes render in parallel (default: one per CPU core); the bytes
    written do not depend on it. A progress bar goes to stderr when ``progress``.
    """
    config.validate()
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        if not (out / "dataset.json").is_file():
            raise InputError(f"{out} is not empty and holds no dataset; refusing to replace it")
        shutil.rmtree(out)
    for sub in ("images", "depth", "regions"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    n_workers = max(1, workers if workers is not None else (os.cpu_count() or 1))
    total = config.count * config.frames_per_item
    header = {
        "format": FORMAT, "version": VERSION,
        "config": asdict(config), "count": total,
        "keypoints": list(KEYPOINTS), "skeleton": [list(e) for e in SKELETON_EDGES],
        "behavior_classes": BEHAVIOR_CLASSES,
        "units": {"length": "m", "time": "s", "pixels": "(0,0) is the centre of the "
                  "top-left pixel", "depth": "camera-frame z in m, float32, 0 = no surface"},
        "frames": {"arena": "REP-103: x, y on the floor, z up, origin at the arena centre",
                   "camera": "optical: x right, y down, z forward; x_cam = R x_arena + t"},
    }
    tasks = [(config, item, str(out)) for item in range(config.count)]
    from tqdm import tqdm

    bar = tqdm(total=total, unit="img", disable=not progress, file=sys.stderr,
               desc=f"synth {out.name}")
    manifest = out / "manifest.jsonl"
    with manifest.open("w", encoding="utf-8") as fh, contextlib.ExitStack() as stack:
        results: Iterator[list[str]] = map(_write_item, tasks)
        if n_workers > 1:
            ctx = multiprocessing.get_context("spawn" if sys.platform == "darwin" else "fork")
            pool = stack.enter_context(ctx.Pool(n_workers))
            results = pool.imap(_write_item, tasks, chunksize=1)
        for lines in results:  # in item order, whoever rendered them
            fh.write("".join(line + "\n" for line in lines))
            bar.update(len(lines))
    bar.close()
    # Written last: a folder without it is an interrupted run, not a dataset.
    (out / "dataset.json").write_text(json.dumps(header, indent=1) + "\n", encoding="utf-8")
    return out


@dataclass(frozen=True)
class Record:
    """One sample read back: the rendered :class:`~.render.Sample` and its manifest entry."""

    index: int
    sample: Sample
    behavior: str
    meta: dict[str, Any]


class SynthDataset:
    """Read a dataset written by :func:`write_dataset`: ``len(ds)``, ``ds[i]``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        header_path = self.root / "dataset.json"
        if not header_path.is_file():
            raise InputError(f"{self.root} is not a synthetic dataset (no dataset.json; "
                             "an interrupted `mouse-lifter synth` leaves none)")
        self.header: dict[str, Any] = json.loads(header_path.read_text(encoding="utf-8"))
        if self.header.get("format") != FORMAT or self.header.get("version") != VERSION:
            raise InputError(f"{header_path}: format {self.header.get('format')!r} version "
                             f"{self.header.get('version')!r}; this reader reads {FORMAT!r} "
                             f"version {VERSION}")
        with (self.root / "manifest.jsonl").open(encoding="utf-8") as fh:
            self.records: list[dict[str, Any]] = [json.loads(line) for line in fh if line.strip()]

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> Record:
        rec = self.records[i]
        image = cv2.imread(str(self.root / rec["image"]), cv2.IMREAD_UNCHANGED)
        region = cv2.imread(str(self.root / rec["regions"]), cv2.IMREAD_UNCHANGED)
        if image is None or region is None:
            raise InputError(f"{self.root}: sample {i}: missing or unreadable "
                             f"{rec['image']} or {rec['regions']}")
        sample = Sample(
            image=image, depth=np.load(self.root / rec["depth"]),
            mask=(region == REGION_MOUSE).astype(np.uint8), region=region,
            keypoints_2d=np.array(rec["keypoints_2d"]),
            keypoints_camera=np.array(rec["keypoints_camera"]),
            keypoints_arena=np.array(rec["keypoints_arena"]),
            visible=np.array(rec["visible"], dtype=bool),
            in_view=np.array(rec["in_view"], dtype=bool),
            camera=Camera.from_dict(rec["camera"]))
        return Record(index=rec["index"], sample=sample, behavior=rec["behavior"], meta=rec)
