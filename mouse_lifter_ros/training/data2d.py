"""Training data of the 2D stage drawn from the synthetic engine, and the real labels.

Keypoint windows: a square window around the mouse, of side ``WINDOW_SCALE`` times the
body size, rendered straight at ``WINDOW_PX`` pixels (the camera of the window is the
full camera cropped and scaled, so lens distortion stays exact). Training cuts the
network's crop from it with the augmentation's scale, shift and rotation.

Detector frames: the whole image, letterboxed into the detector input as the inference
core does (:func:`mouse_lifter_ros.core.keypoints.letterbox`). About one in eight shows
a part of the arena without the mouse (a window of the image away from it). With
``dark_near``, that share of the frames showing the mouse also has a dark mouse-sized
object beside it (the shipped model's second detector, ``train-2d --dark-near``).
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from tqdm import tqdm

from mouse_lifter_ros.core.body import KEYPOINTS, forward_kinematics
from mouse_lifter_ros.core.camera import Camera
from mouse_lifter_ros.core.errors import InputError
from mouse_lifter_ros.core.keypoints import (
    BODY_KEYPOINTS,
    DETECTOR_INPUT,
    TAIL_CROP,
    WINDOW_SIZES,
    body_box,
    letterbox_geometry,
)
from mouse_lifter_ros.core.labels import LabelledSet, mapped_xy, read_image
from mouse_lifter_ros.core.synth.body import sample_shape
from mouse_lifter_ros.core.synth.motion import Arena, sample_pose
from mouse_lifter_ros.core.synth.objects import clear_of_mouse, dark_object_near, overlaps
from mouse_lifter_ros.core.synth.render import Sample, render, sample_camera, sample_scene
from mouse_lifter_ros.core.views import view_suffix

WINDOW_PX = 224
WINDOW_SCALE = 2.0
_BODY_IDX = np.array([KEYPOINTS.index(n) for n in BODY_KEYPOINTS])
#: Share of detector frames that show part of the arena without the mouse.
NO_MOUSE = 0.25
#: Share of detector frames that are a second-look window around the mouse.
SECOND_LOOK = 0.2
_SIZES = ((640, 480), (640, 480), (1280, 720), (1920, 1080), (1280, 1024), (800, 600))


def scaled_window(camera: Camera, centre: NDArray[Any], side: float, out: int) -> Camera:
    """The camera of a square window of ``side`` px centred on ``centre`` (px) of
    ``camera``'s image, resampled to ``out`` x ``out`` px (pixel centres at integers)."""
    s = out / side
    k = camera.K.copy()
    k[0, 0] *= s
    k[0, 1] *= s
    k[1, 1] *= s
    k[0, 2] = (k[0, 2] - centre[0]) * s + (out - 1) / 2.0
    k[1, 2] = (k[1, 2] - centre[1]) * s + (out - 1) / 2.0
    return Camera(K=k, dist=camera.dist, R=camera.R, t=camera.t, width=out, height=out)


def scaled_image(camera: Camera, s: float, width: int, height: int) -> Camera:
    """``camera`` resampled by ``s`` (as ``cv2.resize`` maps pixel centres)."""
    k = camera.K.copy()
    k[:2, :] *= s
    k[0, 2] = (camera.K[0, 2] + 0.5) * s - 0.5
    k[1, 2] = (camera.K[1, 2] + 0.5) * s - 0.5
    return Camera(K=k, dist=camera.dist, R=camera.R, t=camera.t, width=width, height=height)


def item_rng(seed: int, i: int, stream: int) -> np.random.Generator:
    """The generator of item ``i`` of ``seed`` in ``stream``: 1 keypoint windows, 2
    detector frames, 3 depth crops, 5 verifier crops, 6 tail windows."""
    return np.random.default_rng(np.random.SeedSequence([seed, stream, i]))


def draw_mouse(rng: np.random.Generator, width: int, height: int, view: str = "top"
               ) -> tuple[Any, ...]:
    """A random mouse, scene (objects kept clear of the mouse), ``width`` x ``height`` camera
    (above the arena for ``view`` top, under its clear floor for bottom) and posed body:
    (shape, scene, camera, state)."""
    shape = sample_shape(rng)
    scene = sample_scene(rng, view=view, colour=None if rng.random() < 0.3 else False)
    camera = sample_camera(rng, scene, width=width, height=height)
    pose, _ = sample_pose(rng, shape, arena=Arena(size=scene.arena,
                                                  wall_height=scene.wall_height))
    state = forward_kinematics(shape, pose)
    if scene.objects:  # distractors (cups, shelters, ...), none where the mouse is
        scene = replace(scene, objects=clear_of_mouse(scene.objects, shape, [state]))
    return shape, scene, camera, state


def to_grey(image: NDArray[np.uint8]) -> NDArray[np.uint8]:
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def render_window(rng: np.random.Generator, what: str,
                  window: Callable[[NDArray[Any], float], tuple[NDArray[Any], float, int]],
                  view: str = "top", *, centre_on: str | None = None) -> tuple[Camera, Sample]:
    """Draw a mouse, scene and 640x480 camera and render a square window around the
    mouse: ``window(centre, size)`` of its body box (px) gives the window's centre, side
    (px of the image) and output size (px); ``centre_on`` (a keypoint's name) gives it
    that keypoint as the centre instead of the box's. Drawn again, up to 20 times, while
    the window reaches past the edge of a strong barrel lens. Returns its camera and
    sample."""
    for _ in range(20):
        shape, scene, camera, state = draw_mouse(rng, 640, 480, view)
        px, _ = camera.project(state.keypoints)
        centre, size = body_box(px)
        if centre_on is not None:
            centre = px[KEYPOINTS.index(centre_on)]
        centre, side, out = window(centre, size)
        win = scaled_window(camera, centre, side, out)
        try:
            return win, render(shape, state, win, scene, rng)
        except InputError:
            continue
    raise InputError(f"{what}: no renderable draw in 20 tries")


def keypoint_window(args: tuple[int, int], view: str = "top"
                    ) -> tuple[NDArray[np.uint8], NDArray[np.float32], NDArray[np.uint8]]:
    """Window ``i`` of seed ``seed``, seen from ``view``: grey image (WINDOW_PX,
    WINDOW_PX), keypoints (14, 2) px in the window, and a state per keypoint: 2 visible,
    1 hidden, 0 out of the window."""
    seed, i = args
    return _labelled_window(item_rng(seed, i, 1), f"keypoint window {i}", view)


def _labelled_window(rng: np.random.Generator, what: str, view: str,
                     centre_on: str | None = None
                     ) -> tuple[NDArray[np.uint8], NDArray[np.float32], NDArray[np.uint8]]:
    """A window WINDOW_SCALE body sizes wide (:func:`render_window`): grey image,
    keypoints and their states, as :func:`keypoint_window` describes them."""
    _, sample = render_window(rng, what, lambda c, size: (c, WINDOW_SCALE * size, WINDOW_PX),
                              view, centre_on=centre_on)
    kp = sample.keypoints_2d.astype(np.float32)
    flag = np.where(sample.visible, 2, np.where(sample.in_view, 1, 0)).astype(np.uint8)
    return to_grey(sample.image), kp, flag


def tail_window(args: tuple[int, int], view: str = "top"
                ) -> tuple[NDArray[np.uint8], NDArray[np.float32], NDArray[np.uint8]]:
    """Tail window ``i`` of seed ``seed``: as :func:`keypoint_window` (a stream of its
    own), but centred on the tail's middle (:data:`~.keypoints.TAIL_CROP`, where the
    runtime centres its tail crop); a keypoint window, centred on the body, mostly cuts
    the tail tip off."""
    seed, i = args
    return _labelled_window(item_rng(seed, i, 6), f"tail window {i}", view,
                            centre_on=TAIL_CROP)


def detector_frame(args: tuple[int, int], view: str = "top", dark_near: float = 0.0
                   ) -> tuple[NDArray[np.uint8], NDArray[np.float32]]:
    """Frame ``i``, seen from ``view``: grey letterboxed detector input (H, W) and the
    target ``[present, centre x, centre y, size]`` in input pixels. ``dark_near``: the
    share of frames showing the mouse where a dark mouse-sized object is placed beside
    it (:func:`~mouse_lifter_ros.core.synth.objects.dark_object_near`): scenes draw
    their own objects anywhere, but beside the mouse, at the detector's 8 px cells, the
    two merge into one peak. 0 draws the frames as before it existed."""
    seed, i = args
    rng = item_rng(seed, i, 2)
    width, height = _SIZES[int(rng.integers(len(_SIZES)))]
    shape, scene, camera, state = draw_mouse(rng, width, height, view)
    kind = rng.random()
    # beside a mouse in view only: a window that misses the mouse keeps the scene's own
    # objects (placed there too, the network lost about as many real XMWell mice: 27 of
    # 120, against 33)
    if kind >= NO_MOUSE and dark_near and rng.random() < dark_near:
        dark = dark_object_near(rng, scene.arena, scene.wall_height, shape, state, camera)
        if dark is not None:
            scene = replace(scene, objects=(dark, *(o for o in scene.objects
                                                    if not overlaps(o, dark))))
    px, _ = camera.project(state.keypoints)
    centre, size = body_box(px)
    if kind < NO_MOUSE:
        # a window of the frame that misses the mouse: the arena without it
        w, h = int(width * rng.uniform(0.4, 0.7)), int(height * rng.uniform(0.4, 0.7))
        far = max(w, h) / 2 + 1.5 * size
        for _ in range(20):
            x0, y0 = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
            if np.hypot(x0 + w / 2 - centre[0], y0 + h / 2 - centre[1]) > far:
                camera = camera.crop(x0, y0, w, h)
                width, height = w, h
                break
    sample = None
    if NO_MOUSE <= kind < NO_MOUSE + SECOND_LOOK:
        # what Detector.locate and the tracker show it: a square window a few mouse sizes
        # wide around an estimate of where the mouse is, in the input's left 128 x 128
        side = size * rng.uniform(0.8, 1.2) * WINDOW_SIZES
        near = centre + rng.normal(0.0, 0.35 * size, 2)
        out_w = out_h = DETECTOR_INPUT[1]
        # past the edge of a strong barrel lens: the whole frame instead
        with contextlib.suppress(InputError):
            sample = render(shape, state, scaled_window(camera, near, side, out_h), scene,
                            rng)
    if sample is None:
        s, out_w, out_h = letterbox_geometry(width, height)
        sample = render(shape, state, scaled_image(camera, s, out_w, out_h), scene, rng)
    canvas = np.zeros((DETECTOR_INPUT[1], DETECTOR_INPUT[0]), np.uint8)
    canvas[:out_h, :out_w] = to_grey(sample.image)
    c, sz = body_box(sample.keypoints_2d)
    present = float(0 <= c[0] < out_w and 0 <= c[1] < out_h and sample.mask.sum() > 4)
    return canvas, np.array([present, c[0], c[1], sz], np.float32)


def _map(fn: Any, jobs: list[tuple[int, int]], workers: int, desc: str) -> list[Any]:
    if workers <= 1:
        return [fn(j) for j in tqdm(jobs, desc=desc, unit="img")]
    with multiprocessing.get_context("forkserver").Pool(workers) as pool:
        return list(tqdm(pool.imap(fn, jobs, chunksize=16), total=len(jobs), desc=desc,
                         unit="img"))


def rendered_cached(fn: Any, name: str, keys: tuple[str, ...], count: int, seed: int,
              workers: int, cache: Path | None, desc: str) -> dict[str, NDArray[Any]]:
    """``fn((seed, i))`` for i < ``count``, stacked per output under ``keys``; kept in
    ``cache/<name>.npz`` and read from there when it exists. Item i depends on
    (seed, i) only, so a cached run of fewer items (the same name with a smaller
    count, ``_n<count>``) is reused and only the rest is rendered."""
    path = cache / f"{name}.npz" if cache else None
    if path is not None and path.exists():
        return dict(np.load(path))
    done: dict[str, NDArray[Any]] = {}
    tag = f"_n{count}"
    if path is not None and tag in name:
        head, tail = name.split(tag, 1)
        smaller = []
        for other in path.parent.glob(f"{head}_n*{tail}.npz"):
            n = other.stem[len(head) + 2: len(other.stem) - len(tail)]
            if n.isdigit() and 0 < int(n) < count:
                smaller.append((int(n), other))
        if smaller:
            done = dict(np.load(max(smaller)[1]))
    start = len(done[keys[0]]) if done else 0
    out = _map(fn, [(seed, i) for i in range(start, count)], workers, desc)
    data = {k: np.concatenate([done[k], np.stack([o[j] for o in out])]) if done
            else np.stack([o[j] for o in out]) for j, k in enumerate(keys)}
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **data)  # type: ignore[arg-type]
    return data


def synth_keypoint_windows(count: int, seed: int, *, view: str = "top", workers: int = 2,
                           cache: Path | None = None) -> dict[str, NDArray[Any]]:
    """``count`` keypoint windows seen from ``view``: ``images``, ``keypoints`` and
    ``flags`` (see :func:`keypoint_window`), cached as ``.npz``."""
    return rendered_cached(functools.partial(keypoint_window, view=view),
                           f"kp_windows_s{seed}_n{count}_{WINDOW_PX}{view_suffix(view, '_')}",
                           ("images", "keypoints", "flags"), count, seed, workers, cache,
                           "render windows")


def synth_tail_windows(count: int, seed: int, *, view: str = "top", workers: int = 2,
                       cache: Path | None = None) -> dict[str, NDArray[Any]]:
    """``count`` tail windows (:func:`tail_window`) seen from ``view``, as
    :func:`synth_keypoint_windows` gives keypoint windows."""
    return rendered_cached(functools.partial(tail_window, view=view),
                           f"tail_windows_s{seed}_n{count}_{WINDOW_PX}{view_suffix(view, '_')}",
                           ("images", "keypoints", "flags"), count, seed, workers, cache,
                           "render tail windows")


def synth_detector_frames(count: int, seed: int, *, view: str = "top", workers: int = 2,
                          cache: Path | None = None, dark_near: float = 0.0
                          ) -> dict[str, NDArray[Any]]:
    """``count`` letterboxed detector frames seen from ``view``: ``images`` and
    ``targets`` (see :func:`detector_frame`, also for ``dark_near``), cached as ``.npz``."""
    return rendered_cached(functools.partial(detector_frame, view=view, dark_near=dark_near),
                           f"det_frames_s{seed}_n{count}{view_suffix(view, '_')}"
                           + (f"_dark{dark_near:g}" if dark_near else ""),
                           ("images", "targets"), count, seed, workers, cache,
                           "render frames")


@dataclass(frozen=True)
class RealLabels:
    """Labelled real frames: grey images (N of (H, W); sizes may differ), keypoints
    (N, K, 2) px in the order of the training's keypoints (our 14, then any a lab added)
    with NaN where not labelled, and the frames' names (``set/image``)."""

    images: list[NDArray[np.uint8]]
    keypoints: NDArray[np.float32]
    names: list[str]


def real_labels(sets: Sequence[LabelledSet], mapping: Mapping[str, str],
                targets: Sequence[str] = KEYPOINTS) -> RealLabels:
    """The frames of labelled ``sets`` (read by :func:`~mouse_lifter_ros.core.labels.
    read_labelled`) as training samples: ``mapping`` takes a labelled body part to one
    of ``targets``."""
    images, kps, names = [], [], []
    for s in sets:
        xy = mapped_xy(s, mapping, targets).astype(np.float32)
        for i, path in enumerate(s.images):
            images.append(to_grey(read_image(path)))
            kps.append(xy[i])
            names.append(f"{s.name}/{path.name}")
    if not images:
        raise InputError("real labels: no labelled frames")
    return RealLabels(images, np.stack(kps), names)
