"""Tests of the articulated body model (mouse_lifter_ros.core.synth.body) and the keypoint
name maps (mouse_lifter_ros.core.keypoint_maps)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mouse_lifter_ros.core.body import (
    BONES,
    JOINTS,
    KEYPOINTS,
    SKELETON_EDGES,
    TAIL,
    MouseShape,
    Pose,
    bone_lengths,
    forward_kinematics,
)
from mouse_lifter_ros.core.errors import InputError
from mouse_lifter_ros.core.keypoint_maps import (
    KEYPOINT_MAPS,
    KEYPOINT_SETS,
    keypoint_map,
    parse_map,
    unmapped,
)
from mouse_lifter_ros.core.synth.body import (
    EAR,
    FUR,
    SKIN,
    Ellipsoids,
    body_ellipsoids,
    keypoint_surface_offsets,
    sample_shape,
)

FORE = (0.012, 0.015)  # shoulder-elbow, elbow-paw at scale 1 (body.py's _FORELIMB)
HIND = (0.016, 0.022)
LIMBS = (("left_shoulder", "left_forepaw", FORE), ("right_shoulder", "right_forepaw", FORE),
         ("left_hip", "left_hindpaw", HIND), ("right_hip", "right_hindpaw", HIND))


def random_pose(rng: np.random.Generator, wild: bool = False) -> Pose:
    """A random pose; ``wild`` draws bends and paw targets far outside anatomy."""
    k = 3.0 if wild else 1.0
    return Pose(
        position=np.array([rng.uniform(-0.2, 0.2), rng.uniform(-0.2, 0.2),
                           rng.uniform(0.0, 0.05)]),
        heading=float(rng.uniform(-math.pi, math.pi)),
        spine_pitch=rng.normal(0.0, 0.4 * k, 5), spine_yaw=rng.normal(0.0, 0.3 * k, 5),
        head_roll=float(rng.normal(0.0, 0.3 * k)), tail_pitch=rng.normal(0.0, 0.4 * k, 8),
        tail_yaw=rng.normal(0.0, 0.4 * k, 8),
        paws=np.column_stack([rng.uniform(-0.05, 0.12, 4) * k, rng.uniform(-0.04, 0.04, 4) * k,
                              rng.uniform(0.0, 0.08, 4) * k]))


def arena_to_heading(pose: Pose, point: np.ndarray) -> np.ndarray:
    """An arena point in the pose's heading frame (origin on the floor under the root)."""
    c, s = math.cos(pose.heading), math.sin(pose.heading)
    d = point[:2] - pose.position[:2]
    return np.array([c * d[0] + s * d[1], -s * d[0] + c * d[1], point[2]])


def test_bones_keep_their_lengths_in_any_pose_and_shape() -> None:
    rng = np.random.default_rng(0)
    for _ in range(8):
        shape = sample_shape(rng)
        ref = bone_lengths(forward_kinematics(shape, Pose()))
        assert ref.shape == (len(BONES),) and np.all(ref > 0.0)
        for _ in range(40):
            lengths = bone_lengths(forward_kinematics(shape, random_pose(rng, wild=True)))
            assert np.max(np.abs(lengths - ref)) < 1e-9
    # Different shapes do have different bones (the check above is not vacuous); the
    # tail's length is its own parameter, not scaled.
    a = bone_lengths(forward_kinematics(MouseShape(scale=0.9), Pose()))
    b = bone_lengths(forward_kinematics(MouseShape(scale=1.1), Pose()))
    in_tail = np.array([p in TAIL and c in TAIL for p, c in BONES])
    assert np.all(b[~in_tail] > a[~in_tail]) and np.allclose(b[in_tail], a[in_tail])


def test_skeleton_names_are_consistent() -> None:
    assert len(set(JOINTS)) == len(JOINTS) and set(KEYPOINTS) <= set(JOINTS)
    assert all(a in JOINTS and b in JOINTS for a, b in BONES)
    assert all(0 <= i < len(KEYPOINTS) and 0 <= j < len(KEYPOINTS) for i, j in SKELETON_EDGES)
    # Every joint but the root hangs off exactly one parent: the bones form a tree.
    children = [c for _, c in BONES]
    assert sorted(children) == sorted(j for j in JOINTS if j != "tail_base")


def test_limbs_reach_reachable_targets_exactly() -> None:
    rng = np.random.default_rng(1)
    shape = MouseShape(scale=1.07)
    for _ in range(30):
        pose = random_pose(rng)
        st = forward_kinematics(shape, pose)
        for i, (root_name, _, (l1, l2)) in enumerate(LIMBS):
            lo, hi = abs(l1 - l2) * shape.scale, (l1 + l2) * shape.scale
            direction = rng.normal(size=3)
            direction /= np.linalg.norm(direction)
            target = st.joint(root_name) + direction * rng.uniform(lo + 1e-4, hi - 1e-4)
            pose.paws[i] = arena_to_heading(pose, target)
        st = forward_kinematics(shape, pose)  # the limb roots do not depend on the paws
        for i, (_, paw_name, _) in enumerate(LIMBS):
            target = pose.paws[i]
            assert np.allclose(arena_to_heading(pose, st.joint(paw_name)), target, atol=1e-9)


def test_unreachable_targets_are_clamped_along_their_direction() -> None:
    shape = MouseShape()
    pose = Pose(paws=np.array([[0.30, 0.2, 0.0], [0.0, -0.3, 0.1], [-0.3, 0.1, 0.0],
                               [0.01, -0.25, 0.2]]))
    st = forward_kinematics(shape, pose)
    for i, (root_name, paw_name, (l1, l2)) in enumerate(LIMBS):
        root = arena_to_heading(pose, st.joint(root_name))
        paw = arena_to_heading(pose, st.joint(paw_name))
        want = pose.paws[i] - root
        got = paw - root
        assert np.linalg.norm(got) == pytest.approx(l1 + l2, abs=1e-5)  # fully stretched
        cos = float(got @ want) / (np.linalg.norm(got) * np.linalg.norm(want))
        assert cos == pytest.approx(1.0, abs=1e-9)


def test_tail_never_goes_below_the_floor() -> None:
    rng = np.random.default_rng(2)
    for _ in range(200):
        shape = sample_shape(rng)
        pose = random_pose(rng, wild=True)
        pose.position[2] = rng.uniform(0.0, 0.02)
        pose.tail_pitch = rng.uniform(-1.5, 0.2, 8)  # pointing into the floor
        z = forward_kinematics(shape, pose).joints[[JOINTS.index(n) for n in TAIL[1:]], 2]
        assert np.all(z >= 0.0006 * shape.scale - 1e-12)  # at least the tip's radius


def test_keypoints_lie_within_their_surface_offset_of_the_body() -> None:
    """Each keypoint is inside the surface grown by its offset (a bound on its depth
    under, or height over, the nearest surface: the renderer's visibility test)."""
    rng = np.random.default_rng(7)
    for _ in range(40):
        shape = sample_shape(rng)
        state = forward_kinematics(shape, random_pose(rng))
        ell = body_ellipsoids(shape, state)
        off = keypoint_surface_offsets(shape)
        for k, p in enumerate(state.keypoints):
            local = np.einsum("pji,pj->pi", ell.axes, p - ell.centers)
            q = np.sum((local / (ell.radii + off[k] + 1e-9)) ** 2, axis=1)
            assert q.min() <= 1.0, (KEYPOINTS[k], q.min())


def _top_outline(ell: Ellipsoids, keep: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Half-width (max |y|, m) at each ``xs`` of the top-view outline of the ellipsoids
    ``keep``: each one's shadow straight down is the ellipse of the xy block of its
    shape matrix A diag(r^2) A^T."""
    ys = np.linspace(-0.04, 0.04, 401)
    gx, gy = np.meshgrid(xs, ys, indexing="ij")
    d_all = np.stack([gx.ravel(), gy.ravel()], axis=1)
    covered = np.zeros(len(d_all), dtype=bool)
    for i in np.flatnonzero(keep):
        a, r = ell.axes[i], ell.radii[i]
        inv = np.linalg.inv(((a * r**2) @ a.T)[:2, :2])
        d = d_all - ell.centers[i, :2]
        covered |= np.einsum("ni,ij,nj->n", d, inv, d) <= 1.0
    return np.asarray(np.abs(np.where(covered.reshape(gx.shape), gy, 0.0)).max(axis=1))


def test_body_is_pear_shaped_from_above_with_ears_beside_the_head() -> None:
    shape = MouseShape()
    state = forward_kinematics(shape, Pose())  # heading 0: the body along +x
    ell = body_ellipsoids(shape, state)
    xs = np.linspace(-0.03, 0.1, 521)
    half = _top_outline(ell, ell.material == FUR, xs)
    x_of = {name: float(state.joint(name)[0]) for name in
            ("tail_base", "lumbar_spine", "spine_center", "neck", "nose")}
    widest = float(xs[np.argmax(half)])
    # broadest over the haunches, behind the body's middle; narrower shoulders
    assert x_of["lumbar_spine"] - 0.006 < widest < x_of["spine_center"]
    at = {name: float(np.interp(x, xs, half)) for name, x in x_of.items()}
    assert at["neck"] < 0.8 * half.max()
    # the rump tapers to the tail base, the head to the nose
    assert at["tail_base"] < 0.45 * half.max()
    assert np.interp(x_of["nose"] - 0.005, xs, half) < 0.3 * half.max()
    # the ears stick out sideways beyond the fur's outline as lobes
    ears = _top_outline(ell, ell.material == EAR, xs)
    assert float(np.max(ears - half)) > 0.003


def test_drawn_tail_is_thick_at_the_root_and_tapers() -> None:
    shape = MouseShape()
    state = forward_kinematics(shape, Pose())
    ell = body_ellipsoids(shape, state)
    tail = ell.radii[ell.material == SKIN][:8, 1]  # the 8 tail segments come first
    assert np.all(np.diff(tail) < 0)
    assert tail[0] >= 0.0018 and tail[-1] <= 0.0007


def test_pose_vector_round_trip() -> None:
    rng = np.random.default_rng(3)
    v = rng.normal(size=Pose.SIZE)
    pose = Pose.from_vector(v)
    assert np.array_equal(pose.to_vector(), v)
    assert pose.paws.shape == (4, 3) and pose.heading == v[3]
    copy = pose.copy()
    copy.spine_pitch[0] += 1.0
    assert pose.spine_pitch[0] == v[4]  # a deep copy
    assert Pose().to_vector().shape == (Pose.SIZE,)
    with pytest.raises(InputError, match=r"\(43,\)"):
        Pose.from_vector(np.zeros(42))


def test_sample_shape_ranges() -> None:
    rng = np.random.default_rng(4)
    shapes = [sample_shape(rng) for _ in range(3000)]
    spine = np.array([s.spine_lengths.sum() for s in shapes]) * 1000  # nose to tail base
    tail = np.array([s.tail_length for s in shapes]) * 1000
    # Bounds of scale 0.85-1.15 times 74 mm of trunk and neck plus 18 mm * head 0.92-1.08.
    assert spine.min() >= 0.85 * (74 + 18 * 0.92) - 1e-9
    assert spine.max() <= 1.15 * (74 + 18 * 1.08) + 1e-9
    # body.py says 78-106 mm: true of 97% of the draws, the extremes reach 77-107.5 mm.
    assert np.mean((spine >= 78.0) & (spine <= 106.0)) > 0.97
    assert spine.max() - spine.min() > 22.0  # the draws do span the range
    assert tail.min() >= 65.0 and tail.max() <= 100.0
    assert {s.fur_name for s in shapes} == {"black", "agouti", "white", "grey", "brown"}
    assert sum(s.fur_name == "black" for s in shapes) > 1200  # C57BL/6: half the draws
    assert all(0.0 <= c <= 1.0 for s in shapes for c in s.fur)
    assert sample_shape(rng, fur="white").fur_name == "white"
    with pytest.raises(InputError, match=r"pink.*black"):
        sample_shape(rng, fur="pink")


def test_keypoint_map_targets_are_ours() -> None:
    for name, mapping in KEYPOINT_MAPS.items():
        assert mapping and set(mapping.values()) <= set(KEYPOINTS), name
        assert set(mapping) <= set(KEYPOINT_SETS[name]), name
        assert len(set(mapping.values())) == len(mapping), name  # one-to-one
        assert set(unmapped(name)) == set(KEYPOINT_SETS[name]) - set(mapping)
        assert keypoint_map(name) == mapping
    assert len(KEYPOINT_SETS["dannce22"]) == 22
    with pytest.raises(InputError, match="dlc_openfield"):
        keypoint_map("nope")


def test_parse_map_lists_every_problem() -> None:
    assert parse_map("snout=nose, leftear=left_ear,") == {"snout": "nose",
                                                          "leftear": "left_ear"}
    with pytest.raises(InputError) as err:
        parse_map("snout=nose,bodycenter,tail=tail_bottom,=neck")
    msg = str(err.value)
    assert "'bodycenter'" in msg and "'tail_bottom'" in msg and "'=neck'" in msg
    assert "snout" not in msg
