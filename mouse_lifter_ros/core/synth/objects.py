"""Distractor objects of the synthetic arena: cups, bowls, shelters, tubes, hoppers,
bottles and cables, as the renderer draws them.

Real rigs hold things a mouse detector can take for a mouse: above all dark, mouse-sized
objects (a black cup or dish, a dark shelter or tube). Each :class:`SceneObject` is
built from a few exact ray-traced primitives (:class:`Part`: finite cylinders and
annuli, which may be open or clipped to a height range, boxes and spherical shells), so
that open cups show their inside, a half-tube its arch and a shelter its walls, from
any camera above or below the floor. :func:`cast_parts` ray-casts them into the
renderer's z-buffer (so they hide the mouse and the mouse hides them),
:func:`shade_parts` shades them in the renderer's style (Lambert plus ambient, darker
where the surface turns from the camera, a plastic gloss, self-shadowing) and
:func:`floor_shading` gives their soft cast shadows and contact darkening on the floor
(their shadows do not fall on the mouse, nor the mouse's on them). Under infrared light
their albedo turns grey as the clutter's does (:func:`object_albedo`).

:func:`sample_objects` draws a scene's objects (about half the scenes have 1-3, a good
share of them near-black) from its own generator, and :func:`clear_of_mouse` drops the
objects a posed mouse would pass through (a mouse may be under a shelter or a
half-tube: those hide it instead).

Frames and units: the arena frame (REP-103: x, y on the floor, z up, origin at the arena
centre), metres and radians; an object's own frame has its origin on the floor under
its centre, x along its heading ``yaw`` and z up.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

import cv2
import numpy as np
from numpy.typing import NDArray

from mouse_lifter_ros.core.body import BodyState, MouseShape
from mouse_lifter_ros.core.camera import Camera
from mouse_lifter_ros.core.errors import InputError
from mouse_lifter_ros.core.synth.body import body_ellipsoids

FloatArray = NDArray[np.float64]
F32 = NDArray[np.float32]

#: Kinds of :class:`SceneObject`.
OBJECT_KINDS: Final[tuple[str, ...]] = (
    "cup", "bowl", "shelter", "half_tube", "tube", "hopper", "bottle", "cable")
#: Kinds a mouse may be partly under: :func:`clear_of_mouse` keeps them when it fits.
SHELTER_KINDS: Final[tuple[str, ...]] = ("shelter", "half_tube")
#: The mouse-sized, blob-like kinds a detector takes for a mouse most easily (the
#: held-out distractor frames put one of them near the mouse).
BLOB_KINDS: Final[tuple[str, ...]] = ("cup", "bowl", "shelter", "half_tube", "tube")
#: Albedo luminance at or under which an object counts as dark.
DARK_LUMA: Final = 0.08
#: Part shapes.
CYLINDER, DISC, BOX, SPHERE = 0, 1, 2, 3
#: Seed-sequence tag of the objects' own random stream (see :func:`object_rng`).
OBJECT_STREAM: Final = 0x0B1EC7
#: Nominal body length (nose to tail base) of an adult mouse, metres: objects are drawn
#: 0.5-1.5 times it.
MOUSE_LENGTH: Final = 0.09

_LUMA: Final = np.array([0.299, 0.587, 0.114])
_NEAR: Final = 1e-4
_KIND_P: Final = np.array([0.24, 0.12, 0.15, 0.1, 0.12, 0.07, 0.06, 0.14])


@dataclass(frozen=True)
class SceneObject:
    """A distractor object in the arena.

    Attributes
    ----------
    kind:
        One of :data:`OBJECT_KINDS`: ``cup`` (an open cylinder: cup, dish, jar),
        ``bowl`` (a spherical bowl with a flat base), ``shelter`` (a box of thin walls
        and a roof, a doorway in one end, open underneath), ``half_tube`` (a half
        cylinder arching over the floor, open at both ends), ``tube`` (a cylinder
        lying on the floor, open at both ends), ``hopper`` (a food hopper: a box, on
        the floor or hung on a wall), ``bottle`` (a water bottle lying along a wall,
        with a spout) or ``cable`` (a thin cable along a polyline on the floor).
    x, y, yaw:
        Position of the object's floor centre (m) and heading of its length (rad),
        arena frame.
    size:
        Length (along ``yaw``), width and height, metres. Round objects (cup, bowl)
        take their diameter from the length; tubes, half-tubes and bottles their
        diameter from the width (a half-tube is half as high); a cable its thickness
        from the width and its length is its path's.
    albedo:
        RGB in 0..1.
    thickness:
        Wall thickness of hollow objects, metres.
    elevation:
        Height of the object's bottom above the floor (hoppers and bottles hung on a
        wall), metres.
    gloss:
        Strength of the specular highlight (plastic, metal), 0..1.
    path:
        Cable only: the polyline (x, y) in the object's frame, metres.
    """

    kind: str
    x: float
    y: float
    yaw: float
    size: tuple[float, float, float]
    albedo: tuple[float, float, float]
    thickness: float = 0.003
    elevation: float = 0.0
    gloss: float = 0.0
    path: tuple[tuple[float, float], ...] = ()

    def __post_init__(self) -> None:
        problems = []
        if self.kind not in OBJECT_KINDS:
            problems.append(f"kind={self.kind!r}: allowed {', '.join(OBJECT_KINDS)}")
        if len(self.size) != 3 or min(self.size) <= 0:
            problems.append(f"size={self.size}: three positive lengths needed")
        elif self.kind != "cable" and not 0 < self.thickness < 0.5 * min(self.size):
            problems.append(f"thickness={self.thickness}: must be > 0 and under half the "
                            "smallest size")
        if self.elevation < 0:
            problems.append(f"elevation={self.elevation}: must be >= 0")
        if self.kind == "cable" and len(self.path) < 2:
            problems.append("a cable needs a path of at least 2 points")
        if problems:
            raise InputError("scene object: " + "; ".join(problems))

    @property
    def dark(self) -> bool:
        """Whether its albedo's luminance is at most :data:`DARK_LUMA`."""
        return float(_LUMA @ np.asarray(self.albedo, dtype=np.float64)) <= DARK_LUMA

    @property
    def top(self) -> float:
        """Height of its highest point above the floor, metres."""
        return self.elevation + self.size[2]

    def footprint(self) -> tuple[FloatArray, FloatArray]:
        """Discs covering its footprint on the floor: centres (M, 2) and radii (M,), m."""
        if self.kind == "cable":
            pts = np.asarray(self.path, dtype=np.float64)
            dense = [pts[:1]]
            for a, b in itertools.pairwise(pts):
                k = max(1, math.ceil(float(np.linalg.norm(b - a)) / (0.5 * self.size[1] + 1e-3)))
                s = np.linspace(0.0, 1.0, k + 1)[1:, None]
                dense.append(a + s * (b - a))
            local = np.concatenate(dense)
            radius = np.full(len(local), 0.5 * self.size[1])
        elif self.kind in ("cup", "bowl"):
            local = np.zeros((1, 2))
            radius = np.array([0.5 * self.size[0]])
        else:  # a row of discs along the length
            length = self.size[0] + (0.04 if self.kind == "bottle" else 0.0)
            half_w = 0.5 * self.size[1]
            k = max(1, math.ceil(length / (2.0 * half_w)))
            xs = np.linspace(-0.5 * length + half_w, 0.5 * length - half_w, k) if k > 1 \
                else np.zeros(1)
            if self.kind == "bottle":
                xs = xs + 0.02
            local = np.column_stack([xs, np.zeros(k)])
            step = (xs[1] - xs[0]) if k > 1 else 0.0
            radius = np.full(k, math.hypot(half_w, 0.5 * step))
        c, s_ = math.cos(self.yaw), math.sin(self.yaw)
        rot = np.array([[c, -s_], [s_, c]])
        return local @ rot.T + np.array([self.x, self.y]), radius


@dataclass(frozen=True)
class Part:
    """One ray-traced primitive of an object, arena frame.

    Attributes
    ----------
    shape:
        :data:`CYLINDER` (the side of a finite cylinder, no caps), :data:`DISC` (a disc
        or annulus), :data:`BOX` (a solid box) or :data:`SPHERE` (a sphere's surface).
    centre:
        (3,) centre, metres.
    axes:
        (3, 3) columns: the part's unit axes; the first is a cylinder's or disc's axis.
    dims:
        Cylinder (radius, 0, half length); disc (outer radius, inner radius, 0); box
        (half sizes along the axes); sphere (radius, 0, 0); metres.
    zclip:
        Hits are kept only where arena z lies in this range (open shells, arches).
    obj:
        Index of its object in the scene's ``objects``.
    """

    shape: int
    centre: FloatArray
    axes: FloatArray
    dims: tuple[float, float, float]
    zclip: tuple[float, float]
    obj: int

    def half_extents(self) -> FloatArray:
        """Half sizes of its bounding box along ``axes``, metres."""
        a, b, c = self.dims
        if self.shape == CYLINDER:
            return np.array([c, a, a])
        if self.shape == DISC:
            return np.array([1e-4, a, a])
        if self.shape == BOX:
            return np.array([a, b, c])
        return np.array([a, a, a])

    @functools.cached_property
    def samples(self) -> FloatArray:
        """(M, 3) points on its surface outline (rims, corners), inside its ``zclip``:
        their convex hull is the part's, for shadows."""
        a, b, c = self.dims
        ang = np.linspace(0.0, 2.0 * math.pi, 16, endpoint=False)
        ring = np.column_stack([np.zeros(16), np.cos(ang), np.sin(ang)])
        if self.shape == CYLINDER:
            local = np.concatenate([ring * a + [c, 0, 0], ring * a - [c, 0, 0]])
        elif self.shape == DISC:
            local = ring * a
        elif self.shape == BOX:
            local = np.array([[i * a, j * b, k * c] for i in (-1, 1) for j in (-1, 1)
                              for k in (-1, 1)], dtype=np.float64)
        else:  # a Fibonacci sphere
            i = np.arange(32) + 0.5
            zz = 1.0 - 2.0 * i / 32
            rr = np.sqrt(1.0 - zz * zz)
            phi = i * math.pi * (3.0 - math.sqrt(5.0))
            local = a * np.column_stack([rr * np.cos(phi), rr * np.sin(phi), zz])
        pts = self.centre + local @ self.axes.T
        pts[:, 2] = np.clip(pts[:, 2], *self.zclip)
        return np.asarray(pts, dtype=np.float64)

    @functools.cached_property
    def lattice(self) -> FloatArray:
        """(27, 3) points of a 3x3x3 lattice on its bounding box, arena frame."""
        g = np.array([[i, j, k] for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)],
                     dtype=np.float64)
        return self.centre + (g * self.half_extents()) @ self.axes.T


def _frame(u: FloatArray) -> FloatArray:
    """(3, 3) columns: unit ``u`` and two unit vectors perpendicular to it."""
    u = u / np.linalg.norm(u)
    helper = np.array([0.0, 0.0, 1.0]) if abs(u[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    v = np.cross(u, helper)
    v /= np.linalg.norm(v)
    return np.column_stack([u, v, np.cross(u, v)])


def object_parts(obj: SceneObject, index: int = 0) -> list[Part]:
    """The primitives of ``obj`` (object ``index`` of its scene), arena frame."""
    c, s = math.cos(obj.yaw), math.sin(obj.yaw)
    rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    origin = np.array([obj.x, obj.y, 0.0])
    ex, ez = rot[:, 0], rot[:, 2]
    e, th = obj.elevation, obj.thickness
    length, width, height = obj.size
    inf = math.inf
    parts: list[Part] = []

    def at(p: Sequence[float]) -> FloatArray:
        return np.asarray(origin + rot @ np.asarray(p, dtype=np.float64), dtype=np.float64)

    def cyl(centre: FloatArray, axis: FloatArray, r: float, hl: float,
            zclip: tuple[float, float] = (-inf, inf)) -> None:
        parts.append(Part(CYLINDER, centre, _frame(axis), (r, 0.0, hl), zclip, index))

    def disc(centre: FloatArray, axis: FloatArray, r1: float, r0: float = 0.0,
             zclip: tuple[float, float] = (-inf, inf)) -> None:
        parts.append(Part(DISC, centre, _frame(axis), (r1, r0, 0.0), zclip, index))

    def box(centre: FloatArray, half: Sequence[float]) -> None:
        parts.append(Part(BOX, centre, rot, (half[0], half[1], half[2]), (-inf, inf), index))

    if obj.kind == "cup":
        r, bottom = 0.5 * length, max(th, 0.002)
        cyl(at([0, 0, e + 0.5 * height]), ez, r, 0.5 * height)
        cyl(at([0, 0, e + 0.5 * (height + bottom)]), ez, r - th, 0.5 * (height - bottom))
        disc(at([0, 0, e + height]), ez, r, r - th)
        disc(at([0, 0, e + bottom]), ez, r - th)
        disc(at([0, 0, e]), ez, r)
    elif obj.kind == "bowl":
        r_rim, r_base = 0.5 * length, 0.25 * length
        depth = min(height, 0.95 * math.sqrt(r_rim**2 - r_base**2))
        zc = (r_rim**2 + depth**2 - r_base**2) / (2.0 * depth)  # sphere through rim and base
        radius = math.hypot(r_base, zc)
        parts.append(Part(SPHERE, at([0, 0, e + zc]), np.eye(3), (radius, 0.0, 0.0),
                          (e, e + depth), index))
        disc(at([0, 0, e + depth]), ez, r_rim, max(r_rim - th, 0.0))
        inner = 0.002
        disc(at([0, 0, e + inner]), ez, math.sqrt(max(radius**2 - (zc - inner) ** 2, 0.0)))
        disc(at([0, 0, e]), ez, r_base)
    elif obj.kind == "shelter":  # thin walls and a roof, a doorway at the +x end
        hl, hw = 0.5 * length, 0.5 * width
        box(at([0, 0, e + height - 0.5 * th]), (hl, hw, 0.5 * th))
        wall_h = height - th
        for sy in (-1.0, 1.0):
            box(at([0, sy * (hw - 0.5 * th), e + 0.5 * wall_h]), (hl, 0.5 * th, 0.5 * wall_h))
        box(at([-(hl - 0.5 * th), 0, e + 0.5 * wall_h]), (0.5 * th, hw, 0.5 * wall_h))
        door_w, door_h = min(0.55 * width, 0.04), min(0.7 * wall_h, 0.035)
        side = 0.5 * (width - door_w)
        for sy in (-1.0, 1.0):
            box(at([hl - 0.5 * th, sy * (hw - 0.5 * side), e + 0.5 * wall_h]),
                (0.5 * th, 0.5 * side, 0.5 * wall_h))
        box(at([hl - 0.5 * th, 0, e + door_h + 0.5 * (wall_h - door_h)]),
            (0.5 * th, 0.5 * door_w, 0.5 * (wall_h - door_h)))
    elif obj.kind in ("half_tube", "tube"):
        r, hl = 0.5 * width, 0.5 * length
        zc = e if obj.kind == "half_tube" else e + r
        clip = (e, inf)
        cyl(at([0, 0, zc]), ex, r, hl, clip)
        cyl(at([0, 0, zc]), ex, r - th, hl, clip)
        for sx in (-1.0, 1.0):
            disc(at([sx * hl, 0, zc]), ex, r, r - th, clip)
    elif obj.kind == "hopper":
        box(at([0, 0, e + 0.5 * height]), (0.5 * length, 0.5 * width, 0.5 * height))
    elif obj.kind == "bottle":  # lying along x, its spout at +x pointing down and out
        r, hl = 0.5 * width, 0.5 * length
        cyl(at([0, 0, e + r]), ex, r, hl)
        for sx in (-1.0, 1.0):
            disc(at([sx * hl, 0, e + r]), ex, r)
        spout_len, tilt = min(0.035, 0.4 * length), math.radians(35)
        axis = math.cos(tilt) * ex - math.sin(tilt) * ez
        cyl(at([hl, 0, e + r]) + 0.5 * spout_len * axis, axis, min(0.0035, 0.5 * r),
            0.5 * spout_len)
    else:  # cable: cylinders between the path's points, spheres at the joints
        r = 0.5 * width
        pts = [at([px, py, e + r]) for px, py in obj.path]
        for a, b in itertools.pairwise(pts):
            d = b - a
            n = float(np.linalg.norm(d))
            if n > 1e-6:
                cyl(0.5 * (a + b), d / n, r, 0.5 * n)
        for p in pts:
            parts.append(Part(SPHERE, p, np.eye(3), (r, 0.0, 0.0), (-inf, inf), index))
    return parts


def scene_parts(objects: Iterable[SceneObject]) -> list[Part]:
    """Every part of ``objects``, each tagged with its object's index."""
    return [p for i, obj in enumerate(objects) for p in object_parts(obj, i)]


# ---------------------------------------------------------------------- intersection


def _dot(a: FloatArray, b: FloatArray) -> FloatArray:
    """Column-wise dot product of (3, N) or (3, 1) arrays (broadcast)."""
    return np.asarray(a[0] * b[0] + a[1] * b[1] + a[2] * b[2], dtype=np.float64)


def part_hits(part: Part, origin: FloatArray, direction: FloatArray,
              near: float = _NEAR) -> FloatArray:
    """Ray parameter ``t`` of the first hit of rays ``origin + t direction`` on ``part``.

    ``origin`` and ``direction`` are (3, N) or (3, 1) (broadcast), arena frame; only
    hits with ``t > near`` and z inside the part's ``zclip`` count. Returns (N,), inf
    where a ray misses. Open shells are hit from either side: a ray entering a cup
    meets the inner wall's far side.
    """
    rel = origin - part.centre[:, None]
    n = max(rel.shape[1], direction.shape[1])
    zlo, zhi = part.zclip
    clip = math.isfinite(zlo) or math.isfinite(zhi)
    d0, d1, d2 = part.dims
    inf = np.inf
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if part.shape == DISC:
            u = part.axes[:, :1]
            du = _dot(u, direction)
            t = -_dot(u, rel) / du
            px, py, pz = (rel[k] + t * direction[k] for k in range(3))
            rho2 = px * px + py * py + pz * pz
            ok = (t > near) & (rho2 <= d0 * d0) & (rho2 >= d1 * d1)
            if clip:
                z = origin[2] + t * direction[2]
                ok &= (z >= zlo) & (z <= zhi)
            return np.broadcast_to(np.where(ok, t, inf), (n,)).astype(np.float64)
        if part.shape == BOX:
            t_in = np.full(n, -inf)
            t_out = np.full(n, inf)
            for k in range(3):
                ax = part.axes[:, k:k + 1]
                dl = _dot(ax, direction)
                dl = np.where(np.abs(dl) < 1e-30, 1e-30, dl)
                ol = _dot(ax, rel)
                ta, tb = (-part.dims[k] - ol) / dl, (part.dims[k] - ol) / dl
                t_in = np.maximum(t_in, np.minimum(ta, tb))
                t_out = np.minimum(t_out, np.maximum(ta, tb))
            ok = (t_in <= t_out) & (t_in > near)
            if clip:
                z = origin[2] + t_in * direction[2]
                ok &= (z >= zlo) & (z <= zhi)
            return np.where(ok, t_in, inf)
        if part.shape == CYLINDER:
            u = part.axes[:, :1]
            du = _dot(u, direction)
            ou = _dot(u, rel)
            dp = direction - u * du
            op = rel - u * ou
            a = _dot(dp, dp)
            b = _dot(op, dp)
            cc = _dot(op, op) - d0 * d0
        else:  # sphere
            a = _dot(direction, direction)
            b = _dot(rel, direction)
            cc = _dot(rel, rel) - d0 * d0
        disc = b * b - a * cc
        sq = np.sqrt(np.maximum(disc, 0.0))
        good = (disc > 0) & (a > 1e-18)
        best = np.full(np.broadcast(a, b, cc).shape, inf)
        for sign in (1.0, -1.0):  # the far root first, so that the near one wins
            t = (-b + sign * sq) / a
            ok = good & (t > near)
            if part.shape == CYLINDER:
                ok &= np.abs(ou + t * du) <= d2
            if clip:
                z = origin[2] + t * direction[2]
                ok &= (z >= zlo) & (z <= zhi)
            best = np.where(ok, t, best)
        return np.broadcast_to(best, (n,)).astype(np.float64)


def part_normals(part: Part, points: FloatArray) -> FloatArray:
    """(3, N) outward unit normals of ``part`` at its surface ``points`` (3, N)."""
    rel = points - part.centre[:, None]
    if part.shape == DISC:
        return np.repeat(part.axes[:, :1], points.shape[1], axis=1)
    if part.shape == BOX:
        local = part.axes.T @ rel
        face = np.argmax(np.abs(local) / np.array(part.dims)[:, None], axis=0)
        sign = np.sign(local[face, np.arange(points.shape[1])])
        return np.asarray(part.axes[:, face] * sign, dtype=np.float64)
    if part.shape == CYLINDER:
        u = part.axes[:, :1]
        rel = rel - u * (u * rel).sum(axis=0)
    norm = np.maximum(np.sqrt((rel * rel).sum(axis=0)), 1e-12)
    return np.asarray(rel / norm, dtype=np.float64)


def occluded(parts: Sequence[Part], origin: FloatArray, direction: FloatArray,
             near: float = 1e-5) -> NDArray[np.bool_]:
    """(N,) whether rays ``origin + t direction`` (t > ``near``) meet any of ``parts``."""
    n = max(origin.shape[1], direction.shape[1])
    hit = np.zeros(n, dtype=bool)
    for part in parts:
        hit |= np.isfinite(part_hits(part, origin, direction, near))
    return hit


@dataclass(frozen=True)
class PartHits:
    """The winning object hits: one entry per pixel an object shows in.

    ``pix`` flat pixel index, ``t`` camera z (m), ``part`` index into the parts,
    ``normal`` (3, N) unit normals facing the camera and ``ray`` (3, N) the unit-z
    rays, arena frame.
    """

    pix: NDArray[np.intp]
    t: F32
    part: NDArray[np.intp]
    normal: FloatArray
    ray: FloatArray

    def select(self, keep: NDArray[np.bool_]) -> PartHits:
        """The entries where ``keep``."""
        return PartHits(self.pix[keep], self.t[keep], self.part[keep], self.normal[:, keep],
                        self.ray[:, keep])


def pixel_boxes(camera: Camera, point_sets: Sequence[FloatArray], margin: int = 2
                ) -> list[tuple[int, int, int, int]]:
    """Pixel box ``x0, x1, y0, y1`` (exclusive ends, clamped to the image) of each set of
    arena points (M_i, 3); the whole image for a set partly behind the camera, an empty
    box for one wholly behind it. One projection for all the sets."""
    if not point_sets:
        return []
    px, z = camera.project(np.concatenate(point_sets))
    w, h = camera.width, camera.height
    out = []
    start = 0
    for pts in point_sets:
        p, front = px[start:start + len(pts)], z[start:start + len(pts)] > _NEAR
        start += len(pts)
        if not front.any():
            out.append((0, 0, 0, 0))
        elif not front.all():
            out.append((0, w, 0, h))
        else:
            lo = np.clip(np.floor(p.min(axis=0)) - margin, 0, [w, h]).astype(int)
            hi = np.clip(np.ceil(p.max(axis=0)) + margin + 1, 0, [w, h]).astype(int)
            out.append((int(lo[0]), int(hi[0]), int(lo[1]), int(hi[1])))
    return out


def cast_parts(camera: Camera, ray_x: F32, ray_y: F32, parts: Sequence[Part], zbuf: F32
               ) -> PartHits:
    """Ray-cast ``parts`` into the flat z-buffer ``zbuf`` (H * W, camera z; modified).

    ``ray_x``, ``ray_y`` (H, W): every pixel's unit-z camera ray (the renderer's ray
    grid). Each part is solved over the pixels of its projected bounding box, in turn;
    a hit counts where it is nearer than what ``zbuf`` holds then, and is written into
    it. Returns the hits nearest of all (where two parts tie exactly, both). A later
    caster that keeps only what is nearer than ``zbuf`` hides them where it is in
    front.
    """
    w = camera.width
    rt = camera.R.T
    cpos = camera.position[:, None]
    xs, ys = ray_x.reshape(-1), ray_y.reshape(-1)
    pix_l, t_l, part_l = [], [], []
    boxes = pixel_boxes(camera, [part.lattice for part in parts])
    for k, (part, (x0, x1, y0, y1)) in enumerate(zip(parts, boxes, strict=True)):
        if x1 <= x0 or y1 <= y0:
            continue
        idx = (np.arange(y0, y1, dtype=np.intp)[:, None] * w
               + np.arange(x0, x1, dtype=np.intp)[None, :]).reshape(-1)
        d = rt @ np.stack([xs[idx], ys[idx], np.ones(idx.size, np.float32)]).astype(np.float64)
        t = part_hits(part, cpos, d).astype(np.float32)
        keep = np.flatnonzero(t < zbuf[idx])
        pix, tk = idx[keep], t[keep]
        zbuf[pix] = tk  # a part's box holds each pixel once
        pix_l.append(pix)
        t_l.append(tk)
        part_l.append(np.full(keep.size, k, dtype=np.intp))
    if not pix_l or sum(p.size for p in pix_l) == 0:
        return PartHits(np.zeros(0, np.intp), np.zeros(0, np.float32), np.zeros(0, np.intp),
                        np.zeros((3, 0)), np.zeros((3, 0)))
    pix, t32, pid = np.concatenate(pix_l), np.concatenate(t_l), np.concatenate(part_l)
    win = np.flatnonzero(t32 <= zbuf[pix])
    pix, t32, pid = pix[win], t32[win], pid[win]
    ray = rt @ np.stack([xs[pix], ys[pix], np.ones(pix.size, np.float32)]).astype(np.float64)
    points = cpos + t32.astype(np.float64) * ray
    normal = np.empty((3, pix.size))
    for k in np.unique(pid):
        sel = pid == k
        normal[:, sel] = part_normals(parts[k], points[:, sel])
    flip = _dot(normal, ray) > 0
    normal[:, flip] *= -1.0
    return PartHits(pix=pix, t=t32, part=pid, normal=normal, ray=ray)


# ---------------------------------------------------------------------------- shading


def object_albedo(obj: SceneObject, infrared: bool) -> FloatArray:
    """(3,) RGB albedo of ``obj`` under visible or infrared light (grey, as clutter)."""
    a = np.asarray(obj.albedo, dtype=np.float64)
    if infrared:
        return np.full(3, 0.15 + 0.8 * float(_LUMA @ a))
    return a


def shade_parts(hits: PartHits, parts: Sequence[Part], objects: Sequence[SceneObject],
                camera: Camera, *, light_dir: Sequence[float], ambient: float,
                shadow: float, infrared: bool) -> F32:
    """(N, 3) linear RGB radiance of the object ``hits`` (before the illumination field).

    As the renderer shades the body: Lambertian light plus ``ambient``, darker where the
    surface turns away from the camera; the light is cut by ``shadow`` (0..1) where
    the object shades itself (inside a cup, under a roof's edge), and glossy objects
    add a specular highlight.
    """
    n = hits.pix.size
    if n == 0:
        return np.zeros((0, 3), dtype=np.float32)
    lvec = np.asarray(light_dir, dtype=np.float64)
    normal = hits.normal
    lam = np.maximum(lvec @ normal, 0.0)
    obj_of = np.array([p.obj for p in parts], dtype=np.intp)[hits.part]
    if shadow > 0:  # self-shadowing (a convex hopper, a cable or a bottle has none)
        points = camera.position[:, None] + hits.t.astype(np.float64) * hits.ray
        lit = np.flatnonzero(lam > 0)
        for j in np.unique(obj_of[lit]):
            if objects[j].kind in ("hopper", "cable", "bottle"):
                continue
            sel = lit[obj_of[lit] == j]
            origin = points[:, sel] + 2e-4 * normal[:, sel]
            lowest = float(origin[2].min())
            # only parts reaching above the lowest point can shade it (light from above)
            own = [p for p in parts if p.obj == j
                   and (lvec[2] <= 0 or float(p.samples[:, 2].max()) > lowest)]
            dark = occluded(own, origin, lvec[:, None])
            lam[sel[dark]] *= 1.0 - shadow
    view = -hits.ray / np.sqrt((hits.ray * hits.ray).sum(axis=0))
    facing = np.abs((view * normal).sum(axis=0))
    light = (ambient + (1.0 - ambient) * lam) * (0.75 + 0.25 * facing)
    albedo = np.array([object_albedo(o, infrared) for o in objects])[obj_of]
    rad = albedo * light[:, None]
    gloss = np.array([o.gloss for o in objects])[obj_of]
    if gloss.any():
        half = lvec[:, None] + view
        half /= np.maximum(np.sqrt((half * half).sum(axis=0)), 1e-9)
        spec = np.maximum((half * normal).sum(axis=0), 0.0) ** 40 * (lam > 0)
        rad += (gloss * spec)[:, None]
    return np.asarray(rad, dtype=np.float32)


def floor_shading(parts: Sequence[Part], objects: Sequence[SceneObject], camera: Camera, *,
                  light_dir: Sequence[float], shadow: float, softness: float, ambient: float
                  ) -> list[tuple[F32, tuple[int, int, int, int]]]:
    """Multipliers of the floor's light near each object: cast shadow and contact shade.

    Each part's shadow on the floor is the convex hull of its surface points
    (:meth:`Part.samples`) slid along the light onto the floor; the hard shadow is
    softened by ``softness`` (the light's angular radius) times the object's mid
    height and darkens the floor by ``shadow``. Objects standing on the floor also
    darken it just around their base (ambient occlusion, by half ``ambient``). Returns
    ``(multiplier, (x0, y0, x1, y1))`` windows (exclusive ends) of the image to
    multiply into the floor's light (the caller applies them to floor pixels only).
    """
    lvec = np.asarray(light_dir, dtype=np.float64)
    w, h = camera.width, camera.height
    mpp = abs(float(camera.position[2])) / float(camera.K[0, 0])  # m per px on the floor
    casts = shadow > 0 and lvec[2] > 0.05
    shift = 4
    out = []
    for j, obj in enumerate(objects):
        own = [p for p in parts if p.obj == j]
        grounded = obj.elevation < 0.005
        if not own or not (casts or grounded):
            continue
        sig_s = max(0.7, softness * (obj.elevation + 0.5 * obj.size[2]) / mpp)
        sig_a = max(1.0, 0.3 * min(obj.size[2], 0.03) / mpp)
        sets: list[tuple[int, FloatArray]] = []  # (0 shadow, 1 base), floor points
        for p in own:
            pts = p.samples
            if casts:
                sets.append((0, pts[:, :2] - (pts[:, 2] / lvec[2])[:, None] * lvec[None, :2]))
            if grounded:
                sets.append((1, pts[:, :2]))
        sizes = np.cumsum([len(xy) for _, xy in sets])[:-1]
        xy = np.concatenate([xy for _, xy in sets])
        px_all, z_all = camera.project(np.column_stack([xy, np.zeros(len(xy))]))
        polys = [(which, px) for (which, _), px, z in zip(
            sets, np.split(px_all, sizes), np.split(z_all, sizes), strict=True)
            if np.all(z > _NEAR)]
        if not polys:
            continue
        allpx = np.concatenate([px for _, px in polys])
        pad = math.ceil(3.0 * max(sig_s, sig_a)) + 2
        x0 = max(int(np.floor(allpx[:, 0].min())) - pad, 0)
        x1 = min(int(np.ceil(allpx[:, 0].max())) + pad + 1, w)
        y0 = max(int(np.floor(allpx[:, 1].min())) - pad, 0)
        y1 = min(int(np.ceil(allpx[:, 1].max())) + pad + 1, h)
        if x1 <= x0 or y1 <= y0:
            continue
        canvases = np.zeros((2, y1 - y0, x1 - x0), dtype=np.float32)
        for which, px in polys:
            local = np.clip((px - [x0, y0]) * (1 << shift), -1e6, 1e6).astype(np.int32)
            hull = cv2.convexHull(local)
            cv2.fillConvexPoly(canvases[which], hull, 1.0, cv2.LINE_AA, shift)
        mult = np.ones((y1 - y0, x1 - x0), dtype=np.float32)
        if casts:
            mult *= 1.0 - np.float32(shadow) * cv2.GaussianBlur(canvases[0], (0, 0), sig_s)
        if grounded:
            mult *= 1.0 - np.float32(0.5 * ambient) * cv2.GaussianBlur(canvases[1], (0, 0),
                                                                       sig_a)
        out.append((mult, (x0, y0, x1, y1)))
    return out


# --------------------------------------------------------------------------- sampling


def object_rng(texture_seed: int) -> np.random.Generator:
    """The objects' own generator of a scene, seeded from its ``texture_seed``: drawing
    the objects takes nothing from the generator of the rest of the scene."""
    return np.random.default_rng(np.random.SeedSequence([OBJECT_STREAM, int(texture_seed)]))


def _albedo(rng: np.random.Generator, kind: str, dark: bool) -> tuple[tuple[float, float, float],
                                                                     float]:
    """An object's RGB albedo and gloss."""
    if dark:  # near-black plastic, rubber or ceramic
        grey = float(rng.uniform(0.012, 0.06))
        rgb = grey * rng.uniform(0.85, 1.15, 3)
        return (float(rgb[0]), float(rgb[1]), float(rgb[2])), float(rng.uniform(0.0, 0.25))
    palettes = {
        "cup": [(0.85, 0.85, 0.85), (0.6, 0.12, 0.1), (0.15, 0.25, 0.6), (0.5, 0.5, 0.52),
                (0.2, 0.45, 0.2), (0.75, 0.7, 0.6)],
        "bowl": [(0.85, 0.85, 0.85), (0.5, 0.5, 0.52), (0.6, 0.12, 0.1), (0.75, 0.7, 0.6)],
        "shelter": [(0.6, 0.1, 0.08), (0.55, 0.42, 0.28), (0.8, 0.8, 0.78), (0.7, 0.35, 0.1),
                    (0.35, 0.35, 0.38)],
        "half_tube": [(0.55, 0.42, 0.28), (0.6, 0.1, 0.08), (0.8, 0.8, 0.78)],
        "tube": [(0.55, 0.55, 0.57), (0.8, 0.8, 0.78), (0.55, 0.42, 0.28), (0.6, 0.1, 0.08)],
        "hopper": [(0.5, 0.5, 0.52), (0.4, 0.4, 0.42), (0.65, 0.65, 0.66)],
        "bottle": [(0.7, 0.72, 0.75), (0.55, 0.6, 0.7), (0.8, 0.8, 0.8)],
        "cable": [(0.85, 0.85, 0.83), (0.35, 0.35, 0.37), (0.7, 0.6, 0.1), (0.15, 0.3, 0.65)],
    }[kind]
    base = np.asarray(palettes[int(rng.integers(len(palettes)))])
    rgb = np.clip(base * rng.uniform(0.8, 1.15) * rng.uniform(0.93, 1.07, 3), 0.0, 1.0)
    gloss = float(rng.uniform(0.1, 0.5)) if kind in ("hopper", "bottle") else \
        float(rng.uniform(0.0, 0.3))
    return (float(rgb[0]), float(rgb[1]), float(rgb[2])), gloss


def _cable_path(rng: np.random.Generator, start: FloatArray, hx: float, hy: float
                ) -> list[tuple[float, float]]:
    """A smooth random walk on the floor from ``start`` (arena frame), inside the walls."""
    heading = float(rng.uniform(-math.pi, math.pi))
    p = start.copy()
    pts = [(float(p[0]), float(p[1]))]
    for _ in range(int(rng.integers(6, 15))):
        heading += float(rng.normal(0.0, 0.5))
        step = float(rng.uniform(0.015, 0.035))
        q = p + step * np.array([math.cos(heading), math.sin(heading)])
        if abs(q[0]) > hx or abs(q[1]) > hy:  # turn back from the wall
            heading += math.pi
            q = p + step * np.array([math.cos(heading), math.sin(heading)])
            q = np.clip(q, [-hx, -hy], [hx, hy])
        p = q
        pts.append((float(p[0]), float(p[1])))
    return pts


def draw_object(rng: np.random.Generator, kind: str, arena: tuple[float, float],
                wall_height: float, *, dark: bool,
                centre: tuple[float, float] | None = None) -> SceneObject | None:
    """Draw one object of ``kind`` in an ``arena`` (x, y sizes, m) with walls this high.

    ``dark``: near-black albedo. ``centre``: where to put it (m, arena frame; hoppers
    and bottles still go to the nearest wall); None draws a place. Sizes are 0.5-1.5
    mouse lengths. Returns None when it does not fit inside the walls there.
    """
    hx, hy = 0.5 * arena[0], 0.5 * arena[1]
    ml = MOUSE_LENGTH
    albedo, gloss = _albedo(rng, kind, dark)
    th = float(rng.uniform(0.0015, 0.004))
    yaw = float(rng.uniform(-math.pi, math.pi))
    elevation = 0.0
    path: tuple[tuple[float, float], ...] = ()
    if kind == "cup":
        d = float(rng.uniform(0.5, 1.1) * ml)
        hgt = float(rng.uniform(0.012, 0.025)) if rng.random() < 0.35 else \
            float(rng.uniform(0.3, 0.8) * ml)
        size = (d, d, hgt)
    elif kind == "bowl":
        d = float(rng.uniform(0.6, 1.2) * ml)
        size = (d, d, float(rng.uniform(0.2, 0.4) * d))
    elif kind == "shelter":
        size = (float(rng.uniform(0.9, 1.5) * ml), float(rng.uniform(0.6, 1.0) * ml),
                float(rng.uniform(0.045, 0.075)))
    elif kind == "half_tube":
        w = float(rng.uniform(0.06, 0.1))
        size = (float(rng.uniform(0.9, 1.5) * ml), w, 0.5 * w)
    elif kind == "tube":
        w = float(rng.uniform(0.035, 0.06))
        size = (float(rng.uniform(0.9, 1.7) * ml), w, w)
    elif kind == "hopper":
        size = (float(rng.uniform(0.9, 1.5) * ml), float(rng.uniform(0.03, 0.06)),
                float(rng.uniform(0.04, 0.1)))
        if rng.random() < 0.5:
            elevation = float(rng.uniform(0.04, max(0.045, wall_height - size[2] - 0.01)))
    elif kind == "bottle":
        w = float(rng.uniform(0.04, 0.065))
        size = (float(rng.uniform(1.1, 1.7) * ml), w, w)
        elevation = float(rng.uniform(0.04, max(0.045, wall_height - w - 0.01)))
    else:
        size = (0.0, float(rng.uniform(0.003, 0.007)), 0.0)
    if kind == "cable":
        start = np.array(centre) if centre is not None else \
            rng.uniform([-hx, -hy], [hx, hy]) * 0.9
        pts = _cable_path(rng, start, hx - 0.01, hy - 0.01)
        cx, cy = pts[0]
        path = tuple((px - cx, py - cy) for px, py in pts)
        length = float(sum(math.dist(a, b) for a, b in itertools.pairwise(pts)))
        width = size[1]
        return SceneObject(kind="cable", x=cx, y=cy, yaw=0.0, size=(length, width, width),
                           albedo=albedo, thickness=0.5 * width, gloss=gloss, path=path)
    if kind in ("hopper", "bottle"):  # against a wall, along it
        wall = int(rng.integers(4)) if centre is None else int(np.argmin(
            [hx - centre[0], hx + centre[0], hy - centre[1], hy + centre[1]]))
        gap = 0.5 * size[1] + float(rng.uniform(0.0, 0.01))
        along = 0.5 * size[0] + (0.04 if kind == "bottle" else 0.0)
        if wall < 2:
            span = hy - along
            if span < 0:
                return None
            y = float(rng.uniform(-span, span)) if centre is None else \
                float(np.clip(centre[1], -span, span))
            x = (hx - gap) * (1 if wall == 0 else -1)
            yaw = math.pi / 2 * (1 if wall == 0 else -1)
        else:
            span = hx - along
            if span < 0:
                return None
            x = float(rng.uniform(-span, span)) if centre is None else \
                float(np.clip(centre[0], -span, span))
            y = (hy - gap) * (1 if wall == 2 else -1)
            yaw = 0.0 if wall == 2 else math.pi
        if kind == "bottle" and rng.random() < 0.5:
            yaw += math.pi
    else:
        if centre is None:
            centre = (float(rng.uniform(-hx, hx)), float(rng.uniform(-hy, hy)))
        x, y = centre
    obj = SceneObject(kind=kind, x=x, y=y, yaw=yaw, size=size, albedo=albedo, thickness=th,
                      elevation=elevation, gloss=gloss, path=path)
    return obj if inside_walls(obj, arena) else None


def inside_walls(obj: SceneObject, arena: tuple[float, float]) -> bool:
    """Whether ``obj``'s footprint lies inside the walls of an ``arena`` (x, y sizes, m)."""
    hx, hy = 0.5 * arena[0], 0.5 * arena[1]
    if obj.kind in ("cup", "bowl", "cable"):
        c, r = obj.footprint()
        return bool(np.all(np.abs(c[:, 0]) + r <= hx) and np.all(np.abs(c[:, 1]) + r <= hy))
    hl = 0.5 * obj.size[0]
    lo = -hl
    if obj.kind == "bottle":  # the spout
        hl += 0.03
    cs, sn = math.cos(obj.yaw), math.sin(obj.yaw)
    hw = 0.5 * obj.size[1]
    corners = np.array([[a, b] for a in (lo, hl) for b in (-hw, hw)])
    xy = corners @ np.array([[cs, sn], [-sn, cs]]) + np.array([obj.x, obj.y])
    return bool(np.all(np.abs(xy[:, 0]) <= hx) and np.all(np.abs(xy[:, 1]) <= hy))


def overlaps(a: SceneObject, b: SceneObject, gap: float = 0.005) -> bool:
    """Whether the footprints of ``a`` and ``b`` come within ``gap`` (m) of each other."""
    ca, ra = a.footprint()
    cb, rb = b.footprint()
    d = np.linalg.norm(ca[:, None, :] - cb[None, :, :], axis=2)
    return bool(np.any(d < ra[:, None] + rb[None, :] + gap))


def sample_objects(rng: np.random.Generator, arena: tuple[float, float], wall_height: float,
                   *, p_any: float = 0.5) -> tuple[SceneObject, ...]:
    """A scene's distractor objects: none with probability ``1 - p_any``, else 1-3.

    Kinds: cups and dishes, bowls, shelters, half-tubes, tubes, hoppers and bottles
    at a wall, cables; 55% of them (70% of the cables) near-black. Objects do not
    overlap each other and stay inside the walls.
    """
    if rng.random() >= p_any:
        return ()
    count = int(rng.choice([1, 2, 3], p=[0.5, 0.3, 0.2]))
    out: list[SceneObject] = []
    for _ in range(count):
        kind = str(rng.choice(OBJECT_KINDS, p=_KIND_P / _KIND_P.sum()))
        dark = bool(rng.random() < (0.7 if kind == "cable" else 0.55))
        for _ in range(12):
            obj = draw_object(rng, kind, arena, wall_height, dark=dark)
            if obj is not None and not any(overlaps(obj, o) for o in out):
                out.append(obj)
                break
    return tuple(out)


def _body_balls(shape: MouseShape, states: Iterable[BodyState], margin: float
                ) -> tuple[FloatArray, FloatArray]:
    """The body's ellipsoids as balls: centres (B, 3) and radii (B,) (largest radius plus
    ``margin``), over all ``states``."""
    xyz, rad = [np.zeros((0, 3))], [np.zeros(0)]
    for state in states:
        e = body_ellipsoids(shape, state)
        xyz.append(e.centers)
        rad.append(e.radii.max(axis=1) + margin)
    return np.concatenate(xyz), np.concatenate(rad)


def clearance(obj: SceneObject, shape: MouseShape, state: BodyState) -> float:
    """Horizontal gap (m) between ``obj``'s footprint and the body posed as ``state``
    (its ellipsoids as balls of their largest radius); negative where they overlap."""
    xyz, rad = _body_balls(shape, [state], 0.0)
    c, r = obj.footprint()
    d = np.linalg.norm(xyz[:, None, :2] - c[None], axis=2) - r[None] - rad[:, None]
    return float(d.min())


def dark_object_near(rng: np.random.Generator, arena: tuple[float, float],
                     wall_height: float, shape: MouseShape, state: BodyState,
                     camera: Camera) -> SceneObject | None:
    """A dark mouse-sized object (one of :data:`BLOB_KINDS`) 0.5-12 cm from the body of
    ``shape`` posed as ``state``, inside the walls of ``arena`` (x, y) m and with its
    centre at least 5 % of the image from the edge of ``camera``'s image; None when 40
    draws give none. What a detector takes for a mouse most easily, where it confuses
    it most: beside the mouse."""
    centre = state.keypoints[:, :2].mean(axis=0)
    for _ in range(40):
        kind = str(rng.choice(BLOB_KINDS))
        angle = float(rng.uniform(-math.pi, math.pi))
        dist = float(rng.uniform(0.06, 0.16))
        xy = centre + dist * np.array([math.cos(angle), math.sin(angle)])
        obj = draw_object(rng, kind, arena, wall_height, dark=True,
                          centre=(float(xy[0]), float(xy[1])))
        if obj is None or not 0.005 <= clearance(obj, shape, state) <= 0.12:
            continue
        px, z = camera.project(np.array([[obj.x, obj.y, 0.0]]))
        margin = 0.05 * min(camera.width, camera.height)
        if z[0] > 0 and margin <= px[0, 0] <= camera.width - 1 - margin and \
                margin <= px[0, 1] <= camera.height - 1 - margin:
            return obj
    return None


def clear_of_mouse(objects: Sequence[SceneObject], shape: MouseShape,
                   states: Iterable[BodyState], margin: float = 0.004
                   ) -> tuple[SceneObject, ...]:
    """``objects`` less those the mouse posed as each of ``states`` would pass through.

    The body is taken as its surface ellipsoids (each a ball of its largest radius,
    plus ``margin`` m). Cables stay (the mouse steps over them); a shelter or
    half-tube stays when every part of the body inside its footprint fits under its
    roof (the mouse is in it, hidden); any other object the body reaches is dropped.
    """
    if not objects:
        return ()
    xyz, rad = _body_balls(shape, states, margin)
    if not rad.size:
        return tuple(objects)
    kept = []
    for obj in objects:
        if obj.kind == "cable":
            kept.append(obj)
            continue
        c, r = obj.footprint()
        d = np.linalg.norm(xyz[:, None, :2] - c[None], axis=2) - r[None]  # (B, M)
        near = d.min(axis=1) < rad
        vertical = (xyz[:, 2] + rad > obj.elevation) & (xyz[:, 2] - rad < obj.top)
        touching = near & vertical
        if not touching.any():
            kept.append(obj)
            continue
        if obj.kind in SHELTER_KINDS:
            cs, sn = math.cos(obj.yaw), math.sin(obj.yaw)
            rel = xyz[touching, :2] - np.array([obj.x, obj.y])
            lateral = np.abs(-sn * rel[:, 0] + cs * rel[:, 1])
            if obj.kind == "shelter":
                roof = np.full(lateral.size, obj.top - obj.thickness)
            else:
                r_in = 0.5 * obj.size[1] - obj.thickness
                roof = np.sqrt(np.maximum(r_in**2 - lateral**2, 0.0))
            if np.all(xyz[touching, 2] + rad[touching] <= roof):
                kept.append(obj)
    return tuple(kept)
