"""Locomotion from a keypoint track: centre of mass, speed, rest/movement, distance.

Pure numpy functions over whole tracks of T frames (``mouse-lifter analyze`` calls them
after the pose pass). Positions are in one unit throughout, whichever the caller has:
metres in the arena frame (3D, with an arena calibration) or pixels of the image (2D
only); speeds are in that unit per second, times in seconds. NaN marks a missing value
everywhere; nothing is extrapolated.

Steps (:func:`locomotion`):

1. **Centre of mass** (:func:`centre_of_mass`): per frame, the mean of the usable trunk
   keypoints (:data:`TRUNK_KEYPOINTS`: neck, spine centre, lumbar spine, tail base; the
   lifter's ``centroid`` in 3D), NaN when none is usable. A proxy for the body's centre
   of mass that ignores the head, paws and tail, whose own movements are not locomotion.
2. **Smoothing** (:func:`smooth_track`): a centred moving average over ``window_s``
   (default 0.2 s) removes the keypoints' frame-to-frame jitter, which would otherwise
   add to the distance travelled (jitter of ``s`` per frame adds about ``1.1 s`` per
   frame to a path).
3. **Speed** (:func:`track_speed`): central differences of the smoothed centre over the
   frames' own times, horizontal only (x, y).
4. **States** (:func:`movement_states`): moving above ``move_speed``, resting below
   ``rest_speed`` (default half of ``move_speed``), the state held in between
   (hysteresis); bouts shorter than ``min_bout_s`` (default 0.25 s) take the state of
   the bout before them. Frames without a speed are ``unknown``.
5. **Distance travelled** (:func:`path_length`): the length of the smoothed centre's
   path, gaps bridged by a straight line.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

from mouse_lifter_ros.core.errors import InputError

FloatArray = NDArray[np.float64]

#: The keypoints whose mean is the centre of mass (the lifter's centroid too).
TRUNK_KEYPOINTS: Final = ("neck", "spine_center", "lumbar_spine", "tail_base")
#: Per-frame state codes of :func:`movement_states` and their names.
UNKNOWN, REST, MOVING = -1, 0, 1
STATE_NAMES: Final = {UNKNOWN: "unknown", REST: "rest", MOVING: "moving"}
#: Default speed above which a mouse moves, m/s (2 cm/s, a common immobility cut).
MOVE_SPEED_M_S: Final = 0.02
#: Without metric positions: the same in body lengths (nose to tail base) per second.
MOVE_SPEED_BODY_LENGTHS: Final = 0.2
#: Default minimum bout, s, and speed smoothing window, s.
MIN_BOUT_S: Final = 0.25
SPEED_WINDOW_S: Final = 0.2


def median_filter(track: NDArray[Any], window: int) -> FloatArray:
    """Running median along time (axis 0) of ``track`` (T, ...), NaN-aware.

    Each finite sample becomes the median of the finite samples at most ``window // 2``
    frames before or after it (fewer at the ends of the track); a NaN sample stays NaN
    (the filter removes outliers, it does not fill gaps). ``window`` is odd and >= 3;
    0 or 1 returns an unfiltered float64 copy. Other shapes are filtered per column.

    Raises
    ------
    InputError
        An even or negative ``window``.
    """
    data = np.array(track, dtype=np.float64)
    if window in (0, 1):
        return data
    if not isinstance(window, int) or window < 3 or window % 2 == 0:
        raise InputError(f"median filter window {window!r}: an odd number >= 3, or 0 or 1 "
                         "for none")
    if data.shape[0] == 0:
        return data
    half = window // 2
    pad = [(half, half)] + [(0, 0)] * (data.ndim - 1)
    padded = np.pad(data, pad, constant_values=np.nan)
    windows = sliding_window_view(padded, window, axis=0)  # (T, ..., window)
    out = np.full_like(data, np.nan)
    finite = np.isfinite(data)
    if finite.any():
        out[finite] = np.nanmedian(windows[finite], axis=-1)
    return out


def centre_of_mass(points: NDArray[Any], usable: NDArray[np.bool_] | None = None,
                   names: Sequence[str] | None = None,
                   parts: Sequence[str] = TRUNK_KEYPOINTS) -> FloatArray:
    """(T, D) mean of the usable ``parts`` of ``points`` (T, K, D) per frame.

    ``usable`` (T, K) flags the keypoints that count (default: the finite ones; a
    non-finite keypoint never counts); ``names`` (K,) the keypoints' names, to find
    ``parts`` (None, or none of ``parts`` among them: every keypoint counts). NaN rows
    where no usable keypoint is left.
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 3:
        raise InputError(f"centre of mass: points {pts.shape}: (T, K, D) needed")
    ok: NDArray[np.bool_] = np.asarray(np.isfinite(pts).all(axis=2))
    if usable is not None:
        use = np.asarray(usable, dtype=bool)
        if use.shape != ok.shape:
            raise InputError(f"centre of mass: usable {use.shape}, points {pts.shape}")
        ok &= use
    chosen = [i for i, n in enumerate(names or ()) if n in parts]
    if chosen:
        mask = np.zeros(pts.shape[1], dtype=bool)
        mask[chosen] = True
        ok = ok & mask[None, :]
    count = ok.sum(axis=1)
    total = np.where(ok[:, :, None], pts, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count[:, None] > 0, total / count[:, None], np.nan)


def smooth_track(track: NDArray[Any], window: int) -> FloatArray:
    """Centred moving average of ``track`` (T, D) over ``window`` frames (odd; 0 or 1:
    none), NaN-aware: the mean of the finite samples in the window (cut at the ends);
    a NaN sample stays NaN."""
    data = np.array(track, dtype=np.float64)
    if window <= 1 or data.shape[0] == 0:
        return data
    half = window // 2
    finite = np.isfinite(data)
    values = np.where(finite, data, 0.0)
    pad = [(half + 1, half)] + [(0, 0)] * (data.ndim - 1)
    csum = np.cumsum(np.pad(values, pad), axis=0)
    ccount = np.cumsum(np.pad(finite.astype(np.float64), pad), axis=0)
    n = data.shape[0]
    total = csum[2 * half + 1:2 * half + 1 + n] - csum[:n]
    count = ccount[2 * half + 1:2 * half + 1 + n] - ccount[:n]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
    return np.where(finite, mean, np.nan)


def track_speed(track: NDArray[Any], times: NDArray[Any]) -> FloatArray:
    """(T,) speed of ``track`` (T, D) at ``times`` (T,) s, in its unit per second.

    Central differences ``|p[t+1] - p[t-1]| / (time[t+1] - time[t-1])``; one-sided at the
    ends of the track and next to a gap; NaN where the sample or both neighbours are
    missing, or for T < 2.
    """
    p = np.asarray(track, dtype=np.float64)
    t = np.asarray(times, dtype=np.float64)
    n = p.shape[0]
    if t.shape != (n,):
        raise InputError(f"speed: times {t.shape}, track {p.shape}: (T,) and (T, D) needed")
    out = np.full(n, np.nan)
    if n < 2:
        return out
    ok = np.isfinite(p).all(axis=1) & np.isfinite(t)
    idx = np.arange(n)
    prev = np.where(np.r_[False, ok[:-1]], idx - 1, idx)
    nxt = np.where(np.r_[ok[1:], False], idx + 1, idx)
    has = ok & (nxt != prev)
    dt = t[nxt[has]] - t[prev[has]]
    dist = np.linalg.norm(p[nxt[has]] - p[prev[has]], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out[has] = np.where(dt > 0, dist / dt, np.nan)
    return out


def path_length(track: NDArray[Any]) -> float:
    """Length of the path through the finite points of ``track`` (T, D), in order (a gap
    is bridged by the straight line across it); 0 with fewer than two points."""
    p = np.asarray(track, dtype=np.float64)
    p = p[np.isfinite(p).all(axis=1)]
    if len(p) < 2:
        return 0.0
    return float(np.linalg.norm(np.diff(p, axis=0), axis=1).sum())


def movement_states(speed: NDArray[Any], times: NDArray[Any], *, move_speed: float,
                    rest_speed: float | None = None,
                    min_bout_s: float = MIN_BOUT_S) -> NDArray[np.int8]:
    """(T,) :data:`MOVING`, :data:`REST` or :data:`UNKNOWN` per frame (module docstring).

    ``speed`` (T,) and the thresholds in one unit per second, ``rest_speed`` <=
    ``move_speed`` (default half of it); ``times`` (T,) s. A frame with a NaN speed is
    unknown and leaves the hysteresis state as it was. A bout of rest or movement
    lasting less than ``min_bout_s`` (from its first frame to the next bout's) takes the
    state of the known bout before it (the first bout: the one after it).
    """
    v = np.asarray(speed, dtype=np.float64)
    t = np.asarray(times, dtype=np.float64)
    low = move_speed / 2.0 if rest_speed is None else rest_speed
    if not (low <= move_speed) or v.shape != t.shape:
        raise InputError(f"movement states: rest_speed {low!r} must be <= move_speed "
                         f"{move_speed!r}; speed {v.shape} and times {t.shape} must match")
    states = np.full(v.shape, UNKNOWN, dtype=np.int8)
    current: int | None = None
    for i, s in enumerate(v.tolist()):
        if not math.isfinite(s):
            continue
        if current is None:
            current = MOVING if s > move_speed else REST
        elif current == REST and s > move_speed:
            current = MOVING
        elif current == MOVING and s < low:
            current = REST
        states[i] = current
    if min_bout_s > 0:
        _absorb_short_bouts(states, t, min_bout_s)
    return states


def _runs(states: NDArray[np.int8]) -> list[tuple[int, int, int]]:
    """(state, start, stop) of each run of equal values."""
    if len(states) == 0:
        return []
    edges = np.flatnonzero(np.diff(states)) + 1
    starts = np.r_[0, edges]
    stops = np.r_[edges, len(states)]
    return [(int(states[a]), int(a), int(b)) for a, b in zip(starts, stops, strict=True)]


def _absorb_short_bouts(states: NDArray[np.int8], times: FloatArray, min_s: float) -> None:
    n = len(states)
    period = float(np.median(np.diff(times))) if n > 1 else 0.0

    def duration(a: int, b: int) -> float:
        end = times[b] if b < n else times[n - 1] + period
        return float(end - times[a])

    known = [r for r in _runs(states) if r[0] != UNKNOWN]
    if len(known) < 2:
        return
    previous: int | None = None
    for k, (_, a, b) in enumerate(known):
        if duration(a, b) < min_s:
            if previous is not None:
                states[a:b] = previous
            else:  # the first bout: the next long one decides
                later = [s for s, c, d in known[k + 1:] if duration(c, d) >= min_s]
                if later:
                    states[a:b] = later[0]
        previous = int(states[a])


@dataclass(frozen=True)
class Locomotion:
    """Locomotion of one movie (module docstring).

    Attributes
    ----------
    unit:
        ``"m"`` or ``"px"``: the unit of ``centre`` and of the distances; speeds are
        per second.
    times:
        (T,) s since the start of the movie.
    centre:
        (T, 2) smoothed centre of mass, x and y (arena floor, or image), NaN where
        unknown.
    speed:
        (T,) its speed, unit per second.
    states:
        (T,) int8 :data:`MOVING`, :data:`REST` or :data:`UNKNOWN`.
    summary:
        JSON-ready: ``unit``, ``distance_travelled``, ``mean_speed`` (over frames with a
        speed), ``median_speed``, ``max_speed``, ``time_moving_s``, ``time_resting_s``,
        ``time_unknown_s``, ``fraction_moving`` (of the known time), ``movement_bouts``,
        ``move_speed``, ``rest_speed``, ``min_bout_s``, ``window_s``, ``frames``,
        ``frames_with_centre``, ``duration_s``.
    """

    unit: str
    times: FloatArray
    centre: FloatArray
    speed: FloatArray
    states: NDArray[np.int8]
    summary: dict[str, Any]


def locomotion(centre: NDArray[Any], times: NDArray[Any], *, unit: str, move_speed: float,
               rest_speed: float | None = None, min_bout_s: float = MIN_BOUT_S,
               window_s: float = SPEED_WINDOW_S) -> Locomotion:
    """Smooth ``centre`` (T, D >= 2; x, y used) at ``times`` (T,) s and derive speed,
    states and distance (module docstring); thresholds in ``unit`` per second."""
    c = np.asarray(centre, dtype=np.float64)
    t = np.asarray(times, dtype=np.float64)
    if c.ndim != 2 or c.shape[1] < 2 or t.shape != (c.shape[0],):
        raise InputError(f"locomotion: centre {c.shape} and times {t.shape}: (T, 2) and (T,)")
    n = len(t)
    period = float(np.median(np.diff(t))) if n > 1 else 0.0
    window = 1 if period <= 0 else max(1, 2 * round(window_s / period / 2) + 1)
    smooth = smooth_track(c[:, :2], window)
    speed = track_speed(smooth, t)
    states = movement_states(speed, t, move_speed=move_speed, rest_speed=rest_speed,
                             min_bout_s=min_bout_s)
    frame_s = np.diff(np.r_[t, t[-1] + period]) if n else np.zeros(0)
    finite = speed[np.isfinite(speed)]

    def stat(fn: Callable[[FloatArray], np.floating[Any]]) -> float | None:
        return float(fn(finite)) if finite.size else None

    moving, resting = frame_s[states == MOVING].sum(), frame_s[states == REST].sum()
    bouts = sum(1 for s, _, _ in _runs(states[states != UNKNOWN]) if s == MOVING)
    summary: dict[str, Any] = {
        "unit": unit,
        "distance_travelled": path_length(smooth),
        "mean_speed": stat(np.mean),
        "median_speed": stat(np.median),
        "max_speed": stat(np.max),
        "time_moving_s": float(moving),
        "time_resting_s": float(resting),
        "time_unknown_s": float(frame_s[states == UNKNOWN].sum()),
        "fraction_moving": float(moving / (moving + resting)) if moving + resting else None,
        "movement_bouts": bouts,
        "move_speed": float(move_speed),
        "rest_speed": float(move_speed / 2.0 if rest_speed is None else rest_speed),
        "min_bout_s": float(min_bout_s),
        "window_s": round(float(window * period), 6),
        "frames": n,
        "frames_with_centre": int(np.isfinite(c[:, :2]).all(axis=1).sum()),
        "duration_s": float(frame_s.sum()),
    }
    return Locomotion(unit, t, smooth, speed, states, summary)


def body_length(points: NDArray[Any], names: Sequence[str],
                usable: NDArray[np.bool_] | None = None,
                parts: tuple[str, str] = ("nose", "tail_base")) -> float:
    """Median distance between the two ``parts`` of ``points`` (T, K, D) over the frames
    where both are usable (finite, and ``usable`` (T, K) when given); NaN when none is or
    the names lack them."""
    if parts[0] not in names or parts[1] not in names:
        return math.nan
    i, j = list(names).index(parts[0]), list(names).index(parts[1])
    pts = np.asarray(points, dtype=np.float64)
    d = np.linalg.norm(pts[:, i] - pts[:, j], axis=1)
    ok = np.isfinite(d)
    if usable is not None:
        use = np.asarray(usable, dtype=bool)
        ok &= use[:, i] & use[:, j]
    return float(np.median(d[ok])) if ok.any() else math.nan
