"""Lifting 2D keypoints and depth readings to filtered 3D keypoints, frame by frame.

The pieces a lifting node strings together:

- :class:`StampPairer`: pairs the keypoint and depth messages of the same image stamp
  (bounded queues, never blocks);
- :func:`sample_depth`: a robust depth reading around each keypoint of a depth image;
- :class:`Lifter`: fits the body model (:class:`~.bodyfit.BodyFitter`) to each frame,
  fuses the fit with the observations and smooths the result
  (:class:`OneEuroFilter`); learns the animal's size (:func:`~.bodyfit.estimate_scale`)
  from its first frames.

The camera is a :class:`~.camera.Camera` (an arena calibration's
:attr:`~.arena.ArenaCalibration.camera`, or any placed camera).

Frames and units: the arena frame (x, y on the floor, z up, metres), seconds, pixels of
the full camera image (pixel (0, 0) is the centre of the top-left pixel); depth is
camera-frame z in metres (``x_cam = R x_arena + t``).
"""

from __future__ import annotations

import math
from collections import abc, deque
from dataclasses import dataclass, replace
from typing import Any, Final, Generic, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mouse_lifter_ros.core.body import (
    KEYPOINT_JOINTS,
    KEYPOINTS,
    TAIL,
    FloatArray,
    J,
    MouseShape,
    tail_radius,
)
from mouse_lifter_ros.core.bodyfit import (
    SCALE_PAIRS,
    TAIL_HEIGHT_SIGMA,
    BodyFitter,
    FitResult,
    Observation,
    drag_tail,
    estimate_scale,
    estimate_tail_length,
)
from mouse_lifter_ros.core.camera import Camera
from mouse_lifter_ros.core.errors import InputError, ParameterError
from mouse_lifter_ros.core.keypoints import P_CUTOFF
from mouse_lifter_ros.core.views import view_of, view_problem

__all__ = [
    "CENTROID_KEYPOINTS",
    "DEPTH_SIGMA_SCALE",
    "STRAY_DROPS",
    "STRAY_M",
    "SURFACE_DEPTH",
    "TAIL_DRAG",
    "Lifted",
    "Lifter",
    "OneEuroFilter",
    "StampPairer",
    "keypoint_depth",
    "keypoints_by_name",
    "sample_depth",
]

N_KEYPOINTS: Final = len(KEYPOINTS)
_K: Final = {name: i for i, name in enumerate(KEYPOINTS)}
_TAIL_FLOOR_MASK: Final = np.isin(np.arange(N_KEYPOINTS), [_K["tail_mid"], _K["tail_tip"]])
#: The tail's joints (its base and the 8 segment ends) among the model's joints.
_TAIL_JOINTS: Final = np.array([J[n] for n in TAIL])
#: The first tail segment (0-based) past tail_mid, which ends the segment before it.
_SECOND_HALF: Final = TAIL.index("tail_mid")
#: A mouse drags its tail: the part of the tail no keypoint holds in a frame (past
#: tail_mid when only it is seen, all of it when neither it nor the tip is; the tip goes
#: unseen in about half the frames from above) is pulled behind the rest from where the
#: last frame put it, each segment pointing at where its end lay
#: (:func:`~.bodyfit.drag_tail`), and this share of that bend is kept, the rest taken
#: from the fit's own tail (its prior), per camera view. On the validation seeds 21 /
#: 22 / 23 of ``eval-3d --synthetic --count 16`` (2026-12-07), from above: 0 (the fit's
#: tail) 8.11 / 10.37 / 6.99 mm, 0.5 7.91 / 10.15 / 6.87, **0.8** 7.65 / 10.12 / 6.86,
#: 1 7.71 / 10.47 / 6.93 (a tail tip guessed wrong stays wrong longer); from below
#: (``--view bottom``) 0.8 made it worse: 13.47 / 7.83 / 6.86 against 13.49 / 7.47 /
#: 6.74 mm (seeds 7 / 11 / 13 10.09 / 10.22 / 7.71 against 9.91 / 9.82 / 7.68).
TAIL_DRAG: Final[dict[str, float]] = {"top": 0.8, "bottom": 0.0}
#: The spine keypoints whose mean is the body centroid (tail base to neck).
CENTROID_KEYPOINTS: Final = ("tail_base", "lumbar_spine", "spine_center", "neck")
_CENTROID: Final = np.array([_K[n] for n in CENTROID_KEYPOINTS])

KT = TypeVar("KT")
DT = TypeVar("DT")


# ---------------------------------------------------------------------------------------
# Pairing keypoints and depth by stamp.


class StampPairer(Generic[KT, DT]):
    """Pairs keypoint and depth items carrying the same stamp (nanoseconds).

    Each side waits in its own queue of at most ``capacity`` items; a push returns the
    pairs it completes as ``(stamp_ns, keypoints_item, depth_item)`` (exact stamp
    match). Items are dropped, and counted in :attr:`dropped_keypoints` /
    :attr:`dropped_depth`, when:

    - a queue is full: its oldest item goes;
    - an item is not newer than the newest matched stamp: it can never match (its
      partner, if any, came and went), and it is not queued;
    - a match at stamp ``s``: every item older than ``s`` still waiting on either side
      can no longer match and goes.

    Never blocks; not thread-safe (one executor thread calls it).
    """

    def __init__(self, capacity: int = 8) -> None:
        if not (isinstance(capacity, int) and capacity >= 1):
            raise ParameterError(f"StampPairer: capacity {capacity!r} must be an integer "
                                 ">= 1")
        self.capacity = capacity
        self._kp: deque[tuple[int, KT]] = deque()
        self._depth: deque[tuple[int, DT]] = deque()
        self._last: int | None = None
        self.dropped_keypoints = 0
        self.dropped_depth = 0

    def pending(self) -> tuple[int, int]:
        """Items waiting: (keypoints, depth)."""
        return len(self._kp), len(self._depth)

    def push_keypoints(self, stamp_ns: int, item: KT) -> list[tuple[int, KT, DT]]:
        """Queue a keypoints item; returns the pairs this completes (0 or 1)."""
        stamp = int(stamp_ns)
        found, partner, dropped = self._push(stamp, item, self._kp, self._depth)
        self.dropped_keypoints += dropped
        return [(stamp, item, partner)] if found else []

    def push_depth(self, stamp_ns: int, item: DT) -> list[tuple[int, KT, DT]]:
        """Queue a depth item; returns the pairs this completes (0 or 1)."""
        stamp = int(stamp_ns)
        found, partner, dropped = self._push(stamp, item, self._depth, self._kp)
        self.dropped_depth += dropped
        return [(stamp, partner, item)] if found else []

    def _push(self, stamp: int, item: Any, mine: deque[tuple[int, Any]],
              other: deque[tuple[int, Any]]) -> tuple[bool, Any, int]:
        """One side's push: (whether ``other`` held the partner, the partner, how many
        of this side's items were dropped)."""
        if self._last is not None and stamp <= self._last:
            return False, None, 1
        for i, (s, partner) in enumerate(other):
            if s == stamp:
                del other[i]
                self._matched(stamp)
                return True, partner, 0
        dropped = 0
        if len(mine) >= self.capacity:
            mine.popleft()
            dropped = 1
        mine.append((stamp, item))
        return False, None, dropped

    def _matched(self, stamp: int) -> None:
        self._last = stamp
        before = len(self._kp), len(self._depth)
        self._kp = deque(e for e in self._kp if e[0] > stamp)
        self._depth = deque(e for e in self._depth if e[0] > stamp)
        self.dropped_keypoints += before[0] - len(self._kp)
        self.dropped_depth += before[1] - len(self._depth)


# ---------------------------------------------------------------------------------------
# Depth at the keypoints.


def sample_depth(depth: NDArray[Any], offset: tuple[int, int], pixels: FloatArray, *,
                 radius: int = 4) -> FloatArray:
    """Robust depth readings around keypoints.

    Parameters
    ----------
    depth:
        (H, W) depth image, camera-frame z in metres (float32 or float64); NaN, inf
        and values <= 0 mean no reading.
    offset:
        (x0, y0) position of the depth image's top-left pixel in the full image (a
        depth image may cover only a window of it), pixels.
    pixels:
        (N, 2) keypoints in full-image pixels (NaN allowed).
    radius:
        Half-side of the square window around each keypoint, pixels. The default, 4,
        reaches from a thin part (the snout, an ear) into the body next to it: on
        held-out synthetic sequences it lowers the nose's and ears' depth errors by
        about 10 % from a radius of 2, with no change on the back.

    Returns
    -------
    (N,) metres. The rule: take the valid readings (finite, > 0) in the (2r+1)^2 window
    centred on the keypoint's nearest pixel (clipped to the image), keep the nearer
    half of them (the ``ceil(n / 2)`` smallest) and return their median. A keypoint on
    the outline of the body has floor (or wall) behind it in part of the window, farther
    from the camera than the mouse's surface; keeping the nearer half ignores up to half
    a window of background without biasing a reading inside the body by more than the
    spread of the surface in the window. NaN where the keypoint is NaN, its nearest
    pixel is outside the depth image, or no reading in the window is valid.
    """
    img = np.asarray(depth)
    px = np.asarray(pixels, dtype=np.float64)
    problems = []
    if img.ndim != 2:
        problems.append(f"depth image has shape {img.shape}; expected (H, W)")
    if px.ndim != 2 or px.shape[1:] != (2,):
        problems.append(f"pixels have shape {px.shape}; expected (N, 2)")
    if not (isinstance(radius, int | np.integer) and radius >= 0):
        problems.append(f"radius {radius!r} must be an integer >= 0")
    if len(offset) != 2:
        problems.append(f"offset {offset!r} must be (x0, y0)")
    if problems:
        raise InputError("sample_depth: " + "; ".join(problems))
    h, w = img.shape
    out = np.full(len(px), np.nan)
    finite = np.isfinite(px).all(axis=1)
    col = np.full(len(px), -1, dtype=np.int64)
    row = np.full(len(px), -1, dtype=np.int64)
    col[finite] = np.rint(px[finite, 0]).astype(np.int64) - int(offset[0])
    row[finite] = np.rint(px[finite, 1]).astype(np.int64) - int(offset[1])
    inside = finite & (col >= 0) & (col < w) & (row >= 0) & (row < h)
    if not inside.any():
        return out
    r = int(radius)
    vals = img.astype(np.float64)
    vals = np.where(np.isfinite(vals) & (vals > 0.0), vals, np.inf)
    padded = np.pad(vals, r, constant_values=np.inf)
    d = np.arange(-r, r + 1)
    rows = row[inside, None, None] + r + d[None, :, None]
    cols = col[inside, None, None] + r + d[None, None, :]
    window = np.sort(padded[rows, cols].reshape(int(inside.sum()), -1), axis=1)
    n = np.sum(np.isfinite(window), axis=1)
    keep = np.maximum((n + 1) // 2, 1)  # the nearer half (at least one slot)
    idx = np.arange(len(window))
    # the median of the `keep` smallest: mean of the sorted values (keep-1)//2, keep//2
    with np.errstate(invalid="ignore"):
        med = 0.5 * (window[idx, (keep - 1) // 2] + window[idx, keep // 2])
    out[inside] = np.where(n > 0, med, np.nan)
    return out


#: How far each keypoint lies beyond the surface a depth map shows over it, for each
#: camera view, at body scale 1, metres: the median over visible keypoints of rendered
#: mice (left and right averaged), printed by ``tools/surface_depth.py --view V``; from
#: below on the shipped depth network's maps (``--network``: seed 123, 600 draws, read at
#: the true keypoints; a retrained network needs it run again), from above on the true
#: maps. From above the spine joints run 12-14 mm under the back; the paws and the tail's
#: middle and tip are NaN, left to the body model: over a paw any map sees the belly or
#: chest (25-35 mm above it), and over the thin tail the network's map reads 22-32 mm too
#: high (p10-p90 1-54 mm at the middle). The network's own offsets from above (nose 7,
#: ears 0, tail base 12 mm) changed ``eval-3d --synthetic --count 16`` by under 0.2 mm
#: (seeds 7 / 11 / 13: 7.41 / 7.91 / 12.91 against 7.21 / 8.01 / 13.07) but moved the
#: heights the behaviour network was trained on (its lifted macro F1 0.767 -> 0.745), so
#: the true maps' stay, but for the nose (2026-12-06): the true maps' 2.4 mm plus the 5
#: mm nearer that the shipped network reads it (its reading at the true nose is 6.7 mm
#: nearer than the true maps' offset gives, median of seeds 21 and 22; +3, +5 and +6.7 mm
#: tried), with :data:`DEPTH_SIGMA_SCALE`. From below (through a clear floor) the spine
#: joints lie 12-14 mm above the belly, the nose where the map sees it, and the network's
#: map reads the paws 6-8 mm and the tail 5-17 mm beyond where they are (true maps: the
#: nose 15 mm beyond the chin, paws and tail under 2 mm); with the first bottom-view
#: network's offsets instead of the true maps', ``eval-3d --synthetic --view bottom
#: --count 16`` went from 13.33 to 11.97 mm on the validation seeds 21-23 and from 11.60
#: / 11.76 / 9.48 to 10.69 / 10.39 / 8.73 mm on seeds 7 / 11 / 13; these are measured
#: again on the network trained with raised heads weighted (2026-12-07; within 2 mm of
#: the first's for the body).
SURFACE_DEPTH: Final[dict[str, dict[str, float]]] = {
    "top": {
        "nose": 0.0074, "left_ear": 0.0036, "right_ear": 0.0036, "head": 0.0093,
        "neck": 0.0119, "spine_center": 0.0132, "lumbar_spine": 0.0136,
        "tail_base": 0.0064, "tail_mid": math.nan, "tail_tip": math.nan,
        "left_forepaw": math.nan, "right_forepaw": math.nan, "left_hindpaw": math.nan,
        "right_hindpaw": math.nan},
    "bottom": {
        "nose": -0.0008, "left_ear": 0.0160, "right_ear": 0.0160, "head": 0.0084,
        "neck": 0.0115, "spine_center": 0.0136, "lumbar_spine": 0.0125,
        "tail_base": 0.0011, "tail_mid": -0.0054, "tail_tip": -0.0165,
        "left_forepaw": -0.0078, "right_forepaw": -0.0078, "left_hindpaw": -0.0058,
        "right_hindpaw": -0.0058},
}
_SURFACE = {view: np.array([table[k] for k in KEYPOINTS])
            for view, table in SURFACE_DEPTH.items()}

#: How much worse than the body's the depth map reads a keypoint, per camera view: the
#: lifter's ``sigma_depth`` times this is that keypoint's (1 where a keypoint is not
#: named). From above the shipped depth network reads the nose from a thin snout whose
#: height varies most: on held-out sequences (seeds 21 and 22, every third frame, read
#: at the true keypoints) its error has p10-p90 -15 to -2 mm, and it reads a nose at
#: the floor (head down) about 21 mm too high and one over 2 cm (rearing) about 21 mm
#: too low, where the head's reading is within 1 mm. Chosen with the nose's offset
#: above on the validation seeds 21 / 22 / 23 of ``eval-3d --synthetic --count 16``
#: (MODEL_CARD of the depth model). Tried there on 2026-12-07, not kept: a Cauchy loss
#: on the depth residuals (scale 2 sigma), so that a reading far from the rest of the
#: evidence pulls less: 8.05 / 10.48 / 6.95 mm against 8.11 / 10.37 / 6.99 (the fit,
#: warm-started from a pose that followed the reading, stays with it); the head's
#: readings (nose to neck) left out: 10.55 / 11.97 / 7.83; and the hind paws and tail
#: tip taken from a confidence of 0.4 (from 0.4 to 0.5 they lie within 10 px of the
#: truth in 75-91 % and 33-63 % of frames): 8.06 / 10.35 / 6.85, within the noise.
DEPTH_SIGMA_SCALE: Final[dict[str, dict[str, float]]] = {"top": {"nose": 2.0}, "bottom": {}}

#: A keypoint the 2D model is sure of can still lie on something else: the tail's
#: middle on a cable or a shadow, an ear on the edge of a light floor under a white
#: mouse. Once a frame is fitted, the seen keypoint whose ray passes farthest from the
#: fitted body's keypoint (at that keypoint's depth) is dropped when it passes farther
#: than this, metres, and the frame fitted again (warm-started) without it, up to
#: :data:`STRAY_DROPS` times; a dropped keypoint is neither fitted nor fused, and not
#: ``valid``. Chosen on the validation seeds 21 / 22 / 23 of ``eval-3d --synthetic
#: --count 16`` (no drop: 7.54 / 10.87 / 6.86 mm): 1.5 cm 7.20 / 10.42 / 6.82; 1 cm
#: 7.21 / 10.16 / 6.83, but on DANNCE's real poses (``eval-3d --dannce``) 1 cm drops
#: keypoints where a real mouse's layout is not the model's (3.91 -> 3.97 mm; 1.5 cm
#: 3.91). Tried there, not kept: every keypoint past 1.5 cm at once and one refit 7.42 /
#: 10.63 / 6.83 (past 2 cm 7.47 / 10.61 / 6.81, past 3 cm 7.46 / 10.67 / 6.77); up to 6
#: drops 7.11 / 10.68 / 6.82; each refit also redone from the observations when its
#: error passes ``refit_px``, as the first fit is (1 cm): 7.50 / 10.58 / 6.83; a drop
#: undone when the body refitted without the keypoint reaches it: never happened.
STRAY_M: Final = 0.015
#: At most this many keypoints are dropped from a frame as strays (:data:`STRAY_M`).
STRAY_DROPS: Final = 3


def keypoints_by_name(names: abc.Sequence[str], pixels: FloatArray, confidence: FloatArray
                      ) -> tuple[FloatArray, FloatArray]:
    """(14, 2) pixels and (14,) confidences in :data:`~.body.KEYPOINTS` order from a
    model's own ``names`` (K,), ``pixels`` (K, 2) and ``confidence`` (K,): keypoints the
    model does not have are NaN with confidence 0; names we do not know are ignored."""
    if tuple(names) == KEYPOINTS:
        return np.asarray(pixels, np.float64), np.asarray(confidence, np.float64)
    index = {n: i for i, n in enumerate(names)}
    xy = np.full((N_KEYPOINTS, 2), np.nan)
    conf = np.zeros(N_KEYPOINTS)
    for j, name in enumerate(KEYPOINTS):
        i = index.get(name)
        if i is not None and i < len(pixels):
            xy[j], conf[j] = pixels[i], confidence[i]
    return xy, conf


def keypoints_as_named(names: abc.Sequence[str], values: FloatArray) -> FloatArray:
    """The inverse of :func:`keypoints_by_name`: ``values`` (14, ...) in
    :data:`~.body.KEYPOINTS` order as (K, ...) in the order of a model's ``names`` (K,),
    NaN for names that are not ours (a lab's own keypoint)."""
    v = np.asarray(values, np.float64)
    if tuple(names) == KEYPOINTS:
        return v
    out = np.full((len(names), *v.shape[1:]), np.nan)
    for i, name in enumerate(names):
        if name in KEYPOINTS:
            out[i] = v[KEYPOINTS.index(name)]
    return out


def keypoint_depth(readings: FloatArray, scale: float = 1.0, view: str = "top"
                   ) -> FloatArray:
    """(14,) camera-z depth of each keypoint from (14,) depth-map readings over them.

    A depth map sees the body's surface; a keypoint (a joint) lies beyond it by
    :data:`SURFACE_DEPTH` of the camera's ``view`` times the body ``scale``. NaN where
    the reading is NaN and, from above, at the paws (their depth comes from the body
    model).
    """
    r = np.asarray(readings, dtype=np.float64)
    problems = []
    if r.shape != (N_KEYPOINTS,):
        problems.append(f"readings have shape {r.shape}; expected ({N_KEYPOINTS},)")
    if (problem := view_problem(view)) is not None:
        problems.append(problem)
    if problems:
        raise InputError("keypoint_depth: " + "; ".join(problems))
    return np.asarray(r + _SURFACE[view] * float(scale))


# ---------------------------------------------------------------------------------------
# Smoothing.


class OneEuroFilter:
    """The 1-euro filter (Casiez et al., CHI 2012) over arrays, element by element.

    A first-order low-pass whose cutoff rises with the (low-passed) speed:
    ``cutoff = min_cutoff + beta * |dx/dt|`` Hz, so that a still keypoint is smoothed
    hard and a moving one follows with little lag. Units: ``x`` in any unit u,
    ``beta`` in Hz per (u/s).

    With the defaults (1 Hz, beta 60 /m, 1 Hz on the speed) and positions in metres,
    sampled at 30 fps (measured; ``test_lifter.py`` checks both): on a ramp of 0.3 m/s
    (10 mm a frame) the output settles 2.1 mm behind, a fifth of a frame's motion; on a
    still point with white noise of 1.5 mm the output's spread is 0.64 mm (2.3 times
    less; 2.2 times at 2 mm, 2.0 at 3 mm: the faster noise raises the cutoff). A lower
    ``beta`` smooths more and lags more (beta 20: 4.8 mm behind, 2.7 times less
    jitter at 2 mm).

    NaN-safe: a NaN element gives NaN and leaves that element's state untouched (it
    resumes from its last value; one unseen for more than ``reset_after`` restarts).
    The whole state resets when time goes backwards or jumps by more than
    ``reset_after`` seconds, and when the array's shape changes; a repeated time
    returns the current state unchanged.
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 60.0, d_cutoff: float = 1.0,
                 reset_after: float = 0.5) -> None:
        problems = [f"{name} {value!r} must be a positive number" for name, value in (
            ("min_cutoff", min_cutoff), ("d_cutoff", d_cutoff), ("reset_after", reset_after))
            if not (math.isfinite(value) and value > 0.0)]
        if not (math.isfinite(beta) and beta >= 0.0):
            problems.append(f"beta {beta!r} must be a number >= 0")
        if problems:
            raise ParameterError("OneEuroFilter: " + "; ".join(problems))
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self.reset_after = reset_after
        self.reset()

    def reset(self) -> None:
        """Forget the state: the next sample passes unfiltered."""
        self._x: FloatArray | None = None  # filtered value per element (NaN: none yet)
        self._dx: FloatArray | None = None  # filtered speed per element
        self._t: FloatArray | None = None  # time of each element's last update
        self._last: float | None = None

    @staticmethod
    def _alpha(dt: FloatArray, cutoff: FloatArray | float) -> FloatArray:
        r = 2.0 * math.pi * cutoff * dt
        return np.asarray(r / (r + 1.0))

    def __call__(self, t_seconds: float, x: Any) -> FloatArray:
        """Filter sample ``x`` (any shape) taken at ``t_seconds``; returns its shape."""
        t = float(t_seconds)
        if not math.isfinite(t):
            raise InputError(f"OneEuroFilter: time {t_seconds!r} is not a finite number")
        arr = np.array(x, dtype=np.float64)
        if self._x is not None and self._x.shape == arr.shape and t == self._last:
            # the same instant again: nothing to integrate; the state stands
            return np.where(np.isfinite(arr), self._x, np.nan)
        if (self._x is None or self._last is None or self._x.shape != arr.shape
                or t < self._last or t - self._last > self.reset_after):
            self.reset()
            self._x = np.full(arr.shape, np.nan)
            self._dx = np.zeros(arr.shape)
            self._t = np.full(arr.shape, np.nan)
        assert self._x is not None and self._dx is not None and self._t is not None
        self._last = t
        ok = np.isfinite(arr)
        fresh = ok & ~np.isfinite(self._x)
        dt = t - self._t
        # an element unseen for longer than reset_after restarts too
        fresh |= ok & (dt > self.reset_after)
        upd = ok & ~fresh
        out = np.full(arr.shape, np.nan)
        if upd.any():
            e = dt[upd]
            prev = self._x[upd]
            a_d = self._alpha(e, self.d_cutoff)
            dx = a_d * (arr[upd] - prev) / e + (1.0 - a_d) * self._dx[upd]
            a = self._alpha(e, self.min_cutoff + self.beta * np.abs(dx))
            new = a * arr[upd] + (1.0 - a) * prev
            self._x[upd], self._dx[upd], self._t[upd] = new, dx, t
            out[upd] = new
        if fresh.any():
            self._x[fresh], self._dx[fresh], self._t[fresh] = arr[fresh], 0.0, t
            out[fresh] = arr[fresh]
        return out


# ---------------------------------------------------------------------------------------
# The lifter.


@dataclass(frozen=True)
class Lifted:
    """One lifted frame.

    Attributes
    ----------
    positions:
        (14, 3) keypoints in the arena frame, metres, smoothed: observed ones (see
        ``valid``) fuse the observation with the fitted model, the others are the
        model's.
    confidence:
        (14,) the 2D confidences passed in (NaN as 0).
    valid:
        (14,) True where the keypoint was observed: confidence >= ``p_cutoff``, a
        finite pixel and a finite depth reading, and not dropped as a stray
        (:data:`STRAY_M`); False where the model fills it in.
    centroid:
        (3,) mean of the spine keypoints tail_base, lumbar_spine, spine_center, neck,
        metres.
    heading:
        Yaw of tail_base -> neck in the floor plane, radians counter-clockwise from +x.
    residual_px:
        RMS reprojection error of the fit over the weighted keypoints, pixels.
    vector:
        (43,) the fitted pose (:meth:`~.body.Pose.to_vector`).
    scale:
        The body scale used for this frame.
    tail_length:
        The tail length used for this frame, metres.
    """

    positions: FloatArray
    confidence: FloatArray
    valid: NDArray[np.bool_]
    centroid: FloatArray
    heading: float
    residual_px: float
    vector: FloatArray
    scale: float
    tail_length: float


class Lifter:
    """2D keypoints + depth readings -> filtered 3D keypoints, one frame at a time.

    Each :meth:`lift`:

    1. keypoints with confidence >= ``p_cutoff`` and a finite pixel enter the fit with
       their confidence as weight, their depth reading where it is finite and > 0;
    2. fits the body model (:class:`~.bodyfit.BodyFitter`), warm-started from the last
       frame when it is at most ``reset_after`` s old (else, or after :meth:`reset`,
       from the observations; a warm fit whose reprojection error exceeds
       ``refit_px`` is redone from the observations, the better one kept); a seen
       keypoint the fitted body cannot reach (its ray passes more than ``stray_m`` from
       the body's keypoint) is dropped and the frame fitted again, the farthest first,
       up to ``stray_drops`` of them (:data:`STRAY_M`);
    3. drags the part of the tail no keypoint holds behind the rest, from where the
       last frame put it (``tail_drag``, :data:`TAIL_DRAG`);
    4. fuses, at each valid keypoint, the fit's keypoint with the observation: in the
       camera frame, depth and lateral position each as the inverse-variance mean of
       the model's (standard deviation ``model_sigma`` m) and the observation's
       (the keypoint's ``sigma_depth`` / ``sigma_px`` at its depth, divided by the square
       root of the confidence). The model's layout of the body differs from any
       real animal's by a few millimetres; an observed keypoint should stay where it
       was seen;
    5. smooths the positions (:class:`OneEuroFilter`).

    A frame with no keypoint seen keeps the tracked pose (the fit's prior and temporal
    terms hold it); before any pose, it gives NaN positions, heading and vector.

    The body's size: ``scale`` when given; else the default shape until
    ``scale_frames`` frames with at least two valid keypoints of ``scale_pairs`` have
    been seen, then :func:`~.bodyfit.estimate_scale` of their back-projected points (kept
    from then on, through :meth:`reset`). The tail length likewise: ``tail_length``
    when given, else :func:`~.bodyfit.estimate_tail_length` of the same frames (the
    shape's own when none of them shows the three tail keypoints). A tail_mid or
    tail_tip seen without a depth reading (the depth crop seldom reaches the tip) is
    taken on the floor at the tail's resting height for it: a tail lies on the floor.

    Parameters
    ----------
    camera:
        The calibrated camera placed in the arena (for an arena calibration, its
        :attr:`~.arena.ArenaCalibration.camera`).
    shape:
        The body's shape; default :class:`~.body.MouseShape`. Its ``scale`` and
        ``tail_length`` are replaced by ``scale`` and ``tail_length`` or by the
        estimates.
    p_cutoff:
        Confidence under which a keypoint is treated as missing.
    min_cutoff, beta, d_cutoff:
        The :class:`OneEuroFilter`'s.
    reset_after:
        A gap (s) after which tracking restarts (no warm start, filter reset).
    model_sigma:
        Standard deviation of a model keypoint around the real one, metres.
    sigma_px, sigma_depth, prior_weight, temporal_sigma, min_std, tail_height_sigma:
        The :class:`~.bodyfit.BodyFitter`'s; ``sigma_depth`` is that of a keypoint the
        depth map reads as well as the body, times :data:`DEPTH_SIGMA_SCALE` of the
        camera's view for each keypoint.
    depth_sigma_scale:
        Those factors by keypoint name (1 for a keypoint not named); None:
        :data:`DEPTH_SIGMA_SCALE` of the camera's view. ``{}`` where every reading is
        as good as the body's (simulated readings with one noise).
    iterations, first_iterations:
        The :class:`~.bodyfit.BodyFitter`'s: fit steps when tracking, and from scratch.
    refit_px:
        Reprojection error (px) of a warm fit above which the frame is refitted from
        the observations.
    stray_m, stray_drops:
        The distance (m) past which a seen keypoint is dropped as a stray, and how
        many may be dropped from one frame (:data:`STRAY_M`); None: none is.
    tail_drag:
        0..1, how much of the tail no keypoint holds is dragged behind the rest from
        where the last frame put it (the class's step 3); 0: the fit's own tail there;
        None: :data:`TAIL_DRAG` of the camera's view.
    scale_pairs:
        The keypoint pairs whose distances give the size (:func:`~.bodyfit.estimate_scale`):
        the head's by default; :data:`~.bodyfit.SPINE_SCALE_PAIRS` for keypoints that
        follow the body model along the spine but not on the head (our 2D model).
    """

    def __init__(self, camera: Camera, shape: MouseShape | None = None, *,
                 p_cutoff: float = P_CUTOFF, scale: float | None = None,
                 tail_length: float | None = None, scale_frames: int = 30,
                 scale_pairs: tuple[tuple[str, str], ...] = SCALE_PAIRS,
                 min_cutoff: float = 1.0, beta: float = 60.0, d_cutoff: float = 1.0,
                 reset_after: float = 0.5, model_sigma: float = 0.004,
                 sigma_px: float = 3.0, sigma_depth: float = 0.004,
                 prior_weight: float = 0.5, temporal_sigma: float | FloatArray = 1.0,
                 min_std: tuple[float, float] = (0.05, 0.002),
                 iterations: int = 3, first_iterations: int = 12,
                 refit_px: float = 12.0,
                 tail_height_sigma: float | None = TAIL_HEIGHT_SIGMA,
                 depth_sigma_scale: abc.Mapping[str, float] | None = None,
                 tail_drag: float | None = None,
                 stray_m: float | None = STRAY_M, stray_drops: int = STRAY_DROPS) -> None:
        if not isinstance(camera, Camera):
            raise InputError(f"Lifter: camera is a {type(camera).__name__}; expected a "
                             "core.camera.Camera (an arena calibration's .camera)")
        problems = []
        if not (math.isfinite(p_cutoff) and 0.0 <= p_cutoff <= 1.0):
            problems.append(f"p_cutoff {p_cutoff!r} must be in [0, 1]")
        if scale is not None and not (math.isfinite(scale) and scale > 0.0):
            problems.append(f"scale {scale!r} must be a positive number or None")
        if tail_length is not None and not (math.isfinite(tail_length) and tail_length > 0):
            problems.append(f"tail_length {tail_length!r} must be a positive number (m) "
                            "or None")
        if not (isinstance(scale_frames, int) and scale_frames >= 1):
            problems.append(f"scale_frames {scale_frames!r} must be an integer >= 1")
        if tail_drag is not None and not (math.isfinite(tail_drag) and 0.0 <= tail_drag <= 1.0):
            problems.append(f"tail_drag {tail_drag!r} must be a number from 0 to 1")
        if not (isinstance(stray_drops, int) and stray_drops >= 0):
            problems.append(f"stray_drops {stray_drops!r} must be an integer >= 0")
        if stray_m is not None and not (math.isfinite(stray_m) and stray_m > 0.0):
            problems.append(f"stray_m {stray_m!r} must be a positive number (m) or None")
        for name, value in (("model_sigma", model_sigma), ("refit_px", refit_px),
                            ("reset_after", reset_after)):
            if not (math.isfinite(value) and value > 0.0):
                problems.append(f"{name} {value!r} must be a positive number")
        self.camera = camera
        scales = DEPTH_SIGMA_SCALE[self.view] if depth_sigma_scale is None \
            else depth_sigma_scale
        for name, value in scales.items():
            if name not in _K or not (math.isfinite(value) and value > 0.0):
                problems.append(f"depth_sigma_scale {name}={value!r}: one of our "
                                "keypoints, a positive number")
        if problems:
            raise ParameterError("Lifter: " + "; ".join(problems))
        self.base_shape = shape if shape is not None else MouseShape()
        self.p_cutoff = float(p_cutoff)
        self.scale_frames = scale_frames
        self.scale_pairs = scale_pairs
        self._scale_keypoints = np.array(sorted({_K[n] for pair in scale_pairs for n in pair}))
        self.reset_after = float(reset_after)
        self.model_sigma = float(model_sigma)
        self.refit_px = float(refit_px)
        self.stray_m = None if stray_m is None else float(stray_m)
        self.stray_drops = stray_drops
        self._fit_args: dict[str, Any] = {
            "sigma_px": sigma_px, "sigma_depth": float(sigma_depth) * np.array(
                [scales.get(k, 1.0) for k in KEYPOINTS]), "prior_weight": prior_weight,
            "temporal_sigma": temporal_sigma, "min_std": min_std, "iterations": iterations,
            "first_iterations": first_iterations, "tail_height_sigma": tail_height_sigma}
        self.filter = OneEuroFilter(min_cutoff, beta, d_cutoff, reset_after)
        self._fixed = (scale, tail_length)
        self._scale_points: list[FloatArray] = []
        self._set_size(scale, tail_length)
        self._estimated = scale is not None and tail_length is not None
        self._previous: FloatArray | None = None
        self._last_tail: FloatArray | None = None  # (9, 3) the last frame's tail joints
        self._last_stamp: float | None = None
        self.tail_drag = float(TAIL_DRAG[self.view] if tail_drag is None else tail_drag)

    @property
    def view(self) -> str:
        """The side the camera sees the mouse from: ``top`` or ``bottom``."""
        return view_of(float(self.camera.position[2]))

    def keypoint_depth(self, readings: FloatArray) -> FloatArray:
        """(14,) depth-map readings over the keypoints -> their depth, at this lifter's
        body scale and camera view (:func:`keypoint_depth`)."""
        return keypoint_depth(readings, self.scale, self.view)

    @property
    def scale(self) -> float:
        """The body scale in use."""
        return self.shape.scale

    @property
    def scale_estimated(self) -> bool:
        """Whether scale and tail length are settled (given, or estimated)."""
        return self._estimated

    def _set_size(self, scale: float | None, tail_length: float | None) -> None:
        base = self.base_shape
        self.shape = replace(base, scale=float(scale if scale is not None else base.scale),
                             tail_length=float(tail_length if tail_length is not None
                                               else base.tail_length))
        self.fitter = BodyFitter(self.shape, **self._fit_args)

    def reset(self, *, scale: bool = False) -> None:
        """Restart tracking (no warm start, filter cleared); ``scale=True`` also forgets
        the estimated scale and tail length (a different animal)."""
        self._previous = None
        self._last_stamp = None
        self.filter.reset()
        if scale and (self._fixed[0] is None or self._fixed[1] is None):
            self._scale_points.clear()
            self._estimated = False
            self._set_size(*self._fixed)

    def lift(self, stamp_s: float, pixels: ArrayLike, confidence: ArrayLike,
             depth: ArrayLike) -> Lifted:
        """Lift one frame.

        Parameters
        ----------
        stamp_s:
            The frame's time, seconds.
        pixels:
            (14, 2) keypoints in full-image pixels (NaN: missing).
        confidence:
            (14,) 2D confidences 0..1 (NaN: 0).
        depth:
            (14,) camera-frame z at each keypoint, metres (NaN, inf or <= 0: no reading).

        Raises
        ------
        InputError
            Wrong shapes or a non-finite stamp (every problem in one message).
        """
        px, conf, dep, t = _check_frame(stamp_s, pixels, confidence, depth)
        seen = np.isfinite(px).all(axis=1) & (conf >= self.p_cutoff)
        weights = np.where(seen, conf, 0.0)
        has_depth = seen & np.isfinite(dep) & (dep > 0.0)
        valid = has_depth
        dep_used = np.where(has_depth, dep, np.nan)
        safe_px = np.where(seen[:, None], px, 0.0)
        points = np.full((N_KEYPOINTS, 3), np.nan)
        if has_depth.any():
            points[has_depth] = self.camera.backproject(safe_px[has_depth], dep[has_depth])
        no_depth = seen & ~has_depth
        if no_depth.any():
            points[no_depth] = self.camera.points_at_height(safe_px[no_depth], 0.015)
        self._learn_scale(points, has_depth, safe_px, seen)

        if self._last_stamp is not None and not (0.0 < t - self._last_stamp
                                                 <= self.reset_after):
            self._previous = None
        if self._previous is None and not seen.any():  # nothing to place a body on
            self._last_stamp = t
            nan3 = np.full((N_KEYPOINTS, 3), np.nan)
            return Lifted(positions=self.filter(t, nan3), confidence=conf, valid=valid,
                          centroid=np.full(3, np.nan), heading=math.nan,
                          residual_px=math.nan, vector=np.full(43, np.nan),
                          scale=self.scale, tail_length=self.shape.tail_length)
        obs = Observation(pixels=px, weights=weights, depth=dep_used, camera=self.camera,
                          points=points)
        fit = self.fitter.fit(obs, self._previous)
        if self._previous is not None and fit.residual_px > self.refit_px:
            fresh = self.fitter.fit(obs, None)
            if fresh.residual_px < fit.residual_px:
                fit = fresh
        for _ in range(self.stray_drops):
            stray = self._stray(fit, px, seen)
            if stray is None:
                break
            seen = seen.copy()
            seen[stray] = False
            valid = valid & seen
            obs = replace(obs, weights=np.where(seen, conf, 0.0))
            fit = self.fitter.fit(obs, self._previous)
        fit = self._dragged(fit, seen)
        self._previous = fit.vector
        self._last_stamp = t

        fused = self._fuse(fit, px, conf, dep, valid)
        positions = self.filter(t, fused)
        centroid = positions[_CENTROID].mean(axis=0)
        d = positions[_K["neck"]] - positions[_K["tail_base"]]
        return Lifted(positions=positions, confidence=conf, valid=valid, centroid=centroid,
                      heading=math.atan2(float(d[1]), float(d[0])),
                      residual_px=fit.residual_px, vector=fit.vector.copy(),
                      scale=self.scale, tail_length=self.shape.tail_length)

    def _stray(self, fit: FitResult, px: FloatArray, seen: NDArray[np.bool_]) -> int | None:
        """The seen keypoint whose ray passes farthest from ``fit``'s keypoint, at that
        keypoint's depth, when farther than ``stray_m`` and two others stay seen; None
        when there is none (or ``stray_m`` is None)."""
        idx = np.flatnonzero(seen)
        if self.stray_m is None or idx.size < 3:
            return None
        at = self.camera.backproject(px[idx], fit.camera_z[idx])
        off = np.linalg.norm(at - fit.keypoints[idx], axis=1)
        k = int(np.argmax(off))
        return int(idx[k]) if off[k] > self.stray_m else None

    def _dragged(self, fit: FitResult, seen: NDArray[np.bool_]) -> FitResult:
        """``fit`` with the part of the tail no keypoint holds (past tail_mid when only
        it is seen; all of it when neither it nor the tip is) dragged behind the rest
        from where the last frame put it (:func:`~.bodyfit.drag_tail`); kept the last
        tail joints for the next frame. Unchanged with a tip seen, without a last frame
        (a reset) or with ``tail_drag`` 0."""
        last, self._last_tail = self._last_tail, fit.joints[_TAIL_JOINTS]
        if (self.tail_drag <= 0.0 or last is None or self._previous is None
                or seen[_K["tail_tip"]]):
            return fit
        first = _SECOND_HALF if seen[_K["tail_mid"]] else 0
        vector, tail = drag_tail(fit.vector, fit.joints[_TAIL_JOINTS], last, first,
                                 self.tail_drag)
        self._last_tail = tail
        joints = fit.joints.copy()
        joints[_TAIL_JOINTS] = tail
        keypoints = joints[KEYPOINT_JOINTS]
        return replace(fit, vector=vector, joints=joints, keypoints=keypoints,
                       camera_z=self.camera.to_camera(keypoints)[:, 2])

    def _learn_scale(self, points: FloatArray, has_depth: NDArray[np.bool_], px: FloatArray,
                     in_2d: NDArray[np.bool_]) -> None:
        if self._estimated or np.count_nonzero(has_depth[self._scale_keypoints]) < 2:
            return
        kept = np.where(has_depth[:, None], points, np.nan)
        lying = in_2d & ~has_depth & _TAIL_FLOOR_MASK  # on the floor, for the tail length
        if lying.any():
            kept[lying] = self.camera.points_at_height(px[lying], tail_radius(self.shape, 1.0))
        self._scale_points.append(kept)
        if len(self._scale_points) >= self.scale_frames:
            seen = np.array(self._scale_points)
            scale, tail = self._fixed
            if scale is None:
                scale = estimate_scale(seen, self.base_shape, pairs=self.scale_pairs)
            if tail is None:
                tail = estimate_tail_length(seen, self.base_shape.tail_length)
            self._set_size(scale, tail)
            self._estimated = True
            self._scale_points.clear()

    def _fuse(self, fit: FitResult, px: FloatArray, conf: FloatArray, dep: FloatArray,
              valid: NDArray[np.bool_]) -> FloatArray:
        """(14, 3) the fit's keypoints, fused with the observation where ``valid``."""
        out = fit.keypoints.copy()
        if not valid.any():
            return out
        rot, tr = self.camera.R, self.camera.t
        model = out[valid] @ rot.T + tr  # camera frame
        w = np.maximum(conf[valid], 1e-6)
        sd = self.fitter.sigma_depth[valid] ** 2 / w
        sm = self.model_sigma ** 2
        z = (model[:, 2] * sd + dep[valid] * sm) / (sd + sm)
        # lateral: the observed ray at the fused depth; its spread from the pixel noise
        p = px[valid]
        rays = self.camera.rays(p)
        step = self.camera.rays(p + np.array([1.0, 0.0]))
        per_px = np.hypot(step[:, 0] - rays[:, 0], step[:, 1] - rays[:, 1])  # 1/f
        sl = (self.fitter.sigma_px * per_px * z) ** 2 / w
        lateral = (model[:, :2] * sl[:, None] + rays[:, :2] * z[:, None] * sm) \
            / (sl + sm)[:, None]
        cam = np.column_stack([lateral, z])
        out[valid] = (cam - tr) @ rot
        return out


def _check_frame(stamp_s: Any, pixels: Any, confidence: Any, depth: Any
                 ) -> tuple[FloatArray, FloatArray, FloatArray, float]:
    problems = []
    try:
        t = float(stamp_s)
    except (TypeError, ValueError):
        t = math.nan
    if not math.isfinite(t):
        problems.append(f"stamp {stamp_s!r} is not a finite number of seconds")
    arrays = []
    for name, value, shape in (("pixels", pixels, (N_KEYPOINTS, 2)),
                               ("confidence", confidence, (N_KEYPOINTS,)),
                               ("depth", depth, (N_KEYPOINTS,))):
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            problems.append(f"{name} is not numeric")
            continue
        if arr.shape != shape:
            problems.append(f"{name} has shape {arr.shape}; expected {shape}")
        arrays.append(arr)
    if problems:
        raise InputError("lift: " + "; ".join(problems))
    px, conf, dep = arrays
    conf = np.where(np.isfinite(conf), conf, 0.0)
    return px, conf, dep, t

