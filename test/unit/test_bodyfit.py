"""Tests of the body-model fit (mouse_lifter_ros.core.bodyfit): batched forward
kinematics, the Levenberg-Marquardt fit to 2D keypoints and depth, and the body size
estimates. Real computation on poses of the synthetic body model seen by a rendered
top camera."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mouse_lifter_ros.core.body import (
    BEHAVIORS,
    JOINTS,
    KEYPOINTS,
    POSE_HEADING,
    POSE_TAIL_YAW,
    POSE_X,
    POSE_Y,
    TAIL,
    MouseShape,
    Pose,
    forward_kinematics,
    pose_prior,
)
from mouse_lifter_ros.core.bodyfit import (
    SCALE_RANGE,
    TAIL_HEIGHT_SIGMA,
    TAIL_LENGTH_RANGE,
    BodyFitter,
    Observation,
    drag_tail,
    estimate_scale,
    estimate_tail_length,
    fk_batch,
    locate,
)
from mouse_lifter_ros.core.camera import Camera
from mouse_lifter_ros.core.errors import InputError, ParameterError
from mouse_lifter_ros.core.synth.body import sample_shape
from mouse_lifter_ros.core.synth.motion import sample_pose, script_sequence
from mouse_lifter_ros.core.synth.render import camera_over_arena

K_TOP = np.array([[600.0, 0.0, 319.5], [0.0, 600.0, 239.5], [0.0, 0.0, 1.0]])


def top_camera(dist: np.ndarray | None = None) -> Camera:
    return camera_over_arena(view="top", height_m=0.6, K=K_TOP,
                             dist=np.zeros(5) if dist is None else dist, width=640,
                             height=480)


def observe(camera: Camera, points: np.ndarray, rng: np.random.Generator | None = None,
            noise_px: float = 0.0, noise_m: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    px, z = camera.project(points)
    if rng is not None:
        px = px + rng.normal(0.0, noise_px, px.shape)
        z = z + rng.normal(0.0, noise_m, z.shape)
    return px, z


def poses(seed: int, count: int) -> list[tuple[MouseShape, Pose, str]]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        shape = sample_shape(rng)
        pose, name = sample_pose(rng, shape, behavior=BEHAVIORS[i % len(BEHAVIORS)])
        out.append((shape, pose, name))
    return out


# ----------------------------------------------------------------------- fk_batch


def test_fk_batch_equals_forward_kinematics() -> None:
    rng = np.random.default_rng(11)
    checked = 0
    for shape, pose, _ in poses(1, 24):
        v = pose.to_vector()
        batch = np.repeat(v[None], 4, axis=0)
        batch[1, 31:43] += rng.normal(0.0, 0.08, 12)  # paw targets far out of reach
        batch[2, 15:23] = rng.uniform(-0.7, 0.7, 8)  # the tail pitched into the floor
        batch[2, 4] = -0.25
        batch[3, 4:9] = [1.4, 0.3, 0.2, -0.5, -0.6]  # reared up
        batch[3, 14] = 0.5
        got = fk_batch(shape, batch)
        assert got.shape == (4, len(JOINTS), 3)
        for b in range(4):
            ref = forward_kinematics(shape, Pose.from_vector(batch[b])).joints
            np.testing.assert_allclose(got[b], ref, rtol=0.0, atol=1e-9)
            checked += 1
    assert checked == 96
    # a single vector gives one (28, 3) body
    shape, pose, _ = poses(2, 1)[0]
    np.testing.assert_allclose(fk_batch(shape, pose.to_vector()),
                               forward_kinematics(shape, pose).joints, atol=1e-9)


def test_fk_batch_tail_on_floor_and_out_of_reach_match() -> None:
    shape = MouseShape()
    pose = Pose()
    pose.tail_pitch[:] = -0.6  # every segment pushed down: the floor stops it
    pose.paws[0] = [0.3, 0.2, 0.1]  # far out of reach
    pose.paws[3] = [0.0, 0.0, 0.0]  # inside the hip's reach circle
    ref = forward_kinematics(shape, pose).joints
    got = fk_batch(shape, pose.to_vector()[None])[0]
    np.testing.assert_allclose(got, ref, atol=1e-9)
    assert np.all(got[[JOINTS.index(n) for n in ("tail_5", "tail_tip")], 2] > 0.0)


def _tail(shape: MouseShape, vector: np.ndarray) -> np.ndarray:
    return fk_batch(shape, vector)[[JOINTS.index(n) for n in TAIL]]


def _drag(shape: MouseShape, vector: np.ndarray, last: np.ndarray, first: int,
          keep: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """drag_tail, checked against the forward kinematics: the tail joints it returns are
    those of the vector it returns, and only the tail's yaws change."""
    out, tail = drag_tail(vector, _tail(shape, vector), last, first, keep)
    np.testing.assert_allclose(tail, _tail(shape, out), atol=1e-9)
    changed = np.flatnonzero(out != vector)
    assert set(changed) <= set(range(POSE_TAIL_YAW.start, POSE_TAIL_YAW.stop))
    return out, tail


def test_a_dragged_tail_stays_where_it_lay_when_the_body_turns_on_the_spot() -> None:
    """The body turns by 0.6 rad about its tail base: the pose's own tail would swing
    with it (its tip 4.8 cm), the dragged one stays where the last frame put it; kept
    at 0.5, it lies between the two."""
    shape = MouseShape()
    pose = Pose()
    pose.tail_yaw[:] = 0.1  # a curved tail
    before = pose.to_vector()
    last = _tail(shape, before)
    turned = before.copy()
    turned[POSE_HEADING] += 0.6
    swung = _tail(shape, turned)
    assert np.linalg.norm(swung[-1, :2] - last[-1, :2]) > 0.04
    _, dragged = _drag(shape, turned, last, 0)
    np.testing.assert_allclose(dragged[:, :2], last[:, :2], atol=1e-9)
    _, half = _drag(shape, turned, last, 0, keep=0.5)
    tip = np.linalg.norm(half[-1, :2] - last[-1, :2])
    assert 0.01 < tip < np.linalg.norm(swung[-1, :2] - last[-1, :2]) - 0.01


def test_a_dragged_tail_follows_its_base_along_itself() -> None:
    """The base moves 1 cm forward along a straight tail: each joint moves 1 cm along it;
    from segment 4 on, the first half keeps the pose's own (turned) yaws."""
    shape = MouseShape()
    before = Pose().to_vector()
    last = _tail(shape, before)
    moved = before.copy()
    moved[POSE_X] += 0.01 * math.cos(moved[POSE_HEADING])
    moved[POSE_Y] += 0.01 * math.sin(moved[POSE_HEADING])
    _, dragged = _drag(shape, moved, last, 0)
    np.testing.assert_allclose(dragged[:, :2] - last[:, :2],
                               np.broadcast_to(moved[[POSE_X, POSE_Y]] - before[[POSE_X, POSE_Y]],
                                               (len(TAIL), 2)), atol=1e-6)
    bent = moved.copy()
    bent[POSE_TAIL_YAW.start] += 0.3
    half, _ = _drag(shape, bent, last, 4)
    np.testing.assert_allclose(half[POSE_TAIL_YAW.start:POSE_TAIL_YAW.start + 4],
                               bent[POSE_TAIL_YAW.start:POSE_TAIL_YAW.start + 4], atol=1e-12)
    assert not np.allclose(half[POSE_TAIL_YAW], bent[POSE_TAIL_YAW])


def test_fk_batch_rejects_wrong_shapes() -> None:
    with pytest.raises(InputError, match="pose vectors have shape"):
        fk_batch(MouseShape(), np.zeros((3, 42)))


# ----------------------------------------------------------------------- the fit


def mean_error_mm(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.linalg.norm(a - b, axis=-1)) * 1000.0)


def test_fit_recovers_known_pose_from_exact_observations() -> None:
    camera = top_camera()
    errors = []
    for shape, pose, name in poses(3, 24):
        truth = forward_kinematics(shape, pose).keypoints
        px, z = observe(camera, truth)
        # exact data: tell the fitter so (tiny sigmas: the prior barely pulls)
        fitter = BodyFitter(shape, sigma_px=0.3, sigma_depth=0.0003)
        res = fitter.fit(Observation(px, np.ones(14), z, camera))
        err = mean_error_mm(res.keypoints, truth)
        assert err < 1.0, (name, err)
        assert res.residual_px < 1.5
        errors.append(err)
    assert np.mean(errors) < 0.3


def test_fit_with_noise_stays_within_a_few_millimetres() -> None:
    rng = np.random.default_rng(4)
    camera = top_camera()
    errors = []
    for shape, pose, _ in poses(5, 24):
        truth = forward_kinematics(shape, pose).keypoints
        px, z = observe(camera, truth, rng, noise_px=3.0, noise_m=0.003)
        res = BodyFitter(shape).fit(Observation(px, np.ones(14), z, camera))
        errors.append(mean_error_mm(res.keypoints, truth))
        assert res.vector.shape == (Pose.SIZE,)
        assert res.keypoints.shape == (14, 3) and res.joints.shape == (28, 3)
        np.testing.assert_allclose(res.keypoints, fk_batch(shape, res.vector)[
            [JOINTS.index(k) for k in KEYPOINTS]], atol=1e-12)
    assert np.mean(errors) < 6.0
    assert np.max(errors) < 9.0


def test_a_keypoints_own_sigma_depth_weighs_its_reading() -> None:
    """A nose depth reading 3 cm too near pulls the fit less when the nose's own
    sigma_depth says the map reads it badly; a bad sigma_depth is refused."""
    camera = top_camera()
    shape, pose, _ = poses(9, 1)[0]
    truth = forward_kinematics(shape, pose).keypoints
    px, z = observe(camera, truth)
    z[0] -= 0.03
    obs = Observation(px, np.ones(14), z, camera)
    per_keypoint = np.full(14, 0.001)
    nose_errors = []
    for nose_sigma in (0.001, 0.02):
        per_keypoint[0] = nose_sigma
        res = BodyFitter(shape, sigma_px=1.0, sigma_depth=per_keypoint).fit(obs)
        nose_errors.append(float(np.linalg.norm(res.keypoints[0] - truth[0])) * 1000.0)
    assert nose_errors[1] < 0.5 * nose_errors[0], nose_errors
    with pytest.raises(ParameterError, match="sigma_depth"):
        BodyFitter(shape, sigma_depth=np.full(13, 0.004))
    with pytest.raises(ParameterError, match="sigma_depth"):
        BodyFitter(shape, sigma_depth=-0.004)


def test_fit_without_depth_and_with_a_distorted_lens() -> None:
    """2D only: the fit still reprojects onto the pixels; ``locate`` handles the lens."""
    camera = top_camera(np.array([-0.12, 0.03, 0.001, -0.001, 0.0]))
    shape, pose, _ = poses(6, 1)[0]
    truth = forward_kinematics(shape, pose).keypoints
    px, _ = observe(camera, truth)
    res = BodyFitter(shape, sigma_px=0.5).fit(
        Observation(px, np.ones(14), np.full(14, np.nan), camera))
    assert res.residual_px < 1.5
    # the horizontal layout is recovered far better than the floor baseline would
    assert mean_error_mm(res.keypoints[:, :2], truth[:, :2]) < 6.0


def test_warm_start_converges_in_three_iterations_on_a_sequence() -> None:
    rng = np.random.default_rng(8)
    shape = sample_shape(rng)
    seq = script_sequence([("walk", 1.0), ("rear", 1.2), ("trot", 0.6)], shape, fps=30.0,
                          rng=rng, start=(0.0, 0.0, 0.5))
    camera = top_camera()
    fitter = BodyFitter(shape, sigma_px=0.3, sigma_depth=0.0003, iterations=3)
    previous = None
    errors = []
    for state in seq.states(shape):
        px, z = observe(camera, state.keypoints)
        res = fitter.fit(Observation(px, np.ones(14), z, camera), previous)
        if previous is not None:
            assert res.iterations <= 3
        previous = res.vector
        errors.append(mean_error_mm(res.keypoints, state.keypoints))
    assert max(errors) < 1.0, max(errors)


def test_a_curled_tail_seen_in_2d_stays_on_the_floor() -> None:
    """A curled tail with its middle seen 15 px off and no depth over it: without the
    tail height residual the fit lifted the tip (the 2D alone allows it); with the
    default it stays near the floor where the tail lies."""
    camera = top_camera()
    tail_base, tail_mid, tail_tip = (KEYPOINTS.index(k)
                                     for k in ("tail_base", "tail_mid", "tail_tip"))
    lifted: dict[float | None, list[float]] = {None: [], TAIL_HEIGHT_SIGMA: []}
    for shape, pose, _ in poses(12, 24):
        pose.tail_yaw[:] = 0.25
        pose.tail_pitch[:] = -0.3  # pressed onto the floor
        truth = forward_kinematics(shape, pose).keypoints
        px, z = observe(camera, truth)
        z[[tail_mid, tail_tip]] = np.nan
        d = px[tail_tip] - px[tail_base]
        px[tail_mid] += 15.0 * np.array([-d[1], d[0]]) / np.linalg.norm(d)
        for sigma, heights in lifted.items():
            fit = BodyFitter(shape, tail_height_sigma=sigma).fit(
                Observation(px, np.ones(14), z, camera))
            heights.append(1000.0 * (fit.keypoints[tail_tip, 2] - truth[tail_tip, 2]))
    free, held = np.mean(lifted[None]), np.mean(lifted[TAIL_HEIGHT_SIGMA])
    assert held < 4.0 and held < 0.5 * free, (held, free)


def test_fit_respects_the_joint_limits() -> None:
    rng = np.random.default_rng(9)
    camera = top_camera()
    prior = pose_prior()
    for shape, pose, _ in poses(10, 8):
        truth = forward_kinematics(shape, pose).keypoints
        px, z = observe(camera, truth, rng, noise_px=25.0, noise_m=0.03)  # wild data
        for previous in (None, pose.to_vector()):
            res = BodyFitter(shape).fit(Observation(px, np.ones(14), z, camera), previous)
            assert prior.contains(res.vector), res.vector
            assert -math.pi <= res.vector[3] < math.pi


def test_fit_ignores_zero_weights_and_nan_pixels() -> None:
    camera = top_camera()
    shape, pose, _ = poses(12, 1)[0]
    truth = forward_kinematics(shape, pose).keypoints
    px, z = observe(camera, truth)
    weights = np.ones(14)
    garbage = px.copy()
    hidden = [KEYPOINTS.index(k) for k in ("left_forepaw", "tail_tip", "head")]
    garbage[hidden] = 1e4  # would wreck the fit if used
    weights[hidden] = 0.0
    garbage[KEYPOINTS.index("right_ear")] = np.nan  # NaN pixel: ignored as well
    res = BodyFitter(shape, sigma_px=0.5, sigma_depth=0.0005).fit(
        Observation(garbage, weights, z, camera))
    errs = np.linalg.norm(res.keypoints - truth, axis=1) * 1000.0
    seen = np.setdiff1d(np.arange(14), [*hidden, KEYPOINTS.index("right_ear")])
    assert errs[seen].mean() < 2.0
    assert errs.max() < 25.0  # the filled-in ones where the body says
    assert res.residual_px < 1.5


def test_correlated_prior_places_unseen_forepaws_better_than_a_diagonal_one() -> None:
    """Forepaws a top camera does not see: the prior's correlation with the seen body
    (a walking mouse's paws on the floor, a rearing one's raised) places them; the
    diagonal prior puts them at the height averaged over all behaviours."""
    from dataclasses import replace

    camera = top_camera()
    prior = pose_prior()
    assert prior.correlation is not None
    diagonal = replace(prior, correlation=None)
    forepaws = [KEYPOINTS.index(k) for k in ("left_forepaw", "right_forepaw")]
    weights = np.ones(14)
    weights[forepaws] = 0.0
    errors: dict[str, list[float]] = {"correlated": [], "diagonal": []}
    for shape, pose, _ in poses(21, 32):
        truth = forward_kinematics(shape, pose).keypoints
        px, z = observe(camera, truth)
        z[forepaws] = np.nan
        for name, p in (("correlated", prior), ("diagonal", diagonal)):
            res = BodyFitter(shape, p).fit(Observation(px, weights, z, camera))
            errors[name].append(mean_error_mm(res.keypoints[forepaws], truth[forepaws]))
    correlated, diag = np.mean(errors["correlated"]), np.mean(errors["diagonal"])
    assert correlated < 0.7 * diag, (correlated, diag)
    assert correlated < 12.0, correlated


def test_fit_validates_its_inputs() -> None:
    camera = top_camera()
    fitter = BodyFitter(MouseShape())
    with pytest.raises(InputError) as info:
        fitter.fit(Observation(np.zeros((13, 2)), np.ones(12), np.ones(14), camera))
    assert "pixels have shape" in str(info.value) and "weights have shape" in str(info.value)
    with pytest.raises(InputError, match="previous pose"):
        fitter.fit(Observation(np.zeros((14, 2)), np.ones(14), np.ones(14), camera),
                   np.zeros(40))
    with pytest.raises(ParameterError) as perr:
        BodyFitter(MouseShape(), sigma_px=0.0, iterations=-1, temporal_sigma=np.ones(3),
                   tail_height_sigma=-0.01)
    message = str(perr.value)
    assert "sigma_px" in message and "iterations" in message and "temporal_sigma" in message
    assert "tail_height_sigma -0.01" in message


def test_locate_inverts_project_with_depth_and_at_a_height() -> None:
    camera = top_camera(np.array([-0.1, 0.02, 0.0, 0.0, 0.0]))
    rng = np.random.default_rng(13)
    pts = np.column_stack([rng.uniform(-0.2, 0.2, (20, 2)), rng.uniform(0.0, 0.08, 20)])
    px, z = camera.project(pts)
    np.testing.assert_allclose(locate(camera, px, z), pts, atol=1e-8)
    depth = np.where(np.arange(20) % 2 == 0, z, np.nan)
    at_h = locate(camera, px, depth, height=0.03)
    odd = np.arange(20) % 2 == 1
    np.testing.assert_allclose(at_h[odd, 2], 0.03, atol=1e-9)
    np.testing.assert_allclose(camera.project(at_h)[0], px, atol=1e-6)


# ----------------------------------------------------------------------- body size


def test_estimate_scale_from_clean_and_noisy_points() -> None:
    rng = np.random.default_rng(14)
    for scale in (0.88, 1.0, 1.12):
        shape = MouseShape(scale=scale)
        frames = []
        for i in range(20):
            pose, _ = sample_pose(rng, shape, behavior=BEHAVIORS[i % len(BEHAVIORS)])
            frames.append(forward_kinematics(shape, pose).keypoints)
        pts = np.array(frames)
        assert estimate_scale(pts) == pytest.approx(scale, abs=1e-6)
        pts[::2, KEYPOINTS.index("nose")] = np.nan  # missing points are skipped
        assert estimate_scale(pts) == pytest.approx(scale, abs=1e-6)
        noisy = pts + rng.normal(0.0, 0.002, pts.shape)
        assert estimate_scale(noisy) == pytest.approx(scale, rel=0.06)
    big = np.array([forward_kinematics(MouseShape(scale=1.4), Pose()).keypoints])
    assert estimate_scale(big) == SCALE_RANGE[1]
    assert estimate_scale(np.full((3, 14, 3), np.nan)) == 1.0
    with pytest.raises(InputError, match="observed points have shape"):
        estimate_scale(np.zeros((3, 12, 3)))


def test_estimate_tail_length() -> None:
    shape = MouseShape(tail_length=0.09)
    pose = Pose()
    pose.tail_pitch[0] = 0.35  # level with the rump: a straight tail
    pts = forward_kinematics(shape, pose).keypoints[None]
    assert estimate_tail_length(pts) == pytest.approx(0.09, abs=1e-4)
    short = MouseShape(tail_length=0.04)
    assert estimate_tail_length(forward_kinematics(short, pose).keypoints[None]) == \
        TAIL_LENGTH_RANGE[0]
    assert estimate_tail_length(np.full((2, 14, 3), np.nan)) == MouseShape().tail_length
