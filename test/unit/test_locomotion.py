"""Locomotion and the median filter as pure functions over arrays (core/locomotion.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mouse_lifter_ros.core import locomotion as L
from mouse_lifter_ros.core.errors import InputError

NAMES = ("nose", "neck", "spine_center", "lumbar_spine", "tail_base", "tail_tip")


# -- median filter ------------------------------------------------------------------------


def test_median_filter_removes_a_spike_and_keeps_a_ramp() -> None:
    x = np.arange(20, dtype=float)
    x[7] = 100.0  # a one-frame tracking error
    out = L.median_filter(x, 3)
    assert out[7] == pytest.approx(8.0)  # median of 6, 100, 8
    assert out[1:7] == pytest.approx(np.arange(1, 7))  # a ramp passes unchanged
    assert out[9:19] == pytest.approx(np.arange(9, 19))
    # the ends: the window is cut, the median of what is there
    assert out[0] == pytest.approx(0.5) and out[19] == pytest.approx(18.5)
    # a spike two frames wide needs a window of 5
    y = np.zeros(11)
    y[4:6] = 50.0
    assert L.median_filter(y, 3)[4:6] == pytest.approx([50.0, 50.0])
    assert L.median_filter(y, 5) == pytest.approx(np.zeros(11))


def test_median_filter_nan_stays_nan_and_is_ignored_in_windows() -> None:
    x = np.array([1.0, np.nan, 3.0, 4.0, np.nan, np.nan, 10.0])
    out = L.median_filter(x, 3)
    assert np.isnan(out[[1, 4, 5]]).all()
    assert out[0] == pytest.approx(1.0)  # window [nan?, 1, nan] -> 1
    assert out[2] == pytest.approx(3.5)  # [nan, 3, 4]
    assert out[3] == pytest.approx(3.5)  # [3, 4, nan]
    assert out[6] == pytest.approx(10.0)
    assert np.isnan(L.median_filter(np.full(4, np.nan), 5)).all()


def test_median_filter_works_per_column_of_a_pose_track() -> None:
    rng = np.random.default_rng(0)
    track = rng.normal(size=(30, 14, 2))
    out = L.median_filter(track, 5)
    assert out.shape == track.shape
    for k, c in ((0, 0), (5, 1), (13, 0)):
        assert out[:, k, c] == pytest.approx(L.median_filter(track[:, k, c], 5))
    assert out[10, 3, 1] == pytest.approx(np.median(track[8:13, 3, 1]))


@pytest.mark.parametrize("window", [0, 1])
def test_median_filter_off(window: int) -> None:
    x = np.array([[1.0, 5.0], [np.nan, 2.0]])
    out = L.median_filter(x, window)
    np.testing.assert_array_equal(out, x)
    assert out is not x


@pytest.mark.parametrize("window", [2, 4, -3])
def test_median_filter_refuses_even_or_negative_windows(window: int) -> None:
    with pytest.raises(InputError, match="odd"):
        L.median_filter(np.zeros(5), window)


# -- centre, smoothing, speed, path -------------------------------------------------------


def test_centre_of_mass_uses_the_usable_trunk_keypoints() -> None:
    pts = np.zeros((3, len(NAMES), 2))
    pts[:, :, 0] = np.arange(len(NAMES))  # x = keypoint index
    pts[:, 0, :] = 100.0  # the nose far off: not a trunk keypoint
    usable = np.ones((3, len(NAMES)), dtype=bool)
    usable[1, 1] = False  # neck not usable in frame 1
    usable[2, 1:5] = False  # no trunk keypoint in frame 2
    c = L.centre_of_mass(pts, usable, NAMES)
    assert c[0] == pytest.approx([2.5, 0.0])  # mean of indices 1..4
    assert c[1] == pytest.approx([3.0, 0.0])  # 2..4
    assert np.isnan(c[2]).all()
    # names without any trunk keypoint: every usable keypoint counts
    assert L.centre_of_mass(pts[:1, 1:3], None, ("a", "b"))[0] == pytest.approx([1.5, 0.0])


def test_smooth_track_is_a_nan_aware_moving_average() -> None:
    x = np.array([[0.0], [3.0], [6.0], [np.nan], [12.0]])
    out = L.smooth_track(x, 3)
    assert out[:, 0][[0, 1, 2, 4]] == pytest.approx([1.5, 3.0, 4.5, 12.0])
    assert np.isnan(out[3, 0])
    assert L.smooth_track(x, 1) is not x


def test_speed_and_path_length_of_a_straight_walk_with_a_gap() -> None:
    t = np.arange(31) / 30.0
    track = np.stack([0.1 * t, np.zeros_like(t)], axis=1)  # 0.1 m/s along x
    track[10:13] = np.nan
    v = L.track_speed(track, t)
    assert np.isnan(v[10:13]).all()
    assert v[~np.isnan(v)] == pytest.approx(0.1)
    assert L.path_length(track) == pytest.approx(0.1)  # the gap bridged
    assert L.path_length(track[:1]) == 0.0
    assert np.isnan(L.track_speed(track[:1], t[:1])).all()


def test_states_have_hysteresis_and_a_minimum_bout() -> None:
    t = np.arange(41) / 10.0  # 10 fps
    v = np.array([0.0] * 10 + [0.05] * 10 + [0.015] * 5 + [0.005] * 10 + [0.05, 0.0, 0.0, 0.0]
                 + [math.nan] + [0.0])
    s = L.movement_states(v, t, move_speed=0.02, min_bout_s=0.0)
    assert (s[:10] == L.REST).all() and (s[10:20] == L.MOVING).all()
    assert (s[20:25] == L.MOVING).all()  # 0.015 m/s: between the thresholds, still moving
    assert (s[25:35] == L.REST).all() and s[35] == L.MOVING
    assert (s[36:39] == L.REST).all() and s[39] == L.UNKNOWN and s[40] == L.REST
    # 0.1 s of movement at frame 35 is shorter than a 0.25 s bout: absorbed into rest
    s = L.movement_states(v, t, move_speed=0.02, min_bout_s=0.25)
    assert (s[35:39] == L.REST).all() and (s[10:25] == L.MOVING).all()
    with pytest.raises(InputError):
        L.movement_states(v, t, move_speed=0.02, rest_speed=0.03)


def test_locomotion_of_a_walk_then_a_rest() -> None:
    fps = 30.0
    t = np.arange(120) / fps
    x = np.where(t < 2.0, 0.1 * t, 0.2)  # 2 s at 0.1 m/s, then 2 s still
    rng = np.random.default_rng(1)
    centre = np.stack([x, np.zeros_like(x)], axis=1) + rng.normal(0, 0.001, (120, 2))
    loco = L.locomotion(centre, t, unit="m", move_speed=0.02)
    s = loco.summary
    assert s["unit"] == "m" and s["frames"] == 120 and s["duration_s"] == pytest.approx(4.0)
    assert s["distance_travelled"] == pytest.approx(0.2, rel=0.1)
    assert s["time_moving_s"] == pytest.approx(2.0, abs=0.2)
    assert s["time_resting_s"] == pytest.approx(2.0, abs=0.2)
    assert s["movement_bouts"] == 1 and s["fraction_moving"] == pytest.approx(0.5, abs=0.05)
    assert s["mean_speed"] == pytest.approx(0.05, abs=0.01)
    assert loco.speed[20:50] == pytest.approx(0.1, abs=0.02)
    assert loco.centre.shape == (120, 2) and loco.states.dtype == np.int8


def test_body_length_is_the_median_nose_to_tail_base() -> None:
    pts = np.zeros((5, len(NAMES), 2))
    pts[:, 4, 0] = [90, 100, 110, 1000, 100]
    usable = np.ones((5, len(NAMES)), dtype=bool)
    usable[3, 4] = False
    assert L.body_length(pts, NAMES, usable) == pytest.approx(100.0)
    assert math.isnan(L.body_length(pts, ("a",) * len(NAMES)))
