"""The runtime's body model: skeleton, keypoints, pose, forward kinematics, pose prior.

The facts every stage shares, whether it runs live (the lifter's body fit, the keypoint
and behaviour stages, the nodes) or makes synthetic data (:mod:`.synth`, which draws
shapes, moves and renders this body): the 14 :data:`KEYPOINTS` in the order every array
in the project uses, the skeleton (:data:`JOINTS`, :data:`BONES`, the lines of
:data:`SKELETON_EDGES`), a :class:`MouseShape` (size, girth, head, ears, tail, coat), a
:class:`Pose` and its (43,) vector layout (``POSE_*``), :func:`forward_kinematics`, the
pose prior (:class:`PosePrior`, :func:`pose_prior`, the hard limits of :data:`POSE_LOWER`
and :data:`POSE_UPPER`) and the behaviour labels and classes. numpy only; nothing here
imports the synthetic data engine, which builds on this module.

Frames and units: the arena frame (REP-103: x, y on the floor, z up from the floor),
metres and radians. Every bone keeps its length whatever the pose: limbs are solved
with exact two-bone inverse kinematics, and the tail lies down on the floor by
changing the pitch of a segment, never its length.

Default lengths follow real adult mice: the DANNCE ``markerless_mouse_1`` 3D labels
(22 joints, mm; ``../shared/data/dannce-3d``) give snout to front spine (between the
shoulders) 36 mm, front to middle spine 33 mm, middle spine to tail base 25 mm, ears
18 mm apart and 31 mm from the snout, forearm 11-12 mm, upper arm 12 mm, shank 16 mm,
foot 9-10 mm (medians over 81 frames;
:func:`mouse_lifter_ros.core.synth.priors.dannce_bone_lengths` recomputes them). Here:
nose to neck 30 mm, neck to lumbar spine 42 mm (through spine_center), lumbar spine to
tail base 20 mm; nose to tail base 92 mm in all, the tail 85 mm by default.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Final, overload

import numpy as np
from numpy.typing import NDArray

from mouse_lifter_ros.core.errors import InputError

__all__ = [
    "BEHAVIORS",
    "BEHAVIOR_CLASSES",
    "BONES",
    "CLASSES",
    "EAR_OFFSET",
    "FORELIMB",
    "HINDLIMB",
    "HIP_OFFSET",
    "JOINTS",
    "KEYPOINTS",
    "KEYPOINT_JOINTS",
    "LIMBS",
    "LIMB_POLE_LIFT",
    "POSE_FREE",
    "POSE_HEADING",
    "POSE_HEAD_ROLL",
    "POSE_LOWER",
    "POSE_PAWS",
    "POSE_SPINE_PITCH",
    "POSE_SPINE_YAW",
    "POSE_TAIL_PITCH",
    "POSE_TAIL_YAW",
    "POSE_UPPER",
    "POSE_X",
    "POSE_Y",
    "POSE_Z",
    "PRIOR_FIELDS",
    "PRIOR_FILE",
    "SHOULDER_OFFSET",
    "SKELETON_EDGES",
    "SPINE",
    "TAIL",
    "TAIL_SEGMENTS",
    "BodyState",
    "FloatArray",
    "J",
    "MouseShape",
    "Pose",
    "PosePrior",
    "bone_lengths",
    "forward_kinematics",
    "pose_prior",
    "segment_rotation",
    "tail_radius",
    "wrap_angle",
]

FloatArray = NDArray[np.float64]

#: The 14 body-model keypoints, in the order every array in the project uses.
KEYPOINTS: Final[tuple[str, ...]] = (
    "nose", "left_ear", "right_ear", "head", "neck", "spine_center", "lumbar_spine",
    "tail_base", "tail_mid", "tail_tip", "left_forepaw", "right_forepaw", "left_hindpaw",
    "right_hindpaw",
)

#: Every skeleton joint: the keypoints plus the inner tail, shoulders, elbows, hips, knees.
JOINTS: Final[tuple[str, ...]] = (
    "tail_base", "lumbar_spine", "spine_center", "neck", "head", "nose",
    "left_ear", "right_ear",
    "tail_1", "tail_2", "tail_3", "tail_mid", "tail_5", "tail_6", "tail_7", "tail_tip",
    "left_shoulder", "left_elbow", "left_forepaw",
    "right_shoulder", "right_elbow", "right_forepaw",
    "left_hip", "left_knee", "left_hindpaw",
    "right_hip", "right_knee", "right_hindpaw",
)
#: Joint name -> index into :data:`JOINTS`.
J: Final = {name: i for i, name in enumerate(JOINTS)}

#: Index into :data:`JOINTS` of each keypoint.
KEYPOINT_JOINTS: Final[NDArray[np.intp]] = np.array([J[k] for k in KEYPOINTS], dtype=np.intp)

#: The spine's joints, tail base to nose (segments s0..s4 between them).
SPINE: Final = ("tail_base", "lumbar_spine", "spine_center", "neck", "head", "nose")
#: Segments of the tail, and its joints from the tail base to the tip.
TAIL_SEGMENTS: Final = 8
TAIL: Final = ("tail_base", "tail_1", "tail_2", "tail_3", "tail_mid", "tail_5", "tail_6",
               "tail_7", "tail_tip")
#: The limbs' joints: (root, middle, paw); the root hangs rigidly off a spine segment.
LIMBS: Final = (
    ("left_shoulder", "left_elbow", "left_forepaw"),
    ("right_shoulder", "right_elbow", "right_forepaw"),
    ("left_hip", "left_knee", "left_hindpaw"),
    ("right_hip", "right_knee", "right_hindpaw"),
)

#: Parent -> child bones; each keeps its length in every pose.
BONES: Final[tuple[tuple[str, str], ...]] = (
    *itertools.pairwise(SPINE),
    ("head", "left_ear"), ("head", "right_ear"),
    *itertools.pairwise(TAIL),
    ("spine_center", "left_shoulder"), ("spine_center", "right_shoulder"),
    ("tail_base", "left_hip"), ("tail_base", "right_hip"),
    *((a, b) for limb in LIMBS for a, b in itertools.pairwise(limb)),
)

#: Lines drawn for a skeleton over the 14 keypoints (indices into :data:`KEYPOINTS`).
SKELETON_EDGES: Final[tuple[tuple[int, int], ...]] = tuple(
    (KEYPOINTS.index(a), KEYPOINTS.index(b)) for a, b in (
        ("nose", "head"), ("left_ear", "head"), ("right_ear", "head"), ("head", "neck"),
        ("neck", "spine_center"), ("spine_center", "lumbar_spine"),
        ("lumbar_spine", "tail_base"), ("tail_base", "tail_mid"), ("tail_mid", "tail_tip"),
        ("left_forepaw", "neck"), ("right_forepaw", "neck"),
        ("left_hindpaw", "lumbar_spine"), ("right_hindpaw", "lumbar_spine"),
    )
)


def _constant(*values: float) -> FloatArray:
    """A read-only float64 array."""
    arr = np.array(values, dtype=np.float64)
    arr.setflags(write=False)
    return arr


# The skeleton's anatomy (metres) for an adult of scale 1; the surface around it (the
# ellipsoids the renderer draws) is :mod:`.synth.body`'s.
_SPINE_LENGTHS = np.array([0.020, 0.020, 0.022, 0.012, 0.018])  # s0..s4, tail_base -> nose
#: Left ear joint from the head joint, head frame, metres (y mirrored for the right ear;
#: x, y scale with ``scale * head_size``, z with ``scale``).
EAR_OFFSET: Final[FloatArray] = _constant(-0.010, 0.009, 0.006)
#: Left shoulder from spine_center in the frame of spine segment s2: x as a fraction of
#: s2's length, y and z metres (y mirrored for the right; y scales with girth).
SHOULDER_OFFSET: Final[FloatArray] = _constant(0.6, 0.0065, -0.0085)
#: Left hip from tail_base in the frame of spine segment s0, metres (y mirrored).
HIP_OFFSET: Final[FloatArray] = _constant(0.008, 0.0075, -0.0055)
#: Fore limb bone lengths, shoulder-elbow and elbow-paw, metres.
FORELIMB: Final[FloatArray] = _constant(0.012, 0.015)
#: Hind limb bone lengths, hip-knee and knee-paw, metres.
HINDLIMB: Final[FloatArray] = _constant(0.016, 0.022)
# Radius of the skeleton's tail, linear from base to tip, metres: keeps it off the floor.
_TAIL_RADIUS = (0.0016, 0.0006)  # base, tip
#: Added to the pole of every limb's two-bone solve: elbows bend back and knees forward,
#: both also up, so that a folded limb never flips.
LIMB_POLE_LIFT: Final[FloatArray] = _constant(0.0, 0.0, 0.6)


@dataclass(frozen=True)
class MouseShape:
    """Shape of one mouse, within adult lab-mouse ranges (see
    :func:`~.synth.body.sample_shape`).

    Attributes
    ----------
    scale:
        Overall size factor on every length and radius (1 = nose to tail base 92 mm).
    girth:
        Factor on body widths and heights (fat or thin).
    head_size, ear_size:
        Factors on the head ellipsoid and on the ears.
    tail_length:
        Tail base to tip, metres (not scaled by ``scale``).
    fur, skin:
        Albedo, RGB in 0..1, of the fur and of the bare skin (ears, tail, paws).
    fur_name:
        ``black``, ``agouti``, ``white``, ``grey`` or ``brown``.
    """

    scale: float = 1.0
    girth: float = 1.0
    head_size: float = 1.0
    ear_size: float = 1.0
    tail_length: float = 0.085
    fur: tuple[float, float, float] = (0.07, 0.07, 0.075)
    skin: tuple[float, float, float] = (0.42, 0.37, 0.37)
    fur_name: str = "black"

    @property
    def spine_lengths(self) -> FloatArray:
        """(5,) lengths of the spine segments tail_base->...->nose, metres."""
        lengths = _SPINE_LENGTHS * self.scale
        lengths[4] *= self.head_size
        return lengths

    @property
    def tail_segment(self) -> float:
        """Length of one of the 8 tail segments, metres."""
        return self.tail_length / TAIL_SEGMENTS


# ---------------------------------------------------------------------------------------
# The pose and its vector.

#: Entries of the (43,) pose vector (:meth:`Pose.to_vector`): tail base x, y, z (m) ...
POSE_X: Final = 0
POSE_Y: Final = 1
POSE_Z: Final = 2
#: ... the heading (rad) ...
POSE_HEADING: Final = 3
#: ... the relative spine pitches and yaws (5 each, rad), the head roll (rad) ...
POSE_SPINE_PITCH: Final = slice(4, 9)
POSE_SPINE_YAW: Final = slice(9, 14)
POSE_HEAD_ROLL: Final = 14
#: ... the relative tail pitches and yaws (8 each, rad) ...
POSE_TAIL_PITCH: Final = slice(15, 23)
POSE_TAIL_YAW: Final = slice(23, 31)
#: ... and the (4, 3) heading-frame paw targets, row-major (m).
POSE_PAWS: Final = slice(31, 43)


@dataclass
class Pose:
    """Joint configuration of the body model.

    Angles are spherical: each segment's absolute yaw (about z, counter-clockwise
    from the arena x axis) and pitch (up from the floor plane) are the sums of the
    relative angles along the chain.

    Attributes
    ----------
    position:
        (3,) tail base in the arena frame, metres.
    heading:
        Yaw of the body's rear segment, radians.
    spine_pitch, spine_yaw:
        (5,) relative bends of the segments tail_base->lumbar_spine->spine_center->
        neck->head->nose; ``spine_pitch[0]`` is the rump's pitch from horizontal.
    head_roll:
        Roll of the head about its own axis, radians.
    tail_pitch, tail_yaw:
        (8,) relative bends along the tail; segment 0 continues the rump backwards.
    paws:
        (4, 3) targets of the left fore, right fore, left hind, right hind paws in the
        heading frame: origin on the floor under the tail base, x along ``heading``,
        y to the mouse's left, z up. A target out of reach is reached as far as the
        limb goes.
    """

    position: FloatArray = field(default_factory=lambda: np.array([0.0, 0.0, 0.012]))
    heading: float = 0.0
    spine_pitch: FloatArray = field(
        default_factory=lambda: np.array([0.35, -0.20, -0.15, -0.15, -0.35]))
    spine_yaw: FloatArray = field(default_factory=lambda: np.zeros(5))
    head_roll: float = 0.0
    tail_pitch: FloatArray = field(default_factory=lambda: np.zeros(TAIL_SEGMENTS))
    tail_yaw: FloatArray = field(default_factory=lambda: np.zeros(TAIL_SEGMENTS))
    paws: FloatArray = field(default_factory=lambda: np.array([
        [0.050, 0.011, 0.002], [0.050, -0.011, 0.002],
        [0.012, 0.013, 0.002], [0.012, -0.013, 0.002]]))

    #: Length of :meth:`to_vector`.
    SIZE: ClassVar[int] = 3 + 1 + 5 + 5 + 1 + 8 + 8 + 12

    def to_vector(self) -> FloatArray:
        """All parameters in one (43,) vector (for optimisers and interpolation); the
        ``POSE_*`` constants index it."""
        return np.concatenate([
            self.position, [self.heading], self.spine_pitch, self.spine_yaw,
            [self.head_roll], self.tail_pitch, self.tail_yaw, np.ravel(self.paws)])

    @classmethod
    def from_vector(cls, v: FloatArray) -> Pose:
        """Inverse of :meth:`to_vector`."""
        v = np.asarray(v, dtype=np.float64)
        if v.shape != (cls.SIZE,):
            raise InputError(f"pose vector has shape {v.shape}; expected ({cls.SIZE},)")
        return cls(position=v[POSE_X:POSE_Z + 1].copy(), heading=float(v[POSE_HEADING]),
                   spine_pitch=v[POSE_SPINE_PITCH].copy(), spine_yaw=v[POSE_SPINE_YAW].copy(),
                   head_roll=float(v[POSE_HEAD_ROLL]), tail_pitch=v[POSE_TAIL_PITCH].copy(),
                   tail_yaw=v[POSE_TAIL_YAW].copy(), paws=v[POSE_PAWS].reshape(4, 3).copy())

    def copy(self) -> Pose:
        """A deep copy."""
        return Pose.from_vector(self.to_vector())


@dataclass(frozen=True)
class BodyState:
    """A posed body: joint positions and segment frames, arena frame, metres.

    Attributes
    ----------
    joints:
        (28, 3) positions of :data:`JOINTS`.
    spine_frames:
        (5, 3, 3) rotation of each spine segment (columns: along the segment towards
        the nose, to its left, its up).
    """

    joints: FloatArray
    spine_frames: FloatArray

    @property
    def keypoints(self) -> FloatArray:
        """(14, 3) positions of :data:`KEYPOINTS`."""
        return np.asarray(self.joints[KEYPOINT_JOINTS])

    def joint(self, name: str) -> FloatArray:
        """(3,) position of one joint."""
        return np.asarray(self.joints[J[name]])


@overload
def wrap_angle(a: float) -> float: ...
@overload
def wrap_angle(a: FloatArray) -> FloatArray: ...
def wrap_angle(a: float | FloatArray) -> float | FloatArray:
    """Angle(s) ``a`` (radians; a number or an array of any shape) wrapped to [-pi, pi)."""
    return (a + math.pi) % (2.0 * math.pi) - math.pi


def segment_rotation(yaw: float, pitch: float, roll: float = 0.0) -> FloatArray:
    """(3, 3) rotation Rz(yaw) @ Ry(-pitch) @ Rx(roll) of a body segment, radians: its
    columns are the segment's forward (pitched up by ``pitch``), left and up axes."""
    cy, sy = math.cos(yaw), math.sin(yaw)
    cp, sp = math.cos(pitch), math.sin(pitch)
    cr, sr = math.cos(roll), math.sin(roll)
    rz = np.array([[cy, -sy, 0.0], [sy, cy, 0.0], [0.0, 0.0, 1.0]])
    ry = np.array([[cp, 0.0, -sp], [0.0, 1.0, 0.0], [sp, 0.0, cp]])
    rx = np.array([[1.0, 0.0, 0.0], [0.0, cr, -sr], [0.0, sr, cr]])
    return np.asarray(rz @ ry @ rx)


def _two_bone(root: FloatArray, target: FloatArray, lengths: FloatArray,
              pole: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Middle joint and end of a two-bone limb reaching for ``target``; lengths kept."""
    l1, l2 = float(lengths[0]), float(lengths[1])
    d_vec = target - root
    d = float(np.linalg.norm(d_vec))
    u = d_vec / d if d > 1e-9 else np.array([0.0, 0.0, -1.0])
    d = min(max(d, abs(l1 - l2) + 1e-6), l1 + l2 - 1e-6)
    v = pole - np.dot(pole, u) * u
    nv = float(np.linalg.norm(v))
    if nv < 1e-9:  # pole along the limb: any perpendicular does
        v = np.cross(u, [0.0, 1.0, 0.0] if abs(u[1]) < 0.9 else [1.0, 0.0, 0.0])
        nv = float(np.linalg.norm(v))
    v = v / nv
    a = (l1 * l1 - l2 * l2 + d * d) / (2.0 * d)
    h = math.sqrt(max(l1 * l1 - a * a, 0.0))
    return root + a * u + h * v, root + d * u


def forward_kinematics(shape: MouseShape, pose: Pose) -> BodyState:
    """Place every joint of ``shape`` in ``pose``."""
    joints = np.zeros((len(JOINTS), 3))
    frames = np.zeros((5, 3, 3))
    s = shape.scale
    lengths = shape.spine_lengths
    pos = np.asarray(pose.position, dtype=np.float64)
    joints[J["tail_base"]] = pos
    yaw, pitch = pose.heading, 0.0
    for k in range(5):
        yaw += float(pose.spine_yaw[k])
        pitch += float(pose.spine_pitch[k])
        frames[k] = segment_rotation(yaw, pitch, pose.head_roll if k == 4 else 0.0)
        joints[J[SPINE[k + 1]]] = joints[J[SPINE[k]]] + frames[k][:, 0] * lengths[k]

    head = joints[J["head"]]
    for side, name in ((1.0, "left_ear"), (-1.0, "right_ear")):
        off = EAR_OFFSET * np.array([s * shape.head_size, side * s * shape.head_size, s])
        joints[J[name]] = head + frames[4] @ off

    # Tail: continues the rump backwards and lies down on the floor where it reaches it.
    seg = shape.tail_segment
    tyaw = pose.heading + float(pose.spine_yaw[0]) + math.pi
    tpitch = -float(pose.spine_pitch[0])
    for k in range(TAIL_SEGMENTS):
        tyaw += float(pose.tail_yaw[k])
        tpitch += float(pose.tail_pitch[k])
        parent = joints[J[TAIL[k]]]
        radius = tail_radius(shape, (k + 1) / TAIL_SEGMENTS)
        lowest = math.asin(max(-1.0, min(1.0, (radius - parent[2]) / seg)))
        tpitch = max(tpitch, lowest)
        direction = np.array([math.cos(tpitch) * math.cos(tyaw),
                              math.cos(tpitch) * math.sin(tyaw), math.sin(tpitch)])
        joints[J[TAIL[k + 1]]] = parent + seg * direction

    # Limbs: roots hang rigidly off the spine; paws reach their targets.
    heading_frame = segment_rotation(pose.heading, 0.0)
    floor_origin = np.array([pos[0], pos[1], 0.0])
    paws = np.asarray(pose.paws, dtype=np.float64)
    for i, (root_name, mid_name, paw_name) in enumerate(LIMBS):
        side = 1.0 if root_name.startswith("left") else -1.0
        if i < 2:
            off = SHOULDER_OFFSET * np.array([lengths[2], side * s * shape.girth, s])
            root = joints[J["spine_center"]] + frames[2] @ off
            limb = FORELIMB * s
            pole = -frames[2][:, 0] + 0.3 * side * frames[2][:, 1] + LIMB_POLE_LIFT
        else:
            off = HIP_OFFSET * np.array([s, side * s * shape.girth, s])
            root = joints[J["tail_base"]] + frames[0] @ off
            # knees point forward in the heading frame: the rump's own axis turns up
            # when rearing and would leave the bend direction along the leg
            limb = HINDLIMB * s
            pole = heading_frame[:, 0] + 0.3 * side * heading_frame[:, 1] + LIMB_POLE_LIFT
        target = floor_origin + heading_frame @ paws[i]
        mid, paw = _two_bone(root, target, limb, pole)
        joints[J[root_name]], joints[J[mid_name]], joints[J[paw_name]] = root, mid, paw
    return BodyState(joints=joints, spine_frames=frames)


def tail_radius(shape: MouseShape, t: float) -> float:
    """Radius of the skeleton's tail a fraction ``t`` (0 base .. 1 tip) of the way to the
    tip, metres: no tail joint comes nearer the floor than this."""
    return shape.scale * (_TAIL_RADIUS[0] + (_TAIL_RADIUS[1] - _TAIL_RADIUS[0]) * t)


def bone_lengths(state: BodyState) -> FloatArray:
    """(len(BONES),) length of every bone, metres."""
    a = np.array([J[p] for p, _ in BONES])
    b = np.array([J[c] for _, c in BONES])
    return np.asarray(np.linalg.norm(state.joints[b] - state.joints[a], axis=1))


# ---------------------------------------------------------------------------------------
# The pose prior.

#: The free entries of the pose vector: tail base x, y and the heading (where the animal
#: is and which way it faces); the prior says nothing about them.
POSE_FREE: Final[NDArray[np.bool_]] = np.zeros(Pose.SIZE, dtype=bool)
POSE_FREE[[POSE_X, POSE_Y, POSE_HEADING]] = True
POSE_FREE.setflags(write=False)


def _hard_limits() -> tuple[FloatArray, FloatArray]:
    """(43,) lower and upper anatomical limits of the pose vector (read-only)."""
    lo = np.full(Pose.SIZE, -np.inf)
    hi = np.full(Pose.SIZE, np.inf)
    lo[POSE_Z], hi[POSE_Z] = 0.003, 0.045
    lo[POSE_SPINE_PITCH] = [-0.25, -0.6, -0.6, -1.2, -1.3]
    hi[POSE_SPINE_PITCH] = [1.45, 0.6, 0.6, 0.8, 0.7]
    hi[POSE_SPINE_YAW] = [0.3, 0.5, 0.5, 0.8, 0.8]
    lo[POSE_SPINE_YAW] = -hi[POSE_SPINE_YAW]
    lo[POSE_HEAD_ROLL], hi[POSE_HEAD_ROLL] = -0.6, 0.6
    lo[POSE_TAIL_PITCH] = [-0.8] + [-0.7] * (TAIL_SEGMENTS - 1)
    hi[POSE_TAIL_PITCH] = [1.2] + [0.7] * (TAIL_SEGMENTS - 1)
    hi[POSE_TAIL_YAW] = [1.6] + [0.8] * (TAIL_SEGMENTS - 1)
    lo[POSE_TAIL_YAW] = -hi[POSE_TAIL_YAW]
    paw_lo = np.array([[-0.01, -0.02, 0.0015], [-0.01, -0.055, 0.0015],
                       [-0.05, -0.02, 0.0015], [-0.05, -0.055, 0.0015]])
    paw_hi = np.array([[0.14, 0.055, 0.13], [0.14, 0.02, 0.13],
                       [0.07, 0.055, 0.06], [0.07, 0.02, 0.06]])
    lo[POSE_PAWS], hi[POSE_PAWS] = paw_lo.ravel(), paw_hi.ravel()
    lo.setflags(write=False)
    hi.setflags(write=False)
    return lo, hi


#: (43,) hard anatomical limits of the pose vector, lower and upper (radians for angles,
#: metres for the tail base height and the heading-frame paw targets; -inf/inf where
#: there is none). Read-only.
POSE_LOWER, POSE_UPPER = _hard_limits()


@dataclass(frozen=True)
class PosePrior:
    """Hard joint limits and a Gaussian over :meth:`Pose.to_vector`.

    Attributes
    ----------
    mean, std:
        (43,) Gaussian fitted to :func:`~.synth.motion.sample_pose` draws (see
        :func:`~.synth.motion.compute_pose_prior`), the paw targets of a body of
        scale 1 (multiply entries 31-42 by a shape's ``scale``). The free entries (tail
        base x, y and the heading) have mean 0 and std ``inf``: they are ignored by
        :meth:`neg_log_prob`. The tail base height (entry 2) is not free.
    lower, upper:
        (43,) hard anatomical limits (radians for angles, metres for the tail base
        height and the heading-frame paw targets); -inf/inf for the free entries
        (:data:`POSE_LOWER`, :data:`POSE_UPPER`).
    free:
        (43,) True for the free entries.
    correlation:
        (43, 43) correlation of the draws (identity on the free entries), or None for a
        diagonal Gaussian. It ties the parts no keypoint may show to those that are
        seen: forepaws tucked under a walking body, raised before a rearing one.
    """

    mean: FloatArray
    std: FloatArray
    lower: FloatArray
    upper: FloatArray
    free: NDArray[np.bool_] = field(default_factory=lambda: POSE_FREE.copy())
    correlation: FloatArray | None = None

    def clip(self, v: FloatArray) -> FloatArray:
        """``v`` ((43,) or (N, 43)) clipped into the hard limits."""
        return np.asarray(np.clip(np.asarray(v, dtype=np.float64), self.lower, self.upper))

    def neg_log_prob(self, v: FloatArray) -> float:
        """0.5 * the squared Mahalanobis distance of a (43,) vector over the non-free
        entries (of a body of scale 1).

        The negative log density of the Gaussian up to an additive constant;
        0 at the mean. Limits are not applied (use :meth:`clip`).
        """
        x = np.asarray(v, dtype=np.float64)
        keep = ~np.asarray(self.free, dtype=bool)
        zs = (x[keep] - self.mean[keep]) / self.std[keep]
        if self.correlation is None:
            return float(0.5 * np.dot(zs, zs))
        corr = np.asarray(self.correlation, dtype=np.float64)[np.ix_(keep, keep)]
        return float(0.5 * zs @ np.linalg.solve(corr, zs))

    def contains(self, v: FloatArray, tol: float = 1e-9) -> bool:
        """Whether ``v`` ((43,) or (N, 43)) lies within the hard limits."""
        x = np.asarray(v, dtype=np.float64)
        return bool(np.all((x >= self.lower - tol) & (x <= self.upper + tol)))


#: The pose prior, stored beside the models so that a node starts without drawing it;
#: :func:`~.synth.motion.compute_pose_prior` draws it and
#: :func:`~.synth.motion.write_pose_prior` writes it (``test_synth_motion.py`` checks that
#: it is current).
PRIOR_FILE: Final = Path(__file__).resolve().parents[1] / "models" / "body" / "pose_prior.npz"
#: The :class:`PosePrior` fields :data:`PRIOR_FILE` holds, one array each.
PRIOR_FIELDS: Final = ("mean", "std", "lower", "upper", "free", "correlation")


@functools.cache
def pose_prior() -> PosePrior:
    """The pose prior, read from :data:`PRIOR_FILE` once, on first use.

    Raises
    ------
    InputError
        The file is missing (a broken install or checkout): rewrite it with
        ``tools/ros-env.sh python -c "from mouse_lifter_ros.core.synth.motion import
        write_pose_prior; write_pose_prior()"``.
    """
    if not PRIOR_FILE.is_file():
        raise InputError(f"pose prior {str(PRIOR_FILE)!r} is missing: write it with "
                         "mouse_lifter_ros.core.synth.motion.write_pose_prior()")
    with np.load(PRIOR_FILE) as data:
        return PosePrior(**{k: np.array(data[k]) for k in PRIOR_FIELDS})


# ---------------------------------------------------------------------------------------
# Behaviours.

#: Fine behaviour labels (those of the synthetic data engine's bouts).
BEHAVIORS: Final[tuple[str, ...]] = (
    "walk", "trot", "turn", "rear", "rear_wall", "groom", "sniff", "rest")
#: Coarse behaviour classes (those the behaviour classifier tells apart).
CLASSES: Final[tuple[str, ...]] = ("locomotion", "rearing", "grooming", "stationary")
#: Fine label -> coarse class.
BEHAVIOR_CLASSES: Final[dict[str, str]] = {
    "walk": "locomotion", "trot": "locomotion", "turn": "locomotion",
    "rear": "rearing", "rear_wall": "rearing", "groom": "grooming",
    "sniff": "stationary", "rest": "stationary",
}
