"""Behaviour classification from a short window of 3D poses (pure numpy at run time).

Four classes: locomotion, rearing, grooming, stationary (the coarse behaviour classes
of the body model, :data:`~.body.CLASSES`). :class:`BehaviorClassifier` takes one pose
per frame (the 14 :data:`~.body.KEYPOINTS` in the arena frame,
metres, and their valid flags, as in ``msg/Pose3D.msg``) and returns the label, the
class names and their probabilities (as in ``msg/Behavior.msg``).

Pipeline, per frame
-------------------
1. **Fill.** A keypoint that is flagged invalid, is not finite or lies more than
   :data:`MAX_ABS_M` from the origin is replaced by its last used position, moved by
   the mean displacement of the frame's usable keypoints since the previous frame (so
   a held-over paw follows the body). Before any earlier frame, missing keypoints take
   the mean of the usable ones. Positions flagged invalid are never used, even when
   finite (the lifter's body-model fill-ins): the model was trained with the same
   rule. A frame with no usable keypoint is skipped and the previous result returned
   (label ``"unknown"`` with uniform probabilities if there is none since the last
   reset).
2. **Window.** A ring buffer holds the last :data:`BUFFER_FRAMES` filled frames and
   their stamps. The pose is resampled (linear interpolation between the stamps; the
   oldest frame held before it) on a fixed grid of :data:`GRID_POINTS` instants,
   :data:`GRID_STEP_S` apart, ending at the newest stamp: a window of
   :data:`WINDOW_S` = 0.5 s whatever the camera rate and however many frames were
   dropped. 0.5 s holds 2-4 strides of a walk, 3-4 cycles of a grooming stroke and
   is short against the 0.5-3 s behaviour bouts. After a reset the window is padded
   with the first frame (speeds read 0 for the first half second).
3. **Features** (:data:`FEATURE_NAMES`, :func:`window_features`): speeds of the trunk
   centroid (net over the window, over its last 0.13 s, mean path speed), forward
   speed along the body axis, turn rate and heading jitter; heights of nose, head,
   neck, spine centre, tail base and forepaws, the nose height's max, min, std and
   rise rate over the window; spine length, nose-tail base length in 3D and its
   horizontal projection, their ratio (elongation); pitches of the body, rump and
   head; head-body and spine yaw bends; forepaw-nose and forepaw-neck distances,
   forepaw and hindpaw spreads, forepaw height above the nose; the wobble (std) and
   jerk (mean second difference) of the nose and forepaws relative to the trunk, and
   the hindpaw speed. ``dims=2`` computes the same features from keypoints with their
   heights set to 0 (what a floor or top-view projection gives): heights and pitches
   read 0, lengths are projected.
4. **Classifier.** Features are standardised (training mean and std, z-scores clipped
   to +-10, non-finite ones set to 0) and fed to a small MLP (two ReLU layers of 64
   units, softmax), trained with Adam on labelled synthetic sequences
   (:func:`mouse_lifter_ros.training.trainbehavior.train_behavior`).
5. **Smoothing.** Probabilities are smoothed exponentially in time:
   ``p += (1 - exp(-dt / tau)) * (p_new - p)`` with ``tau`` = :data:`SMOOTH_TAU_S`
   (0.05 s). A step in the classifier's output reaches half height after
   ``tau * ln 2`` = 35 ms (about one frame at 30 fps); the mean delay is ``tau``.
   On held-out sequences this halves the label switches of the raw output and
   leaves the 3D macro F1 as it is (``MODEL_CARD.md``).

Time: the stream is reset (buffer and smoothing cleared) when a stamp goes back or
jumps forward by more than ``max_gap_s`` (1 s); a frame with the same stamp as the
previous one is ignored (the previous result is returned).

Training data and seeds: see :mod:`mouse_lifter_ros.training.trainbehavior`, which fits
and scores the networks on whole streams (:func:`prepare_stream`, :func:`smooth_stream`:
the same numbers as :meth:`BehaviorClassifier.update`).
The model file (:class:`BehaviorModel`) is an ``.npz`` holding both the 3D and the
2D-only networks; the shipped one is ``mouse_lifter_ros/models/behavior/default.npz``
(:data:`DEFAULT_MODEL`), described in its ``MODEL_CARD.md``.
"""

from __future__ import annotations

import json
import math
import zipfile
import zlib
from collections import abc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from mouse_lifter_ros.core.body import CLASSES, KEYPOINTS, wrap_angle
from mouse_lifter_ros.core.errors import InputError, ParameterError

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

#: Version of the model file format and feature pipeline this code reads and writes.
MODEL_VERSION: Final = 1
#: Classes, in the order of the probabilities.
CLASS_NAMES: Final[tuple[str, ...]] = CLASSES
#: The shipped model.
DEFAULT_MODEL: Final = Path(__file__).resolve().parents[1] / "models" / "behavior" / "default.npz"

#: Spacing of the resampled window, seconds.
GRID_STEP_S: Final = 1.0 / 30.0
#: Instants in the resampled window (the newest last).
GRID_POINTS: Final = 16
#: Length of the window, seconds.
WINDOW_S: Final = (GRID_POINTS - 1) * GRID_STEP_S
#: Frames kept in the ring buffer (the window is covered up to 250 fps).
BUFFER_FRAMES: Final = 128
#: Time constant of the probability smoothing, seconds.
SMOOTH_TAU_S: Final = 0.05
#: A keypoint coordinate beyond this (metres from the arena origin) is unusable.
MAX_ABS_M: Final = 100.0
#: A stamp this much later than the previous one resets the stream, seconds.
MAX_GAP_S: Final = 1.0

_N_KP = len(KEYPOINTS)
(_NOSE, _HEAD, _NECK, _SPC, _LUM, _TB, _LF, _RF, _LH, _RH) = (KEYPOINTS.index(name) for name in (
    "nose", "head", "neck", "spine_center", "lumbar_spine", "tail_base", "left_forepaw",
    "right_forepaw", "left_hindpaw", "right_hindpaw"))
_TRUNK = [_NECK, _SPC, _LUM, _TB]
_SPINE = [_TB, _LUM, _SPC, _NECK, _HEAD, _NOSE]


#: Names of the features of :func:`window_features`, in order.
FEATURE_NAMES: Final[tuple[str, ...]] = (
    "speed", "speed_recent", "path_speed", "forward_speed", "turn_rate", "turn_jitter",
    "nose_z", "head_z", "neck_z", "spine_z", "tail_base_z", "forepaw_z",
    "nose_z_max", "nose_z_min", "nose_z_std", "nose_vz",
    "spine_length", "nose_tail_3d", "nose_tail_horizontal", "elongation",
    "body_pitch", "rump_pitch", "head_pitch", "head_yaw", "spine_yaw",
    "forepaw_nose_min", "forepaw_nose_mean", "forepaw_neck", "forepaw_spread",
    "hindpaw_spread", "forepaw_above_nose",
    "nose_wobble", "nose_jerk", "forepaw_wobble", "forepaw_jerk", "hindpaw_speed",
)


def _norm(v: FloatArray) -> FloatArray:
    return np.asarray(np.sqrt(np.sum(v * v, axis=-1)))


def _angle(v: FloatArray) -> FloatArray:
    """Yaw of the horizontal part of ``v`` (..., 3)."""
    return np.asarray(np.arctan2(v[..., 1], v[..., 0]))


def _pitch(v: FloatArray) -> FloatArray:
    """Elevation of ``v`` (..., 3) above the floor plane."""
    return np.asarray(np.arctan2(v[..., 2], _norm(v[..., :2])))


def window_features(window: FloatArray, dims: int = 3) -> FloatArray:
    """(N, F) features (:data:`FEATURE_NAMES`) of N resampled windows (N, K, 14, 3).

    ``window[:, k]`` is the pose at ``(k - K + 1) * GRID_STEP_S`` from the newest
    instant (K >= 5 points, the newest last); arena frame, metres. ``dims=2`` sets
    every height to 0 first. Finite input gives finite features.
    """
    if dims not in (2, 3):
        raise ParameterError(f"dims {dims!r} must be 2 or 3")
    p = np.array(window, dtype=np.float64)
    if p.ndim != 4 or p.shape[2:] != (_N_KP, 3) or p.shape[1] < 5:
        raise InputError(f"window has shape {p.shape}; expected (N, K >= 5, {_N_KP}, 3)")
    if dims == 2:
        p[..., 2] = 0.0
    k = p.shape[1]
    step = GRID_STEP_S
    span = (k - 1) * step
    last = p[:, -1]
    trunk = p[:, :, _TRUNK].mean(axis=2)  # (N, K, 3)
    net = trunk[:, -1, :2] - trunk[:, 0, :2]
    q = max(k // 4, 1)
    axis = p[:, :, _NECK] - p[:, :, _TB]  # (N, K, 3)
    heading = _angle(axis)
    dh = wrap_angle(np.diff(heading, axis=1))
    axis_xy = axis[:, -1, :2]
    unit = axis_xy / np.maximum(_norm(axis_xy), 1e-6)[:, None]
    nose_z = p[:, :, _NOSE, 2]
    spine = last[:, _SPINE]
    nose_tail = last[:, _NOSE] - last[:, _TB]
    spine_len = _norm(np.diff(spine, axis=1)).sum(axis=1)
    horizontal = _norm(nose_tail[:, :2])
    fore = last[:, [_LF, _RF]]
    fore_nose = _norm(fore - last[:, None, _NOSE])
    rel_nose = p[:, :, _NOSE] - trunk
    rel_fore = p[:, :, [_LF, _RF]] - trunk[:, :, None]
    hind = p[:, :, [_LH, _RH]]
    feats = {
        "speed": _norm(net) / span,
        "speed_recent": _norm(trunk[:, -1, :2] - trunk[:, -1 - q, :2]) / (q * step),
        "path_speed": _norm(np.diff(trunk[..., :2], axis=1)).mean(axis=1) / step,
        "forward_speed": np.sum(net * unit, axis=1) / span,
        "turn_rate": np.abs(dh.sum(axis=1)) / span,
        "turn_jitter": np.abs(dh).mean(axis=1) / step,
        "nose_z": last[:, _NOSE, 2],
        "head_z": last[:, _HEAD, 2],
        "neck_z": last[:, _NECK, 2],
        "spine_z": last[:, _SPC, 2],
        "tail_base_z": last[:, _TB, 2],
        "forepaw_z": fore[..., 2].mean(axis=1),
        "nose_z_max": nose_z.max(axis=1),
        "nose_z_min": nose_z.min(axis=1),
        "nose_z_std": nose_z.std(axis=1),
        "nose_vz": (nose_z[:, -1] - nose_z[:, -1 - q]) / (q * step),
        "spine_length": spine_len,
        "nose_tail_3d": _norm(nose_tail),
        "nose_tail_horizontal": horizontal,
        "elongation": horizontal / np.maximum(spine_len, 1e-3),
        "body_pitch": _pitch(last[:, _NECK] - last[:, _TB]),
        "rump_pitch": _pitch(last[:, _SPC] - last[:, _TB]),
        "head_pitch": _pitch(last[:, _NOSE] - last[:, _NECK]),
        "head_yaw": np.abs(wrap_angle(_angle(last[:, _NOSE] - last[:, _NECK])
                                 - _angle(last[:, _NECK] - last[:, _SPC]))),
        "spine_yaw": np.abs(wrap_angle(_angle(last[:, _NECK] - last[:, _SPC])
                                  - _angle(last[:, _SPC] - last[:, _TB]))),
        "forepaw_nose_min": fore_nose.min(axis=1),
        "forepaw_nose_mean": fore_nose.mean(axis=1),
        "forepaw_neck": _norm(fore - last[:, None, _NECK]).mean(axis=1),
        "forepaw_spread": _norm(fore[:, 0] - fore[:, 1]),
        "hindpaw_spread": _norm(last[:, _LH] - last[:, _RH]),
        "forepaw_above_nose": fore[..., 2].mean(axis=1) - last[:, _NOSE, 2],
        "nose_wobble": _norm(rel_nose.std(axis=1)),
        "nose_jerk": _norm(np.diff(rel_nose, n=2, axis=1)).mean(axis=1),
        "forepaw_wobble": _norm(rel_fore.std(axis=1)).mean(axis=1),
        "forepaw_jerk": _norm(np.diff(rel_fore, n=2, axis=1)).mean(axis=(1, 2)),
        "hindpaw_speed": _norm(np.diff(hind, axis=1)).mean(axis=(1, 2)) / step,
    }
    return np.stack([np.asarray(feats[n], dtype=np.float64) for n in FEATURE_NAMES], axis=1)


def _resample(times: FloatArray, points: FloatArray, query: FloatArray) -> FloatArray:
    """Linear interpolation of ``points`` (n, 14, 3) at ``times`` (n,) to ``query`` (...).

    Queries before the first stamp take the first frame; queries are never after the
    last stamp of the frames they may use (the newest grid point is the newest stamp).
    """
    n = times.shape[0]
    j0 = np.clip(np.searchsorted(times, query, side="right") - 1, 0, n - 1)
    j1 = np.minimum(j0 + 1, n - 1)
    dt = times[j1] - times[j0]
    w = np.where(dt > 0.0, (query - times[j0]) / np.where(dt > 0.0, dt, 1.0), 0.0)
    w = np.clip(w, 0.0, 1.0)[..., None, None]
    return np.asarray(points[j0] * (1.0 - w) + points[j1] * w)


#: (GRID_POINTS,) instants of the window relative to its newest one, seconds (the last 0).
GRID_OFFSETS_S: Final = (np.arange(GRID_POINTS, dtype=np.float64) - (GRID_POINTS - 1)) \
    * GRID_STEP_S


class _Filler:
    """Replaces unusable keypoints (see the module docstring, step 1)."""

    def __init__(self) -> None:
        self.last: FloatArray | None = None

    def fill(self, keypoints: FloatArray, valid: BoolArray) -> FloatArray | None:
        ok = valid & (np.abs(keypoints) <= MAX_ABS_M).all(axis=1)  # False for NaN too
        if not ok.any():
            return None
        if ok.all():
            out = keypoints.copy()
        else:
            if self.last is None:
                out = np.broadcast_to(keypoints[ok].mean(axis=0), (_N_KP, 3)).copy()
            else:
                out = self.last + (keypoints[ok] - self.last[ok]).mean(axis=0)
            out[ok] = keypoints[ok]
        self.last = out
        return out


def _check_frame(keypoints: FloatArray, valid: BoolArray | None,
                 dims: int) -> tuple[FloatArray, BoolArray]:
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.shape == (_N_KP, 2):
        if dims != 2:
            raise InputError("keypoints have shape (14, 2) (no heights); only a dims=2 "
                             "classifier takes them")
        kp = np.concatenate([kp, np.zeros((_N_KP, 1))], axis=1)
    elif kp.shape != (_N_KP, 3):
        raise InputError(f"keypoints have shape {kp.shape}; expected ({_N_KP}, 3)")
    if valid is None:
        ok = np.ones(_N_KP, dtype=bool)
    else:
        ok = np.asarray(valid, dtype=bool)
        if ok.shape != (_N_KP,):
            raise InputError(f"valid has shape {ok.shape}; expected ({_N_KP},)")
    return kp, ok


# ---------------------------------------------------------------------------------------
# The model.


@dataclass(frozen=True)
class Network:
    """An MLP on standardised features: ReLU hidden layers and a softmax output.

    Attributes
    ----------
    mean, std:
        (F,) feature standardisation.
    weights, biases:
        Per layer, (in, out) and (out,).
    """

    mean: FloatArray
    std: FloatArray
    weights: tuple[FloatArray, ...]
    biases: tuple[FloatArray, ...]

    def standardise(self, features: FloatArray) -> FloatArray:
        """(N, F) z-scores clipped to +-10; non-finite ones become 0."""
        z = (np.asarray(features, dtype=np.float64) - self.mean) / self.std
        return np.asarray(np.clip(np.nan_to_num(z, nan=0.0, posinf=10.0, neginf=-10.0),
                                  -10.0, 10.0))

    def probabilities(self, features: FloatArray) -> FloatArray:
        """(N, C) class probabilities of (N, F) raw features."""
        h = self.standardise(features)
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = h @ w + b
            if i < len(self.weights) - 1:
                h = np.maximum(h, 0.0)
        return softmax(h)


def softmax(logits: FloatArray) -> FloatArray:
    """(N, C) probabilities of (N, C) logits (each row shifted by its max first)."""
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return np.asarray(e / e.sum(axis=1, keepdims=True))


@dataclass(frozen=True)
class BehaviorModel:
    """A trained behaviour classifier: the 3D and the 2D-only networks.

    Attributes
    ----------
    class_names:
        Classes, in the order of the probabilities.
    networks:
        ``{3: 3D network, 2: 2D-only network}`` (see :func:`window_features`).
    smooth_tau_s:
        Time constant of the probability smoothing, seconds.
    meta:
        Training record: seeds, counts, noise, held-out metrics (JSON-able).
    """

    class_names: tuple[str, ...]
    networks: dict[int, Network]
    smooth_tau_s: float = SMOOTH_TAU_S
    meta: dict[str, Any] = field(default_factory=dict)

    def save(self, path: str | Path) -> Path:
        """Write the model as an ``.npz`` file (parent folders created)."""
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, Any] = {
            "version": np.array(MODEL_VERSION),
            "class_names": np.array(self.class_names),
            "feature_names": np.array(FEATURE_NAMES),
            "grid_step_s": np.array(GRID_STEP_S),
            "grid_points": np.array(GRID_POINTS),
            "smooth_tau_s": np.array(self.smooth_tau_s),
            "meta": np.array(json.dumps(self.meta, sort_keys=True)),
        }
        for dims, net in sorted(self.networks.items()):
            arrays[f"d{dims}_mean"] = net.mean
            arrays[f"d{dims}_std"] = net.std
            arrays[f"d{dims}_layers"] = np.array(len(net.weights))
            for i, (w, b) in enumerate(zip(net.weights, net.biases, strict=True)):
                arrays[f"d{dims}_w{i}"] = w.astype(np.float32)
                arrays[f"d{dims}_b{i}"] = b.astype(np.float32)
        tmp = out.with_name(out.name + ".tmp.npz")
        np.savez_compressed(tmp, **arrays)
        tmp.replace(out)
        return out

    @classmethod
    def load(cls, path: str | Path | None = None) -> BehaviorModel:
        """Read a model file (default: :data:`DEFAULT_MODEL`).

        Raises
        ------
        InputError
            A missing, unreadable or corrupt file, a different format version, or
            inconsistent contents; the message names the file and the problem.
        """
        src = Path(path) if path is not None else DEFAULT_MODEL
        where = f"behaviour model {src}"
        if not src.is_file():
            raise InputError(f"{where}: no such file")
        try:
            loaded = np.load(src, allow_pickle=False)
            if not isinstance(loaded, np.lib.npyio.NpzFile):
                raise ValueError("it holds a single array, not an .npz archive")
            with loaded:
                data = {k: loaded[k] for k in loaded.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
            raise InputError(f"{where}: not a readable .npz model file ({exc})") from exc
        try:
            return cls._from_arrays(data)
        except (KeyError, ValueError, TypeError, IndexError) as exc:
            raise InputError(f"{where}: {exc}") from exc

    @classmethod
    def _from_arrays(cls, data: dict[str, NDArray[Any]]) -> BehaviorModel:
        if "version" not in data:
            raise ValueError("no 'version' entry; not a behaviour model")
        version = int(data["version"])
        if version != MODEL_VERSION:
            raise ValueError(f"format version {version}; this code reads version "
                             f"{MODEL_VERSION} (retrain: mouse-lifter train-behavior --out "
                             f"PATH)")
        names = tuple(str(n) for n in data["feature_names"])
        if names != FEATURE_NAMES:
            raise ValueError(f"its features {names} differ from this code's {FEATURE_NAMES}")
        if float(data["grid_step_s"]) != GRID_STEP_S or int(data["grid_points"]) != GRID_POINTS:
            raise ValueError(f"window of {int(data['grid_points'])} points "
                             f"{float(data['grid_step_s'])} s apart; this code uses "
                             f"{GRID_POINTS} points {GRID_STEP_S} s apart")
        classes = tuple(str(n) for n in data["class_names"])
        networks = {}
        for dims in (2, 3):
            mean = np.asarray(data[f"d{dims}_mean"], dtype=np.float64)
            std = np.asarray(data[f"d{dims}_std"], dtype=np.float64)
            layers = int(data[f"d{dims}_layers"])
            ws = tuple(np.asarray(data[f"d{dims}_w{i}"], dtype=np.float64)
                       for i in range(layers))
            bs = tuple(np.asarray(data[f"d{dims}_b{i}"], dtype=np.float64)
                       for i in range(layers))
            width = len(FEATURE_NAMES)
            if mean.shape != (width,) or std.shape != (width,) or not np.all(std > 0):
                raise ValueError(f"{dims}D feature mean/std have shapes {mean.shape}, "
                                 f"{std.shape} (expected ({width},), std > 0)")
            for w, b in zip(ws, bs, strict=True):
                if w.ndim != 2 or w.shape[0] != width or b.shape != (w.shape[1],):
                    raise ValueError(f"{dims}D layer shapes {w.shape}, {b.shape} do not "
                                     f"chain from {width} inputs")
                width = w.shape[1]
            if width != len(classes):
                raise ValueError(f"{dims}D network has {width} outputs for "
                                 f"{len(classes)} classes")
            if not all(np.all(np.isfinite(a)) for a in (mean, std, *ws, *bs)):
                raise ValueError(f"{dims}D network holds non-finite numbers")
            networks[dims] = Network(mean, std, ws, bs)
        tau = float(data["smooth_tau_s"])
        if not (math.isfinite(tau) and tau >= 0.0):
            raise ValueError(f"smooth_tau_s {tau} must be >= 0")
        meta = json.loads(str(data["meta"]))
        return cls(class_names=classes, networks=networks, smooth_tau_s=tau, meta=meta)


# ---------------------------------------------------------------------------------------
# On-line classification.


class BehaviorClassifier:
    """Per-frame behaviour of one mouse from its 3D poses (module docstring: pipeline).

    Parameters
    ----------
    model:
        A :class:`BehaviorModel` or a model file (default: :data:`DEFAULT_MODEL`).
    dims:
        3 (the default) or 2 for the 2D-only network (heights ignored).
    smooth_tau_s:
        Probability smoothing time constant, seconds (default: the model's; 0: none).
    max_gap_s:
        A stamp this much later than the previous one resets the stream, seconds.
    warmup_s:
        For this long after the first usable frame of a stream (after a reset too), the
        label is ``"unknown"`` and the probabilities uniform: the window is still padded
        with the first pose, whose zero speeds the networks can mistake for rearing or
        resting. 0 (the default here; the behaviour node's is :data:`WINDOW_S`) gives a
        label from the first frame, as the evaluation scores it.
    """

    def __init__(self, model: BehaviorModel | str | Path | None = None, *, dims: int = 3,
                 smooth_tau_s: float | None = None, max_gap_s: float = MAX_GAP_S,
                 warmup_s: float = 0.0) -> None:
        if dims not in (2, 3):
            raise ParameterError(f"dims {dims!r} must be 2 or 3")
        if not (math.isfinite(warmup_s) and warmup_s >= 0.0):
            raise ParameterError(f"warmup_s {warmup_s} must be >= 0")
        if not (math.isfinite(max_gap_s) and max_gap_s > 0.0):
            raise ParameterError(f"max_gap_s {max_gap_s} must be a positive number")
        self.model = model if isinstance(model, BehaviorModel) else BehaviorModel.load(model)
        tau = self.model.smooth_tau_s if smooth_tau_s is None else float(smooth_tau_s)
        if not (math.isfinite(tau) and tau >= 0.0):
            raise ParameterError(f"smooth_tau_s {smooth_tau_s} must be >= 0")
        self.dims, self.smooth_tau_s, self.max_gap_s = dims, tau, float(max_gap_s)
        self.warmup_s = float(warmup_s)
        self.class_names = self.model.class_names
        self._net = self.model.networks[dims]
        self._times = np.zeros(BUFFER_FRAMES)
        self._points = np.zeros((BUFFER_FRAMES, _N_KP, 3))
        self.reset()

    def reset(self) -> None:
        """Forget the past: empty window, no smoothing state."""
        self._count = 0
        self._filler = _Filler()
        self._stamp: float | None = None
        self._start: float | None = None
        self._probs: FloatArray | None = None

    @property
    def started(self) -> bool:
        """Whether a usable frame has come since the last reset (before one, there is
        nothing to say; while warming up, the label is ``"unknown"``)."""
        return self._probs is not None

    @property
    def _warming(self) -> bool:
        return (self._start is None or self._stamp is None
                or self._stamp - self._start < self.warmup_s)

    @property
    def probabilities(self) -> FloatArray:
        """(C,) the latest smoothed probabilities (uniform before the first frame and
        while warming up)."""
        if self._probs is None or self._warming:
            return np.full(len(self.class_names), 1.0 / len(self.class_names))
        return self._probs.copy()

    @property
    def label(self) -> str:
        """The latest label, ``"unknown"`` before the first usable frame and while
        warming up (``warmup_s``)."""
        if self._probs is None or self._warming:
            return "unknown"
        return self.class_names[int(np.argmax(self._probs))]

    def update(self, stamp_s: float, keypoints: FloatArray,
               valid: BoolArray | None = None) -> tuple[str, tuple[str, ...], FloatArray]:
        """Add the pose at ``stamp_s`` (s); return (label, class names, probabilities).

        ``keypoints`` are (14, 3) arena-frame metres ((14, 2) for ``dims=2``), ``valid``
        (14,) flags (default: all valid). Never fails on NaN, invalid keypoints or odd
        stamps (see the module docstring); raises :class:`InputError` for wrong shapes
        or a non-finite stamp.
        """
        kp, ok = _check_frame(keypoints, valid, self.dims)
        stamp = float(stamp_s)
        if not math.isfinite(stamp):
            raise InputError(f"stamp {stamp_s!r} is not a finite number of seconds")
        last = self._stamp
        if last is not None and stamp == last:
            return self.label, self.class_names, self.probabilities
        if last is not None and (stamp < last or stamp - last > self.max_gap_s):
            self.reset()
            last = None
        filled = self._filler.fill(kp, ok)
        if filled is None:
            return self.label, self.class_names, self.probabilities
        if self._count == BUFFER_FRAMES:
            self._times[:-1] = self._times[1:]
            self._points[:-1] = self._points[1:]
            self._count -= 1
        self._times[self._count] = stamp
        self._points[self._count] = filled
        self._count += 1
        n = self._count
        window = _resample(self._times[:n], self._points[:n], stamp + GRID_OFFSETS_S)
        probs = self._net.probabilities(window_features(window[None], self.dims))[0]
        if self._probs is not None and last is not None and self.smooth_tau_s > 0.0:
            alpha = 1.0 - math.exp(-(stamp - last) / self.smooth_tau_s)
            probs = self._probs + alpha * (probs - self._probs)
        self._probs = probs
        self._stamp = stamp
        if self._start is None:
            self._start = stamp
        return self.label, self.class_names, self.probabilities


# ---------------------------------------------------------------------------------------
# Whole streams at once (for training and evaluation: the same numbers as update()).


@dataclass(frozen=True)
class Stream:
    """A pose stream of T frames prepared for the classifier (:func:`prepare_stream`).

    ``stamps``: (T,) seconds; ``used``: (T,) frames that entered the window (the others
    are duplicates or had no usable keypoint); ``reset``: (T,) frames at which
    :meth:`BehaviorClassifier.update` resets (the first frame, a stamp going back or a
    gap); ``features``: (U, F) of the used frames, for 3D and 2D (U = ``used.sum()``).
    """

    stamps: FloatArray
    used: BoolArray
    reset: BoolArray
    features: dict[int, FloatArray]


def prepare_stream(stamps: FloatArray, keypoints: FloatArray, valid: BoolArray,
                   max_gap_s: float = MAX_GAP_S) -> Stream:
    """What :meth:`BehaviorClassifier.update` computes, for a whole stream at once.

    ``stamps`` (T,) seconds, ``keypoints`` (T, 14, 3) arena-frame metres, ``valid``
    (T, 14); unchecked (:func:`stream_features` checks them).
    """
    n = len(stamps)
    used = np.zeros(n, dtype=bool)
    reset = np.zeros(n, dtype=bool)
    filled = np.zeros((n, _N_KP, 3))
    filler = _Filler()
    last: float | None = None
    for i in range(n):
        t = float(stamps[i])
        if last is not None and t == last:
            continue
        if last is None or t < last or t - last > max_gap_s:
            filler = _Filler()
            reset[i] = True
            last = None
        out = filler.fill(keypoints[i], valid[i])
        if out is None:
            continue
        used[i] = True
        filled[i] = out
        last = t
    idx = np.flatnonzero(used)
    seg = np.cumsum(reset)[idx]
    feats: dict[int, list[FloatArray]] = {2: [], 3: []}
    for s in np.unique(seg):
        rows = idx[seg == s]
        times, pts = np.asarray(stamps[rows], dtype=np.float64), filled[rows]
        window = _resample(times, pts, times[:, None] + GRID_OFFSETS_S)
        for dims in (2, 3):
            feats[dims].append(window_features(window, dims))
    width = len(FEATURE_NAMES)
    features = {d: np.concatenate(f) if f else np.zeros((0, width)) for d, f in feats.items()}
    return Stream(stamps=np.asarray(stamps, dtype=np.float64), used=used, reset=reset,
                   features=features)


def stream_features(stamps: FloatArray, keypoints: FloatArray, valid: BoolArray | None = None,
                    *, dims: int = 3, max_gap_s: float = MAX_GAP_S) -> FloatArray:
    """(T, F) features of a whole stream, as :meth:`BehaviorClassifier.update` sees them.

    ``stamps`` (T,) seconds, ``keypoints`` (T, 14, 3) arena-frame metres, ``valid``
    (T, 14) (default: all valid). Rows of frames the classifier skips (a repeated
    stamp, no usable keypoint) are NaN.
    """
    if dims not in (2, 3):
        raise ParameterError(f"dims {dims!r} must be 2 or 3")
    t = np.asarray(stamps, dtype=np.float64)
    kp = np.asarray(keypoints, dtype=np.float64)
    ok = np.ones(kp.shape[:2], dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    if t.ndim != 1 or kp.shape != (len(t), _N_KP, 3) or ok.shape != (len(t), _N_KP):
        raise InputError(f"stamps {t.shape}, keypoints {kp.shape} and valid {ok.shape} "
                         f"must be (T,), (T, {_N_KP}, 3) and (T, {_N_KP})")
    if not np.all(np.isfinite(t)):
        raise InputError("stamps must be finite numbers of seconds")
    stream = prepare_stream(t, kp, ok, max_gap_s)
    out = np.full((len(t), len(FEATURE_NAMES)), np.nan)
    out[stream.used] = stream.features[dims]
    return out


def smooth_stream(stream: Stream, raw: FloatArray,
                  tau: float) -> tuple[FloatArray, BoolArray]:
    """(T, C) smoothed probabilities of every frame as :meth:`BehaviorClassifier.update`
    returns them, and (T,) whether there was any (else uniform: label "unknown").

    ``raw``: (U, C) the network's probabilities of the used frames; ``tau``: the
    smoothing time constant, seconds (0: none).
    """
    n, c = len(stream.stamps), raw.shape[1]
    out = np.full((n, c), 1.0 / c)
    known = np.zeros(n, dtype=bool)
    cur: FloatArray | None = None
    last = 0.0
    k = 0
    for i in range(n):
        if stream.reset[i]:
            cur = None
        if stream.used[i]:
            p = raw[k]
            k += 1
            t = float(stream.stamps[i])
            if cur is None or tau <= 0.0:
                cur = p
            else:
                cur = cur + (1.0 - math.exp(-(t - last) / tau)) * (p - cur)
            last = t
        if cur is not None:
            out[i] = cur
            known[i] = True
    return out, known


# ---------------------------------------------------------------------------------------
# Poses with named keypoints (Pose3D) in the classifier's keypoint order.


class KeypointMapper:
    """Reorder named keypoints (a ``Pose3D``'s ``names``) into the classifier's order.

    The classifier takes the 14 :data:`~.body.KEYPOINTS` in that order. A pose
    may list them in any order and hold others (ignored); a keypoint it lacks is
    passed as invalid (NaN), so the classifier fills it in (module docstring, step 1).
    The index for a list of names is computed once and reused while the names stay
    the same.
    """

    def __init__(self) -> None:
        self.keypoints: tuple[str, ...] = KEYPOINTS
        self._names: tuple[str, ...] | None = None
        self._index = np.zeros(_N_KP, dtype=np.intp)
        self._present = np.zeros(_N_KP, dtype=bool)
        self.missing: tuple[str, ...] = ()

    def map(self, names: abc.Sequence[str], positions: FloatArray,
            valid: abc.Sequence[bool] | BoolArray) -> tuple[FloatArray, BoolArray]:
        """(14, 3) keypoints and (14,) valid flags from a pose's (K,) names, (K, 3), (K,).

        ``missing`` then lists the classifier's keypoints that ``names`` lacks.

        Raises
        ------
        InputError
            When the arrays do not have one row per name.
        """
        key = tuple(names)
        pos = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
        ok = np.asarray(valid, dtype=bool)
        if pos.shape[0] != len(key) or ok.shape != (len(key),):
            raise InputError(f"pose has {len(key)} names but {pos.shape[0]} positions and "
                             f"{ok.shape[0] if ok.ndim else 0} valid flags")
        if key != self._names:
            where = {n: i for i, n in enumerate(key)}
            self._present = np.array([n in where for n in self.keypoints])
            self._index = np.array([where.get(n, 0) for n in self.keypoints], dtype=np.intp)
            self.missing = tuple(n for n in self.keypoints if n not in where)
            self._names = key
        if not key:
            return np.full((_N_KP, 3), np.nan), np.zeros(_N_KP, dtype=bool)
        out = pos[self._index]
        out[~self._present] = np.nan
        return out, ok[self._index] & self._present
