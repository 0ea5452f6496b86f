"""Fitting the articulated body model to one frame of 2D keypoints and depth readings.

Three pieces:

- :func:`fk_batch`: the forward kinematics of :mod:`.body` for a batch of pose
  vectors at once (numpy, vectorised over the batch), the inner loop of the fit;
- :class:`BodyFitter`: a projected Levenberg-Marquardt fit of the (43,) pose vector
  (:meth:`~.body.Pose.to_vector`) to an :class:`Observation` (pixels, confidences
  and camera-z depth readings at the 14 keypoints), regularised by the pose prior
  (:func:`~.body.pose_prior`) and, when tracking, by the previous frame's pose;
- :func:`estimate_scale`, :func:`estimate_tail_length`: the body size and tail length
  of an animal from its observed 3D keypoints.

Frames and units: the arena frame (x, y on the floor, z up, metres), radians, pixels of
the camera's image; depth is camera-frame z in metres (``x_cam = R x_arena + t``, z
along the optical axis), as a depth image gives it.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray

from mouse_lifter_ros.core.body import (
    EAR_OFFSET,
    FORELIMB,
    HINDLIMB,
    HIP_OFFSET,
    JOINTS,
    KEYPOINT_JOINTS,
    KEYPOINTS,
    LIMB_POLE_LIFT,
    LIMBS,
    POSE_HEAD_ROLL,
    POSE_HEADING,
    POSE_PAWS,
    POSE_SPINE_PITCH,
    POSE_SPINE_YAW,
    POSE_TAIL_PITCH,
    POSE_TAIL_YAW,
    POSE_X,
    POSE_Y,
    POSE_Z,
    SHOULDER_OFFSET,
    SPINE,
    TAIL,
    TAIL_SEGMENTS,
    FloatArray,
    J,
    MouseShape,
    Pose,
    PosePrior,
    pose_prior,
    tail_radius,
    wrap_angle,
)
from mouse_lifter_ros.core.camera import Camera
from mouse_lifter_ros.core.errors import InputError, ParameterError

__all__ = [
    "DEFAULT_TEMPORAL_SIGMA",
    "SCALE_PAIRS",
    "SCALE_RANGE",
    "SPINE_SCALE_PAIRS",
    "TAIL_HEIGHT_SIGMA",
    "TAIL_LENGTH_RANGE",
    "BodyFitter",
    "FitResult",
    "Observation",
    "drag_tail",
    "estimate_scale",
    "estimate_tail_length",
    "fk_batch",
    "locate",
]

N_KEYPOINTS: Final = len(KEYPOINTS)
#: Weight of the identity mixed into the prior's correlation: a tie seen in every
#: synthetic draw is held a little loosely, as a real mouse may break it.
PRIOR_SHRINK: Final = 0.1
_KP: Final = {name: i for i, name in enumerate(KEYPOINTS)}


# ---------------------------------------------------------------------------------------
# Batched forward kinematics.

_SPINE_IDX: Final = tuple(J[n] for n in SPINE)
_TAIL_IDX: Final = tuple(J[n] for n in TAIL)
#: The tail's joints beyond its base (the segment ends), as an index array.
_TAIL_ENDS: Final = np.array(_TAIL_IDX[1:])
_LIMB_IDX: Final = tuple(tuple(J[n] for n in limb) for limb in LIMBS)
_SIDES: Final = np.array([1.0, -1.0, 1.0, -1.0])  # left fore, right fore, left hind, right hind


def fk_batch(shape: MouseShape, vectors: FloatArray) -> FloatArray:
    """Joint positions for a batch of pose vectors.

    Parameters
    ----------
    shape:
        The body's shape (lengths in metres).
    vectors:
        (B, 43) pose vectors (:meth:`~.body.Pose.to_vector` layout), or (43,).

    Returns
    -------
    (B, 28, 3) positions of :data:`~.body.JOINTS` in the arena frame, metres
    ((28, 3) for a single vector): row ``b`` equals
    ``forward_kinematics(shape, Pose.from_vector(vectors[b])).joints`` to rounding.
    Vectorised over the batch: the loops run over the 5 spine segments and the 8 tail
    segments only.
    """
    v = np.asarray(vectors, dtype=np.float64)
    single = v.ndim == 1
    if single:
        v = v[None, :]
    if v.ndim != 2 or v.shape[1] != Pose.SIZE:
        raise InputError(f"fk_batch: pose vectors have shape {np.shape(vectors)}; expected "
                         f"(B, {Pose.SIZE}) or ({Pose.SIZE},)")
    n = v.shape[0]
    s, g, hs = shape.scale, shape.girth, shape.head_size
    lengths = shape.spine_lengths
    joints = np.empty((n, len(JOINTS), 3))
    heading = v[:, POSE_HEADING]

    # Spine: absolute yaw and pitch are cumulative sums of the relative bends.
    yaw = heading[:, None] + np.cumsum(v[:, POSE_SPINE_YAW], axis=1)  # (B, 5)
    pitch = np.cumsum(v[:, POSE_SPINE_PITCH], axis=1)
    cy, sy, cp, sp = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch)
    fwd = np.stack([cy * cp, sy * cp, sp], axis=2)  # (B, 5, 3) frame column 0
    left = np.stack([-sy, cy, np.zeros_like(cy)], axis=2)  # column 1 (no roll)
    up = np.stack([-cy * sp, -sy * sp, cp], axis=2)  # column 2 (no roll)
    steps = fwd * lengths[None, :, None]
    pos = v[:, POSE_X:POSE_Z + 1]
    joints[:, _SPINE_IDX[0]] = pos
    joints[:, list(_SPINE_IDX[1:])] = pos[:, None, :] + np.cumsum(steps, axis=1)

    # Ears: the head frame carries the roll.
    roll = v[:, POSE_HEAD_ROLL:POSE_HEAD_ROLL + 1]
    cr, sr = np.cos(roll), np.sin(roll)
    left4 = cr * left[:, 4] + sr * up[:, 4]
    up4 = cr * up[:, 4] - sr * left[:, 4]
    head = joints[:, J["head"]]
    ear = EAR_OFFSET * np.array([s * hs, s * hs, s])
    base = head + ear[0] * fwd[:, 4] + ear[2] * up4
    joints[:, J["left_ear"]] = base + ear[1] * left4
    joints[:, J["right_ear"]] = base - ear[1] * left4

    # Tail: continues the rump backwards, a segment never dipping under the floor.
    seg = shape.tail_segment
    tyaw = (heading + v[:, POSE_SPINE_YAW.start] + math.pi
            + np.cumsum(v[:, POSE_TAIL_YAW], axis=1).T)  # (8, B)
    tpitch = -v[:, POSE_SPINE_PITCH.start]
    rel_pitch = v[:, POSE_TAIL_PITCH]
    parent = pos
    for k in range(TAIL_SEGMENTS):
        tpitch = tpitch + rel_pitch[:, k]
        radius = tail_radius(shape, (k + 1) / TAIL_SEGMENTS)
        lowest = np.arcsin(np.clip((radius - parent[:, 2]) / seg, -1.0, 1.0))
        tpitch = np.maximum(tpitch, lowest)
        ctp = np.cos(tpitch)
        step = np.stack([ctp * np.cos(tyaw[k]), ctp * np.sin(tyaw[k]), np.sin(tpitch)],
                        axis=1)
        parent = parent + seg * step
        joints[:, _TAIL_IDX[k + 1]] = parent

    # Limbs, all four at once: roots hang off the spine, paws reach for their targets.
    ch, sh = np.cos(heading), np.sin(heading)
    zeros = np.zeros(n)
    fwd_h = np.stack([ch, sh, zeros], axis=1)  # (B, 3)
    left_h = np.stack([-sh, ch, zeros], axis=1)
    sides = _SIDES[None, :, None]
    fore = SHOULDER_OFFSET * np.array([lengths[2], s * g, s])
    hind = HIP_OFFSET * np.array([s, s * g, s])
    roots = np.empty((n, 4, 3))
    roots[:, :2] = (joints[:, None, J["spine_center"]] + (fore[0] * fwd[:, 2] + fore[2]
                                                           * up[:, 2])[:, None, :]
                    + sides[:, :2] * (fore[1] * left[:, None, 2]))
    roots[:, 2:] = (pos[:, None, :] + (hind[0] * fwd[:, 0] + hind[2] * up[:, 0])[:, None, :]
                    + sides[:, 2:] * (hind[1] * left[:, None, 0]))
    poles = np.empty((n, 4, 3))
    poles[:, :2] = -fwd[:, None, 2] + 0.3 * sides[:, :2] * left[:, None, 2] + LIMB_POLE_LIFT
    poles[:, 2:] = fwd_h[:, None] + 0.3 * sides[:, 2:] * left_h[:, None] + LIMB_POLE_LIFT
    paws = v[:, POSE_PAWS].reshape(n, 4, 3)
    targets = (paws[..., 0:1] * fwd_h[:, None] + paws[..., 1:2] * left_h[:, None])
    targets[..., 0] += pos[:, None, 0]
    targets[..., 1] += pos[:, None, 1]
    targets[..., 2] += paws[..., 2]
    l1 = np.array([FORELIMB[0], FORELIMB[0], HINDLIMB[0], HINDLIMB[0]]) * s
    l2 = np.array([FORELIMB[1], FORELIMB[1], HINDLIMB[1], HINDLIMB[1]]) * s
    mids, ends = _two_bone_batch(roots, targets, l1, l2, poles)
    for i, (ri, mi, pi) in enumerate(_LIMB_IDX):
        joints[:, ri] = roots[:, i]
        joints[:, mi] = mids[:, i]
        joints[:, pi] = ends[:, i]
    return joints[0] if single else joints


def _two_bone_batch(root: FloatArray, target: FloatArray, l1: FloatArray, l2: FloatArray,
                    pole: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Vectorised two-bone solve of :func:`~.body.forward_kinematics`: (..., L, 3) roots,
    targets and poles,
    (L,) bone lengths -> (..., L, 3) middle joints and ends."""
    d_vec = target - root
    d = np.sqrt(np.einsum("...i,...i->...", d_vec, d_vec))
    tiny = d <= 1e-9
    u = d_vec / np.where(tiny, 1.0, d)[..., None]
    if tiny.any():
        u[tiny] = (0.0, 0.0, -1.0)
    d = np.clip(d, np.abs(l1 - l2) + 1e-6, l1 + l2 - 1e-6)
    w = pole - np.einsum("...i,...i->...", pole, u)[..., None] * u
    nw = np.sqrt(np.einsum("...i,...i->...", w, w))
    along = nw < 1e-9
    if along.any():  # the pole along the limb: any perpendicular does
        ua = u[along]
        alt = np.where((np.abs(ua[:, 1]) < 0.9)[:, None], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0])
        w[along] = np.cross(ua, alt)
        nw[along] = np.linalg.norm(w[along], axis=-1)
    w = w / nw[..., None]
    a = (l1 * l1 - l2 * l2 + d * d) / (2.0 * d)
    h = np.sqrt(np.maximum(l1 * l1 - a * a, 0.0))
    mid = root + a[..., None] * u + h[..., None] * w
    end = root + d[..., None] * u
    return mid, end


# ---------------------------------------------------------------------------------------
# Fitting one frame.

# Entries of the pose vector in metres: the tail base's position and the paw targets.
_METRE_ENTRIES: Final = np.array([POSE_X, POSE_Y, POSE_Z, *range(POSE_PAWS.start,
                                                                 POSE_PAWS.stop)])
#: Keypoints whose layout in the body is (nearly) fixed: used to place and orient the
#: model from the observations when there is no previous pose.
_TRUNK: Final = tuple(_KP[n] for n in ("nose", "left_ear", "right_ear", "head", "neck",
                                     "spine_center", "lumbar_spine", "tail_base"))

#: Default standard deviation (per entry of the pose vector, its own units) of the
#: change from the previous frame's pose: loose on the position (2 cm) and the heading
#: (0.5 rad), 0.15 rad on the spine and head bends, 0.3 rad on the tail, 1.5 cm on the
#: paw targets. At 30 fps this leaves walking, trotting and rearing free and damps the
#: frame-to-frame jitter of what the observations do not pin down.
DEFAULT_TEMPORAL_SIGMA: Final[FloatArray] = np.concatenate([
    [0.02, 0.02, 0.008, 0.5], np.full(5, 0.15), np.full(5, 0.15), [0.15],
    np.full(2 * TAIL_SEGMENTS, 0.3), np.full(12, 0.015)])
DEFAULT_TEMPORAL_SIGMA.setflags(write=False)

#: Default standard deviation of each tail joint's height over its resting height (its
#: radius: lying on the floor), metres. A mouse drags its tail; the 2D keypoints alone
#: do not say how high a tail is (from above, a tail raised along the rays looks the
#: same), and with a tail_mid a few pixels off the fit used to lift a tail whose tip it
#: saw well: on the validation seeds 21-23 (``eval-3d --synthetic``) the tip sat 18 mm
#: too high where it was found within 5 px. With 2 cm: tail tip 28 -> 24 mm, mean
#: 9.34 -> 8.96 mm (1, 2 and 4 cm within 0.06 mm of each other).
TAIL_HEIGHT_SIGMA: Final = 0.02


@dataclass(frozen=True)
class Observation:
    """What one frame tells about the 14 keypoints (:data:`~.body.KEYPOINTS`).

    Attributes
    ----------
    pixels:
        (14, 2) image positions, pixels of ``camera``'s image; NaN where missing.
    weights:
        (14,) confidence 0..1 of each keypoint; 0 (or a NaN pixel) ignores it.
    depth:
        (14,) camera-frame z measured at each keypoint, metres; NaN where there is none.
    camera:
        The camera that took the image.
    points:
        Optional (14, 3) arena-frame points of the keypoints (metres, NaN where
        unknown), e.g. the pixels back-projected at their depth; used only to
        initialise a fit without a previous pose. When absent the fitter locates them
        itself from ``project`` (at their depth, or at the floor-to-back mean height).
    """

    pixels: FloatArray
    weights: FloatArray
    depth: FloatArray
    camera: Camera
    points: FloatArray | None = None


@dataclass(frozen=True)
class FitResult:
    """A fitted pose.

    Attributes
    ----------
    vector:
        (43,) pose vector (:meth:`~.body.Pose.to_vector`), heading wrapped to
        [-pi, pi).
    keypoints:
        (14, 3) model keypoints in the arena frame, metres.
    joints:
        (28, 3) every model joint (:data:`~.body.JOINTS`), metres.
    camera_z:
        (14,) camera-frame z of the model keypoints, metres.
    residual_px:
        Root of the weight-averaged squared reprojection error over the keypoints
        with a positive weight, pixels (NaN when there are none).
    cost:
        Sum of squared residuals (2D, depth, prior, temporal) at the result.
    iterations:
        Levenberg-Marquardt steps taken (accepted or not).
    """

    vector: FloatArray
    keypoints: FloatArray
    joints: FloatArray
    camera_z: FloatArray
    residual_px: float
    cost: float
    iterations: int


class BodyFitter:
    """Fit the body model to one frame of keypoints: projected Levenberg-Marquardt.

    The unknown is the (43,) pose vector. Residuals, each divided by its standard
    deviation:

    - reprojection: ``(projected - observed pixel) / sigma_px * sqrt(weight)`` for every
      keypoint with a positive weight (x and y);
    - depth: ``(model camera z - depth) / sigma_depth * sqrt(weight)`` (the keypoint's
      ``sigma_depth``) where the depth reading is finite;
    - pose prior: ``prior_weight * S (v - mean)`` on the non-free entries of the prior
      (all but the tail base x, y and the heading), ``S^T S`` the inverse of the
      prior's covariance: its ``std``, at least ``min_std`` (the prior fitted to
      :func:`~.synth.motion.sample_pose` is very narrow on some bends that real mice
      do use, e.g. the tail's lift), and its correlation where it has one, mixed with
      :data:`PRIOR_SHRINK` of the identity. The correlation is what places parts no
      keypoint shows: a walking mouse's forepaws under its chest, not at the height
      averaged over rearing and walking;
    - temporal, when a previous pose is given: ``(v - previous) / temporal_sigma``
      (the heading's difference wrapped to [-pi, pi));
    - tail height: ``(z - radius) / tail_height_sigma`` of each tail joint (its height
      over the floor beyond its resting height), unless ``tail_height_sigma`` is None.

    Each step solves the damped normal equations (Marquardt's scaling of the diagonal)
    and clips the result into the prior's hard limits; the damping shrinks after a
    step that lowers the cost and grows after one that does not (which is undone).
    The Jacobian of the 2D and depth residuals is taken by forward differences from ONE
    :func:`fk_batch` call of 44 poses per step (the trial pose and its 43 nudges: when
    the trial is accepted they are the next step's Jacobian); the prior and temporal
    residuals are linear, their Jacobian exact.

    Without a previous pose the fit starts from the prior mean placed and bent along
    the observed spine keypoints (see :meth:`_initial`) and takes ``first_iterations``
    steps; with one, it starts there and takes ``iterations`` steps. A step costs about
    0.5 ms; a warm 3-step fit about 2 ms (measured on 2 shared x86 cores).

    Parameters
    ----------
    shape:
        The body to fit (its lengths are not fitted: see :func:`estimate_scale`).
    prior:
        The pose prior; default :func:`~.body.pose_prior`.
    sigma_px:
        Standard deviation of a keypoint's 2D position at weight 1, pixels.
    sigma_depth:
        Standard deviation of a depth reading at weight 1, metres: one number, or (14,)
        one per keypoint (a depth map reads some keypoints worse than others).
    prior_weight:
        Factor on the prior's z-scores (0 switches the prior off).
    temporal_sigma:
        (43,) standard deviation of each entry's change from the previous pose, in the
        entry's units, or a number that multiplies :data:`DEFAULT_TEMPORAL_SIGMA`.
    min_std:
        Smallest prior standard deviation of an angle (radians) and of a length (m).
    iterations, first_iterations:
        Steps of a warm-started fit and of one started from the observations.
    tail_height_sigma:
        Standard deviation of a tail joint's height over its resting height, metres
        (:data:`TAIL_HEIGHT_SIGMA`); None: no such residual.
    """

    def __init__(self, shape: MouseShape, prior: PosePrior | None = None, *,
                 sigma_px: float = 3.0, sigma_depth: float | FloatArray = 0.004,
                 prior_weight: float = 0.5,
                 temporal_sigma: float | FloatArray = 1.0,
                 min_std: tuple[float, float] = (0.05, 0.002),
                 iterations: int = 3, first_iterations: int = 12,
                 tail_height_sigma: float | None = TAIL_HEIGHT_SIGMA) -> None:
        problems: list[str] = []
        if not (math.isfinite(sigma_px) and sigma_px > 0.0):
            problems.append(f"sigma_px {sigma_px!r} must be a positive number")
        sdep = np.array(sigma_depth, dtype=np.float64)  # a copy: the caller's may change
        if sdep.ndim == 0:
            sdep = np.full(N_KEYPOINTS, float(sdep))
        if sdep.shape != (N_KEYPOINTS,) or not np.all(np.isfinite(sdep) & (sdep > 0.0)):
            problems.append(f"sigma_depth {sigma_depth!r} must be a positive number or "
                            f"{N_KEYPOINTS} positive numbers (m)")
        if tail_height_sigma is not None and not (math.isfinite(tail_height_sigma)
                                                  and tail_height_sigma > 0.0):
            problems.append(f"tail_height_sigma {tail_height_sigma!r} must be a positive "
                            "number (m) or None")
        if not (math.isfinite(prior_weight) and prior_weight >= 0.0):
            problems.append(f"prior_weight {prior_weight!r} must be a number >= 0")
        for name, count in (("iterations", iterations), ("first_iterations", first_iterations)):
            if not (isinstance(count, int) and count >= 0):
                problems.append(f"{name} {count!r} must be an integer >= 0")
        if len(min_std) != 2 or not all(math.isfinite(m) and m > 0 for m in min_std):
            problems.append(f"min_std {min_std!r} must be two positive numbers "
                            "(radians, metres)")
        tsig = np.asarray(temporal_sigma, dtype=np.float64)
        if tsig.ndim == 0:
            tsig = DEFAULT_TEMPORAL_SIGMA * float(tsig)
        if tsig.shape != (Pose.SIZE,) or not np.all(tsig > 0.0):
            problems.append(f"temporal_sigma must be a positive number or {Pose.SIZE} "
                            f"positive numbers; got shape {tsig.shape}")
        if problems:
            raise ParameterError("BodyFitter: " + "; ".join(problems))
        self.shape = shape
        self.prior = prior if prior is not None else pose_prior()
        self.sigma_px = float(sigma_px)
        self.sigma_depth: FloatArray = sdep  # (14,) m
        self.prior_weight = float(prior_weight)
        self.iterations, self.first_iterations = iterations, first_iterations
        self.tail_height_sigma = tail_height_sigma
        self._tail_rest = np.array([tail_radius(shape, (k + 1) / TAIL_SEGMENTS)
                                    for k in range(TAIL_SEGMENTS)])
        self.temporal_sigma = np.array(tsig, dtype=np.float64)
        keep = ~np.asarray(self.prior.free, dtype=bool)
        floor = np.full(Pose.SIZE, min_std[0])
        floor[_METRE_ENTRIES] = min_std[1]
        std = np.maximum(np.asarray(self.prior.std, dtype=np.float64), floor)
        self._keep = k = np.flatnonzero(keep)
        self._mean = np.asarray(self.prior.mean, dtype=np.float64).copy()
        self._mean[POSE_PAWS] *= shape.scale  # paw targets of this body's size
        std[POSE_PAWS] *= shape.scale
        corr = np.eye(len(k))
        if self.prior.correlation is not None:
            corr = np.asarray(self.prior.correlation, dtype=np.float64)[np.ix_(k, k)]
            corr = (1.0 - PRIOR_SHRINK) * corr + PRIOR_SHRINK * np.eye(len(k))
        # the prior's residual is S (v - mean) with S^T S = prior_weight^2 C^-1
        cov = corr * np.outer(std[k], std[k])
        self._prior_sqrt = np.zeros((Pose.SIZE, Pose.SIZE))
        self._prior_sqrt[np.ix_(k, k)] = (self.prior_weight
                                          * np.linalg.cholesky(np.linalg.inv(cov)).T)
        self._prior_hess = self._prior_sqrt.T @ self._prior_sqrt
        self._lower = np.asarray(self.prior.lower, dtype=np.float64)
        self._upper = np.asarray(self.prior.upper, dtype=np.float64)
        self._step = np.full(Pose.SIZE, 1e-5)
        self._step[_METRE_ENTRIES] = 1e-6

    # -- residuals ------------------------------------------------------------------

    def _data(self, obs: _Prepared, vectors: FloatArray) -> tuple[FloatArray, FloatArray,
                                                                  FloatArray]:
        """(B, M) weighted 2D and depth residuals, (B, 28, 3) joints, (B, 14) camera z."""
        joints = fk_batch(self.shape, vectors)
        kp = joints[:, KEYPOINT_JOINTS]
        px, z = obs.camera.project(kp.reshape(-1, 3))
        px = np.asarray(px, dtype=np.float64).reshape(len(vectors), N_KEYPOINTS, 2)
        z = np.asarray(z, dtype=np.float64).reshape(len(vectors), N_KEYPOINTS)
        r2 = (px[:, obs.idx2] - obs.px) * obs.w2[:, None]
        rd = (z[:, obs.idxd] - obs.depth) * obs.wd
        parts = [r2.reshape(len(vectors), -1), rd]
        if self.tail_height_sigma is not None:
            parts.append((joints[:, _TAIL_ENDS, 2] - self._tail_rest)
                         / self.tail_height_sigma)
        return np.concatenate(parts, axis=1), joints, z

    def _soft(self, v: FloatArray, previous: FloatArray | None) -> FloatArray:
        """Prior and temporal residuals of one (43,) vector."""
        rp = self._prior_sqrt @ (v - self._mean)
        if previous is None:
            return rp
        dv = v - previous
        dv[POSE_HEADING] = wrap_angle(dv[POSE_HEADING])
        return np.concatenate([rp, dv / self.temporal_sigma])

    # -- the fit ----------------------------------------------------------------------

    def fit(self, obs: Observation, previous: FloatArray | None = None) -> FitResult:
        """Fit one frame; ``previous`` (43,) is the last frame's pose (warm start).

        Raises
        ------
        InputError
            Observation arrays of the wrong shape, or a ``previous`` that is not 43
            finite numbers (all problems in one message).
        """
        prep = _prepare(obs, self.sigma_px, self.sigma_depth)
        prev: FloatArray | None = None
        if previous is not None:
            prev = np.asarray(previous, dtype=np.float64)
            if prev.shape != (Pose.SIZE,) or not np.all(np.isfinite(prev)):
                raise InputError(f"BodyFitter.fit: previous pose has shape {prev.shape} or "
                                 f"non-finite entries; expected {Pose.SIZE} finite numbers")
            x0 = np.clip(prev, self._lower, self._upper)
            steps = self.iterations
        else:
            x0 = self._initial(obs, prep)
            steps = self.first_iterations
        return self._solve(prep, x0, prev, steps)

    def _solve(self, obs: _Prepared, x: FloatArray, prev: FloatArray | None,
               steps: int) -> FitResult:
        n = Pose.SIZE
        batch = np.empty((n + 1, n))
        nudges = np.diag(self._step)
        soft_hess = self._prior_hess.copy()
        if prev is not None:
            soft_hess[np.diag_indices(n)] += 1.0 / self.temporal_sigma ** 2

        def evaluate(v: FloatArray, jacobian: bool) -> tuple[FloatArray, FloatArray | None,
                                                             FloatArray, FloatArray]:
            if not jacobian:
                r, joints, z = self._data(obs, v[None, :])
                return r[0], None, joints[0], z[0]
            batch[0] = v
            batch[1:] = v + nudges
            r, joints, z = self._data(obs, batch)
            jac = (r[1:] - r[0]).T / self._step  # (M, 43)
            return r[0], jac, joints[0], z[0]

        def total(r: FloatArray, v: FloatArray) -> float:
            soft = self._soft(v, prev)
            return float(r @ r + soft @ soft)

        r, jac, joints, z = evaluate(x, steps > 0)
        cost = total(r, x)
        lam = 1e-3
        taken = 0
        for it in range(steps):
            assert jac is not None
            # the soft terms are linear: their Hessian is the constant soft_hess
            g = jac.T @ r
            g += self._prior_hess @ (x - self._mean)
            if prev is not None:
                dv = x - prev
                dv[POSE_HEADING] = wrap_angle(dv[POSE_HEADING])
                g += dv / self.temporal_sigma ** 2
            a = jac.T @ jac
            a += soft_hess
            diag = np.maximum(np.diag(a).copy(), 1e-9)
            try:
                delta = np.linalg.solve(a + lam * np.diag(diag), -g)
            except np.linalg.LinAlgError:
                lam *= 10.0
                continue
            x_new = np.clip(x + delta, self._lower, self._upper)
            last = it == steps - 1
            r_new, jac_new, joints_new, z_new = evaluate(x_new, not last)
            cost_new = total(r_new, x_new)
            taken += 1
            if cost_new < cost:
                converged = float(np.max(np.abs(x_new - x))) < 1e-9
                x, r, joints, z, cost = x_new, r_new, joints_new, z_new, cost_new
                if jac_new is not None:
                    jac = jac_new
                lam = max(lam * 0.3, 1e-7)
                if converged:
                    break
            else:
                lam *= 10.0
        x = x.copy()
        x[POSE_HEADING] = wrap_angle(x[POSE_HEADING])
        w = obs.weights2d
        residual = math.nan
        if w.size:  # r holds (pixel error) * sqrt(w) / sigma_px
            err2 = np.sum(r[: 2 * w.size].reshape(-1, 2) ** 2, axis=1) * self.sigma_px ** 2
            residual = math.sqrt(float(np.sum(err2) / np.sum(w)))
        return FitResult(vector=x, keypoints=joints[KEYPOINT_JOINTS].copy(), joints=joints,
                         camera_z=z.copy(), residual_px=residual, cost=cost, iterations=taken)

    # -- initialisation ---------------------------------------------------------------

    def _initial(self, obs: Observation, prep: _Prepared) -> FloatArray:
        """A starting pose placed on the observations (no previous pose).

        The spine's absolute yaws follow the chords between consecutive observed spine
        keypoints (tail base, lumbar spine, spine centre, neck, head, nose) and their
        pitches too where both ends have a depth reading; segments outside the
        observed ones keep the prior mean's bends. With fewer than two spine keypoints,
        a weighted 2D Procrustes of the mean posture's trunk keypoints (ears included)
        onto the observed ones gives the heading. The position then puts the model's
        trunk keypoints on the observed ones on average; paw targets go to the observed
        paws and the tail's two halves along the observed tail. When no spine pitch
        was observed, the best of a few rump pitches (rearing) is taken.
        """
        x = np.clip(self._mean.copy(), self._lower, self._upper)
        pts = _observed_points(obs, prep)
        w = np.where(np.isfinite(pts).all(axis=1), prep.weights_all, 0.0)
        hasd = prep.has_depth & (w > 0)
        spine = [k for k, name in enumerate(SPINE) if w[_KP[name]] > 0]
        pitched = False
        if len(spine) >= 2:
            mean_yaw = np.cumsum(x[POSE_SPINE_YAW])  # heading 0
            mean_pitch = np.cumsum(x[POSE_SPINE_PITCH])
            dyaw = np.full(5, np.nan)
            dpitch = np.full(5, np.nan)
            for i, j in itertools.pairwise(spine):
                d = pts[_KP[SPINE[j]]] - pts[_KP[SPINE[i]]]
                horiz = float(np.hypot(d[0], d[1]))
                if horiz > 1e-4:
                    yaw = math.atan2(float(d[1]), float(d[0]))
                    dyaw[i:j] = [wrap_angle(yaw - m) for m in mean_yaw[i:j]]
                if hasd[_KP[SPINE[i]]] and hasd[_KP[SPINE[j]]]:
                    dpitch[i:j] = math.atan2(float(d[2]), horiz) - mean_pitch[i:j]
            if np.isfinite(dyaw).any():
                abs_yaw = mean_yaw + _fill_nearest(dyaw)
                x[POSE_HEADING] = abs_yaw[0] - x[POSE_SPINE_YAW.start]
                x[POSE_SPINE_YAW.start + 1:POSE_SPINE_YAW.stop] = [
                    wrap_angle(float(v)) for v in np.diff(abs_yaw)]
            if np.isfinite(dpitch).any():
                x[POSE_SPINE_PITCH] = np.diff(np.concatenate([[0.0], mean_pitch
                                                              + _fill_nearest(dpitch)]))
                pitched = True
        x = np.clip(x, self._lower, self._upper)
        trunk = np.array(_TRUNK)
        wt = w[trunk]
        posed = x.copy()
        posed[[POSE_X, POSE_Y, POSE_HEADING]] = 0.0
        model = fk_batch(self.shape, posed)[KEYPOINT_JOINTS]  # root at the origin
        if len(spine) < 2 and np.count_nonzero(wt > 0) >= 2:
            mo, ob = model[trunk, :2], np.nan_to_num(pts[trunk, :2])
            a = mo - (wt @ mo) / wt.sum()
            b = ob - (wt @ ob) / wt.sum()
            cross = float(wt @ (a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]))
            x[POSE_HEADING] = math.atan2(cross, float(wt @ np.sum(a * b, axis=1)))
        c, s = math.cos(x[POSE_HEADING]), math.sin(x[POSE_HEADING])
        rot = np.array([[c, -s], [s, c]])
        if np.any(wt > 0):
            ob = np.nan_to_num(pts[trunk])
            x[POSE_X:POSE_Y + 1] = (wt @ (ob[:, :2] - model[trunk, :2] @ rot.T)) / wt.sum()
            wz = np.where(hasd[trunk], wt, 0.0)
            if wz.sum() > 0:
                x[POSE_Z] = float(wz @ (ob[:, 2] - model[trunk, 2])) / float(wz.sum())
        elif np.any(w > 0):
            i = int(np.argmax(w))
            x[POSE_X:POSE_Y + 1] = pts[i, :2] - rot @ model[i, :2]
        # paw targets at the observed paws (heading frame; their height only from depth)
        for i, name in enumerate(_PAWS):
            k = _KP[name]
            if w[k] > 0:
                paw = POSE_PAWS.start + 3 * i  # its x, y, z in the heading frame
                x[paw:paw + 2] = rot.T @ (pts[k, :2] - x[POSE_X:POSE_Y + 1])
                if hasd[k]:
                    x[paw + 2] = pts[k, 2]
        x[POSE_TAIL_YAW] = _tail_yaws(pts, w, x[POSE_HEADING] + x[POSE_SPINE_YAW.start] + math.pi,
                                      x[POSE_TAIL_YAW])
        x = np.clip(x, self._lower, self._upper)
        if pitched:
            return x
        # the best of a few rump pitches (rearing lifts the whole front of the body)
        cands = np.repeat(x[None, :], len(_PITCH_TRIES), axis=0)
        rump = POSE_SPINE_PITCH.start
        cands[:, rump] = np.clip(x[rump] + _PITCH_TRIES, self._lower[rump], self._upper[rump])
        r, _, _ = self._data(prep, cands)
        costs = np.einsum("ij,ij->i", r, r) + np.array(
            [float(np.sum(self._soft(c, None) ** 2)) for c in cands])
        return np.asarray(cands[int(np.argmin(costs))])


def _tail_yaws(pts: FloatArray, w: FloatArray, start: float, default: FloatArray
               ) -> FloatArray:
    """(8,) relative tail yaws bending the tail, seen from above, through the observed
    tail_base -> tail_mid -> tail_tip: a uniform bend ``k`` per joint, whose half-tail
    chords point ``1.5 k`` and ``5.5 k`` past the first segment (so they turn by
    ``4 k``); ``default`` when the chords are not seen. ``start`` is the yaw the tail
    leaves the body at (rad)."""
    names = ("tail_base", "tail_mid", "tail_tip")
    if not all(w[_KP[n]] > 0 for n in names[:2]):
        return default
    c1 = pts[_KP["tail_mid"], :2] - pts[_KP["tail_base"], :2]
    if float(np.hypot(c1[0], c1[1])) < 1e-3:
        return default
    dir1 = math.atan2(float(c1[1]), float(c1[0]))
    bend = 0.0
    if w[_KP["tail_tip"]] > 0:
        c2 = pts[_KP["tail_tip"], :2] - pts[_KP["tail_mid"], :2]
        if float(np.hypot(c2[0], c2[1])) > 1e-3:
            bend = wrap_angle(math.atan2(float(c2[1]), float(c2[0])) - dir1) / 4.0
    out = np.full(TAIL_SEGMENTS, bend)
    out[0] = wrap_angle(dir1 - 1.5 * bend - start)
    return out


def drag_tail(vector: FloatArray, tail: FloatArray, last_tail: FloatArray, first: int,
              keep: float = 1.0) -> tuple[FloatArray, FloatArray]:
    """``vector`` (43,) with its tail from segment ``first`` (0-based) on dragged behind
    the segment before it, as a tail lying on the floor follows its base.

    ``tail`` (9, 3): ``vector``'s tail joints (its base, then the 8 segment ends, metres,
    arena frame: ``fk_batch(shape, vector)`` at the tail's joints); ``last_tail`` (9, 3)
    the tail's joints in the frame before. Each segment, from ``first`` on, keeps its
    front end where the segment before puts it and points, seen from above, at where its
    back end was: a dragged tail stays where it lay and is pulled along its own length.
    A segment whose back end lay within a millimetre of its new front end keeps
    ``vector``'s yaw. ``keep`` (0..1): the share of each dragged segment's bend
    (relative yaw) kept, the rest taken from ``vector`` (1: dragged, 0: ``vector``
    unchanged). Only the tail's yaws (:data:`~.body.POSE_TAIL_YAW`) change, which moves
    the joints past ``first`` in the floor plane only (a segment's pitch, and so its
    length seen from above and its height, do not depend on its yaw).

    Returns the new vector and its (9, 3) tail joints, as ``fk_batch`` gives them.
    """
    out = np.array(vector, dtype=np.float64)
    moved = np.array(tail, dtype=np.float64)
    if not 0 <= first < TAIL_SEGMENTS:
        return out, moved
    start = out[POSE_HEADING] + out[POSE_SPINE_YAW.start] + math.pi
    own = out[POSE_TAIL_YAW].copy()
    yaws = start + np.cumsum(own)  # absolute, per segment
    reach = np.hypot(*np.diff(moved[:, :2], axis=0).T)  # (8,) each segment from above
    front = moved[first, :2]
    for k in range(first, TAIL_SEGMENTS):
        d = last_tail[k + 1, :2] - front
        if float(np.hypot(d[0], d[1])) > 1e-3:
            yaws[k] = math.atan2(float(d[1]), float(d[0]))
        front = front + reach[k] * np.array([math.cos(yaws[k]), math.sin(yaws[k])])
    gap = wrap_angle(np.diff(np.concatenate([[start], yaws])) - own)
    out[POSE_TAIL_YAW] = own + keep * gap
    final = start + np.cumsum(out[POSE_TAIL_YAW])
    steps = reach[first:, None] * np.column_stack([np.cos(final[first:]), np.sin(final[first:])])
    moved[first + 1:, :2] = moved[first, :2] + np.cumsum(steps, axis=0)
    return out, moved


def _fill_nearest(values: FloatArray) -> FloatArray:
    """``values`` with each NaN replaced by the nearest finite entry (ties: the earlier)."""
    idx = np.flatnonzero(np.isfinite(values))
    pos = np.arange(len(values))
    nearest = idx[np.argmin(np.abs(pos[:, None] - idx[None, :]), axis=1)]
    return np.asarray(values[nearest])


_PITCH_TRIES: Final = np.array([-0.3, 0.0, 0.3, 0.6, 0.9])
_PAWS: Final = ("left_forepaw", "right_forepaw", "left_hindpaw", "right_hindpaw")
#: Height of the back above the floor used to place a keypoint without depth, metres.
_MEAN_HEIGHT: Final = 0.015


@dataclass(frozen=True)
class _Prepared:
    """An :class:`Observation` reduced to the residuals' arrays."""

    camera: Camera
    idx2: NDArray[np.intp]  # keypoints with a 2D residual
    px: FloatArray  # (n2, 2)
    w2: FloatArray  # (n2,) sqrt(weight) / sigma_px
    weights2d: FloatArray  # (n2,) weights
    idxd: NDArray[np.intp]  # keypoints with a depth residual
    depth: FloatArray  # (nd,)
    wd: FloatArray  # (nd,) sqrt(weight) / the keypoint's sigma_depth
    weights_all: FloatArray  # (14,) weights, 0 where the pixel is missing
    has_depth: NDArray[np.bool_]  # (14,)


def _prepare(obs: Observation, sigma_px: float, sigma_depth: FloatArray) -> _Prepared:
    problems: list[str] = []
    px = np.asarray(obs.pixels, dtype=np.float64)
    if px.shape != (N_KEYPOINTS, 2):
        problems.append(f"pixels have shape {px.shape}; expected ({N_KEYPOINTS}, 2)")
    w = np.asarray(obs.weights, dtype=np.float64)
    if w.shape != (N_KEYPOINTS,):
        problems.append(f"weights have shape {w.shape}; expected ({N_KEYPOINTS},)")
    d = np.asarray(obs.depth, dtype=np.float64)
    if d.shape != (N_KEYPOINTS,):
        problems.append(f"depth has shape {d.shape}; expected ({N_KEYPOINTS},)")
    if obs.points is not None and np.shape(obs.points) != (N_KEYPOINTS, 3):
        problems.append(f"points have shape {np.shape(obs.points)}; expected "
                        f"({N_KEYPOINTS}, 3)")
    if not isinstance(obs.camera, Camera):
        problems.append(f"camera is a {type(obs.camera).__name__}, not a core.camera.Camera")
    if problems:
        raise InputError("observation: " + "; ".join(problems))
    w = np.where(np.isfinite(w), np.clip(w, 0.0, 1.0), 0.0)
    w = np.where(np.isfinite(px).all(axis=1), w, 0.0)
    has_depth = np.isfinite(d) & (d > 0.0) & (w > 0.0)
    idx2 = np.flatnonzero(w > 0.0)
    idxd = np.flatnonzero(has_depth)
    return _Prepared(camera=obs.camera, idx2=idx2, px=px[idx2],
                     w2=np.sqrt(w[idx2]) / sigma_px, weights2d=w[idx2], idxd=idxd,
                     depth=d[idxd], wd=np.sqrt(w[idxd]) / sigma_depth[idxd], weights_all=w,
                     has_depth=has_depth)


def _observed_points(obs: Observation, prep: _Prepared) -> FloatArray:
    """(14, 3) arena points of the weighted keypoints: ``obs.points`` or located here."""
    if obs.points is not None:
        return np.asarray(obs.points, dtype=np.float64)
    out = np.full((N_KEYPOINTS, 3), np.nan)
    idx = prep.idx2
    if idx.size == 0:
        return out
    depth = np.full(N_KEYPOINTS, np.nan)
    depth[prep.idxd] = prep.depth
    out[idx] = locate(obs.camera, prep.px, depth[idx], _MEAN_HEIGHT)
    return out


def locate(camera: Camera, pixels: FloatArray, depth: FloatArray,
           height: float = 0.0, iterations: int = 8) -> FloatArray:
    """Arena points seen at ``pixels`` (N, 2) at camera z ``depth`` (N,) metres, or, where
    ``depth`` is NaN, at ``height`` metres above the floor; from ``camera.project`` alone.

    Gauss-Newton on each point with a forward-difference Jacobian of ``project``,
    started on the floor at the arena origin; exact to ~1e-9 m for a pinhole camera.
    Returns (N, 3) metres.
    """
    px = np.asarray(pixels, dtype=np.float64).reshape(-1, 2)
    d = np.asarray(depth, dtype=np.float64).reshape(-1)
    n = len(px)
    has = np.isfinite(d)
    x = np.zeros((n, 3))
    x[:, 2] = np.where(has, 0.0, height)
    h = 1e-6
    eye = np.eye(3) * h
    for _ in range(iterations):
        probe = np.concatenate([x[:, None, :], x[:, None, :] + eye[None]], axis=1)
        u, z = camera.project(probe.reshape(-1, 3))
        u = np.asarray(u, dtype=np.float64).reshape(n, 4, 2)
        z = np.asarray(z, dtype=np.float64).reshape(n, 4)
        f = np.concatenate([u, np.where(has[:, None], z, probe[:, :, 2])[..., None]], axis=2)
        target = np.column_stack([px, np.where(has, d, height)])
        res = f[:, 0] - target
        jac = np.transpose(f[:, 1:] - f[:, :1], (0, 2, 1)) / h  # (N, 3 outputs, 3 coords)
        try:
            step = np.linalg.solve(jac, res[..., None])[..., 0]
        except np.linalg.LinAlgError:
            break
        x = x - step
        if float(np.max(np.abs(step), initial=0.0)) < 1e-10:
            break
    return x


# ---------------------------------------------------------------------------------------
# Body size.

#: Keypoint pairs whose distance does not change with the pose (all on the rigid head):
#: nose to each ear and ear to ear. Pairs along the spine (ear to neck, neck to tail
#: base) are left out: the head, neck and back bend between them, and the spine points
#: labs annotate (e.g. DANNCE's SpineF, SpineM) are not at our joints.
SCALE_PAIRS: Final[tuple[tuple[str, str], ...]] = (
    ("nose", "left_ear"), ("nose", "right_ear"), ("left_ear", "right_ear"))
#: The three spine bones between tail base and neck: rigid in the body model, and where
#: our own 2D model puts those keypoints (it learned them from the body model, while its
#: ears follow the DeepLabCut labellers' placement at the ear's base, some 8 px forward
#: of the model's: nose-to-ear distances would read a body 15 % too small).
SPINE_SCALE_PAIRS: Final[tuple[tuple[str, str], ...]] = (
    ("tail_base", "lumbar_spine"), ("lumbar_spine", "spine_center"),
    ("spine_center", "neck"))
#: Range of :attr:`~.body.MouseShape.scale` of adult mice (:func:`~.synth.body.sample_shape`).
SCALE_RANGE: Final = (0.85, 1.15)


def _frames_of_points(observed: FloatArray, what: str) -> FloatArray:
    """``observed`` as (F, 14, 3) float64 (one frame (14, 3) gains the axis)."""
    pts = np.asarray(observed, dtype=np.float64)
    if pts.ndim == 2:
        pts = pts[None]
    if pts.ndim != 3 or pts.shape[1:] != (N_KEYPOINTS, 3):
        raise InputError(f"{what}: observed points have shape {np.shape(observed)}; "
                         f"expected (frames, {N_KEYPOINTS}, 3)")
    return pts


def _model_pair_lengths(shape: MouseShape, pairs: tuple[tuple[str, str], ...]
                        ) -> FloatArray:
    kp = fk_batch(shape, Pose().to_vector())[KEYPOINT_JOINTS]
    return np.array([np.linalg.norm(kp[_KP[a]] - kp[_KP[b]]) for a, b in pairs])


def estimate_scale(observed: FloatArray, shape: MouseShape | None = None, *,
                   pairs: tuple[tuple[str, str], ...] = SCALE_PAIRS) -> float:
    """Body scale of an animal from its observed 3D keypoints.

    Parameters
    ----------
    observed:
        (F, 14, 3) arena points of the keypoints over F frames (metres; NaN where not
        seen), e.g. pixels back-projected at their depth readings.
    shape:
        The shape whose other factors (head size) apply; default :class:`MouseShape`.

    Returns
    -------
    The median over every frame and every pair of ``pairs`` seen in it of the observed
    distance divided by that distance in the model at scale 1. The default
    :data:`SCALE_PAIRS` lie on the rigid head, whose layout does not change with the
    pose; :data:`SPINE_SCALE_PAIRS` are the spine's bones. Clipped to
    :data:`SCALE_RANGE` (adult mice); 1.0 when no pair is seen. Noise on the points
    makes a distance longer on average: with 3-4 mm of noise per point the estimate
    runs ~2-5% large, which the :data:`SCALE_RANGE` clip and the fit tolerate.

    Raises
    ------
    InputError
        ``observed`` is not (F, 14, 3).
    """
    pts = _frames_of_points(observed, "estimate_scale")
    base = MouseShape() if shape is None else shape
    model = _model_pair_lengths(MouseShape(scale=1.0, head_size=base.head_size), pairs)
    ratios = []
    for (a, b), length in zip(pairs, model, strict=True):
        d = np.linalg.norm(pts[:, _KP[a]] - pts[:, _KP[b]], axis=1)
        ratios.append(d[np.isfinite(d)] / length)
    all_ratios = np.concatenate(ratios)
    if all_ratios.size == 0:
        return 1.0
    return float(np.clip(np.median(all_ratios), *SCALE_RANGE))


#: Range of :attr:`~.body.MouseShape.tail_length` of adult mice (sample_shape), m.
TAIL_LENGTH_RANGE: Final = (0.065, 0.100)


def estimate_tail_length(observed: FloatArray, default: float = MouseShape.tail_length
                         ) -> float:
    """Tail length of an animal from its observed 3D keypoints, metres.

    ``observed`` is (F, 14, 3) arena points (NaN where not seen). In each frame where
    tail_base, tail_mid and tail_tip are all seen, the tail is at least as long as the
    two chords tail_base-tail_mid-tail_tip (equal when it is straight; a curled tail
    reads shorter): the 75th percentile of that sum over the frames, clipped to
    :data:`TAIL_LENGTH_RANGE`; ``default`` when no frame shows the three. (The model's
    tail_mid is the middle of the tail and tail_tip its end: a labelled "tail end"
    short of the tip shortens the model's tail to match.)

    Raises
    ------
    InputError
        ``observed`` is not (F, 14, 3).
    """
    pts = _frames_of_points(observed, "estimate_tail_length")
    base, mid, tip = (pts[:, _KP[n]] for n in ("tail_base", "tail_mid", "tail_tip"))
    total = np.linalg.norm(mid - base, axis=1) + np.linalg.norm(tip - mid, axis=1)
    total = total[np.isfinite(total)]
    if total.size == 0:
        return float(default)
    return float(np.clip(np.percentile(total, 75.0), *TAIL_LENGTH_RANGE))
