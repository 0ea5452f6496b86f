"""The body's surface and coat for the renderer, and drawing a mouse's shape.

The body model itself (skeleton, :class:`~mouse_lifter_ros.core.body.MouseShape`,
:class:`~mouse_lifter_ros.core.body.Pose`, forward kinematics) is the runtime's
:mod:`mouse_lifter_ros.core.body`; this module dresses a posed body for the synthetic
data engine: its surface as ellipsoids around the bones (:func:`body_ellipsoids`, with a
material each: fur, skin, ear, eye), how far each keypoint lies under that surface
(:func:`keypoint_surface_offsets`), and random adult lab-mouse shapes and coats
(:func:`sample_shape`).

Frames and units: the arena frame (REP-103: x, y on the floor, z up from the floor),
metres and radians.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Final

import numpy as np
from numpy.typing import NDArray

from mouse_lifter_ros.core.body import (
    KEYPOINTS,
    LIMBS,
    SPINE,
    TAIL,
    TAIL_SEGMENTS,
    BodyState,
    FloatArray,
    MouseShape,
    segment_rotation,
)
from mouse_lifter_ros.core.errors import InputError

# Materials of the surface ellipsoids.
FUR, SKIN, EAR, EYE = 0, 1, 2, 3

# Unscaled surface anatomy (metres), for an adult of scale 1.
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
# The pinna, a thin disc: its centre this far from the ear joint (head frame, left ear),
# its opening facing forward, outward and up, its long axis leaning out sideways, so
# that from above each ear shows as a rounded lobe beside the back of the head.
_EAR_SHIFT = np.array([0.0, 0.0015, 0.0010])
_EAR_NORMAL = np.array([0.20, 0.45, 0.87])
_EAR_RADII = np.array([0.0060, 0.0075, 0.0010])  # across, base to tip, thickness
_FOREPAW_RADII = np.array([0.0040, 0.0024, 0.0018])
_HINDPAW_RADII = np.array([0.0060, 0.0028, 0.0018])
# Tail radius: the drawn tail is thick at the root (4 mm across, 4-5 px in a typical
# 640x480 top view) and thins fast, tip + (base - tip) (1 - t)^1.5: from its middle on no
# thicker than the skeleton's (core.body.tail_radius), its root up to 0.4 mm thicker (a
# root lying flat on the floor dips that far into it, out of sight from above).
_TAIL_DRAWN = (0.0020, 0.00055)  # base, tip


def keypoint_surface_offsets(shape: MouseShape) -> FloatArray:
    """(14,) distance from each keypoint to the body surface around it, metres.

    A keypoint inside the body (the spine, the head joint) lies up to this far under the
    visible surface of ``shape``; one on the surface (nose, ears, paws, tail) within it.
    The depth map at a visible keypoint matches its depth within this offset.
    """
    s, g = shape.scale, shape.girth
    half = np.maximum(_SPINE_HALF_WIDTH, _SPINE_HALF_HEIGHT) * s * g
    hs = s * shape.head_size
    out = {
        "nose": _SNOUT_RADII[1] * hs,
        "left_ear": _EAR_RADII[1] * s * shape.ear_size,
        "head": max(half[3], float(np.max(_CRANIUM_RADII)) * hs),
        "neck": max(half[2], half[3]), "spine_center": max(half[1], half[2]),
        "lumbar_spine": max(half[0], half[1]), "tail_base": half[0],
        "tail_mid": _tail_drawn(shape, 0.375), "tail_tip": _tail_drawn(shape, 1.0) + 0.0005,
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


def _tail_drawn(shape: MouseShape, t: float) -> float:
    """Radius of the drawn tail a fraction ``t`` of the way to the tip."""
    return float(shape.scale * (_TAIL_DRAWN[1] + (_TAIL_DRAWN[0] - _TAIL_DRAWN[1])
                                * (1.0 - t) ** 1.5))


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
        paw_frame = segment_rotation(math.atan2(along[1, 0], along[0, 0]), 0.0)
        add(pts[2], paw_r, paw_frame, SKIN)
    return Ellipsoids(centers=np.array(centers), axes=np.array(axes), radii=np.array(radii),
                      material=np.array(material, dtype=np.int8))

