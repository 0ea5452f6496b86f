"""The articulated 3D mouse body model.

A skeleton of named joints driven by a :class:`Pose` (root position, heading and
spherical bend angles along the spine and the tail, paw targets reached by two-bone
limbs), a :class:`MouseShape` (size, girth, head, ears, tail, fur), and a surface made
of ellipsoids around the bones for the renderer.

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

import itertools
import math
from dataclasses import dataclass, field, replace
from typing import ClassVar, Final

import numpy as np
from numpy.typing import NDArray

from mouse_lifter_ros.core.body import KEYPOINTS
from mouse_lifter_ros.core.errors import InputError

FloatArray = NDArray[np.float64]

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
J: Final = {name: i for i, name in enumerate(JOINTS)}

#: Index into :data:`JOINTS` of each keypoint.
KEYPOINT_JOINTS: Final[NDArray[np.intp]] = np.array([J[k] for k in KEYPOINTS], dtype=np.intp)

SPINE: Final = ("tail_base", "lumbar_spine", "spine_center", "neck", "head", "nose")
TAIL_SEGMENTS: Final = 8
TAIL: Final = ("tail_base", "tail_1", "tail_2", "tail_3", "tail_mid", "tail_5", "tail_6",
               "tail_7", "tail_tip")
LIMBS: Final = (  # (root, middle, paw); the root hangs rigidly off a spine segment
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

# Materials of the surface ellipsoids.
FUR, SKIN, EAR, EYE = 0, 1, 2, 3

# Unscaled anatomy (metres), for an adult of scale 1.
_SPINE_LENGTHS = np.array([0.020, 0.020, 0.022, 0.012, 0.018])  # s0..s4, tail_base -> nose
# The trunk and neck (s0..s3): one ellipsoid per segment, centred a fraction of the way
# from its rear joint and as long as the segment times a factor, plus one blob at each
# inner joint. Seen from above the body is pear-shaped (as real mice are): broad
# haunches over s1, narrower shoulders, and a rump that tapers to the tail base (its
# ellipsoid sits forward on s0 and stops short of the tail base, where a narrow cone
# of fur, the tail root, takes over).
_SPINE_HALF_WIDTH = np.array([0.0140, 0.0178, 0.0148, 0.0100])
_SPINE_HALF_HEIGHT = np.array([0.0108, 0.0126, 0.0120, 0.0096])
_SEGMENT_CENTRE = np.array([0.75, 0.5, 0.5, 0.5])
_SEGMENT_LENGTH = np.array([1.05, 1.6, 1.6, 1.5])
_BLOB_LENGTH = np.array([0.0, 0.85, 1.2, 0.8])  # blob half-length / half-width, by joint
_TAIL_ROOT_X, _TAIL_ROOT_RADII = 0.0050, np.array([0.0070, 0.0055, 0.0050])  # s0 frame
# The head (head frame, from the head joint, which lies between the eyes): a broad
# cranium reaching back to the ears, a muzzle and a snout whose front tip is the nose,
# so that the head tapers to a point seen from above.
_CRANIUM_X, _CRANIUM_RADII = -0.0030, np.array([0.0110, 0.0098, 0.0078])
_MUZZLE_X, _MUZZLE_RADII = 0.0075, np.array([0.0080, 0.0058, 0.0050])
_SNOUT_RADII = np.array([0.0050, 0.0030, 0.0030])
_EYE_DIR = np.array([0.72, 0.58, 0.38])  # cranium-ellipsoid direction of the left eye
_EAR_OFFSET = np.array([-0.010, 0.009, 0.006])  # head frame, left ear (y mirrored for right)
# The pinna, a thin disc: its centre this far from the ear joint (head frame, left ear),
# its opening facing forward, outward and up, its long axis leaning out sideways, so
# that from above each ear shows as a rounded lobe beside the back of the head.
_EAR_SHIFT = np.array([0.0, 0.0015, 0.0010])
_EAR_NORMAL = np.array([0.20, 0.45, 0.87])
_EAR_RADII = np.array([0.0060, 0.0075, 0.0010])  # across, base to tip, thickness
_SHOULDER_OFFSET = np.array([0.6, 0.0065, -0.0085])  # x as a fraction of s2; y, z metres
_HIP_OFFSET = np.array([0.008, 0.0075, -0.0055])  # s0 frame from tail_base
_FORELIMB = np.array([0.012, 0.015])  # shoulder-elbow, elbow-paw
_HINDLIMB = np.array([0.016, 0.022])  # hip-knee, knee-paw
_FOREPAW_RADII = np.array([0.0040, 0.0024, 0.0018])
_HINDPAW_RADII = np.array([0.0060, 0.0028, 0.0018])
# Tail radius: _TAIL_RADIUS (linear, base to tip) keeps the skeleton's tail off the
# floor; the drawn tail is thick at the root (4 mm across, 4-5 px in a typical 640x480
# top view) and thins fast, tip + (base - tip) (1 - t)^1.5: from its middle on no
# thicker than the skeleton's, its root up to 0.4 mm thicker (a root lying flat on the
# floor dips that far into it, out of sight from above).
_TAIL_RADIUS = (0.0016, 0.0006)  # base, tip
_TAIL_DRAWN = (0.0020, 0.00055)  # base, tip
# Elbows bend back and knees forward, both also up, so that a folded limb never flips.
_UP = np.array([0.0, 0.0, 0.6])


@dataclass(frozen=True)
class MouseShape:
    """Shape of one mouse, within adult lab-mouse ranges (see :func:`sample_shape`).

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

    def keypoint_surface_offsets(self) -> FloatArray:
        """(14,) distance from each keypoint to the body surface around it, metres.

        A keypoint inside the body (the spine, the head joint) lies up to this far
        under the visible surface; one on the surface (nose, ears, paws, tail) within
        it. The depth map at a visible keypoint matches its depth within this offset.
        """
        s, g = self.scale, self.girth
        half = np.maximum(_SPINE_HALF_WIDTH, _SPINE_HALF_HEIGHT) * s * g
        hs = s * self.head_size
        out = {
            "nose": _SNOUT_RADII[1] * hs,
            "left_ear": _EAR_RADII[1] * s * self.ear_size,
            "head": max(half[3], float(np.max(_CRANIUM_RADII)) * hs),
            "neck": max(half[2], half[3]), "spine_center": max(half[1], half[2]),
            "lumbar_spine": max(half[0], half[1]), "tail_base": half[0],
            "tail_mid": _tail_drawn(self, 0.375), "tail_tip": _tail_drawn(self, 1.0) + 0.0005,
            "left_forepaw": _FOREPAW_RADII[1] * s, "left_hindpaw": _HINDPAW_RADII[1] * s,
        }
        out["right_ear"] = out["left_ear"]
        out["right_forepaw"] = out["left_forepaw"]
        out["right_hindpaw"] = out["left_hindpaw"]
        return np.array([out[k] for k in KEYPOINTS])


#: Fur colours (albedo RGB) and matching skin colours by coat.
FUR_COLOURS: Final[dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]]] = {
    "black": ((0.06, 0.06, 0.065), (0.42, 0.37, 0.37)),  # bare skin shows light grey
    "agouti": ((0.32, 0.24, 0.16), (0.55, 0.42, 0.40)),
    "brown": ((0.22, 0.15, 0.10), (0.50, 0.38, 0.36)),
    "grey": ((0.38, 0.38, 0.40), (0.60, 0.48, 0.48)),
    "white": ((0.86, 0.85, 0.80), (0.85, 0.60, 0.60)),
}


def sample_shape(rng: np.random.Generator, *, fur: str | None = None) -> MouseShape:
    """Draw an adult lab mouse: nose to tail base 78-106 mm, tail 65-100 mm.

    ``fur`` picks the coat; otherwise black (C57BL/6, half the draws), white, agouti,
    grey or brown. The fur's brightness varies by +-20% and the bare skin's (ears,
    tail, paws) by +-15%.
    """
    if fur is None:
        names = list(FUR_COLOURS)
        fur = str(rng.choice(names, p=[0.5, 0.12, 0.08, 0.1, 0.2]))
    elif fur not in FUR_COLOURS:
        raise InputError(f"fur colour {fur!r} is unknown; allowed: {', '.join(FUR_COLOURS)}")
    base_fur, base_skin = FUR_COLOURS[fur]
    tint = rng.uniform(0.8, 1.2)
    shape = MouseShape(
        scale=float(rng.uniform(0.85, 1.15)),
        girth=float(rng.uniform(0.85, 1.25)),
        head_size=float(rng.uniform(0.92, 1.08)),
        ear_size=float(rng.uniform(0.8, 1.2)),
        tail_length=float(rng.uniform(0.065, 0.100)),
        fur=tuple(float(min(1.0, c * tint)) for c in base_fur),  # type: ignore[arg-type]
        skin=base_skin,
        fur_name=fur,
    )
    skin_tint = float(rng.uniform(0.85, 1.15))  # skin from pale to dusky
    r, g, b = (min(1.0, c * skin_tint) for c in base_skin)
    return replace(shape, skin=(r, g, b))


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
        """All parameters in one (43,) vector (for optimisers and interpolation)."""
        return np.concatenate([
            self.position, [self.heading], self.spine_pitch, self.spine_yaw,
            [self.head_roll], self.tail_pitch, self.tail_yaw, np.ravel(self.paws)])

    @classmethod
    def from_vector(cls, v: FloatArray) -> Pose:
        """Inverse of :meth:`to_vector`."""
        v = np.asarray(v, dtype=np.float64)
        if v.shape != (cls.SIZE,):
            raise InputError(f"pose vector has shape {v.shape}; expected ({cls.SIZE},)")
        return cls(position=v[0:3].copy(), heading=float(v[3]), spine_pitch=v[4:9].copy(),
                   spine_yaw=v[9:14].copy(), head_roll=float(v[14]),
                   tail_pitch=v[15:23].copy(), tail_yaw=v[23:31].copy(),
                   paws=v[31:43].reshape(4, 3).copy())

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


def _frame(yaw: float, pitch: float, roll: float = 0.0) -> FloatArray:
    """Rotation Rz(yaw) @ Ry(-pitch) @ Rx(roll): x forward, pitched up by ``pitch``."""
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
        frames[k] = _frame(yaw, pitch, pose.head_roll if k == 4 else 0.0)
        joints[J[SPINE[k + 1]]] = joints[J[SPINE[k]]] + frames[k][:, 0] * lengths[k]

    head = joints[J["head"]]
    for side, name in ((1.0, "left_ear"), (-1.0, "right_ear")):
        off = _EAR_OFFSET * np.array([s * shape.head_size, side * s * shape.head_size, s])
        joints[J[name]] = head + frames[4] @ off

    # Tail: continues the rump backwards and lies down on the floor where it reaches it.
    seg = shape.tail_segment
    tyaw = pose.heading + float(pose.spine_yaw[0]) + math.pi
    tpitch = -float(pose.spine_pitch[0])
    for k in range(TAIL_SEGMENTS):
        tyaw += float(pose.tail_yaw[k])
        tpitch += float(pose.tail_pitch[k])
        parent = joints[J[TAIL[k]]]
        radius = _tail_radius(shape, (k + 1) / TAIL_SEGMENTS)
        lowest = math.asin(max(-1.0, min(1.0, (radius - parent[2]) / seg)))
        tpitch = max(tpitch, lowest)
        direction = np.array([math.cos(tpitch) * math.cos(tyaw),
                              math.cos(tpitch) * math.sin(tyaw), math.sin(tpitch)])
        joints[J[TAIL[k + 1]]] = parent + seg * direction

    # Limbs: roots hang rigidly off the spine; paws reach their targets.
    heading_frame = _frame(pose.heading, 0.0)
    floor_origin = np.array([pos[0], pos[1], 0.0])
    paws = np.asarray(pose.paws, dtype=np.float64)
    for i, (root_name, mid_name, paw_name) in enumerate(LIMBS):
        side = 1.0 if root_name.startswith("left") else -1.0
        if i < 2:
            off = _SHOULDER_OFFSET * np.array([lengths[2], side * s * shape.girth, s])
            root = joints[J["spine_center"]] + frames[2] @ off
            limb, pole = _FORELIMB * s, -frames[2][:, 0] + 0.3 * side * frames[2][:, 1] + _UP
        else:
            off = _HIP_OFFSET * np.array([s, side * s * shape.girth, s])
            root = joints[J["tail_base"]] + frames[0] @ off
            # knees point forward in the heading frame: the rump's own axis turns up
            # when rearing and would leave the bend direction along the leg
            limb = _HINDLIMB * s
            pole = heading_frame[:, 0] + 0.3 * side * heading_frame[:, 1] + _UP
        target = floor_origin + heading_frame @ paws[i]
        mid, paw = _two_bone(root, target, limb, pole)
        joints[J[root_name]], joints[J[mid_name]], joints[J[paw_name]] = root, mid, paw
    return BodyState(joints=joints, spine_frames=frames)


def _tail_radius(shape: MouseShape, t: float) -> float:
    """Radius of the skeleton's tail a fraction ``t`` of the way to the tip (kinematics)."""
    return shape.scale * (_TAIL_RADIUS[0] + (_TAIL_RADIUS[1] - _TAIL_RADIUS[0]) * t)


def _tail_drawn(shape: MouseShape, t: float) -> float:
    """Radius of the drawn tail a fraction ``t`` of the way to the tip."""
    return float(shape.scale * (_TAIL_DRAWN[1] + (_TAIL_DRAWN[0] - _TAIL_DRAWN[1])
                                * (1.0 - t) ** 1.5))


def bone_lengths(state: BodyState) -> FloatArray:
    """(len(BONES),) length of every bone, metres."""
    a = np.array([J[p] for p, _ in BONES])
    b = np.array([J[c] for _, c in BONES])
    return np.asarray(np.linalg.norm(state.joints[b] - state.joints[a], axis=1))


@dataclass(frozen=True)
class Ellipsoids:
    """The body surface as ellipsoids, arena frame.

    Attributes
    ----------
    centers:
        (P, 3) metres.
    axes:
        (P, 3, 3) rotations whose columns are the principal axes.
    radii:
        (P, 3) semi-axes along those columns, metres.
    material:
        (P,) one of ``FUR``, ``SKIN``, ``EAR``, ``EYE``.
    """

    centers: FloatArray
    axes: FloatArray
    radii: FloatArray
    material: NDArray[np.int8]


def _bone_frame(a: FloatArray, b: FloatArray) -> FloatArray:
    """A rotation whose first column points from ``a`` to ``b`` (cross products by hand:
    ``np.cross`` costs more than the rest of the surface)."""
    x0, x1, x2 = float(b[0] - a[0]), float(b[1] - a[1]), float(b[2] - a[2])
    n = math.sqrt(x0 * x0 + x1 * x1 + x2 * x2)
    if n < 1e-12:
        x0, x1, x2, n = 1.0, 0.0, 0.0, 1.0
    x0, x1, x2 = x0 / n, x1 / n, x2 / n
    if abs(x2) < 0.9:  # y = z_up x x
        y0, y1, y2 = -x1, x0, 0.0
    else:  # y = x_axis x x
        y0, y1, y2 = 0.0, -x2, x1
    m = math.sqrt(y0 * y0 + y1 * y1 + y2 * y2)
    y0, y1, y2 = y0 / m, y1 / m, y2 / m
    return np.array([[x0, y0, x1 * y2 - x2 * y1],
                     [x1, y1, x2 * y0 - x0 * y2],
                     [x2, y2, x0 * y1 - x1 * y0]])


def body_ellipsoids(shape: MouseShape, state: BodyState) -> Ellipsoids:
    """The surface of ``shape`` posed as ``state``: trunk, head, ears, eyes, limbs, tail."""
    s, g = shape.scale, shape.girth
    lengths = shape.spine_lengths
    centers: list[FloatArray] = []
    axes: list[FloatArray] = []
    radii: list[FloatArray] = []
    material: list[int] = []

    def add(c: FloatArray, r: FloatArray, frame: FloatArray, m: int) -> None:
        centers.append(c)
        radii.append(r)
        axes.append(frame)
        material.append(m)

    spine = [state.joint(n) for n in SPINE]
    hw, hh = _SPINE_HALF_WIDTH * s * g, _SPINE_HALF_HEIGHT * s * g
    for k in range(4):  # trunk and neck segments, with a blob at each inner joint
        frame = state.spine_frames[k]
        c = spine[k] + _SEGMENT_CENTRE[k] * (spine[k + 1] - spine[k])
        add(c, np.array([0.5 * _SEGMENT_LENGTH[k] * lengths[k], hw[k], hh[k]]), frame, FUR)
        if k == 0:
            add(spine[0] + frame[:, 0] * (_TAIL_ROOT_X * s), _TAIL_ROOT_RADII * (s * g),
                frame, FUR)
        if k > 0:
            r = 0.5 * (hw[k - 1] + hw[k])
            add(spine[k], np.array([_BLOB_LENGTH[k] * r, r, 0.5 * (hh[k - 1] + hh[k])]),
                frame, FUR)
    hs = s * shape.head_size
    head_frame = state.spine_frames[4]
    along = head_frame[:, 0]
    # The cranium (the ears sit on its back), the muzzle, and the snout whose tip is the nose.
    head_r = _CRANIUM_RADII * hs
    head_c = spine[4] + along * (_CRANIUM_X * hs)
    add(head_c, head_r, head_frame, FUR)
    add(spine[4] + along * (_MUZZLE_X * hs), _MUZZLE_RADII * hs, head_frame, FUR)
    snout_r = _SNOUT_RADII * hs
    add(spine[5] - along * snout_r[0], snout_r, head_frame, FUR)
    ear_r = _EAR_RADII * (s * shape.ear_size)
    for side, ear in ((1.0, "left_ear"), (-1.0, "right_ear")):
        mirror = np.array([1.0, side, 1.0])
        normal = head_frame @ (_EAR_NORMAL * mirror)
        normal /= np.linalg.norm(normal)
        # the long axis: the head's outward-and-up direction, in the disc's plane
        out = head_frame @ np.array([0.3, side, 0.6])
        out -= np.dot(out, normal) * normal
        out /= np.linalg.norm(out)
        across = np.cross(out, normal)
        frame = np.column_stack([across, out, normal])
        add(state.joint(ear) + head_frame @ (_EAR_SHIFT * mirror * (s * shape.ear_size)),
            ear_r, frame, EAR)
        eye_dir = _EYE_DIR * mirror
        eye_dir = eye_dir / np.linalg.norm(eye_dir)
        add(head_c + head_frame @ (head_r * eye_dir), np.full(3, 0.0016 * hs), head_frame, EYE)
    half_seg = 0.75 * shape.tail_segment  # long overlaps: a smooth tail, not a string of beads
    for k in range(TAIL_SEGMENTS):
        a, b = state.joint(TAIL[k]), state.joint(TAIL[k + 1])
        r = _tail_drawn(shape, (k + 0.5) / TAIL_SEGMENTS)
        frame = _bone_frame(a, b)
        # the last one ends at the tip
        c = 0.5 * (a + b) if k < TAIL_SEGMENTS - 1 else b - frame[:, 0] * half_seg
        add(c, np.array([half_seg, r, r]), frame, SKIN)
    for i, (root, mid_name, paw) in enumerate(LIMBS):
        thick = (0.0032, 0.0022) if i < 2 else (0.0050, 0.0026)
        pts = [state.joint(root), state.joint(mid_name), state.joint(paw)]
        for k in range(2):
            length = float(np.linalg.norm(pts[k + 1] - pts[k]))
            r = thick[k] * s
            add(0.5 * (pts[k] + pts[k + 1]), np.array([0.5 * length * 1.1, r, r]),
                _bone_frame(pts[k], pts[k + 1]), FUR if k == 0 else SKIN)
        paw_r = (_FOREPAW_RADII if i < 2 else _HINDPAW_RADII) * s
        # Feet lie flat: along the forearm's heading in front, the rump's behind.
        along = _bone_frame(pts[1], pts[2]) if i < 2 else state.spine_frames[0]
        paw_frame = _frame(math.atan2(along[1, 0], along[0, 0]), 0.0)
        add(pts[2], paw_r, paw_frame, SKIN)
    return Ellipsoids(centers=np.array(centers), axes=np.array(axes), radii=np.array(radii),
                      material=np.array(material, dtype=np.int8))

