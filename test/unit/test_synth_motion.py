"""Tests of the behaviour generators and the pose prior (mouse_lifter_ros.core.synth.motion)
and of the DANNCE reference numbers (mouse_lifter_ros.core.synth.priors)."""

from __future__ import annotations

import functools
import itertools
from pathlib import Path

import numpy as np
import pytest

from mouse_lifter_ros.core.body import (
    BEHAVIOR_CLASSES,
    BEHAVIORS,
    CLASSES,
    JOINTS,
    TAIL,
    MouseShape,
    Pose,
    bone_lengths,
    forward_kinematics,
    pose_prior,
)
from mouse_lifter_ros.core.errors import InputError, ParameterError
from mouse_lifter_ros.core.synth.body import sample_shape
from mouse_lifter_ros.core.synth.motion import (
    Arena,
    Sequence,
    generate_sequence,
    sample_pose,
    script_sequence,
)

FPS = 30.0
ARENA = Arena()
DANNCE = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "dannce-3d"
DANNCE_FILE = DANNCE / "markerless_mouse_1_label3d_dannce.mat"

J = {n: i for i, n in enumerate(JOINTS)}
PAWS = [J[n] for n in ("left_forepaw", "right_forepaw", "left_hindpaw", "right_hindpaw")]
LIMBS = [*PAWS, *(J[n] for n in ("left_knee", "right_knee", "left_elbow", "right_elbow"))]
OTHER = [i for i in range(len(JOINTS)) if i not in LIMBS]
TRUNK = [J[n] for n in ("tail_base", "lumbar_spine", "spine_center", "neck")]
TAIL_J = [J[n] for n in TAIL[1:]]
NOSE = J["nose"]
#: A smallish and a largish mouse.
SHAPES = (MouseShape(scale=0.88, girth=1.2, tail_length=0.07),
          MouseShape(scale=1.12, girth=0.9, head_size=1.05, tail_length=0.095))


@functools.cache
def scripted(behavior: str, shape_index: int = 0) -> tuple[Sequence, np.ndarray]:
    """A 2 s bout of ``behavior`` after 0.5 s of walking; (sequence, joints (N, 28, 3))."""
    shape = SHAPES[shape_index]
    rng = np.random.default_rng(100 + BEHAVIORS.index(behavior) + 10 * shape_index)
    seq = script_sequence([("walk", 0.5), (behavior, 2.0)], shape, fps=FPS, rng=rng,
                          start=(-0.03, 0.02, 0.4))
    return seq, np.array([s.joints for s in seq.states(shape)])


@functools.cache
def generated(seed: int) -> tuple[MouseShape, Sequence, np.ndarray]:
    """20 s of random bouts for a random mouse."""
    rng = np.random.default_rng(seed)
    shape = sample_shape(rng)
    seq = generate_sequence(rng, shape, seconds=20.0, fps=FPS)
    return shape, seq, np.array([s.joints for s in seq.states(shape)])


def all_sequences() -> list[tuple[MouseShape, Sequence, np.ndarray]]:
    out = [generated(seed) for seed in (1, 2, 3)]
    out += [(SHAPES[i], *scripted(b, i)) for b in BEHAVIORS for i in (0, 1)]
    return out


def bout(seq: Sequence, label: str) -> np.ndarray:
    return np.array([lab == label for lab in seq.labels])


def test_behaviour_names_and_classes() -> None:
    assert len(set(BEHAVIORS)) == len(BEHAVIORS) == 8
    assert set(BEHAVIOR_CLASSES) == set(BEHAVIORS)
    assert set(BEHAVIOR_CLASSES.values()) == set(CLASSES)
    assert BEHAVIOR_CLASSES["rear_wall"] == "rearing" and BEHAVIOR_CLASSES["rest"] == "stationary"


@pytest.mark.parametrize("behavior", BEHAVIORS)
def test_each_behaviour_gives_finite_labelled_frames(behavior: str) -> None:
    seq, joints = scripted(behavior)
    vectors = seq.vectors()
    assert vectors.shape == (len(seq), Pose.SIZE) and np.all(np.isfinite(vectors))
    assert np.all(np.isfinite(joints))
    assert len(seq.labels) == len(seq.poses)
    assert set(seq.labels) <= {"walk", behavior}
    assert seq.labels[0] == "walk" and seq.labels[-1] == behavior
    n_bout = int(bout(seq, behavior).sum())
    if behavior == "rear_wall":  # walking to the wall comes on top of the 2 s
        assert n_bout == pytest.approx(2.0 * FPS, abs=3) and len(seq) > 2.5 * FPS
    elif behavior != "walk":
        assert n_bout == pytest.approx(2.0 * FPS, abs=8)  # give or take the crossfade
        assert len(seq) == round(2.5 * FPS)
    assert np.allclose(seq.times[:3], [0.0, 1 / FPS, 2 / FPS])


def test_bone_lengths_are_constant_over_whole_sequences() -> None:
    for shape, seq, _ in all_sequences():
        lengths = np.array([bone_lengths(s) for s in seq.states(shape)])
        assert np.max(np.abs(lengths - lengths[0])) < 1e-9


def test_motion_is_smooth_including_bout_transitions() -> None:
    """At 30 fps: trunk, head and tail move under 2 cm a frame; limbs (paws in swing at up
    to ~0.5 m/s and the knees and elbows that follow them) under 3 cm."""
    transitions = 0
    for _, seq, joints in all_sequences():
        step = np.linalg.norm(np.diff(joints, axis=0), axis=2)
        assert step[:, OTHER].max() < 0.020
        assert step[:, LIMBS].max() < 0.030
        transitions += sum(a != b for a, b in itertools.pairwise(seq.labels))
    assert transitions > 20


def test_the_mouse_stays_inside_the_walls_and_above_the_floor() -> None:
    for shape, seq, joints in all_sequences():
        assert np.all(np.abs(joints[:, :, :2]) <= ARENA.half), seq.labels[0]
        z = joints[:, :, 2]
        assert z[:, TRUNK].min() > 0.008
        assert z[:, NOSE].min() > 0.003
        assert z[:, PAWS].min() >= 0.0018 * shape.scale  # a paw's vertical radius
        assert z[:, TAIL_J].min() >= 0.0006 * shape.scale - 1e-12


def test_rearing_raises_the_nose_and_walking_keeps_it_low() -> None:
    for i in (0, 1):
        for behavior in ("rear", "rear_wall"):
            seq, joints = scripted(behavior, i)
            nose = joints[bout(seq, behavior), NOSE, 2]
            assert nose.max() > 0.06 and np.median(nose) > 0.05
            assert nose.max() < 0.105
        seq, joints = scripted("walk", i)
        assert joints[:, NOSE, 2].max() < 0.03
        assert joints[:, NOSE, 2].min() > 0.008
    for _, seq, joints in all_sequences():
        walking = bout(seq, "walk") | bout(seq, "trot")
        assert joints[walking, NOSE, 2].max() < 0.03


@pytest.mark.parametrize(("behavior", "lo", "hi"), [("walk", 0.08, 0.15), ("trot", 0.20, 0.35)])
def test_gaits_move_at_their_speeds(behavior: str, lo: float, hi: float) -> None:
    """In an open field (no walls to steer away from) the tail base keeps the gait's speed."""
    speeds = []
    for seed in range(4):
        rng = np.random.default_rng(seed)
        seq = script_sequence([(behavior, 3.0)], SHAPES[seed % 2], fps=FPS, rng=rng,
                              arena=Arena(size=(4.0, 4.0)), start=(0.0, 0.0, 0.0))
        xy = seq.vectors()[:, :2]
        speeds.append(np.linalg.norm(np.diff(xy, axis=0), axis=1) * FPS)
    v = np.concatenate(speeds)
    assert lo <= np.median(v) <= hi
    assert np.mean((v >= lo - 0.005) & (v <= hi + 0.005)) > 0.95
    assert v.max() < hi + 0.02


def test_stance_paws_do_not_slide() -> None:
    for behavior in ("walk", "trot", "turn"):
        for i in (0, 1):
            seq, joints = scripted(behavior, i)
            floor = 0.0018 * SHAPES[i].scale + 0.0003
            paws = joints[:, PAWS]
            down = (paws[:-1, :, 2] < floor + 3e-4) & (paws[1:, :, 2] < floor + 3e-4)
            moved = np.linalg.norm(np.diff(paws, axis=0), axis=2)
            assert down.sum() > 100 and moved[down].max() < 0.002, behavior
            # ...while in the heading frame the stance paws do move (backwards).
            if behavior != "turn":
                x = seq.vectors()[:, 31:43].reshape(-1, 4, 3)[:, :, 0]
                assert np.median(np.diff(x, axis=0)[down]) < -0.001


def test_rear_wall_puts_the_forepaws_on_the_wall() -> None:
    for i in (0, 1):
        seq, joints = scripted("rear_wall", i)
        on = np.flatnonzero(bout(seq, "rear_wall"))
        hold = on[len(on) // 3: 2 * len(on) // 3]  # the middle of the bout
        fore = joints[hold][:, PAWS[:2]]
        gap = np.min(ARENA.half - np.abs(fore[..., :2]), axis=-1)  # to the nearest wall
        assert gap.min() >= 0.0 and gap.max() < 0.004
        assert fore[..., 2].min() >= 0.04 and fore[..., 2].max() <= 0.08
        # ...with the hind paws on the floor (one may be stepping closer).
        hind_z = joints[hold][:, PAWS[2:], 2]
        assert hind_z.min(axis=1).max() < 0.003 and np.mean(hind_z < 0.003) > 0.8


def test_generation_is_deterministic() -> None:
    shape = SHAPES[0]
    a = generate_sequence(np.random.default_rng(7), shape, seconds=3.0, fps=FPS)
    b = generate_sequence(np.random.default_rng(7), shape, seconds=3.0, fps=FPS)
    c = generate_sequence(np.random.default_rng(8), shape, seconds=3.0, fps=FPS)
    assert len(a) == len(b) == 90
    assert np.array_equal(a.vectors(), b.vectors()) and a.labels == b.labels
    assert not np.array_equal(a.vectors(), c.vectors())
    pa = sample_pose(np.random.default_rng(9), shape)
    pb = sample_pose(np.random.default_rng(9), shape)
    assert np.array_equal(pa[0].to_vector(), pb[0].to_vector()) and pa[1] == pb[1]


def test_generated_bouts_and_choices() -> None:
    _, seq, _ = generated(1)
    assert len(seq) == round(20.0 * FPS)
    assert len(set(seq.labels)) >= 5
    only = generate_sequence(np.random.default_rng(3), SHAPES[1], seconds=4.0, fps=15.0,
                             behaviors=["groom", "sniff"])
    assert set(only.labels) <= {"groom", "sniff"} and len(only) == 60
    start = script_sequence([("rest", 1.0)], SHAPES[0], fps=FPS, rng=np.random.default_rng(0),
                            start=(0.1, -0.05, 1.0))
    assert np.allclose(start.poses[0].position[:2], [0.1, -0.05], atol=1e-12)
    assert start.poses[0].heading == pytest.approx(1.0, abs=1e-12)


def test_bad_arguments_are_named() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ParameterError, match=r"'hop'.*walk"):
        generate_sequence(rng, SHAPES[0], seconds=1.0, fps=FPS, behaviors=["walk", "hop"])
    with pytest.raises(ParameterError, match=r"fps.*seconds|seconds.*fps"):
        generate_sequence(rng, SHAPES[0], seconds=-1.0, fps=0.0)
    with pytest.raises(ParameterError, match="durations"):
        script_sequence([("walk", 0.0)], SHAPES[0], fps=FPS, rng=rng)
    with pytest.raises(ParameterError, match="start"):
        script_sequence([("walk", 1.0)], SHAPES[0], fps=FPS, rng=rng, start=(0.3, 0.0, 0.0))
    with pytest.raises(ParameterError, match="arena"):
        sample_pose(rng, SHAPES[0], arena=Arena(size=(0.1, 0.5)))
    with pytest.raises(ParameterError, match="'fly'"):
        sample_pose(rng, SHAPES[0], behavior="fly")


def test_sample_pose_gives_every_behaviour_inside_the_arena() -> None:
    rng = np.random.default_rng(11)
    seen = set()
    for k in range(64):
        shape = sample_shape(rng)
        pose, label = sample_pose(rng, shape, behavior=BEHAVIORS[k % 8] if k < 32 else None)
        seen.add(label)
        if k < 32:
            assert label == BEHAVIORS[k % 8]
        joints = forward_kinematics(shape, pose).joints
        assert np.all(np.abs(joints[:, :2]) <= ARENA.half)
        assert joints[TRUNK, 2].min() > 0.008 and joints[PAWS, 2].min() > 0.0015
        if label in ("rear", "rear_wall"):
            assert joints[NOSE, 2] > 0.05
        if label in ("walk", "trot", "turn", "rest"):
            assert joints[NOSE, 2] < 0.03
    assert seen == set(BEHAVIORS)


def test_prior_limits_contain_every_sampled_and_generated_pose() -> None:
    prior = pose_prior()
    assert pose_prior() is prior  # computed once
    rng = np.random.default_rng(12)
    draws = np.array([sample_pose(rng, sample_shape(rng))[0].to_vector() for _ in range(150)])
    assert prior.contains(draws)
    for _, seq, _ in all_sequences():
        assert prior.contains(seq.vectors())
    free = np.asarray(prior.free, dtype=bool)
    assert free.sum() == 3 and free[[0, 1, 3]].all()
    assert np.all(np.isinf(prior.lower[free])) and np.all(np.isinf(prior.std[free]))
    assert np.all(np.isfinite(prior.lower[~free])) and np.all(prior.lower < prior.upper)
    assert np.all(prior.std[~free] > 0) and np.all(np.isfinite(prior.std[~free]))
    # The Gaussian sits inside the limits and scores typical poses better than odd ones.
    assert np.all((prior.mean[~free] > prior.lower[~free])
                  & (prior.mean[~free] < prior.upper[~free]))
    assert prior.neg_log_prob(prior.mean) == pytest.approx(0.0)
    typical = np.median([prior.neg_log_prob(v) for v in draws])
    odd = draws[0].copy()
    odd[4:9] = prior.upper[4:9]  # every spine joint bent to its limit
    assert prior.neg_log_prob(odd) > 3 * typical
    far = draws[0].copy()
    far[[0, 1, 3]] += [5.0, -3.0, 2.0]  # position and heading are free
    assert prior.neg_log_prob(far) == pytest.approx(prior.neg_log_prob(draws[0]))
    wild = np.full(Pose.SIZE, 10.0)
    clipped = prior.clip(wild)
    assert prior.contains(clipped) and clipped[0] == 10.0
    assert prior.clip(draws).shape == draws.shape


def test_prior_correlation_is_a_valid_one_that_ties_forepaws_to_the_rump() -> None:
    prior = pose_prior()
    corr = prior.correlation
    assert corr is not None and corr.shape == (43, 43)
    np.testing.assert_allclose(corr, corr.T, atol=1e-12)
    np.testing.assert_allclose(np.diag(corr), 1.0)
    free = np.asarray(prior.free, dtype=bool)
    np.testing.assert_array_equal(corr[free][:, ~free], 0.0)
    assert np.linalg.eigvalsh(corr).min() > -1e-9  # positive semi-definite
    # rearing lifts the rump (spine pitch 0) and the forepaws (targets' z) together
    rump, fore_z = 4, [31 + 2, 31 + 5]
    assert np.all(corr[rump, fore_z] > 0.5), corr[rump, fore_z]


# ---------------------------------------------------------------------------------------
# Against real 3D labels (DANNCE), when the shared data is there.

needs_dannce = pytest.mark.skipif(not DANNCE_FILE.is_file(),
                                  reason=f"DANNCE 3D labels not found at {DANNCE}")


@functools.cache
def dannce_points() -> np.ndarray:
    from mouse_lifter_ros.core.synth.priors import load_dannce_3d

    return load_dannce_3d(DANNCE_FILE)


@needs_dannce
def test_dannce_file_reads_as_metres() -> None:
    from mouse_lifter_ros.core.synth.priors import DANNCE_JOINTS, dannce_height_ranges

    pts = dannce_points()
    assert pts.shape == (81, 22, 3) and len(DANNCE_JOINTS) == 22
    heights = dannce_height_ranges(pts)
    assert heights["Snout"][1] == pytest.approx(0.034, abs=0.003)
    assert heights["SpineM"][0] == pytest.approx(0.023, abs=0.003)
    assert heights["HindpawL"][2] < 0.01  # the hind paws stay on the floor


def test_load_dannce_names_a_bad_file(tmp_path: Path) -> None:
    from mouse_lifter_ros.core.synth.priors import load_dannce_3d

    bad = tmp_path / "labels.mat"
    bad.write_bytes(b"not a mat file at all")
    with pytest.raises(InputError, match=r"labels\.mat"):
        load_dannce_3d(bad)
    with pytest.raises(InputError, match=r"missing\.mat"):
        load_dannce_3d(tmp_path / "missing.mat")
    import scipy.io

    other = tmp_path / "other.mat"
    scipy.io.savemat(str(other), {"x": np.zeros(3)})
    with pytest.raises(InputError, match=r"other\.mat.*label3d"):
        load_dannce_3d(other)


@needs_dannce
def test_default_bone_lengths_agree_with_dannce() -> None:
    from mouse_lifter_ros.core.synth.priors import dannce_bone_lengths

    d = dannce_bone_lengths(dannce_points())
    st = forward_kinematics(MouseShape(), Pose())

    def ours(*names: str) -> float:  # path length through the joints, metres
        pts = [st.joint(n) for n in names]
        return float(sum(np.linalg.norm(b - a) for a, b in itertools.pairwise(pts)))

    pairs = {
        "nose-neck": (ours("nose", "neck"), d[("Snout", "SpineF")]),
        "ear spacing": (ours("left_ear", "right_ear"), d[("EarL", "EarR")]),
        "left ear-nose": (ours("left_ear", "nose"), d[("EarL", "Snout")]),
        "right ear-nose": (ours("right_ear", "nose"), d[("EarR", "Snout")]),
        "left ear-neck": (ours("left_ear", "neck"), d[("EarL", "SpineF")]),
        "upper arm": (ours("left_shoulder", "left_elbow"), d[("ElbowL", "ShoulderL")]),
        "forearm": (ours("left_elbow", "left_forepaw"),
                    d[("WristL", "ElbowL")] + d[("ForepawL", "WristL")]),
        "shoulder-neck": (ours("left_shoulder", "neck"), d[("ShoulderL", "SpineF")]),
        "knee-hind paw": (ours("left_knee", "left_hindpaw"),
                          d[("AnkleL", "KneeL")] + d[("HindpawL", "AnkleL")]),
        "lumbar-tail base": (ours("lumbar_spine", "tail_base"), d[("SpineM", "Tail(base)")]),
        "neck-tail base": (ours("neck", "spine_center", "lumbar_spine", "tail_base"),
                           d[("SpineF", "SpineM")] + d[("SpineM", "Tail(base)")]),
    }
    for name, (model, real) in pairs.items():
        assert abs(model / real - 1.0) < 0.25, f"{name}: {model * 1e3:.1f} vs {real * 1e3:.1f} mm"


@needs_dannce
def test_rearing_reaches_dannce_nose_heights() -> None:
    from mouse_lifter_ros.core.synth.priors import DANNCE_JOINTS

    pts = dannce_points()
    dannce_max = float(np.nanmax(pts[:, DANNCE_JOINTS.index("Snout"), 2]))
    for i in (0, 1):
        seq, joints = scripted("rear", i)
        ours = joints[bout(seq, "rear"), NOSE, 2].max()
        assert 0.060 <= ours <= dannce_max + 0.020


def test_stored_pose_prior_is_current() -> None:
    """models/body/pose_prior.npz is what compute_pose_prior() draws today; if this
    fails after a change to the motion model, rewrite it:
    ``tools/ros-env.sh python -c "from mouse_lifter_ros.core.synth.motion import
    write_pose_prior; write_pose_prior()"``."""
    from mouse_lifter_ros.core.body import PRIOR_FILE, pose_prior
    from mouse_lifter_ros.core.synth.motion import compute_pose_prior

    assert PRIOR_FILE.is_file()
    stored, fresh = pose_prior(), compute_pose_prior()
    for name in ("mean", "std", "lower", "upper", "free"):
        assert np.array_equal(getattr(stored, name), getattr(fresh, name)), name
