"""Evaluating 3D keypoints: error measures, the floor baseline, and the DANNCE check.

- :func:`joint_errors`: mean position and height errors (mm), overall and by keypoint;
- :func:`floor_baseline`: the 2D-only answer (every keypoint on the floor along its ray);
- :func:`evaluate_dannce`: real 3D mouse poses (DANNCE ``markerless_mouse_1`` labels)
  seen by a virtual top camera, their keypoints given 2D noise as large as the 2D
  model's real errors and a noisy depth reading, lifted by :class:`~.lifter.Lifter`.

Frames and units: the arena frame (metres, z up from the floor); errors in millimetres.
"""

from __future__ import annotations

import math
from collections import abc
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
from numpy.typing import NDArray

from mouse_lifter_ros.core.body import KEYPOINTS, FloatArray, MouseShape
from mouse_lifter_ros.core.bodyfit import estimate_scale, estimate_tail_length
from mouse_lifter_ros.core.camera import Camera, look_at
from mouse_lifter_ros.core.errors import CalibrationError, InputError, ParameterError
from mouse_lifter_ros.core.keypoint_maps import keypoint_map
from mouse_lifter_ros.core.lifter import SURFACE_DEPTH, Lifter, keypoints_by_name, sample_depth
from mouse_lifter_ros.core.synth.priors import DANNCE_JOINTS, load_dannce_3d

if TYPE_CHECKING:
    from mouse_lifter_ros.core.arena import ArenaCalibration
    from mouse_lifter_ros.core.pipeline import Frame3D
    from mouse_lifter_ros.core.synth.render import Scene

__all__ = [
    "MODEL_2D_ERROR_PX",
    "TRUE_INPUTS",
    "dannce_keypoints",
    "evaluate_dannce",
    "floor_baseline",
    "gaussian_sigma",
    "joint_errors",
    "lift_frames",
    "top_camera",
]

#: Mean 2D error (pixels) of the real 2D keypoint model on held-out images, by keypoint
#: (nose 3.26, ears 4.15 / 4.44, tail base 3.31; 3.8 for the others).
MODEL_2D_ERROR_PX: Final[dict[str, float]] = {
    **dict.fromkeys(KEYPOINTS, 3.8),
    "nose": 3.26, "left_ear": 4.15, "right_ear": 4.44, "tail_base": 3.31,
}

#: The stages whose answer :func:`evaluate_synthetic` can replace by the renderer's truth.
TRUE_INPUTS: Final = ("keypoints", "depth")

#: E|N(0, I_2)| = sqrt(pi / 2): the mean norm of a 2D Gaussian error per unit sigma.
_MEAN_NORM_PER_SIGMA: Final = math.sqrt(math.pi / 2.0)


def gaussian_sigma(mean_error_px: float) -> float:
    """Per-axis sigma of an isotropic 2D Gaussian whose mean error norm is
    ``mean_error_px`` (the norm is Rayleigh: mean = sigma * sqrt(pi/2) = 1.2533 sigma)."""
    return float(mean_error_px) / _MEAN_NORM_PER_SIGMA


def joint_errors(pred: FloatArray, truth: FloatArray, names: abc.Sequence[str]
                 ) -> dict[str, Any]:
    """Position and height errors of predicted 3D keypoints, millimetres.

    Parameters
    ----------
    pred, truth:
        (F, K, 3) arena points, metres. Entries where ``truth`` (or ``pred``) is NaN
        are left out.
    names:
        The K keypoint names.

    Returns
    -------
    A JSON-able dict: ``mean_mm`` (mean Euclidean error over every counted
    frame-keypoint), ``per_keypoint_mm`` (name -> mean), ``height_error_mm`` (name ->
    mean |z_pred - z_true|), ``mean_height_error_mm``, ``count`` (name -> counted
    frames), ``missing_predictions`` (frame-keypoints with truth but a NaN prediction).
    Means with nothing counted are None (``null`` in JSON, which has no NaN).

    Raises
    ------
    InputError
        Shapes that differ or are not (F, K, 3) with K = len(names).
    """
    p = np.asarray(pred, dtype=np.float64)
    t = np.asarray(truth, dtype=np.float64)
    if p.shape != t.shape or p.ndim != 3 or p.shape[1:] != (len(names), 3):
        raise InputError(f"joint_errors: predictions {p.shape} and truth {t.shape} must "
                         f"both be (frames, {len(names)}, 3)")
    has_truth = np.asarray(np.isfinite(t).all(axis=2), dtype=bool)
    ok = has_truth & np.asarray(np.isfinite(p).all(axis=2), dtype=bool)
    dist = np.where(ok, np.linalg.norm(np.nan_to_num(p - t), axis=2), np.nan) * 1000.0
    dz = np.where(ok, np.abs(np.nan_to_num(p[..., 2] - t[..., 2])), np.nan) * 1000.0

    def mean(a: FloatArray) -> float | None:
        a = a[np.isfinite(a)]
        return float(a.mean()) if a.size else None

    return {
        "mean_mm": mean(dist),
        "mean_height_error_mm": mean(dz),
        "per_keypoint_mm": {n: mean(dist[:, k]) for k, n in enumerate(names)},
        "height_error_mm": {n: mean(dz[:, k]) for k, n in enumerate(names)},
        "count": {n: int(ok[:, k].sum()) for k, n in enumerate(names)},
        "missing_predictions": int((has_truth & ~ok).sum()),
    }


def floor_baseline(camera: Camera, pixels: FloatArray) -> FloatArray:
    """The 2D-only baseline: every keypoint on the floor (z = 0) along its ray.

    ``camera`` is the :class:`~.camera.Camera` (an arena calibration's ``camera``);
    ``pixels`` (F, 14, 2) (any (..., 2)). Returns (F, 14, 3) arena points, metres (NaN
    where a pixel is NaN).
    """
    px = np.asarray(pixels, dtype=np.float64)
    if px.shape[-1:] != (2,):
        raise InputError(f"floor_baseline: pixels have shape {px.shape}; expected (..., 2)")
    flat = px.reshape(-1, 2)
    out = np.full((len(flat), 3), np.nan)
    ok = np.isfinite(flat).all(axis=1)
    if ok.any():
        out[ok] = camera.points_at_height(flat[ok], 0.0)
    return out.reshape(*px.shape[:-1], 3)


def dannce_keypoints(points: FloatArray) -> tuple[FloatArray, dict[str, str]]:
    """DANNCE joints (F, 22, 3) -> our keypoints (F, 14, 3) through the ``dannce22`` map
    (:mod:`~.keypoint_maps`), NaN for our keypoints without a counterpart; and
    the mapping used (DANNCE name -> ours)."""
    mapping = keypoint_map("dannce22")
    pts = np.asarray(points, dtype=np.float64)
    out = np.full((len(pts), len(KEYPOINTS), 3), np.nan)
    for theirs, ours in mapping.items():
        out[:, KEYPOINTS.index(ours)] = pts[:, DANNCE_JOINTS.index(theirs)]
    return out, mapping


def top_camera(centre: FloatArray, *, height: float, focal: float,
               size: tuple[int, int]) -> Camera:
    """A pinhole camera ``height`` m above ``centre`` (3,) (on the floor), looking
    straight down, arena +y up in the image; ``focal`` px, ``size`` (width, height)."""
    c = np.asarray(centre, dtype=np.float64)
    w, h = int(size[0]), int(size[1])
    return look_at((c[0], c[1], height), (c[0], c[1], 0.0), fx=focal, fy=focal,
                   cx=(w - 1) / 2.0, cy=(h - 1) / 2.0, width=w, height=h)


def lift_frames(lifter: Lifter, pixels: FloatArray, confidence: FloatArray,
                depth: FloatArray, *, independent: bool, fps: float = 30.0) -> FloatArray:
    """Lift frames (F, 14, 2) px, (F, 14) confidences, (F, 14) camera-z depth (m) with
    ``lifter``: a sequence at ``fps``, or ``independent`` frames (the lifter reset
    before each: no warm start, no smoothing). Returns (F, 14, 3) metres."""
    out = np.empty((len(pixels), len(KEYPOINTS), 3))
    for f in range(len(pixels)):
        if independent:
            lifter.reset()
        out[f] = lifter.lift(f / fps, pixels[f], confidence[f], depth[f]).positions
    return out


def evaluate_dannce(mat_path: str | Path, *, seed: int = 0,
                    noise_px: float | dict[str, float] | None = None,
                    depth_noise_m: float = 0.003, camera_height: float = 0.5,
                    focal: float = 600.0, size: tuple[int, int] = (640, 480),
                    first_iterations: int = 30) -> dict[str, Any]:
    """Lift real 3D mouse poses seen by a virtual top camera; compare with the labels.

    1. Loads the DANNCE labels (:func:`~.synth.priors.load_dannce_3d`, metres) and keeps
       the frames with at least 4 mapped joints labelled. The floor: DANNCE's floor is near
       z = 0; the 2nd percentile of the paw heights is subtracted from every z when it
       is more than 1 mm off 0 (the output says by how much), so that a paw on the
       floor is where the body model puts one.
    2. Maps DANNCE joints to our keypoints (``dannce22`` of
       :mod:`~.keypoint_maps`); our keypoints without a counterpart (head,
       spine_center) and unlabelled joints get confidence 0 (missing).
    3. A pinhole camera ``camera_height`` m above the centre of the poses looks down
       (``focal`` px, ``size`` pixels, no distortion).
    4. Each keypoint's pixel gets Gaussian noise (seeded by ``seed``) whose mean error
       norm is ``noise_px`` (one number, or by keypoint; default
       :data:`MODEL_2D_ERROR_PX`, the real 2D model's held-out errors), per-axis sigma
       = mean / 1.2533; its depth reading is the true camera z plus N(0,
       ``depth_noise_m``), every keypoint's alike (so the lifter weighs them alike:
       ``depth_sigma_scale={}``, not the depth network's :data:`~.lifter.DEPTH_SIGMA_SCALE`).
    5. The frames are not a sequence: the lifter is reset before each frame and fits
       it from the observations with ``first_iterations`` steps. With depth, the body
       scale and tail length are :func:`~.bodyfit.estimate_scale` and
       :func:`~.bodyfit.estimate_tail_length` of every frame's back-projected points
       (what a :class:`~.lifter.Lifter` learns from its first frames); without depth
       there are no 3D points to measure them, and the default shape's are used.

    Returns
    -------
    A JSON-able dict: ``mapping`` (DANNCE -> ours), ``frames``, ``floor_shift_mm``,
    ``camera``, ``noise_px`` and ``noise_sigma_px`` (by keypoint), ``depth_noise_m``,
    ``scale`` and ``tail_length_m`` used, and the :func:`joint_errors` of the mapped
    keypoints for: ``lifter_depth`` (the lifter's output), ``lifter_depth_model_only``
    (the same fit without fusing in the observations, ``model_sigma`` ~ 0: the body
    model's own keypoints, whose layout differs from DANNCE's labels),
    ``lifter_no_depth`` (depth readings all NaN) and ``floor_baseline``.

    Measured (81 frames, seeds 0-2, defaults): the lifter with depth 3.9 mm mean
    (4.8 mm for the body model's own keypoints, largest at the neck, 7.7 mm: DANNCE's
    SpineF sits behind our neck), without depth 16 mm (the height of a rearing head is
    hard to see from above), the floor baseline 26 mm.

    Raises
    ------
    InputError
        The file is missing or is not a DANNCE label file.
    ParameterError
        A non-positive noise, height, focal length or size.
    """
    problems = []
    noise = dict(MODEL_2D_ERROR_PX)
    if isinstance(noise_px, dict):
        unknown = [k for k in noise_px if k not in noise]
        if unknown:
            problems.append(f"noise_px names unknown keypoints: {', '.join(unknown)}")
        noise.update({k: float(v) for k, v in noise_px.items() if k in noise})
    elif noise_px is not None:
        noise = dict.fromkeys(KEYPOINTS, float(noise_px))
    if not all(math.isfinite(v) and v >= 0.0 for v in noise.values()):
        problems.append("noise_px values must be numbers >= 0")
    for name, value in (("depth_noise_m", depth_noise_m),):
        if not (math.isfinite(value) and value >= 0.0):
            problems.append(f"{name} {value!r} must be a number >= 0")
    for name, value in (("camera_height", camera_height), ("focal", focal)):
        if not (math.isfinite(value) and value > 0.0):
            problems.append(f"{name} {value!r} must be a positive number")
    if len(size) != 2 or min(size) <= 0:
        problems.append(f"size {size!r} must be two positive integers (width, height)")
    if problems:
        raise ParameterError("evaluate_dannce: " + "; ".join(problems))

    raw = load_dannce_3d(mat_path)
    truth_all, mapping = dannce_keypoints(raw)
    mapped = np.array([KEYPOINTS.index(k) for k in mapping.values()])
    labelled = np.asarray(np.isfinite(truth_all).all(axis=2), dtype=bool)  # (F, 14)
    keep = labelled[:, mapped].sum(axis=1) >= 4
    if not keep.any():
        raise InputError(f"{mat_path}: no frame has 4 or more of the mapped joints labelled")
    truth, labelled = truth_all[keep], labelled[keep]
    paws = [KEYPOINTS.index(k) for k in ("left_forepaw", "right_forepaw", "left_hindpaw",
                                          "right_hindpaw")]
    paw_z = truth[:, paws, 2]
    floor = float(np.percentile(paw_z[np.isfinite(paw_z)], 2.0)) if np.isfinite(
        paw_z).any() else 0.0
    shift = floor if abs(floor) > 0.001 else 0.0
    truth = truth - np.array([0.0, 0.0, shift])

    centre = np.nanmean(truth[:, mapped].reshape(-1, 3), axis=0)
    camera = top_camera(np.array([centre[0], centre[1], 0.0]), height=camera_height,
                        focal=focal, size=size)
    rng = np.random.default_rng(seed)
    n_frames = len(truth)
    px_true, z_true = camera.project(np.nan_to_num(truth.reshape(-1, 3)))
    px_true = px_true.reshape(n_frames, len(KEYPOINTS), 2)
    z_true = z_true.reshape(n_frames, len(KEYPOINTS))
    sigma = np.array([gaussian_sigma(noise[k]) for k in KEYPOINTS])
    px = px_true + rng.normal(0.0, 1.0, px_true.shape) * sigma[None, :, None]
    depth = z_true + rng.normal(0.0, depth_noise_m, z_true.shape)
    px[~labelled] = np.nan  # head, spine_center (no counterpart) and unlabelled joints
    depth[~labelled] = np.nan
    conf = labelled.astype(np.float64)

    points = np.full((n_frames, len(KEYPOINTS), 3), np.nan)
    points[labelled] = camera.backproject(px[labelled], depth[labelled])
    scale = estimate_scale(points)
    tail = estimate_tail_length(points)
    # every reading has the same noise (step 4): the lifter is told so
    with_depth = Lifter(camera, scale=scale, tail_length=tail,
                        first_iterations=first_iterations, depth_sigma_scale={})
    model_only = Lifter(camera, scale=scale, tail_length=tail,
                        first_iterations=first_iterations, model_sigma=1e-6,
                        depth_sigma_scale={})
    default = MouseShape()
    no_depth = Lifter(camera, scale=default.scale, tail_length=default.tail_length,
                      first_iterations=first_iterations)
    lifted = lift_frames(with_depth, px, conf, depth, independent=True)
    lifted_model = lift_frames(model_only, px, conf, depth, independent=True)
    lifted_2d = lift_frames(no_depth, px, conf, np.full_like(depth, np.nan),
                            independent=True)
    baseline = floor_baseline(camera, px)

    names = [KEYPOINTS[k] for k in mapped]
    return {
        "mapping": mapping,
        "unmapped_keypoints": [k for k in KEYPOINTS if k not in mapping.values()],
        "frames": int(n_frames),
        "frames_in_file": len(raw),
        "floor_shift_mm": shift * 1000.0,
        "camera": {"height_m": camera_height, "focal_px": focal, "size": list(size),
                   "centre": [float(centre[0]), float(centre[1]), 0.0]},
        "noise_px": {k: noise[k] for k in names},
        "noise_sigma_px": {k: float(sigma[KEYPOINTS.index(k)]) for k in names},
        "depth_noise_m": depth_noise_m,
        "scale": {"with_depth": scale, "no_depth": default.scale},
        "tail_length_m": {"with_depth": tail, "no_depth": default.tail_length},
        "frames_independent": "lifter reset before every frame; "
                              f"{first_iterations} fit steps from the observations",
        "lifter_depth": joint_errors(lifted[:, mapped], truth[:, mapped], names),
        "lifter_depth_model_only": joint_errors(lifted_model[:, mapped], truth[:, mapped],
                                                names),
        "lifter_no_depth": joint_errors(lifted_2d[:, mapped], truth[:, mapped], names),
        "floor_baseline": joint_errors(baseline[:, mapped], truth[:, mapped], names),
    }


def evaluate_synthetic(*, seed: int = 7, count: int = 10, seconds: float = 2.0,
                       fps: float = 30.0, keypoint_model: str | Path | None = None,
                       depth_model: str | Path | None = None, device: str = "auto",
                       threads: int = 0, progress: bool = False, bedding: float = 0.0,
                       bedding_declared: bool = True, measure_bedding: bool = False,
                       view: str = "top", true_inputs: abc.Collection[str] = ()
                       ) -> dict[str, Any]:
    """The whole image-to-Pose3D core on held-out synthetic sequences.

    Renders ``count`` sequences seen from ``view`` (top, or bottom through a clear
    floor; the shipped models of that view unless others are given) of ``seconds`` at
    ``fps`` with the synthetic engine (:func:`~.synth.dataset.render_item`, 640x480, grey
    or colour): each has its
    own mouse (body shape, coat), scene (floor, light, clutter) and camera, and random
    behaviour bouts. Their seed streams, ``SeedSequence([seed, item])``, are not those
    the shipped models trained on (``SeedSequence([0, stream, i])``). Each frame goes
    through :class:`~.pipeline.PosePipeline` as the nodes run it: one lifter per
    sequence, its body scale estimated online as a node does.

    ``bedding`` (metres): the mouse stands that much above the floor the arena
    calibration was made on, as on bedding over a cage floor calibrated with a board.
    With ``bedding_declared`` the calibration gives that depth (``calibrate
    --bedding``) and the errors are measured from the bedding's top (z = 0 of the
    arena frame); without, it knows only the floor, and they are measured from the
    floor. ``measure_bedding``: it knows only the floor, and the depth is measured in
    each sequence's first image from where the bedding meets the walls
    (:func:`~.surface.bedding_from_walls`, as ``calibrate --walls`` does; 0 where that
    is refused, counted in ``bedding_unmeasured``); errors from the measured top.

    ``true_inputs`` (a subset of :data:`TRUE_INPUTS`) hands the lifter the renderer's
    truth in place of a network's answer, to tell which stage leaves which error:
    ``"keypoints"``, the true pixels of all 14 keypoints (hidden ones too) with
    confidence 1, the depth map read there; ``"depth"``, the true camera z of each
    keypoint the depth map would read (one with a surface offset in
    :data:`~.lifter.SURFACE_DEPTH` for the view, and in sight). The detector still
    places the crops: a frame where it finds no mouse gives no pose either way.

    Returns JSON-able figures: :func:`joint_errors` of the lifter (every keypoint, the
    filled ones included), of the lifter where the 2D model found the keypoint, and of
    the 2D-only baseline (the same 2D keypoints, each put on the floor along its ray:
    it has a figure only where the 2D model found the keypoint, so compare it with the
    second); the median error of each keypoint's depth from the depth map
    (:func:`~.lifter.keypoint_depth` against the true camera z, mm, where the keypoint
    is visible); the frame count and the frames where no mouse was found.
    """
    from tqdm import tqdm

    from mouse_lifter_ros.core.body import KEYPOINTS
    from mouse_lifter_ros.core.pipeline import PosePipeline
    from mouse_lifter_ros.core.synth.dataset import SynthConfig, render_item

    unknown = sorted(set(true_inputs) - set(TRUE_INPUTS))
    if unknown:
        raise ParameterError(f"evaluate_synthetic: true_inputs {unknown}: each one of "
                             f"{', '.join(TRUE_INPUTS)}")
    config = SynthConfig(count=count, seed=seed, view=view, sequence_s=seconds, fps=fps,
                         colour=None)
    n = len(KEYPOINTS)
    reads = np.isfinite([SURFACE_DEPTH[view][k] for k in KEYPOINTS])
    pipe: PosePipeline | None = None
    pred: list[FloatArray] = []
    base: list[FloatArray] = []
    truth: list[FloatArray] = []
    reading_err: list[FloatArray] = []
    found: list[NDArray[np.bool_]] = []
    missed = 0
    bar = tqdm(total=count * config.frames_per_item, desc="eval-3d synthetic", unit="frame",
               disable=not progress)
    sequences: list[dict[str, Any]] = []
    unmeasured = 0
    for item in range(count):
        arena = None
        rendered = render_item(config, item)
        start, missed_before = len(truth), missed
        for sample, _, t in rendered.frames:
            if arena is None:
                arena = _over_bedding(sample.camera, bedding,
                                      bedding_declared and not measure_bedding)
                if measure_bedding:
                    arena, measured = _measured(arena, sample.image, rendered.scene)
                    unmeasured += measured is None
                if pipe is None:
                    pipe = PosePipeline(arena, keypoint_model=keypoint_model,
                                        depth_model=depth_model, device=device,
                                        threads=threads)
                else:
                    pipe.set_arena(arena)
            assert pipe is not None
            f = pipe.see(sample.image, pipe.tracker)
            if "keypoints" in true_inputs:
                f = _true_keypoints(f, sample.keypoints_2d)
            if "depth" in true_inputs and f.depth.found:
                z = np.where(sample.visible & reads, sample.keypoints_camera[:, 2], np.nan)
                xy, conf = keypoints_by_name(f.keypoints.names,
                                             f.keypoints.xy.astype(np.float64),
                                             f.keypoints.confidence.astype(np.float64))
                f = replace(f, lifted=pipe.lifter.lift(float(t), xy, conf, z))
            else:
                f = replace(f, lifted=pipe.lift(float(t), f.keypoints,
                                                f.readings if f.depth.found else None))
            # in the pipeline's arena frame: from the bedding's top, or from the floor
            truth.append(sample.keypoints_arena + np.array([0.0, 0.0, bedding - arena.bedding]))
            base.append(floor_baseline(arena.camera,
                                       f.keypoints.xy[None].astype(np.float64))[0])
            if f.lifted is None:
                missed += 1
            pred.append(f.lifted.positions if f.lifted is not None else np.full((n, 3), np.nan))
            found.append(np.asarray(np.isfinite(f.keypoints.xy).all(axis=1), dtype=bool))
            kd = pipe.lifter.keypoint_depth(f.readings)
            err = np.abs(kd - sample.keypoints_camera[:, 2]) * 1000.0
            reading_err.append(np.where(sample.visible, err, np.nan))
            bar.update()
        sequences.append({"sequence": item, "frames": [start, len(truth)],
                          "frames_without_mouse": missed - missed_before,
                          "kinds": scene_kinds(rendered.scene, rendered.shape)}
                         | ({"bedding_measured_m": round(arena.bedding, 5)}
                            if measure_bedding and arena is not None else {}))
    bar.close()
    names = list(KEYPOINTS)
    t_arr = np.array(truth)
    re = np.array(reading_err)
    p_arr = np.array(pred)
    seen = np.array(found)[..., None]

    def median(a: FloatArray) -> float | None:
        a = a[np.isfinite(a)]
        return round(float(np.median(a)), 2) if a.size else None

    return {"input": "synthetic", "view": view, "seed": seed, "sequences": count,
            "seconds": seconds, "true_inputs": sorted(true_inputs),
            "fps": fps, "bedding_m": bedding,
            "bedding_declared": bedding_declared and not measure_bedding,
            **({"bedding_measured": True, "bedding_unmeasured": unmeasured}
               if measure_bedding else {}),
            "frames": len(truth), "frames_without_mouse": missed,
            "models": {"keypoints": pipe.keypoints.description if pipe else "",
                       "depth": pipe.depth.description if pipe else ""},
            "lifter": joint_errors(p_arr, t_arr, names),
            "lifter_where_2d_found": joint_errors(np.where(seen, p_arr, np.nan), t_arr, names),
            "floor_baseline_2d_only": joint_errors(np.array(base), t_arr, names),
            "keypoint_depth_error_mm_median": {k: median(re[:, i])
                                               for i, k in enumerate(names)},
            "per_sequence": [{**{k: v for k, v in seq.items() if k != "frames"},
                              **_summary(p_arr[slice(*seq["frames"])],
                                         t_arr[slice(*seq["frames"])], names)}
                             for seq in sequences],
            "per_scene_kind": _by_kind(sequences, p_arr, t_arr, names)}


def _true_keypoints(seen: Frame3D, pixels: FloatArray) -> Frame3D:
    """``seen`` with the 14 keypoints at the true ``pixels`` (14, 2), confidence 1, and
    the depth map read there."""
    from mouse_lifter_ros.core.keypoints import Keypoints

    xy = np.asarray(pixels, dtype=np.float32)
    kp = Keypoints(xy, np.ones(len(xy), np.float32), tuple(KEYPOINTS),
                   seen.keypoints.detection, seen.keypoints.crop)
    readings = (sample_depth(seen.depth.depth, seen.depth.roi[:2], xy.astype(np.float64))
                if seen.depth.found else np.full(len(xy), np.nan))
    return replace(seen, keypoints=kp, readings=readings)


def _over_bedding(camera: Camera, bedding: float, declared: bool) -> ArenaCalibration:
    """The arena calibration a lab would have of ``camera`` (placed over the surface the
    mouse stands on) when that surface is ``bedding`` metres over the floor it
    calibrated: the floor's pose, with the bedding's depth when ``declared``."""
    from mouse_lifter_ros.core.arena import arena_from_camera, floor_below

    floor = floor_below(arena_from_camera(camera), bedding)
    return floor if declared else replace(floor, bedding=0.0)


def _measured(floor: ArenaCalibration, image: NDArray[np.uint8], scene: Scene
              ) -> tuple[ArenaCalibration, float | None]:
    """``floor`` with the bedding depth measured in ``image`` from the walls of
    ``scene``'s arena, and that depth; ``floor`` and None where it is refused."""
    from mouse_lifter_ros.core.surface import bedding_from_walls

    try:
        depth = bedding_from_walls(floor, [image], arena_size=scene.arena).depth
    except CalibrationError:
        return floor, None
    return replace(floor, bedding=depth), depth


def scene_kinds(scene: Scene, shape: MouseShape) -> dict[str, str]:
    """What kind of scene a synthetic sequence shows: ``floor``, ``light``, ``coat`` and
    ``colour`` (grey or colour camera), by name."""
    return {"floor": scene.floor, "light": scene.light, "coat": shape.fur_name,
            "colour": "colour" if scene.colour else "grey"}


def _summary(pred: FloatArray, truth: FloatArray, names: abc.Sequence[str]
             ) -> dict[str, Any]:
    """Mean error, nose height error (mm) and frame count of one group of frames."""
    errors = joint_errors(pred, truth, names)
    return {"n_frames": len(pred), "mean_mm": errors["mean_mm"],
            "nose_height_error_mm": errors["height_error_mm"].get("nose"),
            "worst_keypoint": max(((v, k) for k, v in errors["per_keypoint_mm"].items()
                                   if v is not None), default=(None, None))[1]}


def _by_kind(sequences: list[dict[str, Any]], pred: FloatArray, truth: FloatArray,
             names: abc.Sequence[str]) -> dict[str, dict[str, Any]]:
    """:func:`_summary` over the frames of the sequences of each scene kind, keyed
    ``"floor=bedding"``, ``"light=infrared"``, ..."""
    frames: dict[str, list[int]] = {}
    counts: dict[str, int] = {}
    for seq in sequences:
        for kind, value in seq["kinds"].items():
            key = f"{kind}={value}"
            frames.setdefault(key, []).extend(range(*seq["frames"]))
            counts[key] = counts.get(key, 0) + 1
    return {key: {"sequences": counts[key], **_summary(pred[idx], truth[idx], names)}
            for key, idx in sorted(frames.items())}
