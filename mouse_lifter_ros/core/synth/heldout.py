"""Held-out synthetic frames of the scene kinds that fool detectors, for tests of the
models: a dark distractor object near the mouse, infrared light, bedding floors, and a
small mouse in a large high-resolution frame.

Every frame is drawn from its own generator (seeded from the kind, ``seed`` and the
frame's index, apart from the training streams of :mod:`.dataset` and
:mod:`~mouse_lifter_ros.training.data2d`), so frame ``i`` of a seed does not depend on
``count``. Units: pixels with (0, 0) the centre of the top-left pixel, metres.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Final

import numpy as np
from numpy.typing import NDArray

from mouse_lifter_ros.core.body import KEYPOINTS, MouseShape, Pose, forward_kinematics
from mouse_lifter_ros.core.camera import Camera
from mouse_lifter_ros.core.errors import InputError
from mouse_lifter_ros.core.synth.body import sample_shape
from mouse_lifter_ros.core.synth.motion import Arena, sample_pose
from mouse_lifter_ros.core.synth.objects import (
    SceneObject,
    clear_of_mouse,
    dark_object_near,
    object_rng,
    overlaps,
    pixel_boxes,
    sample_objects,
    scene_parts,
)
from mouse_lifter_ros.core.synth.render import (
    REGION_CLUTTER,
    Sample,
    Scene,
    camera_over_arena,
    render,
    sample_camera,
    sample_scene,
)

FloatArray = NDArray[np.float64]

#: Scene kinds of :func:`held_out_frames`.
HELD_OUT_KINDS: Final[tuple[str, ...]] = ("distractor", "infrared", "bedding", "small_mouse")
#: Seed-sequence tag of the held-out frames' generators.
HELD_OUT_STREAM: Final = 0x4E1D0
#: Range of the mouse's length (nose to tail base) in ``small_mouse`` frames, pixels.
SMALL_MOUSE_PX: Final = (30.0, 120.0)
#: Range of the width of ``small_mouse`` frames, pixels.
SMALL_MOUSE_WIDTH: Final = (1500, 2048)

_NOSE, _TAIL_BASE = KEYPOINTS.index("nose"), KEYPOINTS.index("tail_base")
_TRIES: Final = 60


@dataclass(frozen=True, eq=False)
class HeldOutFrame:
    """One held-out frame and its ground truth.

    Attributes
    ----------
    kind:
        Its scene kind (one of :data:`HELD_OUT_KINDS`).
    image:
        (H, W) grey or (H, W, 3) BGR, uint8.
    keypoints:
        (14, 2) float64 pixel coordinates of :data:`~mouse_lifter_ros.core.body.KEYPOINTS`.
    visible:
        (14,) bool: in the image and not hidden by the body or an object.
    in_view:
        (14,) bool: inside the image (hidden or not).
    mouse_box:
        (4,) float64 ``x0, y0, x1, y1``: the first and last pixel columns and rows the
        mouse covers (its mask), pixels.
    mouse_length_px:
        Nose to tail base in the image, pixels.
    object_boxes:
        (M, 4) float64 ``x0, y0, x1, y1`` of each of ``objects`` as drawn (pixels it
        covers, as ``mouse_box``); NaN rows for objects out of the image or hidden.
    objects:
        The scene's distractor objects (arena frame, metres).
    dark_objects:
        (M,) bool: which of ``objects`` are dark (near-black albedo).
    sample:
        The full rendering: depth, mask, region map, 3D keypoints, camera.
    scene:
        The scene it was rendered in.
    """

    kind: str
    image: NDArray[np.uint8]
    keypoints: FloatArray
    visible: NDArray[np.bool_]
    in_view: NDArray[np.bool_]
    mouse_box: FloatArray
    mouse_length_px: float
    object_boxes: FloatArray
    objects: tuple[SceneObject, ...]
    dark_objects: NDArray[np.bool_]
    sample: Sample
    scene: Scene


def frame_rng(kind: str, seed: int, index: int) -> np.random.Generator:
    """The generator of frame ``index`` of ``kind`` and ``seed``."""
    return np.random.default_rng(np.random.SeedSequence(
        [HELD_OUT_STREAM, HELD_OUT_KINDS.index(kind), int(seed), int(index)]))


def _scene(rng: np.random.Generator, kind: str) -> Scene:
    """A top-view scene of ``kind`` (drawn again until it is one), with its own objects
    except for ``distractor`` (whose objects are placed around the mouse)."""
    for _ in range(200):
        scene = sample_scene(rng, view="top", colour=None, objects=kind != "distractor")
        if kind == "infrared" and scene.light != "infrared":
            continue
        if kind == "bedding" and scene.floor != "bedding":
            continue
        return scene
    raise InputError(f"held-out {kind}: no such scene in 200 draws")  # pragma: no cover


def _body_length(shape: MouseShape) -> float:
    """Nose to tail base of ``shape`` in the neutral pose, metres."""
    kp = forward_kinematics(shape, Pose()).keypoints
    return float(np.linalg.norm(kp[_NOSE] - kp[_TAIL_BASE]))


def _small_mouse_rig(rng: np.random.Generator, shape: MouseShape, scene: Scene,
                     size: tuple[int, int] | None) -> tuple[Scene, Camera]:
    """A large arena seen from high up by a high-resolution camera: the mouse spans
    :data:`SMALL_MOUSE_PX` pixels."""
    if size is None:
        width = int(rng.integers(SMALL_MOUSE_WIDTH[0], SMALL_MOUSE_WIDTH[1] + 1))
        height = round(width * float(rng.uniform(0.7, 0.95)))
    else:
        width, height = size
    target = float(rng.uniform(*SMALL_MOUSE_PX))
    cam_h = float(rng.uniform(1.2, 2.5))
    f = target * cam_h / _body_length(shape)
    fill = float(rng.uniform(0.8, 0.97))
    old = scene.arena
    arena = (min(fill * width * cam_h / f, 2.5), min(fill * height * cam_h / f, 2.5))
    sx, sy = arena[0] / old[0], arena[1] / old[1]
    scene = replace(
        scene, arena=arena,
        lines=tuple(tuple((x * sx, y * sy) for x, y in line) for line in scene.lines),
        marks=tuple(replace(m, x=m.x * sx, y=m.y * sy) for m in scene.marks),
        clutter=tuple(replace(c, x=c.x * sx, y=c.y * sy) for c in scene.clutter),
        objects=sample_objects(object_rng(scene.texture_seed), arena, scene.wall_height))
    k = np.array([[f, 0.0, (width - 1) / 2.0], [0.0, f, (height - 1) / 2.0], [0.0, 0.0, 1.0]])
    dist = [float(rng.uniform(-0.08, 0.0)), 0.0, 0.0, 0.0, 0.0] if rng.random() < 0.5 else None
    yaw = float(rng.integers(0, 4)) * math.pi / 2 + float(rng.normal(0.0, 0.03))
    if arena[0] < arena[1]:
        yaw += math.pi / 2
    camera = camera_over_arena(view="top", height_m=cam_h, K=k, dist=dist, width=width,
                               height=height, yaw=yaw)
    return scene, camera


def _boxes(sample: Sample, objects: tuple[SceneObject, ...]) -> FloatArray:
    """(M, 4) pixel boxes of ``objects`` as drawn (region 3 pixels in their projection)."""
    camera = sample.camera
    parts = scene_parts(objects)
    out = np.full((len(objects), 4), np.nan)
    boxes = pixel_boxes(camera, [np.concatenate([p.lattice for p in parts if p.obj == j])
                                 for j in range(len(objects))], margin=1)
    for j, (x0, x1, y0, y1) in enumerate(boxes):
        if x1 <= x0 or y1 <= y0:
            continue
        ys, xs = np.nonzero(sample.region[y0:y1, x0:x1] == REGION_CLUTTER)
        if xs.size:
            out[j] = (x0 + xs.min(), y0 + ys.min(), x0 + xs.max(), y0 + ys.max())
    return out


def held_out_frame(kind: str, seed: int, index: int, size: tuple[int, int] | None = None,
                   *, dark_object: bool | None = None) -> HeldOutFrame:
    """Frame ``index`` of the held-out frames of ``kind`` and ``seed``.

    Kinds (:data:`HELD_OUT_KINDS`), all top views of one mouse with every keypoint in
    the image and at least half of them visible:

    - ``distractor``: a dark (near-black) mouse-sized object (cup or dish, bowl,
      shelter, half-tube or tube) 0.5-12 cm from the mouse's body, both in the image,
      maybe more objects; any floor and light;
    - ``infrared``: infrared light (grey, flat; dark fur shows light);
    - ``bedding``: a wood-chip bedding floor;
    - ``small_mouse``: a frame :data:`SMALL_MOUSE_WIDTH` pixels wide (height 0.7-0.95
      of it) over a large arena, the mouse :data:`SMALL_MOUSE_PX` pixels from nose to
      tail base.

    ``size`` (width, height) pixels: the image size; None gives 640 x 480 (or the drawn
    size for ``small_mouse``). ``dark_object``: place a dark object near the mouse
    (None: only for ``distractor``); the other kinds keep the objects their scene
    draws (half the scenes have some). Raises :class:`InputError` for an unknown kind.
    """
    if kind not in HELD_OUT_KINDS:
        raise InputError(f"held-out kind {kind!r}: allowed {', '.join(HELD_OUT_KINDS)}")
    want_dark = kind == "distractor" if dark_object is None else dark_object
    rng = frame_rng(kind, seed, index)
    for _ in range(_TRIES):
        shape = sample_shape(rng)
        scene = _scene(rng, kind)
        if kind == "small_mouse":
            scene, camera = _small_mouse_rig(rng, shape, scene, size)
        else:
            w, h = size if size is not None else (640, 480)
            camera = sample_camera(rng, scene, width=w, height=h)
        pose, _ = sample_pose(rng, shape, arena=Arena(size=scene.arena,
                                                      wall_height=scene.wall_height))
        state = forward_kinematics(shape, pose)
        objects = clear_of_mouse(scene.objects, shape, [state])
        if want_dark:
            near = dark_object_near(rng, scene.arena, scene.wall_height, shape, state, camera)
            if near is None:
                continue
            objects = (near, *(o for o in objects if not overlaps(o, near)))
            if kind == "distractor":
                extra = clear_of_mouse(sample_objects(rng, scene.arena, scene.wall_height),
                                       shape, [state])
                objects = objects + tuple(o for o in extra
                                          if not any(overlaps(o, p) for p in objects))
        scene = replace(scene, objects=objects)
        try:
            sample = render(shape, state, camera, scene, rng)
        except InputError:
            continue
        kp = sample.keypoints_2d
        length = float(np.linalg.norm(kp[_NOSE] - kp[_TAIL_BASE]))
        if not sample.in_view.all() or sample.visible.sum() < 7 or not sample.mask.any():
            continue
        if kind == "small_mouse" and not SMALL_MOUSE_PX[0] <= length <= SMALL_MOUSE_PX[1]:
            continue
        boxes = _boxes(sample, objects)
        if want_dark and np.isnan(boxes[0, 0]):
            continue
        ys, xs = np.nonzero(sample.mask)
        return HeldOutFrame(
            kind=kind, image=sample.image, keypoints=kp, visible=sample.visible,
            in_view=sample.in_view,
            mouse_box=np.array([xs.min(), ys.min(), xs.max(), ys.max()], dtype=np.float64),
            mouse_length_px=length, object_boxes=boxes, objects=objects,
            dark_objects=np.array([o.dark for o in objects], dtype=bool), sample=sample,
            scene=scene)
    raise InputError(f"held-out {kind} frame {index} of seed {seed}: no usable draw in "
                     f"{_TRIES} tries")  # pragma: no cover


def held_out_frames(kind: str, seed: int, count: int, size: tuple[int, int] | None = None,
                    *, dark_object: bool | None = None) -> list[HeldOutFrame]:
    """Frames ``0 .. count - 1`` of :func:`held_out_frame` (see there for the kinds)."""
    return [held_out_frame(kind, seed, i, size, dark_object=dark_object)
            for i in range(count)]


def distractor_frames(seed: int, count: int, size: tuple[int, int] = (640, 480)
                      ) -> list[HeldOutFrame]:
    """``count`` frames of ``size`` (width, height) px, each with a dark mouse-sized
    object near the mouse: ``held_out_frames("distractor", seed, count, size)``.

    Each :class:`HeldOutFrame` gives the image (H, W) or (H, W, 3) uint8, the
    ground-truth keypoints (14, 2) px, their visibility (14,) and the boxes of the
    mouse and of the objects (px), the dark object first.
    """
    return held_out_frames("distractor", seed, count, size)
