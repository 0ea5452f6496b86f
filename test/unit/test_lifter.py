"""Tests of the lifting stage (mouse_lifter_ros.core.lifter) and of the 3D evaluation
(mouse_lifter_ros.core.eval3d): stamp pairing, depth sampling, the 1-euro filter, the
lifter end to end on synthetic motion, and the DANNCE check on real 3D labels."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from mouse_lifter_ros.core.arena import arena_from_camera
from mouse_lifter_ros.core.body import KEYPOINTS, MouseShape
from mouse_lifter_ros.core.camera import Camera
from mouse_lifter_ros.core.errors import InputError, ParameterError
from mouse_lifter_ros.core.eval3d import (
    MODEL_2D_ERROR_PX,
    evaluate_dannce,
    floor_baseline,
    gaussian_sigma,
    joint_errors,
)
from mouse_lifter_ros.core.lifter import (
    DEPTH_SIGMA_SCALE,
    STRAY_M,
    TAIL_DRAG,
    Lifted,
    Lifter,
    OneEuroFilter,
    StampPairer,
    sample_depth,
)
from mouse_lifter_ros.core.synth.body import sample_shape
from mouse_lifter_ros.core.synth.motion import script_sequence
from mouse_lifter_ros.core.synth.render import camera_over_arena

DANNCE_MAT = Path("/work/shared/data/dannce-3d/markerless_mouse_1_label3d_dannce.mat")
K_TOP = np.array([[600.0, 0.0, 319.5], [0.0, 600.0, 239.5], [0.0, 0.0, 1.0]])
FPS = 30.0


def top_camera(dist: np.ndarray | None = None) -> Camera:
    return camera_over_arena(view="top", height_m=0.6, K=K_TOP,
                             dist=np.zeros(5) if dist is None else dist, width=640,
                             height=480)


# ----------------------------------------------------------------------- pairing


def test_pairer_matches_equal_stamps_in_either_order() -> None:
    pairer: StampPairer[str, int] = StampPairer()
    assert pairer.push_keypoints(100, "k100") == []
    assert pairer.push_depth(100, 7) == [(100, "k100", 7)]
    assert pairer.push_depth(200, 8) == []
    assert pairer.pending() == (0, 1)
    assert pairer.push_keypoints(200, "k200") == [(200, "k200", 8)]
    assert pairer.pending() == (0, 0)
    assert (pairer.dropped_keypoints, pairer.dropped_depth) == (0, 0)


def test_pairer_drops_what_can_never_match() -> None:
    pairer: StampPairer[str, str] = StampPairer()
    pairer.push_keypoints(10, "k10")  # its depth never comes
    pairer.push_depth(15, "d15")  # its keypoints never come
    pairer.push_keypoints(20, "k20")
    assert pairer.push_depth(20, "d20") == [(20, "k20", "d20")]
    # k10 and d15 are older than the match: dropped and counted
    assert pairer.pending() == (0, 0)
    assert (pairer.dropped_keypoints, pairer.dropped_depth) == (1, 1)
    # late arrivals older than (or at) the newest match are dropped at once
    assert pairer.push_depth(10, "late") == []
    assert pairer.push_keypoints(20, "again") == []
    assert (pairer.dropped_keypoints, pairer.dropped_depth) == (2, 2)
    assert pairer.pending() == (0, 0)


def test_pairer_queues_are_bounded() -> None:
    pairer: StampPairer[int, int] = StampPairer(capacity=3)
    for stamp in range(1, 8):  # depth stalls: keypoints pile up
        assert pairer.push_keypoints(stamp, stamp) == []
    assert pairer.pending() == (3, 0)
    assert pairer.dropped_keypoints == 4
    assert pairer.push_depth(3, 0) == []  # the keypoints at 3 were dropped as oldest
    assert pairer.push_depth(6, 60) == [(6, 6, 60)]
    assert pairer.pending() == (1, 0)  # 7 waits; 5 and the depth at 3 were dropped
    assert (pairer.dropped_keypoints, pairer.dropped_depth) == (5, 1)
    with pytest.raises(ParameterError, match="capacity"):
        StampPairer(capacity=0)


# ----------------------------------------------------------------------- depth


def test_sample_depth_uniform_window_and_offset() -> None:
    depth = np.full((40, 60), 0.55, dtype=np.float32)
    px = np.array([[110.0, 215.0], [100.4, 200.4], [159.0, 239.0]])
    got = sample_depth(depth, (100, 200), px)
    np.testing.assert_allclose(got, 0.55, atol=1e-6)  # the last one at the corner


def test_sample_depth_keeps_the_nearer_half_on_an_edge() -> None:
    depth = np.full((20, 20), 0.60, dtype=np.float32)  # the floor
    depth[:, :10] = 0.56  # the mouse covers columns 0..9
    # the window of (10, 10), columns 8..12: 10 mouse and 15 floor readings; the
    # nearer half (13) holds the 10 mouse ones, its median is on the mouse
    got = sample_depth(depth, (0, 0), np.array([[10.0, 10.0], [7.0, 10.0]]), radius=2)
    np.testing.assert_allclose(got, 0.56, atol=1e-6)
    assert float(np.median(depth[8:13, 8:13])) == pytest.approx(0.60)  # a plain median
    # a curved surface: the median of the nearer half, not its minimum
    ramp = np.tile(np.linspace(0.50, 0.54, 5, dtype=np.float64), (5, 1))
    got = sample_depth(ramp, (0, 0), np.array([[2.0, 2.0]]), radius=2)
    assert got[0] == pytest.approx(0.51)  # 13 nearest: 5 x 0.50, 5 x 0.51, 3 x 0.52


def test_sample_depth_ignores_invalid_readings_and_handles_outside() -> None:
    depth = np.full((10, 10), 0.5, dtype=np.float32)
    depth[4:7, 4:7] = np.nan
    depth[5, 5] = 0.3  # one valid reading amid NaN, inf and zeros
    depth[3, 3:8] = np.inf
    depth[7, 3:8] = 0.0
    got = sample_depth(depth, (0, 0), np.array([[5.0, 5.0]]), radius=1)
    assert got[0] == pytest.approx(0.3)  # the only valid value in the 3x3 window
    blank = np.full((10, 10), np.nan, dtype=np.float32)
    assert math.isnan(sample_depth(blank, (0, 0), np.array([[5.0, 5.0]]))[0])
    px = np.array([[-1.0, 5.0], [5.0, 10.0], [np.nan, 3.0], [9.4, 0.0]])
    got = sample_depth(np.full((10, 10), 0.5), (0, 0), px)
    assert np.isnan(got[:3]).all() and got[3] == pytest.approx(0.5)
    assert sample_depth(np.full((10, 10), 0.5), (0, 0), np.zeros((0, 2))).shape == (0,)
    with pytest.raises(InputError) as info:
        sample_depth(np.zeros(5), (0, 0), np.zeros((3, 3)), radius=-1)
    assert "depth image" in str(info.value) and "pixels" in str(info.value) \
        and "radius" in str(info.value)


# ----------------------------------------------------------------------- filter


def test_one_euro_follows_a_ramp_within_a_fraction_of_a_frame() -> None:
    speed = 0.3  # m/s: 10 mm a frame at 30 fps
    filt = OneEuroFilter()
    lags = []
    for k in range(90):
        t = k / FPS
        out = filt(t, np.array([[speed * t, 0.1, 0.0]]))
        lags.append(speed * t - out[0, 0])
    settled = np.array(lags[15:])
    frame = speed / FPS
    assert settled.max() < 0.5 * frame, settled.max()  # measured 2.1 mm of 10 mm


def test_one_euro_reduces_jitter_of_a_still_point() -> None:
    rng = np.random.default_rng(21)
    filt = OneEuroFilter()
    noise = rng.normal(0.0, 0.0015, (300, 14, 3))
    out = np.array([filt(k / FPS, noise[k]) for k in range(300)])
    ratio = noise[30:].std() / out[30:].std()
    assert ratio > 2.0, ratio


def test_one_euro_is_nan_safe_and_resets() -> None:
    filt = OneEuroFilter()
    assert filt(0.0, np.array([1.0, 2.0]))[0] == 1.0
    out = filt(1 / FPS, np.array([np.nan, 2.0]))
    assert math.isnan(out[0]) and out[1] == pytest.approx(2.0)
    out = filt(2 / FPS, np.array([1.0, 2.0]))  # resumes from its last value
    assert out[0] == pytest.approx(1.0)
    filt(3 / FPS, np.array([5.0, 2.0]))
    assert filt(3 / FPS, np.array([9.0, 2.0]))[0] < 5.0  # a repeated time: state stands
    assert filt(2 / FPS, np.array([9.0, 2.0]))[0] == 9.0  # backwards: reset, passes as is
    assert filt(2 / FPS + 1.0, np.array([-4.0, 2.0]))[0] == -4.0  # a gap: reset
    with pytest.raises(ParameterError):
        OneEuroFilter(min_cutoff=0.0, beta=-1.0)


# ----------------------------------------------------------------------- cameras


def test_the_camera_inverts_its_projection() -> None:
    geo = top_camera(np.array([-0.15, 0.05, 0.001, -0.0015, 0.0]))
    rng = np.random.default_rng(22)
    pts = np.column_stack([rng.uniform(-0.2, 0.2, (50, 2)), rng.uniform(0.0, 0.1, 50)])
    px, z = geo.project(pts)
    np.testing.assert_allclose(geo.backproject(px, z), pts, atol=1e-9)
    on = geo.points_at_height(px, 0.02)
    np.testing.assert_allclose(on[:, 2], 0.02, atol=1e-12)
    np.testing.assert_allclose(geo.project(on)[0], px, atol=1e-7)
    np.testing.assert_allclose(geo.position, [0.0, 0.0, 0.6], atol=1e-12)


def test_the_lifter_takes_an_arena_calibrations_camera() -> None:
    calib = arena_from_camera(top_camera())
    assert calib.camera == top_camera()
    assert Lifter(calib.camera).camera is calib.camera
    with pytest.raises(InputError, match=r"ArenaCalibration; expected a core\.camera\.Camera"):
        Lifter(calib)  # type: ignore[arg-type]


# ----------------------------------------------------------------------- the lifter


def lift_sequence(lifter: Lifter, shape: MouseShape, script: list[tuple[str, float]],
                  rng: np.random.Generator, camera: Camera, *, hide: list[int] | None = None,
                  hide_from: int = 0, no_depth: list[int] | None = None,
                  stray: tuple[int, float] | None = None
                  ) -> tuple[np.ndarray, np.ndarray, list[Lifted]]:
    seq = script_sequence(script, shape, fps=FPS, rng=rng, start=(0.0, 0.0, 0.3))
    truth, lifted, outs = [], [], []
    for k, state in enumerate(seq.states(shape)):
        px, z = camera.project(state.keypoints)
        px = px + rng.normal(0.0, 3.0, px.shape)
        z = z + rng.normal(0.0, 0.003, z.shape)
        if no_depth is not None:
            z[no_depth] = np.nan
        conf = np.full(14, 0.9)
        if hide is not None and k >= hide_from and k % 3:
            conf[hide] = 0.1
        if stray is not None and k >= hide_from and k % 2:  # (keypoint, pixels off)
            px[stray[0], 0] += stray[1]
        out = lifter.lift(k / FPS, px, conf, z)
        truth.append(state.keypoints)
        lifted.append(out.positions)
        outs.append(out)
    return np.array(truth), np.array(lifted), outs


def test_lifter_end_to_end_on_a_motion_sequence() -> None:
    rng = np.random.default_rng(31)
    shape = MouseShape(scale=0.93, tail_length=0.08)
    camera = top_camera()
    lifter = Lifter(camera)
    script = [("walk", 1.5), ("rear", 1.5), ("trot", 1.0), ("groom", 1.0), ("turn", 0.8)]
    truth, lifted, outs = lift_sequence(lifter, shape, script, rng, camera)
    err = np.linalg.norm(lifted - truth, axis=2) * 1000.0
    assert err.mean() < 6.0, err.mean()
    assert err[30:].mean() < 5.0
    # the size was learnt from the first 30 frames
    assert lifter.scale_estimated
    assert lifter.scale == pytest.approx(0.93, abs=0.05)
    assert lifter.shape.tail_length == pytest.approx(0.08, abs=0.01)
    last = outs[-1]
    assert last.valid.all() and last.vector.shape == (43,)
    spine = [KEYPOINTS.index(k) for k in ("tail_base", "lumbar_spine", "spine_center",
                                          "neck")]
    centroid = truth[-1, spine].mean(axis=0)
    np.testing.assert_allclose(last.centroid, centroid, atol=0.006)
    d = truth[-1, KEYPOINTS.index("neck")] - truth[-1, KEYPOINTS.index("tail_base")]
    heading = math.atan2(d[1], d[0])
    assert abs(math.remainder(last.heading - heading, 2 * math.pi)) < 0.15


def test_the_tail_length_is_learnt_from_a_tail_seen_without_depth() -> None:
    """The depth crop seldom reaches the tail's tip: a tail_mid and tail_tip seen in 2D
    alone are taken on the floor for the tail length (it stayed the default before)."""
    camera = top_camera()
    tail = [KEYPOINTS.index(k) for k in ("tail_mid", "tail_tip")]
    for length in (0.068, 0.098):
        lifter = Lifter(camera)
        lift_sequence(lifter, MouseShape(tail_length=length), [("walk", 1.5)],
                      np.random.default_rng(33), camera, no_depth=tail)
        assert lifter.scale_estimated
        assert lifter.shape.tail_length == pytest.approx(length, abs=0.008)


def test_a_tail_seen_now_and_then_is_dragged_where_it_lay() -> None:
    """A mouse walks, then turns on the spot; its tail's middle and tip are seen one
    frame in three. A dragged tail stays where the last frame put it, as the mouse's
    does; the fit's own tail (``tail_drag=0``) swings with the body between sightings."""
    tail = [KEYPOINTS.index(k) for k in ("tail_mid", "tail_tip")]
    tips = {}
    for drag in (TAIL_DRAG["top"], 0.0):
        rng = np.random.default_rng(34)
        shape = sample_shape(rng)
        camera = top_camera()
        truth, lifted, _ = lift_sequence(Lifter(camera, tail_drag=drag), shape,
                                         [("walk", 1.0), ("turn", 1.5)], rng, camera,
                                         hide=tail, hide_from=30)
        tips[drag] = np.linalg.norm(lifted - truth, axis=2)[30:, tail[1]].mean() * 1000.0
    assert tips[TAIL_DRAG["top"]] < 10.0 and tips[TAIL_DRAG["top"]] < 0.5 * tips[0.0], tips
    with pytest.raises(ParameterError, match=r"tail_drag 1\.5 must be a number from 0 to 1"):
        Lifter(top_camera(), tail_drag=1.5)
    # each view its own: from below dragging made eval-3d worse
    below = camera_over_arena(view="bottom", height_m=0.6, K=K_TOP, dist=np.zeros(5),
                              width=640, height=480)
    assert Lifter(top_camera()).tail_drag == TAIL_DRAG["top"] > 0.0
    assert Lifter(below).tail_drag == TAIL_DRAG["bottom"]


def test_a_confident_keypoint_far_from_the_body_is_dropped() -> None:
    """Every other frame the 2D model puts the tail's middle, confidently, 60 px
    (~6 cm) to the side (on a cable, a shadow). The fitted body cannot reach it, so it is
    dropped and the frame refitted: neither the fit nor the fusion follows it. Kept
    (``stray_m=None``) it drags the tail and, through the fit, the rest. (At 40 px the
    tail bends far enough towards it in the first such frames that it is kept there.)"""
    k = KEYPOINTS.index("tail_mid")
    errors, outs = {}, {}
    for stray_m in (STRAY_M, None):
        rng = np.random.default_rng(35)
        shape = sample_shape(rng)
        camera = top_camera()
        truth, lifted, outs[stray_m] = lift_sequence(
            Lifter(camera, stray_m=stray_m), shape, [("walk", 1.5), ("trot", 1.0)], rng,
            camera, hide_from=30, stray=(k, 60.0))
        errors[stray_m] = np.linalg.norm(lifted - truth, axis=2)[30:] * 1000.0
    assert errors[STRAY_M][:, k].mean() < 0.4 * errors[None][:, k].mean(), errors
    assert errors[STRAY_M].mean() < errors[None].mean() - 1.0  # 4.0 against 5.3 mm
    assert errors[STRAY_M].mean() < 6.0
    frames = outs[STRAY_M]
    assert not any(frames[i].valid[k] for i in range(31, len(frames), 2))
    # a keypoint where the body can be keeps its place in the fit
    assert all(frames[i].valid.all() for i in range(30, len(frames), 2))
    assert all(out.valid.all() for out in outs[None])
    with pytest.raises(ParameterError, match=r"stray_m 0\.0 must be a positive number"):
        Lifter(camera, stray_m=0.0)


def test_lifter_fills_occluded_keypoints_from_the_model() -> None:
    rng = np.random.default_rng(32)
    shape = sample_shape(rng)
    camera = top_camera()
    hide = [KEYPOINTS.index(k) for k in ("left_forepaw", "right_forepaw", "tail_tip",
                                         "head", "left_ear")]
    lifter = Lifter(camera)
    script = [("walk", 1.5), ("rear", 1.5), ("groom", 1.0), ("trot", 1.0)]
    truth, lifted, outs = lift_sequence(lifter, shape, script, rng, camera, hide=hide,
                                        hide_from=40)
    hidden = [k for k in range(40, len(outs)) if k % 3]
    for k in hidden:
        valid = outs[k].valid
        assert not valid[hide].any() and valid[np.setdiff1d(np.arange(14), hide)].all()
    err = np.linalg.norm(lifted - truth, axis=2) * 1000.0
    filled = err[np.ix_(hidden, hide)]
    assert filled.mean() < 12.0, filled.mean(axis=0)
    assert filled.max() < 35.0
    assert err.mean() < 6.0


def test_lifter_input_validation_and_missing_depth() -> None:
    # 14 points on a line are no mouse's: none is dropped as a stray here
    lifter = Lifter(top_camera(), scale=1.0, stray_m=None)
    with pytest.raises(InputError) as info:
        lifter.lift(0.0, np.zeros((12, 2)), np.ones(13), np.ones((14, 1)))
    message = str(info.value)
    assert "pixels" in message and "confidence" in message and "depth" in message
    with pytest.raises(InputError, match="stamp"):
        lifter.lift(float("nan"), np.zeros((14, 2)), np.ones(14), np.ones(14))
    camera = top_camera()
    px, z = camera.project(np.column_stack([np.linspace(-0.04, 0.05, 14), np.zeros(14),
                                            np.full(14, 0.015)]))
    depth = z.copy()
    depth[[0, 3]] = np.nan  # missing readings: never an exception
    depth[5] = 0.0
    conf = np.full(14, 0.9)
    conf[7] = np.nan
    conf[8] = 0.2  # under p_cutoff
    out = lifter.lift(0.0, px, conf, depth)
    assert out.positions.shape == (14, 3) and np.isfinite(out.positions).all()
    expected = np.ones(14, dtype=bool)
    expected[[0, 3, 5, 7, 8]] = False
    np.testing.assert_array_equal(out.valid, expected)
    assert out.confidence[7] == 0.0
    # nothing seen: the tracked pose holds; before any pose, NaN (no invented mouse)
    held = lifter.lift(1 / FPS, np.full((14, 2), np.nan), np.zeros(14), np.full(14, np.nan))
    assert np.isfinite(held.positions).all() and not held.valid.any()
    assert np.linalg.norm(held.centroid - out.centroid) < 0.005
    fresh = Lifter(camera, scale=1.0)
    blank = fresh.lift(0.0, np.full((14, 2), np.nan), np.ones(14), np.full(14, np.nan))
    assert np.isnan(blank.positions).all() and math.isnan(blank.heading)
    with pytest.raises(ParameterError) as perr:
        Lifter(camera, p_cutoff=2.0, scale=-1.0, stray_drops=-1)
    assert all(name in str(perr.value) for name in ("p_cutoff", "scale", "stray_drops"))


def test_the_nose_reading_is_weighed_as_the_depth_network_reads_it() -> None:
    """From above the lifter trusts the map's nose less (``DEPTH_SIGMA_SCALE``): a nose
    read 3 cm too near the camera lifts it less far from the truth than when every
    reading is weighed alike (``depth_sigma_scale={}``); a bad factor is refused."""
    camera = top_camera()
    assert DEPTH_SIGMA_SCALE["top"]["nose"] > 1.0
    nose = KEYPOINTS.index("nose")
    errors = {}
    for name, scales in (("network", None), ("alike", {})):
        lifter = Lifter(camera, depth_sigma_scale=scales)
        rng = np.random.default_rng(35)
        seq = script_sequence([("walk", 1.0)], MouseShape(), fps=FPS, rng=rng,
                              start=(0.0, 0.0, 0.3))
        err = []
        for k, state in enumerate(seq.states(MouseShape())):
            px, z = camera.project(state.keypoints)
            z[nose] -= 0.03
            out = lifter.lift(k / FPS, px, np.full(14, 0.9), z)
            err.append(np.linalg.norm(out.positions[nose] - state.keypoints[nose]))
        errors[name] = float(np.mean(err[10:])) * 1000.0
    assert errors["network"] < 0.8 * errors["alike"], errors
    with pytest.raises(ParameterError, match="depth_sigma_scale snout"):
        Lifter(camera, depth_sigma_scale={"snout": 2.0})
    with pytest.raises(ParameterError, match="depth_sigma_scale nose"):
        Lifter(camera, depth_sigma_scale={"nose": 0.0})


def test_lifter_reset_restarts_tracking() -> None:
    camera = top_camera()
    rng = np.random.default_rng(33)
    shape = MouseShape()
    seq = script_sequence([("walk", 0.5)], shape, fps=FPS, rng=rng, start=(0.0, 0.0, 0.0))
    lifter = Lifter(camera, scale=1.0, tail_length=0.085)
    state = seq.states(shape)[-1]
    px, z = camera.project(state.keypoints)
    a = lifter.lift(0.0, px, np.ones(14), z)
    lifter.reset()
    b = lifter.lift(5.0, px, np.ones(14), z)  # same frame after a reset: same answer
    np.testing.assert_allclose(a.positions, b.positions, atol=1e-12)
    assert a.residual_px < 1.0


# ----------------------------------------------------------------------- eval3d


def test_joint_errors_and_floor_baseline() -> None:
    truth = np.zeros((2, 3, 3))
    pred = truth.copy()
    pred[:, 0, 2] = 0.003  # 3 mm too high
    pred[0, 1, 0] = 0.004
    truth[1, 2] = np.nan  # ignored
    out = joint_errors(pred, truth, ["a", "b", "c"])
    assert out["per_keypoint_mm"]["a"] == pytest.approx(3.0)
    assert out["per_keypoint_mm"]["b"] == pytest.approx(2.0)
    assert out["height_error_mm"]["a"] == pytest.approx(3.0)
    assert out["height_error_mm"]["b"] == 0.0
    assert out["count"] == {"a": 2, "b": 2, "c": 1}
    assert out["mean_mm"] == pytest.approx(10.0 / 5.0)
    json.dumps(out)
    with pytest.raises(InputError):
        joint_errors(pred[:, :2], truth, ["a", "b", "c"])

    camera = top_camera()
    pts = np.array([[[0.01, 0.02, 0.03], [-0.05, 0.04, 0.0]]])
    px, _ = camera.project(pts.reshape(-1, 3))
    floor = floor_baseline(camera, px.reshape(1, 2, 2))
    np.testing.assert_allclose(floor[..., 2], 0.0, atol=1e-12)
    np.testing.assert_allclose(floor[0, 1], pts[0, 1], atol=1e-9)
    assert np.linalg.norm(floor[0, 0, :2]) > np.linalg.norm(pts[0, 0, :2])  # pushed out
    assert gaussian_sigma(1.2533141373155) == pytest.approx(1.0)
    assert MODEL_2D_ERROR_PX["nose"] == 3.26


@pytest.mark.skipif(not DANNCE_MAT.is_file(), reason=f"DANNCE labels not found at {DANNCE_MAT}")
def test_evaluate_dannce_with_depth_under_10_mm() -> None:
    result = evaluate_dannce(DANNCE_MAT)
    json.dumps(result)
    assert result["frames"] > 50
    assert result["mapping"]["SpineF"] == "neck"
    assert set(result["unmapped_keypoints"]) == {"head", "spine_center"}
    with_depth = result["lifter_depth"]["mean_mm"]
    assert with_depth < 10.0, result["lifter_depth"]
    assert with_depth < result["lifter_no_depth"]["mean_mm"] \
        < result["floor_baseline"]["mean_mm"]
    assert result["lifter_depth_model_only"]["mean_mm"] < 10.0
