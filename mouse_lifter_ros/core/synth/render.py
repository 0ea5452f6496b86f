"""Ray-casting renderer of the synthetic mouse: scenes, camera placements and image effects.

Numpy and OpenCV only (no GL): every pixel's ray, from the lens-distorted pixel grid
undistorted exactly, meets the floor and the walls analytically over the whole image
and each surface ellipsoid of the body (and of the clutter on the floor) over the
bounding box of its projection, as it meets the primitives of the distractor objects
(cups, shelters, tubes...: :mod:`.objects`). The nearest hit gives the depth map, the
region map (floor, wall, clutter and objects, mouse) and the surface normal;
Lambertian shading with a directional light, ambient light, soft cast shadows of the
body and the objects on the floor, floor textures and marks make the linear image,
then the camera effects follow in order: optics blur, motion blur around the mouse,
flare, sensor noise, the tone curve, JPEG.

Frames and units: the arena frame follows REP-103 (metres, z up, the floor is z = 0,
origin at the arena centre, walls at x = +-arena[0]/2 and y = +-arena[1]/2); the
camera frame is the optical one (x right, y down, z forward), ``x_cam = R x_arena + t``;
pixel (0, 0) is the centre of the top-left pixel (OpenCV's convention). Cameras are the
runtime's :class:`~mouse_lifter_ros.core.camera.Camera`, with OpenCV's plumb_bob lens
distortion (k1, k2, p1, p2, k3): the renderer draws no other model. Depth is
camera-frame z in metres of the first surface hit, 0 where a ray hits nothing.

All the randomness of :func:`render` comes from the generator passed in (the sensor
noise, drawn by OpenCV's generator seeded from it); textures and fur patterns derive
from the scene's ``texture_seed`` and the mouse shape, so a sequence keeps its arena
and its mouse, and the same seed gives the same bytes.
"""

from __future__ import annotations

import itertools
import math
import zlib
from collections import OrderedDict
from dataclasses import asdict, dataclass, replace
from typing import Any, Final

import cv2
import numpy as np
from numpy.typing import ArrayLike, NDArray

from mouse_lifter_ros.core.body import BodyState, MouseShape
from mouse_lifter_ros.core.camera import Camera, distort, fold_r2, look_at, undistort_newton
from mouse_lifter_ros.core.errors import InputError
from mouse_lifter_ros.core.synth.body import (
    EAR,
    EYE,
    FUR,
    SKIN,
    body_ellipsoids,
    keypoint_surface_offsets,
)
from mouse_lifter_ros.core.synth.objects import (
    SceneObject,
    cast_parts,
    floor_shading,
    object_rng,
    sample_objects,
    scene_parts,
    shade_parts,
)
from mouse_lifter_ros.core.views import VIEWS

FloatArray = NDArray[np.float64]
F32 = NDArray[np.float32]

#: Floor kinds.
FLOORS: Final[tuple[str, ...]] = ("white", "black", "textured", "bedding")
#: Lighting kinds.
LIGHTS: Final[tuple[str, ...]] = ("white", "infrared", "uneven")
#: Values of :attr:`Sample.region`.
REGION_NOTHING, REGION_FLOOR, REGION_WALL, REGION_CLUTTER, REGION_MOUSE = 0, 1, 2, 3, 4

_EYE_ALBEDO: Final = 0.02
_NEAR: Final = 1e-4  # m: nearest depth a surface may have
_RAY_CACHE_SIZE: Final = 8
_LUMA: Final = np.array([0.299, 0.587, 0.114])  # RGB
#: Depth slack of the visibility test beyond a keypoint's surface offset, metres.
_VISIBILITY_TOL: Final = 0.0015


# --------------------------------------------------------------------------- camera


def camera_over_arena(*, view: str, height_m: float, K: ArrayLike, dist: ArrayLike | None,
                      width: int, height: int, yaw: float = 0.0) -> Camera:
    """A camera ``height_m`` above (top) or below (bottom) the arena centre, looking at it.

    ``K`` (3, 3) intrinsics (its fx, fy, cx, cy are used), ``dist`` the 5 plumb_bob
    coefficients (None: no distortion), ``width`` x ``height`` pixels. ``yaw`` (rad)
    turns the image: at 0 the arena's +y points up in the image.
    """
    if view not in VIEWS:
        raise InputError(f"view {view!r}: allowed {', '.join(VIEWS)}")
    k = np.asarray(K, dtype=np.float64)
    eye = (0.0, 0.0, height_m if view == "top" else -height_m)
    return look_at(eye, (0.0, 0.0, 0.0), fx=float(k[0, 0]), fy=float(k[1, 1]),
                   cx=float(k[0, 2]), cy=float(k[1, 2]), width=width, height=height,
                   dist=dist, up=(-math.sin(yaw), math.cos(yaw), 0.0))


# ------------------------------------------------------------------------ ray grids


@dataclass(frozen=True)
class RayGrid:
    """Unit-z ray directions of every pixel, camera frame: (x, y, 1); (H, W) float32."""

    x: F32
    y: F32
    xy: F32  # (H, W, 2) the same, interleaved (for OpenCV)
    one_plus_r2: F32  # 1 + x^2 + y^2 = 1 / cos^2 of the angle off the optical axis


_RAY_CACHE: OrderedDict[tuple[bytes, bytes, int, int], RayGrid] = OrderedDict()


def _compute_rays(camera: Camera) -> RayGrid:
    w, h = camera.width, camera.height
    xd, yd = camera.normalised(np.arange(w, dtype=np.float64)[None, :],
                               np.arange(h, dtype=np.float64)[:, None])
    xd32 = np.broadcast_to(xd, (h, w)).astype(np.float32)
    yd32 = np.broadcast_to(yd, (h, w)).astype(np.float32)
    d = camera.dist
    if not np.any(d):
        x, y = xd32, yd32
    elif d[2] == 0 and d[3] == 0:
        x, y = _undistort_radial(xd32, yd32, d)
    else:  # tangential terms too: exact Newton over every pixel (slower, cached)
        x64, y64 = undistort_newton(np.broadcast_to(xd, (h, w)), np.broadcast_to(yd, (h, w)),
                                    d)
        x, y = x64.astype(np.float32), y64.astype(np.float32)
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise InputError("camera: lens distortion folds over inside the image")
    one_plus_r2 = x * x
    one_plus_r2 += y * y
    one_plus_r2 += 1.0
    xy = cv2.merge([x, y])
    for a in (x, y, xy, one_plus_r2):
        a.setflags(write=False)
    return RayGrid(x, y, xy, one_plus_r2)


def _undistort_radial(xd: F32, yd: F32, d: FloatArray) -> tuple[F32, F32]:
    """Undistort (k1, k2, k3 only): scale each point by the tabulated ratio r / r_d.

    The ratio, a smooth function of r_d^2, is solved exactly (Newton, float64) on a
    fine uniform table and interpolated linearly: errors stay at float32 rounding.
    """
    s = xd * xd + yd * yd
    s_max = float(s.max()) * 1.0001 + 1e-12
    n = 4096
    ts = np.linspace(0.0, s_max, n)
    rd = np.sqrt(ts)
    r, _ = undistort_newton(rd, np.zeros_like(rd), d)
    if np.any(r[1:] <= r[:-1]) or not np.all(np.isfinite(r)):
        raise InputError("camera: lens distortion folds over inside the image")
    ratio = np.ones(n)
    ratio[1:] = r[1:] / rd[1:]
    table = ratio.astype(np.float32)
    slope = np.append(np.diff(ratio), 0.0).astype(np.float32)
    f = s * np.float32((n - 1) / s_max)
    i = f.astype(np.int32)
    np.minimum(i, n - 2, out=i)
    f -= i
    rho = np.take(slope, i)
    rho *= f
    rho += np.take(table, i)
    return xd * rho, yd * rho


def ray_grid(camera: Camera) -> RayGrid:
    """The (cached) ray grid of ``camera``'s intrinsics and image size.

    Raises
    ------
    InputError
        A camera whose lens is not plumb_bob (the renderer draws no other).
    """
    if camera.model != "plumb_bob":
        raise InputError(f"render: the synthetic camera needs plumb_bob distortion, not "
                         f"{camera.model!r}")
    key = (camera.K.tobytes(), camera.dist.tobytes(), camera.width, camera.height)
    rays = _RAY_CACHE.get(key)
    if rays is None:
        rays = _compute_rays(camera)
        _RAY_CACHE[key] = rays
        while len(_RAY_CACHE) > _RAY_CACHE_SIZE:
            _RAY_CACHE.popitem(last=False)
    else:
        _RAY_CACHE.move_to_end(key)
    return rays


# --------------------------------------------------------------------------- scenes


def _plain(value: Any) -> Any:
    """Tuples to lists, numpy scalars to Python, recursively (for JSON)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _tuples(value: Any) -> Any:
    """Lists to tuples, recursively (inverse of :func:`_plain` for dataclass fields)."""
    if isinstance(value, list | tuple):
        return tuple(_tuples(v) for v in value)
    return value


@dataclass(frozen=True)
class ClutterObject:
    """A small object lying on the floor (food pellet, dropping): an ellipsoid.

    Attributes
    ----------
    kind:
        ``pellet`` or ``dropping``.
    x, y, yaw:
        Centre on the floor (m) and heading of its long axis (rad), arena frame.
    radii:
        Semi-axes along its length, width and height, metres; it rests on the floor.
    albedo:
        RGB in 0..1.
    """

    kind: str
    x: float
    y: float
    yaw: float
    radii: tuple[float, float, float]
    albedo: tuple[float, float, float]


@dataclass(frozen=True)
class FloorMark:
    """A stain or smudge on the floor (texture only): an ellipse darkening the floor.

    ``x``, ``y`` centre and ``rx``, ``ry`` semi-axes in metres, ``angle`` in radians,
    ``darkness`` the fraction of light it absorbs at its centre (0..1).
    """

    x: float
    y: float
    rx: float
    ry: float
    angle: float
    darkness: float


@dataclass(frozen=True)
class Scene:
    """Arena, light and image effects of a rendering (plain data; see :func:`sample_scene`).

    Attributes
    ----------
    view:
        ``top`` (camera above) or ``bottom`` (camera under a clear floor looking up).
    arena:
        Inner size x, y, metres; walls at x = +-arena[0]/2, y = +-arena[1]/2.
    wall_height, wall_thickness:
        Metres; the wall tops (top view) and bottoms (bottom view) are rims this thick.
    floor:
        ``white``, ``black``, ``textured`` or ``bedding``.
    floor_albedo, wall_albedo:
        RGB in 0..1.
    background:
        Brightness where rays hit nothing (room beyond the walls), 0..1.
    texture_seed:
        Seed of the procedural floor texture.
    lines, line_width, line_darkness:
        Pen or tape lines drawn on the floor: polylines of (x, y) points in metres,
        their width (m) and the fraction of light they absorb.
    marks:
        Stains on the floor (texture only).
    clutter:
        Small objects on the floor (pellets, droppings); they are in the depth map as
        region 3.
    objects:
        Distractor objects (cups, bowls, shelters, tubes, hoppers, bottles, cables; see
        :class:`~.synth.objects.SceneObject`): they hide the mouse where in front of
        it, cast shadows, and are region 3 too.
    glare:
        Reflections of the room's lights on glossy floors and walls (a real rig's bright
        spots and streaks, which a detector may take for a white mouse): each ``(cx, cy,
        sx, sy, angle, gain)``, centre and half-axes in normalised image coordinates
        (0..1 of the width and height), angle in radians, gain in linear light added at
        the centre of a Gaussian spot. They lie on the floor and walls only: the mouse
        and the objects hide them.
    light:
        ``white``, ``infrared`` (grey, flat, fur brighter than in visible light) or
        ``uneven`` (a strong gradient and a spotlight).
    light_dir:
        Unit vector towards the (directional) light, arena frame; its z is negative
        for the bottom view (light under the floor).
    light_tint:
        RGB factors of the light colour.
    ambient:
        Fraction of the light that is ambient (no direction, no shadow), 0..1.
    shadow, shadow_softness:
        Strength of the body's cast shadows on the floor (0..1) and the light's
        angular radius (rad) that softens them.
    light_gradient:
        Relative change of the illumination per unit of normalised image x and y.
    spot:
        Spotlight: centre x, y in normalised image coordinates, sigma, gain (0: none).
    vignetting:
        Exponent on the natural cos^4 fall-off (0: none).
    exposure, gamma, flare:
        Linear gain, tone-curve exponent (output = linear^(1/gamma)) and veiling glare
        (fraction of the mean image added everywhere).
    colour:
        True: 3-channel BGR output; False: grey.
    fur_texture:
        Relative amplitude of the low-frequency fur pattern.
    fur_sheen:
        Strength of the fur's sheen: a broad grey highlight where the fur faces halfway
        between the light and the camera (along the back under a top light) and a
        lighter rim where it turns away from the camera; radiance added regardless of
        the fur's colour, so it shows most on dark fur (0: matte fur).
    blur_sigma:
        Gaussian optics blur, pixels.
    motion_blur:
        Length (px) and angle (rad) of the mouse's motion blur; length 0: none.
    noise, shot_noise:
        Read-noise sigma (full scale 1) and signal-dependent noise variance per unit
        of signal.
    jpeg_quality:
        1..100 to pass the image through JPEG, 0 for none.
    """

    view: str = "top"
    arena: tuple[float, float] = (0.45, 0.45)
    wall_height: float = 0.3
    wall_thickness: float = 0.01
    floor: str = "white"
    floor_albedo: tuple[float, float, float] = (0.85, 0.85, 0.83)
    wall_albedo: tuple[float, float, float] = (0.45, 0.45, 0.46)
    background: float = 0.12
    texture_seed: int = 0
    lines: tuple[tuple[tuple[float, float], ...], ...] = ()
    line_width: float = 0.0015
    line_darkness: float = 0.35
    marks: tuple[FloorMark, ...] = ()
    clutter: tuple[ClutterObject, ...] = ()
    objects: tuple[SceneObject, ...] = ()
    glare: tuple[tuple[float, float, float, float, float, float], ...] = ()
    light: str = "white"
    light_dir: tuple[float, float, float] = (0.25, 0.15, 0.956)
    light_tint: tuple[float, float, float] = (1.0, 1.0, 1.0)
    ambient: float = 0.45
    shadow: float = 0.35
    shadow_softness: float = 0.08
    light_gradient: tuple[float, float] = (0.0, 0.0)
    spot: tuple[float, float, float, float] = (0.0, 0.0, 0.5, 0.0)
    vignetting: float = 0.5
    exposure: float = 1.0
    gamma: float = 1.6
    flare: float = 0.02
    colour: bool = False
    fur_texture: float = 0.15
    fur_sheen: float = 0.06
    blur_sigma: float = 0.8
    motion_blur: tuple[float, float] = (0.0, 0.0)
    noise: float = 0.008
    shot_noise: float = 0.0003
    jpeg_quality: int = 0

    def __post_init__(self) -> None:
        problems = []
        if self.view not in VIEWS:
            problems.append(f"view={self.view!r}: allowed {', '.join(VIEWS)}")
        if self.floor not in FLOORS:
            problems.append(f"floor={self.floor!r}: allowed {', '.join(FLOORS)}")
        if self.light not in LIGHTS:
            problems.append(f"light={self.light!r}: allowed {', '.join(LIGHTS)}")
        if len(self.arena) != 2 or min(self.arena) <= 0:
            problems.append(f"arena={self.arena}: two positive sizes needed")
        if self.wall_height < 0 or self.wall_thickness < 0:
            problems.append("wall_height and wall_thickness must be >= 0")
        if abs(float(np.linalg.norm(self.light_dir)) - 1.0) > 1e-3:
            problems.append(f"light_dir={self.light_dir}: not a unit vector")
        if not 0 <= self.jpeg_quality <= 100:
            problems.append(f"jpeg_quality={self.jpeg_quality}: 0..100")
        if self.gamma <= 0 or self.exposure <= 0:
            problems.append("gamma and exposure must be > 0")
        if self.fur_sheen < 0:
            problems.append(f"fur_sheen={self.fur_sheen}: must be >= 0")
        if problems:
            raise InputError("scene: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict of every field (tuples as lists)."""
        out: dict[str, Any] = _plain(asdict(self))
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Scene:
        """Inverse of :meth:`to_dict`."""
        kw = {k: _tuples(v) for k, v in d.items()}
        kw["marks"] = tuple(FloorMark(*m) if not isinstance(m, dict) else FloorMark(**m)
                            for m in d.get("marks", ()))
        kw["clutter"] = tuple(ClutterObject(**{k: _tuples(v) for k, v in c.items()})
                              for c in d.get("clutter", ()))
        kw["objects"] = tuple(SceneObject(**{k: _tuples(v) for k, v in o.items()})
                              for o in d.get("objects", ()))
        return cls(**kw)


def _unit(v: FloatArray) -> tuple[float, float, float]:
    n = v / np.linalg.norm(v)
    return (float(n[0]), float(n[1]), float(n[2]))


def _sample_lines(rng: np.random.Generator, hx: float, hy: float
                  ) -> tuple[tuple[tuple[float, float], ...], ...]:
    """Pen or tape lines: a grid of squares, or meandering polylines."""
    if rng.random() < 0.35:  # the classic open-field grid (centre zone)
        n = int(rng.integers(2, 5))
        xs = np.linspace(-hx, hx, n + 1)[1:-1]
        ys = np.linspace(-hy, hy, n + 1)[1:-1]
        return tuple([((float(x), -hy), (float(x), hy)) for x in xs]
                     + [((-hx, float(y)), (hx, float(y))) for y in ys])
    lines = []
    for _ in range(int(rng.integers(1, 4))):
        p = rng.uniform([-hx, -hy], [hx, hy]) * 0.85
        pts = [p]
        for _ in range(int(rng.integers(3, 9))):
            angle = float(rng.choice([0.0, math.pi / 2, math.pi, -math.pi / 2])) \
                if rng.random() < 0.6 else float(rng.uniform(-math.pi, math.pi))
            step = rng.uniform(0.15, 0.6) * max(hx, hy)
            p = np.clip(p + step * np.array([math.cos(angle), math.sin(angle)]),
                        [-0.95 * hx, -0.95 * hy], [0.95 * hx, 0.95 * hy])
            pts.append(p)
        lines.append(tuple((float(q[0]), float(q[1])) for q in pts))
    return tuple(lines)


def sample_scene(rng: np.random.Generator, *, view: str = "top",
                 colour: bool | None = None, objects: bool = True) -> Scene:
    """Draw an arena, its light and the camera's image effects.

    ``colour`` forces colour (True) or grey (False) output; None draws it (infrared
    light always gives grey). Almost a third of the top-view draws are the classic
    lit white open field (see :func:`_open_field_rig`); the rest span white, black,
    textured and bedding floors under white, infrared and uneven light.

    ``objects``: draw distractor objects (:func:`~.synth.objects.sample_objects`: half
    the scenes get 1-3). They come from their own generator
    (:func:`~.synth.objects.object_rng` of the scene's ``texture_seed``), so that
    ``rng`` draws the same numbers either way and ``objects=False`` gives the scene
    without them, everything else equal. Use
    :func:`~.synth.objects.clear_of_mouse` once the mouse is posed.
    """
    if view not in VIEWS:
        raise InputError(f"view {view!r}: allowed {', '.join(VIEWS)}")
    ax = float(rng.uniform(0.3, 0.6))
    ay = float(np.clip(ax * rng.uniform(0.75, 1.3), 0.25, 0.65))
    hx, hy = ax / 2, ay / 2
    lights = ["white", "uneven"] if colour else list(LIGHTS)
    p_light = np.array([0.5, 0.25, 0.25][:len(lights)])
    light = str(rng.choice(lights, p=p_light / p_light.sum()))
    if light == "infrared":
        colour = False
    elif colour is None:
        colour = bool(rng.random() < 0.4)
    floor = str(rng.choice(FLOORS, p=[0.4, 0.15, 0.2, 0.25]))
    grey = {"white": rng.uniform(0.72, 0.92), "black": rng.uniform(0.04, 0.12),
            "textured": rng.uniform(0.3, 0.7), "bedding": rng.uniform(0.45, 0.7)}[floor]
    base = {"white": (1.0, 1.0, 0.98), "black": (1.0, 1.0, 1.05),
            "textured": tuple(rng.uniform(0.8, 1.1, 3)), "bedding": (1.15, 0.98, 0.72)}[floor]
    floor_albedo = tuple(float(min(1.0, grey * c)) for c in base)
    wall_grey = float(rng.uniform(0.25, 0.7)) * (0.8 if floor == "white" else 1.0)
    wall_albedo = tuple(float(min(1.0, wall_grey * c)) for c in rng.uniform(0.92, 1.08, 3))

    elevation = float(rng.uniform(math.radians(40), math.radians(90)))
    azimuth = float(rng.uniform(-math.pi, math.pi))
    up = 1.0 if view == "top" else -1.0
    light_dir = _unit(np.array([math.cos(elevation) * math.cos(azimuth),
                                math.cos(elevation) * math.sin(azimuth),
                                up * math.sin(elevation)]))
    ambient = {"white": rng.uniform(0.3, 0.6), "infrared": rng.uniform(0.55, 0.8),
               "uneven": rng.uniform(0.2, 0.45)}[light]
    shadow = {"white": rng.uniform(0.1, 0.6), "infrared": rng.uniform(0.0, 0.25),
              "uneven": rng.uniform(0.3, 0.8)}[light] if view == "top" else 0.0
    g_scale = 0.45 if light == "uneven" else 0.1
    gradient = tuple(float(v) for v in rng.normal(0.0, g_scale, 2))
    spot = (float(rng.uniform(-0.4, 0.4)), float(rng.uniform(-0.4, 0.4)),
            float(rng.uniform(0.25, 0.6)), float(rng.uniform(0.3, 1.0))) \
        if light == "uneven" else (0.0, 0.0, 0.5, 0.0)
    tint = tuple(float(v) for v in (rng.uniform(0.9, 1.05), 1.0, rng.uniform(0.85, 1.05))) \
        if colour else (1.0, 1.0, 1.0)

    lines: tuple[tuple[tuple[float, float], ...], ...] = ()
    if rng.random() < (0.55 if floor in ("white", "black") else 0.15):
        lines = _sample_lines(rng, hx, hy)
    marks = tuple(
        FloorMark(x=float(rng.uniform(-hx, hx)), y=float(rng.uniform(-hy, hy)),
                  rx=float(rng.uniform(0.002, 0.012)), ry=float(rng.uniform(0.002, 0.008)),
                  angle=float(rng.uniform(0, math.pi)), darkness=float(rng.uniform(0.05, 0.3)))
        for _ in range(int(rng.integers(0, 6)) if rng.random() < 0.5 else 0))
    clutter = []
    for _ in range(int(rng.integers(0, 5)) if rng.random() < 0.4 else 0):
        if rng.random() < 0.6:
            kind, length, width = "dropping", rng.uniform(0.0025, 0.004), rng.uniform(0.001, 0.0016)
            albedo = tuple(float(v) for v in rng.uniform(0.03, 0.12) * np.array([1.2, 1.0, 0.8]))
            radii = (float(length), float(width), float(width))
        else:
            kind, length, width = "pellet", rng.uniform(0.004, 0.008), rng.uniform(0.003, 0.005)
            albedo = tuple(float(v) for v in rng.uniform(0.35, 0.6) * np.array([1.1, 0.95, 0.7]))
            radii = (float(length), float(width), float(width * rng.uniform(0.7, 1.0)))
        clutter.append(ClutterObject(kind=kind, x=float(rng.uniform(-0.9, 0.9) * hx),
                                     y=float(rng.uniform(-0.9, 0.9) * hy),
                                     yaw=float(rng.uniform(-math.pi, math.pi)),
                                     radii=radii, albedo=albedo))  # type: ignore[arg-type]
    motion = (float(rng.uniform(1.0, 8.0)), float(rng.uniform(0.0, math.pi))) \
        if rng.random() < 0.3 else (0.0, 0.0)
    scene = Scene(
        view=view, arena=(ax, ay), wall_height=float(rng.uniform(0.15, 0.4)),
        wall_thickness=float(rng.uniform(0.004, 0.015)), floor=floor,
        floor_albedo=floor_albedo, wall_albedo=wall_albedo,  # type: ignore[arg-type]
        background=float(rng.uniform(0.03, 0.3)),
        texture_seed=int(rng.integers(0, 2**31 - 1)), lines=lines,
        line_width=float(rng.uniform(0.0008, 0.003)),
        line_darkness=float(rng.uniform(0.15, 0.6)), marks=marks, clutter=tuple(clutter),
        light=light, light_dir=light_dir, light_tint=tint, ambient=float(ambient),  # type: ignore[arg-type]
        shadow=float(shadow), shadow_softness=float(rng.uniform(0.02, 0.25)),
        light_gradient=gradient, spot=spot,  # type: ignore[arg-type]
        vignetting=float(rng.uniform(0.2, 1.5)), exposure=float(rng.uniform(0.9, 1.15)),
        gamma=float(rng.uniform(1.0, 2.2)), flare=float(rng.uniform(0.0, 0.05)),
        colour=bool(colour), fur_texture=float(rng.uniform(0.03, 0.2)),
        fur_sheen=float(rng.uniform(0.0, 0.15)),
        blur_sigma=float(rng.uniform(0.5, 1.3)), motion_blur=motion,
        noise=float(math.exp(rng.uniform(math.log(0.0015), math.log(0.02)))),
        shot_noise=float(rng.uniform(0.0, 0.001)),
        jpeg_quality=int(rng.integers(25, 91)) if rng.random() < 0.5 else 0,
    )
    if view == "top" and rng.random() < 0.3:
        scene = _open_field_rig(rng, scene)
    elif view == "bottom":  # draws only here: the top view's streams stay as they were
        scene = _under_the_floor(rng, scene)
    if objects:
        orng = object_rng(scene.texture_seed)
        scene = replace(scene, objects=sample_objects(orng, scene.arena, scene.wall_height))
        scene = replace(scene, glare=sample_glare(orng))
    return scene


def sample_glare(rng: np.random.Generator, p_any: float = 0.35
                 ) -> tuple[tuple[float, float, float, float, float, float], ...]:
    """A scene's :attr:`Scene.glare`: none in ``1 - p_any`` of scenes, else 1-4 spots and
    streaks, round to elongated, small (a few mouse widths) to large."""
    if rng.random() >= p_any:
        return ()
    out = []
    for _ in range(int(rng.integers(1, 5))):
        sx = float(math.exp(rng.uniform(math.log(0.008), math.log(0.08))))
        out.append((float(rng.uniform(0.0, 1.0)), float(rng.uniform(0.0, 1.0)), sx,
                    sx * float(rng.uniform(0.25, 1.0)), float(rng.uniform(0.0, math.pi)),
                    float(rng.uniform(0.3, 1.5))))
    return tuple(out)


def _glare(scene: Scene, h: int, w: int) -> F32:
    """(h, w) linear light the scene's glare adds."""
    out = np.zeros((h, w), np.float32)
    for cx, cy, sx, sy, angle, gain in scene.glare:
        x0, y0 = cx * w, cy * h
        a, b = max(sx * w, 0.5), max(sy * w, 0.5)
        r = 3.0 * max(a, b)
        xs0, xs1 = max(0, int(x0 - r)), min(w, int(x0 + r) + 1)
        ys0, ys1 = max(0, int(y0 - r)), min(h, int(y0 + r) + 1)
        if xs0 >= xs1 or ys0 >= ys1:
            continue
        gy, gx = np.mgrid[ys0:ys1, xs0:xs1].astype(np.float32)
        c, s_ = math.cos(angle), math.sin(angle)
        u = ((gx - x0) * c + (gy - y0) * s_) / a
        v = (-(gx - x0) * s_ + (gy - y0) * c) / b
        out[ys0:ys1, xs0:xs1] += np.float32(gain) * np.exp(-0.5 * (u * u + v * v))
    return out


def _under_the_floor(rng: np.random.Generator, scene: Scene) -> Scene:
    """``scene`` as a camera under its clear floor sees it. The floor is a clear plate
    (droppings, marks and scratches on it stay); what shows through it is the room
    above, from dark (the mouse, lit from below, bright on black, as in VAME's rig) to
    lit (a dark mouse on a bright plate, as in B-SOiD's open box), and the light under
    the floor makes the bottoms of the walls a band from dim to bright."""
    room = rng.random()
    gamma = scene.gamma
    if room < 0.4:  # a dark room: only the mouse and the wall bottoms catch the light
        background, ambient = rng.uniform(0.0, 0.01), rng.uniform(0.5, 0.9)
        plate, gamma = rng.uniform(0.0, 0.3), rng.uniform(1.0, 1.3)  # a linear camera
    elif room < 0.75:  # a lit room over a clear box
        background, ambient = rng.uniform(0.45, 0.9), rng.uniform(0.25, 0.6)
        plate = rng.uniform(0.3, 1.0)
    else:  # in between
        background, ambient = rng.uniform(0.05, 0.45), rng.uniform(0.3, 0.7)
        plate = rng.uniform(0.3, 1.0)
    wall = float(rng.uniform(0.25, 1.0))
    return replace(scene, floor="white", floor_albedo=(float(plate),) * 3,
                   wall_albedo=(wall, wall, wall), background=float(background),
                   ambient=float(ambient), shadow=0.0, gamma=float(gamma))


def _open_field_rig(rng: np.random.Generator, scene: Scene) -> Scene:
    """``scene`` redrawn as the classic lit open field (as DeepLabCut's openfield videos).

    A rectangular field about the image's shape with low walls (the camera, framing
    it tightly, sees them as a thin rim), a white floor under diffuse light from
    above (soft, faint shadows), a bright centre with strong vignetting (a
    wide-angle lens: :func:`sample_camera` gives it barrel distortion on most draws),
    sometimes overexposed, thin faint pen lines, and a camera with little noise in the
    dark (so black fur looks smooth).
    """
    ax = float(rng.uniform(0.36, 0.6))  # a rectangular field, about the image's shape
    arena = (ax, float(np.clip(ax * rng.uniform(0.65, 0.85), 0.25, 0.65)))
    hx, hy = arena[0] / 2, arena[1] / 2
    grey = float(rng.uniform(0.8, 0.95))
    elevation = float(rng.uniform(math.radians(65), math.radians(90)))
    azimuth = float(rng.uniform(-math.pi, math.pi))
    light_dir = _unit(np.array([math.cos(elevation) * math.cos(azimuth),
                                math.cos(elevation) * math.sin(azimuth),
                                math.sin(elevation)]))
    lines = _sample_lines(rng, hx, hy) if rng.random() < 0.85 else ()
    spot = (float(rng.uniform(-0.3, 0.3)), float(rng.uniform(-0.3, 0.3)),
            float(rng.uniform(0.4, 0.8)), float(rng.uniform(0.0, 0.3)))
    wall = float(rng.uniform(0.3, 0.55))
    gradient = rng.normal(0.0, 0.12, 2)
    marks = tuple(m for m in scene.marks if abs(m.x) < hx and abs(m.y) < hy)
    clutter = tuple(c for c in scene.clutter if abs(c.x) < 0.9 * hx and abs(c.y) < 0.9 * hy)
    return replace(
        scene, arena=arena, wall_height=float(rng.uniform(0.1, 0.3)), marks=marks,
        clutter=clutter, floor="white", floor_albedo=(grey, grey, 0.98 * grey),
        wall_albedo=(wall, wall, 1.02 * wall), light="white", light_dir=light_dir,
        ambient=float(rng.uniform(0.5, 0.75)), shadow=float(rng.uniform(0.1, 0.35)),
        shadow_softness=float(rng.uniform(0.12, 0.3)),
        light_gradient=(float(gradient[0]), float(gradient[1])),
        spot=spot, vignetting=float(rng.uniform(0.8, 1.8)),
        exposure=float(rng.uniform(0.85, 1.1)), gamma=float(rng.uniform(1.0, 1.6)),
        lines=lines, line_width=float(rng.uniform(0.0006, 0.0015)),
        line_darkness=float(rng.uniform(0.08, 0.3)),
        noise=float(rng.uniform(0.0015, 0.006)), shot_noise=float(rng.uniform(0.00005, 0.0005)),
        fur_sheen=float(rng.uniform(0.03, 0.15)),
    )


def _fit_focal(xn: FloatArray, yn: FloatArray, cx: float, cy: float, width: int,
               height: int) -> float:
    """Largest focal length keeping the normalised points (xn, yn) inside the image."""
    f = math.inf
    for c, lo, hi, pts in ((cx, 0.0, width - 1.0, xn), (cy, 0.0, height - 1.0, yn)):
        for p in pts:
            if p > 1e-9:
                f = min(f, (hi - c) / p)
            elif p < -1e-9:
                f = min(f, (lo - c) / p)
    return f


def sample_camera(rng: np.random.Generator, scene: Scene, *, width: int,
                  height: int) -> Camera:
    """Draw a camera 20-100 cm above (top) or below (bottom) the floor seeing the arena.

    The height is above the walls' tops on most top-view draws; the position (within
    10% of the arena's size of its centre), tilt (up to 8 degrees) and yaw (mostly with
    the arena's long side along the image's) are drawn, then the focal length is the
    largest that keeps the whole floor inside the image times a fill factor of
    0.85-1.1 (the walls show at the borders, or the floor's edge is just cut off).
    Half the draws get mild radial lens distortion: barrel k1 down to -0.25 or
    pincushion up to 0.05, with |k1| capped so that the whole image stays well inside
    the part where the model is one-to-one; a scene with strong vignetting (0.8 or
    more: a wide-angle lens) gets barrel distortion (k1 -0.25 to -0.03) on 80% of
    draws, a fill factor of 0.975-1.1, and a camera at most 70 cm high (when the arena
    allows), within 3% of the arena's size of its centre, tilted by at most 3.2 degrees.
    """
    hx, hy = scene.arena[0] / 2, scene.arena[1] / 2
    half_diag = math.hypot(hx, hy)
    h_min = max(0.2, 1.1 * half_diag / math.tan(math.radians(55)))
    if scene.view == "top" and rng.random() < 0.85:  # mostly above the walls
        h_min = max(h_min, scene.wall_height + 0.05)
    wide = scene.vignetting >= 0.8  # a wide-angle lens: see the docstring
    h = float(rng.uniform(min(h_min, 0.95), max(min(h_min, 0.95), 0.7) if wide else 1.0))
    centring = 0.3 if wide else 1.0  # such rigs are mostly centred over the field
    off = rng.uniform(-0.1, 0.1, 2) * np.array(scene.arena) * centring
    sign = 1.0 if scene.view == "top" else -1.0
    eye = np.array([off[0], off[1], sign * h])
    tilt = float(rng.uniform(0.0, math.radians(8))) * (0.4 if wide else 1.0)
    tilt_az = float(rng.uniform(-math.pi, math.pi))
    target = np.array([off[0] + h * math.tan(tilt) * math.cos(tilt_az),
                       off[1] + h * math.tan(tilt) * math.sin(tilt_az), 0.0])
    if rng.random() < 0.8:  # aligned: the arena's long side along the image's
        long_x = (scene.arena[0] >= scene.arena[1]) == (width >= height)
        yaw = (0.0 if long_x else math.pi / 2) + float(rng.integers(0, 2)) * math.pi \
            + float(rng.normal(0.0, 0.03))
    else:
        yaw = float(rng.uniform(-math.pi, math.pi))
    cx = (width - 1) / 2.0 + float(rng.normal(0.0, 0.01 * width))
    cy = (height - 1) / 2.0 + float(rng.normal(0.0, 0.01 * height))
    up = (-math.sin(yaw), math.cos(yaw), 0.0)
    probe = look_at(eye, target, fx=1.0, fy=1.0, cx=0.0, cy=0.0, width=width, height=height,
                    up=up)
    corners = np.array([[sx * hx, sy * hy, 0.0] for sx in (-1, 1) for sy in (-1, 1)])
    cam = probe.to_camera(corners)
    xn, yn = cam[:, 0] / cam[:, 2], cam[:, 1] / cam[:, 2]
    # Rigs frame the floor: mostly all of it with a rim of wall, sometimes a little less.
    fill = float(rng.uniform(0.85, 1.1))
    if wide:  # wide-angle rigs frame the floor tightly
        fill = 0.5 * (fill + 1.1)
    aspect = 1.0 + float(rng.normal(0.0, 0.003))
    dist = np.zeros(5)
    if rng.random() < (0.8 if wide else 0.5):
        dist[0] = float(rng.uniform(-0.25, -0.03 if wide else 0.05))
    f = fill * _fit_focal(xn, yn, cx, cy, width, height)
    for _ in range(6):
        xd, yd = distort(xn, yn, "plumb_bob", dist)
        f = fill * _fit_focal(xd, yd / aspect, cx, cy, width, height)
        # every image corner must stay well inside the one-to-one part of the model
        uc = np.array([0.0, width - 1.0, 0.0, width - 1.0])
        vc = np.array([0.0, 0.0, height - 1.0, height - 1.0])
        rdc = float(np.max(np.hypot((uc - cx) / f, (vc - cy) / (f * aspect))))
        if dist[0] < 0:
            limit = ((2.0 / 3.0) * 0.85 / rdc) ** 2 / 3.0
            if -dist[0] > limit:
                dist[0] = -limit
                continue
        break
    if not math.isfinite(f) or f <= 0:
        raise InputError("sample_camera: the arena cannot be fitted in the image")
    return look_at(eye, target, fx=f, fy=f * aspect, cx=cx, cy=cy, width=width,
                   height=height, dist=dist, up=up)


# ------------------------------------------------------------------------- samples


@dataclass(frozen=True, eq=False)
class Sample:
    """One rendered image and its labels.

    Attributes
    ----------
    image:
        (H, W) grey or (H, W, 3) BGR, uint8.
    depth:
        (H, W) float32 camera-frame z (m) of the first surface hit; 0 where nothing.
    mask:
        (H, W) uint8, 1 where the mouse is.
    region:
        (H, W) uint8: 0 nothing, 1 floor, 2 wall, 3 clutter or object, 4 mouse.
    keypoints_2d:
        (14, 2) distorted pixel coordinates in this image.
    keypoints_camera, keypoints_arena:
        (14, 3) in the camera and arena frames, metres.
    visible:
        (14,) in view and not hidden by the body, clutter or an object.
    in_view:
        (14,) in front of the camera and inside the image.
    camera:
        The camera of this image.
    """

    image: NDArray[np.uint8]
    depth: NDArray[np.float32]
    mask: NDArray[np.uint8]
    region: NDArray[np.uint8]
    keypoints_2d: FloatArray
    keypoints_camera: FloatArray
    keypoints_arena: FloatArray
    visible: NDArray[np.bool_]
    in_view: NDArray[np.bool_]
    camera: Camera


def mouse_window(camera: Camera, state: BodyState, size: tuple[int, int],
                 rng: np.random.Generator | None = None,
                 jitter: float = 0.15) -> tuple[int, int, int, int]:
    """A window ``x0, y0, w, h`` of ``size`` (w, h) pixels around the projected mouse.

    Centred on the bounding box of the projected joints, moved by up to ``jitter``
    times the size in x and y when ``rng`` is given, then shifted inside the image
    when it fits (centred on the image when it does not).
    """
    w, h = int(size[0]), int(size[1])
    px, z = camera.project(state.joints)
    ok = z > 1e-6
    if ok.any():
        lo, hi = px[ok].min(axis=0), px[ok].max(axis=0)
        c = 0.5 * (lo + hi)
    else:
        c = np.array([(camera.width - 1) / 2.0, (camera.height - 1) / 2.0])
    if rng is not None and jitter > 0:
        c = c + rng.uniform(-jitter, jitter, 2) * np.array([w, h])
    out = []
    for centre, n, full in ((c[0], w, camera.width), (c[1], h, camera.height)):
        o = math.floor(centre - (n - 1) / 2.0 + 0.5)
        o = min(max(o, 0), full - n) if n <= full else (full - n) // 2
        out.append(o)
    return out[0], out[1], w, h


# ------------------------------------------------------------------------ textures


_TEXTURE_CACHE: OrderedDict[tuple[int, str, float, float], tuple[F32, float, bool]] = \
    OrderedDict()


def _smooth_noise(rng: np.random.Generator, n: int, sigma: float) -> F32:
    """(n, n) zero-mean unit-std noise blurred by ``sigma`` texels, wrapping around."""
    noise = rng.random((n, n), dtype=np.float32)
    k = int(2 * math.ceil(3 * sigma) + 1)
    if k > 1:
        pad = k // 2
        big = cv2.copyMakeBorder(noise, pad, pad, pad, pad, cv2.BORDER_WRAP)
        noise = cv2.GaussianBlur(big, (k, k), sigma)[pad:pad + n, pad:pad + n]
    noise = noise - noise.mean()
    return np.asarray(noise / max(float(noise.std()), 1e-6), dtype=np.float32)


def _floor_texture(scene: Scene) -> tuple[F32, float, bool]:
    """Grey multiplier texture of the floor: (texture, texel size m, tiles or not)."""
    key = (scene.texture_seed, scene.floor, scene.arena[0], scene.arena[1])
    hit = _TEXTURE_CACHE.get(key)
    if hit is not None:
        _TEXTURE_CACHE.move_to_end(key)
        return hit
    rng = np.random.default_rng(scene.texture_seed)
    size = max(scene.arena)
    tex: F32
    if scene.floor in ("white", "black"):  # smooth unevenness over the arena, scuffs
        n = 64
        tex = 1.0 + (0.03 if scene.floor == "white" else 0.12) * _smooth_noise(rng, n, 5.0)
        fine = _smooth_noise(rng, n, 0.7)
        tex = (tex + 0.01 * fine).astype(np.float32)
        out = (tex, size / (n - 4), False)
    elif scene.floor == "textured":
        n = 128
        texel = float(rng.uniform(0.0004, 0.001))
        if rng.random() < 0.5:  # speckled rubber / sanded plastic
            tex = 1.0 + float(rng.uniform(0.1, 0.3)) * _smooth_noise(rng, n, 1.2)
        else:  # a regular pattern of dimples
            period = int(rng.choice([8, 16]))
            i = np.arange(n, dtype=np.float32) * (2 * math.pi / period)
            dots = np.cos(i)[None, :] * np.cos(i)[:, None]
            tex = 1.0 - float(rng.uniform(0.15, 0.35)) * np.clip(dots * 2.0 - 0.8, 0, 1)
            tex = tex + 0.05 * _smooth_noise(rng, n, 1.0)
        out = (tex.astype(np.float32), texel, True)
    else:  # bedding: wood chips with dark gaps and grain
        n = 256
        chips = np.tanh(2.5 * _smooth_noise(rng, n, 3.0))
        grain = _smooth_noise(rng, n, 0.8)
        gaps = np.clip(-_smooth_noise(rng, n, 1.5) - 1.2, 0, None)
        tex = 1.0 + 0.22 * chips + 0.08 * grain - 0.5 * gaps
        out = (np.clip(tex, 0.2, None).astype(np.float32), float(rng.uniform(0.0003, 0.0006)),
               True)
    _TEXTURE_CACHE[key] = out
    while len(_TEXTURE_CACHE) > 4:
        _TEXTURE_CACHE.popitem(last=False)
    return out


def _sample_floor_texture(scene: Scene, floor_xy: F32, shape: tuple[int, int],
                          footprint: float) -> F32:
    """(H, W) floor texture at every pixel's floor point; ``footprint``: a pixel's size (m)."""
    tex, texel, tiles = _floor_texture(scene)
    n = tex.shape[0]
    border = cv2.BORDER_WRAP if tiles else cv2.BORDER_REPLICATE
    blur = 0.5 * footprint / texel
    if blur > 0.35:  # pre-filter against aliasing when a pixel spans many texels
        k = min(int(2 * math.ceil(2.5 * blur) + 1), 2 * (n // 2) - 1)
        pad = k // 2
        big = cv2.copyMakeBorder(tex, pad, pad, pad, pad, border)
        tex = cv2.GaussianBlur(big, (k, k), blur)[pad:pad + n, pad:pad + n]
    xy = floor_xy.reshape(shape[0], shape[1], 2)
    stride = 4 if texel > 16 * footprint else 1  # smooth textures: sample sparsely
    if stride > 1:
        xy = xy[::stride, ::stride]
    maps = xy * np.float32(1.0 / texel)
    if not tiles:
        maps += np.float32(0.5 * (n - 1))
    out = cv2.remap(tex, maps, None, cv2.INTER_LINEAR, borderMode=border)
    if stride > 1:
        out = cv2.resize(out, (out.shape[1] * stride, out.shape[0] * stride),
                         interpolation=cv2.INTER_LINEAR)[:shape[0], :shape[1]]
    return np.ascontiguousarray(out, dtype=np.float32)


# -------------------------------------------------------------------- geometry casts


@dataclass(frozen=True)
class _Background:
    """Floor, walls and rims (flat arrays of H * W unless stated)."""

    depth: F32  # camera z, inf where nothing
    region: NDArray[np.uint8]
    shade: F32  # grey radiance factor (the albedo's luminance folded in for grey images)
    floor_xy: F32  # (H * W, 2) floor point (m) of every pixel's ray (meaningful on the floor)


def _floor_homography(camera: Camera) -> tuple[FloatArray, FloatArray]:
    """Homography from unit-z ray (x, y, 1) to floor point (X, Y, 1), and the linear form w.

    The ray ``C + t R^T (x, y, 1)`` meets z = 0 at ``t = 1 / w(x, y)`` (camera z) with
    ``w = -(R^T)[2] . (x, y, 1) / C_z``, at ``(X, Y) = C_xy + t (R^T)[:2] . (x, y, 1)``.
    """
    c = camera.position
    rt = camera.R.T
    w = -rt[2] / c[2]
    hom = np.vstack([c[0] * w + rt[0], c[1] * w + rt[1], w])
    return hom, w


def _background(camera: Camera, scene: Scene, rays: RayGrid, albedo: dict[str, float]
                ) -> _Background:
    """Floor, walls and wall rims: depth, region and shading (shadows and marks later).

    The floor is one homography of the ray grid; the walls and rims are solved only
    on the pixels that do not see the floor.
    """
    h, w = camera.height, camera.width
    n = h * w
    hx, hy = scene.arena[0] / 2.0, scene.arena[1] / 2.0
    th = scene.wall_thickness
    top = scene.view == "top"
    lz = scene.light_dir[2]
    amb = scene.ambient
    hom, wlin = _floor_homography(camera)
    floor_xy = cv2.perspectiveTransform(rays.xy, hom).reshape(n, 2)
    inv_t = rays.x * np.float32(wlin[0])
    inv_t += rays.y * np.float32(wlin[1])
    inv_t += np.float32(wlin[2])
    inside = cv2.inRange(floor_xy.reshape(h, w, 2), (-hx, -hy), (hx, hy))
    facing = inv_t > 0  # rays that meet the floor in front of the camera
    if not facing.all():
        inside[~facing] = 0
    with np.errstate(divide="ignore"):
        tf = np.float32(1.0) / inv_t
    depth = np.full((h, w), np.inf, dtype=np.float32)
    cv2.copyTo(tf, inside, depth)
    region = cv2.bitwise_and(inside, 1)
    if top:
        shade = np.full(n, albedo["floor"] * (amb + (1.0 - amb) * max(0.0, lz)),
                        dtype=np.float32)
    else:  # the clear plate from below: the room beyond it, and its own faint sheen
        shade = np.full(n, 0.85 * albedo["background"] + 0.03 * albedo["floor"],
                        dtype=np.float32)
    depth_f, region_f = depth.reshape(n), region.reshape(n)
    ridx = np.flatnonzero(inside.reshape(n) == 0)
    if ridx.size:
        shade[ridx] = albedo["background"] * (1.0 if top else 0.3)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if top:
                _walls(camera, scene, rays, ridx, depth_f, region_f, shade, albedo)
            else:  # the bottoms of the walls, seen through the plate as a thin band
                fxr, fyr = floor_xy[ridx, 0], floor_xy[ridx, 1]
                band = facing.reshape(n)[ridx] & (np.abs(fxr) <= hx + th) & \
                    (np.abs(fyr) <= hy + th)
                r_i = ridx[band]
                depth_f[r_i] = tf.reshape(n)[r_i]
                region_f[r_i] = REGION_WALL
                shade[r_i] = albedo["wall"] * 0.5
    return _Background(depth=depth_f, region=region_f, shade=shade, floor_xy=floor_xy)


def _walls(camera: Camera, scene: Scene, rays: RayGrid, ridx: NDArray[np.intp], depth: F32,
           region: NDArray[np.uint8], shade: F32, albedo: dict[str, float]) -> None:
    """Top view: the inner wall faces and the wall tops on pixels ``ridx`` (in place).

    The camera is above the arena's footprint, so a ray that misses the floor leaves
    the box through the wall it heads for, or passes over it onto the rim or beyond.
    """
    c = camera.position.astype(np.float32)
    hx, hy = scene.arena[0] / 2.0, scene.arena[1] / 2.0
    wh, th = scene.wall_height, scene.wall_thickness
    lx, ly, lz = scene.light_dir
    amb = scene.ambient
    x, y = rays.x.reshape(-1)[ridx], rays.y.reshape(-1)[ridx]
    r = camera.R.T.astype(np.float32)
    rx, ry, rz = (x * r[i, 0] + y * r[i, 1] + r[i, 2] for i in range(3))
    tx = np.copysign(np.float32(hx), rx)
    tx -= c[0]
    tx /= rx
    ty = np.copysign(np.float32(hy), ry)
    ty -= c[1]
    ty /= ry
    xwall = tx < ty
    tw = np.minimum(tx, ty)
    zw = tw * rz
    zw += c[2]
    on_wall = (zw >= 0) & (zw <= wh)
    # Lambert on the four inward normals, a little darker towards the floor
    f32 = np.float32
    lam = np.where(xwall, np.where(rx > 0, f32(max(-lx, 0.0)), f32(max(lx, 0.0))),
                   np.where(ry > 0, f32(max(-ly, 0.0)), f32(max(ly, 0.0))))
    lam *= f32(albedo["wall"] * (1.0 - amb))
    lam += f32(albedo["wall"] * amb)
    grad = np.clip(zw, 0.0, wh)
    grad *= f32(0.2 / max(wh, 1e-6))
    grad += f32(0.8)
    lam *= grad
    trim = (f32(wh) - c[2]) / rz
    ax, ay = np.abs(c[0] + trim * rx), np.abs(c[1] + trim * ry)
    on_rim = (trim > 0) & (ax <= hx + th) & (ay <= hy + th) & ((ax > hx) | (ay > hy))
    on_rim &= ~on_wall
    rim_shade = f32(albedo["wall"] * 1.2 * (amb + (1.0 - amb) * max(lz, 0.0)))
    depth[ridx] = np.where(on_wall, tw, np.where(on_rim, trim, f32(np.inf)))
    region[ridx] = (on_wall | on_rim).view(np.uint8) * np.uint8(REGION_WALL)
    shade[ridx] = np.where(on_wall, lam, np.where(on_rim, rim_shade,
                                                  f32(albedo["background"])))


@dataclass(frozen=True)
class _Hits:
    """The winning ellipsoid hits: one entry per covered pixel."""

    pix: NDArray[np.intp]  # flat pixel index
    eid: NDArray[np.intp]  # ellipsoid index
    local: F32  # (3, N) hit point on the ellipsoid's unit sphere
    t: F32  # (N,) camera z


def _ellipsoid_boxes(camera: Camera, centers: FloatArray, axes: FloatArray,
                     radii: FloatArray, margin: int = 2) -> NDArray[np.intp]:
    """(P, 4) pixel boxes x0, x1, y0, y1 (exclusive ends, clamped) of the ellipsoids.

    The 27 points of a 3x3x3 lattice on each bounding box are projected, so that
    lens distortion bending the box's edges is followed; empty boxes have x1 <= x0.
    """
    lattice = np.array([[a, b, c] for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 0, 1)],
                       dtype=np.float64)
    pts = centers[:, None, :] + np.einsum("pij,pj,kj->pki", axes, radii, lattice)
    px, z = camera.project(pts.reshape(-1, 3))
    px = px.reshape(len(centers), 27, 2)
    z = z.reshape(len(centers), 27)
    w, h = camera.width, camera.height
    boxes = np.zeros((len(centers), 4), dtype=np.intp)
    front = z > _NEAR
    lo = np.clip(np.floor(px.min(axis=1)) - margin, 0, [w, h])
    hi = np.clip(np.ceil(px.max(axis=1)) + margin + 1, 0, [w, h])
    boxes[:, 0], boxes[:, 1] = lo[:, 0], hi[:, 0]
    boxes[:, 2], boxes[:, 3] = lo[:, 1], hi[:, 1]
    boxes[~front.all(axis=1) & front.any(axis=1)] = (0, w, 0, h)  # straddles z = 0
    boxes[~front.any(axis=1)] = (0, 0, 0, 0)
    return boxes


def _cast_ellipsoids(camera: Camera, rays: RayGrid, centers: FloatArray, axes: FloatArray,
                     radii: FloatArray, zbuf: F32) -> _Hits:
    """Ray-cast ellipsoids into the flat z-buffer ``zbuf`` (modified); return the winners.

    All ellipsoids are solved in one batch over the pixels of their projected boxes:
    in the frame where an ellipsoid is the unit sphere, the unit-z ray of a pixel is
    the line ``o + s d`` (o taken at the depth of the ellipsoid's centre, so that the
    numbers stay small and float32 is accurate) and ``|o + s d|^2 = 1`` is solved.
    """
    w = camera.width
    p = len(centers)
    empty = _Hits(np.zeros(0, np.intp), np.zeros(0, np.intp), np.zeros((3, 0), np.float32),
                  np.zeros(0, np.float32))
    if p == 0:
        return empty
    boxes = _ellipsoid_boxes(camera, centers, axes, radii)
    counts = np.maximum(boxes[:, 1] - boxes[:, 0], 0) * np.maximum(boxes[:, 3] - boxes[:, 2], 0)
    if counts.sum() == 0:
        return empty
    idx = np.concatenate([
        (np.arange(boxes[i, 2], boxes[i, 3], dtype=np.intp)[:, None] * w
         + np.arange(boxes[i, 0], boxes[i, 1], dtype=np.intp)[None, :]).reshape(-1)
        for i in np.flatnonzero(counts)])
    eid = np.repeat(np.arange(p, dtype=np.intp), counts)
    # per ellipsoid: m maps a camera-frame direction into the unit-sphere frame
    inv_r = 1.0 / radii
    m = inv_r[:, :, None] * np.einsum("pji,kj->pik", axes, camera.R)  # diag(1/r) A^T R^T
    t0 = camera.to_camera(centers)[:, 2]
    o0 = inv_r * np.einsum("pji,pj->pi", axes, camera.position[None, :] - centers)
    table = np.concatenate([m.reshape(p, 9), o0, t0[:, None]], axis=1).T.astype(np.float32)
    per = table[:, eid]  # (13, N)
    x = rays.x.reshape(-1)[idx]
    y = rays.y.reshape(-1)[idx]
    dl = [per[3 * k] * x + per[3 * k + 1] * y + per[3 * k + 2] for k in range(3)]
    ol = [per[9 + k] + per[12] * dl[k] for k in range(3)]
    a = dl[0] * dl[0] + dl[1] * dl[1] + dl[2] * dl[2]
    b = ol[0] * dl[0] + ol[1] * dl[1] + ol[2] * dl[2]
    cc = ol[0] * ol[0] + ol[1] * ol[1] + ol[2] * ol[2] - 1.0
    disc = b * b - a * cc
    hit = np.flatnonzero(disc > 0)
    if hit.size == 0:
        return empty
    s = (-b[hit] - np.sqrt(disc[hit])) / a[hit]
    t = (per[12][hit] + s).astype(np.float32)
    keep = t > _NEAR
    hit, s, t = hit[keep], s[keep], t[keep]
    pix = idx[hit]
    np.minimum.at(zbuf, pix, t)
    win = t <= zbuf[pix]
    hit, s, t, pix = hit[win], s[win], t[win], pix[win]
    local = np.stack([ol[k][hit] + s * dl[k][hit] for k in range(3)]).astype(np.float32)
    return _Hits(pix=pix, eid=eid[hit], local=local, t=t)


def _shadow(scene: Scene, camera: Camera, centers: FloatArray, axes: FloatArray,
            radii: FloatArray, floor_xy: F32) -> tuple[F32, tuple[int, int, int, int]] | None:
    """Soft shadow (0..1) of the ellipsoids on the floor, over a window of the image.

    The shadow of an ellipsoid under a directional light L is an ellipse on the floor:
    a floor point p is in it when the line p + s L meets the ellipsoid, i.e. when
    q = |P M (p - c)|^2 <= 1, with M mapping the ellipsoid to the unit sphere and P
    removing the component along M L; q is a quadratic form in p around the centre's
    shadow. The edge is softened by the light's angular size times the height.

    Returns the shadow over the window ``x0, y0, x1, y1`` (exclusive ends), or None.
    """
    lvec = np.asarray(scene.light_dir, dtype=np.float64)
    if lvec[2] < 0.05 or len(centers) == 0:
        return None
    w, h = camera.width, camera.height
    m = np.transpose(axes, (0, 2, 1)) / radii[:, :, None]  # diag(1/r) A^T
    dvec = m @ lvec
    dvec /= np.linalg.norm(dvec, axis=1, keepdims=True)
    proj = np.eye(3)[None] - dvec[:, :, None] * dvec[:, None, :]
    g3 = proj @ m[:, :, :2]
    g = np.transpose(g3, (0, 2, 1)) @ g3  # (P, 2, 2)
    det = g[:, 0, 0] * g[:, 1, 1] - g[:, 0, 1] ** 2
    ok = det > 1e-12
    if not ok.any():
        return None
    centers, g, det = centers[ok], g[ok], det[ok]
    sc = centers[:, :2] - (centers[:, 2] / lvec[2])[:, None] * lvec[None, :2]
    height = np.maximum(centers[:, 2], 1e-4) / lvec[2]
    r_eff = det ** -0.25
    wsoft = np.clip(height * scene.shadow_softness / r_eff, 0.03, 1.5)
    ext = np.sqrt(np.stack([g[:, 1, 1], g[:, 0, 0]], axis=1) / det[:, None]) * \
        (1.0 + wsoft[:, None])
    grid = np.array([[a, b] for a in (-1, 0, 1) for b in (-1, 0, 1)], dtype=np.float64)
    pts = sc[:, None, :] + grid[None] * ext[:, None, :]
    px, z = camera.project(np.concatenate([pts, np.zeros((*pts.shape[:2], 1))], axis=2)
                           .reshape(-1, 3))
    px, z = px.reshape(len(sc), 9, 2), z.reshape(len(sc), 9)
    good = (z > _NEAR).all(axis=1)
    lo = np.clip(np.floor(px.min(axis=1)) - 1, 0, [w, h]).astype(np.intp)
    hi = np.clip(np.ceil(px.max(axis=1)) + 2, 0, [w, h]).astype(np.intp)
    counts = np.where(good, np.maximum(hi[:, 0] - lo[:, 0], 0)
                      * np.maximum(hi[:, 1] - lo[:, 1], 0), 0)
    if counts.sum() == 0:
        return None
    sel = np.flatnonzero(counts)
    x0, y0 = int(lo[sel, 0].min()), int(lo[sel, 1].min())
    x1, y1 = int(hi[sel, 0].max()), int(hi[sel, 1].max())
    ww = x1 - x0
    idx = np.concatenate([
        ((np.arange(lo[i, 1], hi[i, 1], dtype=np.intp) - y0)[:, None] * ww
         + (np.arange(lo[i, 0], hi[i, 0], dtype=np.intp) - x0)[None, :]).reshape(-1)
        for i in sel])
    eid = np.repeat(sel, counts[sel])
    table = np.stack([sc[:, 0], sc[:, 1], g[:, 0, 0], 2.0 * g[:, 0, 1], g[:, 1, 1],
                      1.0 + wsoft, 0.5 / wsoft]).astype(np.float32)[:, eid]
    full = (idx // ww + y0) * w + idx % ww + x0
    pts_xy = floor_xy[full]
    dx = pts_xy[:, 0] - table[0]
    dy = pts_xy[:, 1] - table[1]
    q = table[2] * dx * dx + table[3] * dx * dy + table[4] * dy * dy
    sh = np.clip((table[5] - np.sqrt(np.maximum(q, 0.0))) * table[6], 0.0, 1.0)
    out = np.zeros((y1 - y0) * ww, dtype=np.float32)
    np.maximum.at(out, idx, sh)
    return out.reshape(y1 - y0, ww), (x0, y0, x1, y1)


def _marks_canvas(scene: Scene, camera: Camera) -> NDArray[np.uint8] | None:
    """(H, W) uint8 darkness (255 = black) of the floor's drawn lines and stains, or None."""
    if not scene.lines and not scene.marks:
        return None
    h, w = camera.height, camera.width
    canvas = np.zeros((h, w), dtype=np.uint8)
    shift = 4
    dist_floor = abs(float(camera.position[2])) + 1e-3
    thick = max(1, round(scene.line_width * camera.K[0, 0] / dist_floor))
    value = round(255 * scene.line_darkness)
    for line in scene.lines:
        pts = np.asarray(line, dtype=np.float64)
        dense = []
        for a, b in itertools.pairwise(pts):
            k = max(2, int(np.linalg.norm(b - a) / 0.005))
            s = np.linspace(0.0, 1.0, k, endpoint=False)[:, None]
            dense.append(a + s * (b - a))
        dense.append(pts[-1:])
        d = np.concatenate(dense)
        px, z = camera.project(np.column_stack([d, np.zeros(len(d))]))
        if np.any(z <= _NEAR):
            continue
        ipts = np.round(np.clip(px, -1e4, 1e4) * (1 << shift)).astype(np.int32)
        cv2.polylines(canvas, [ipts], False, value, thick, cv2.LINE_AA, shift)
    ang = np.linspace(0.0, 2.0 * math.pi, 20, endpoint=False)
    for mk in scene.marks:
        ex, ey = mk.rx * np.cos(ang), mk.ry * np.sin(ang)
        ca, sa = math.cos(mk.angle), math.sin(mk.angle)
        ring = np.column_stack([mk.x + ca * ex - sa * ey, mk.y + sa * ex + ca * ey,
                                np.zeros(len(ang))])
        px, z = camera.project(ring)
        if np.any(z <= _NEAR):
            continue
        ipts = np.round(np.clip(px, -1e4, 1e4) * (1 << shift)).astype(np.int32)
        cv2.fillPoly(canvas, [ipts], round(255 * mk.darkness), cv2.LINE_AA, shift)
    return canvas


# ------------------------------------------------------------------------- shading


def _luma(rgb: Any) -> float:
    return float(np.dot(_LUMA, np.asarray(rgb, dtype=np.float64)))


def _shape_seed(shape: MouseShape) -> int:
    text = repr((shape.scale, shape.girth, shape.head_size, shape.ear_size, shape.tail_length,
                 shape.fur, shape.skin, shape.fur_name))
    return zlib.crc32(text.encode())


_FUR_CACHE: OrderedDict[int, tuple[F32, F32]] = OrderedDict()


def _fur_pattern(shape: MouseShape) -> tuple[F32, F32]:
    """Fur waves of this mouse, fixed to its body: frequencies (K, 3) rad/m, phases (K,)."""
    key = _shape_seed(shape)
    hit = _FUR_CACHE.get(key)
    if hit is None:
        rng = np.random.default_rng(key)
        k = 5
        freq = rng.normal(0.0, 1.0, (k, 3))
        freq *= (2.0 * math.pi / rng.uniform(0.006, 0.03, k) / np.linalg.norm(freq, axis=1)
                 )[:, None]
        phase = rng.uniform(0.0, 2.0 * math.pi, k)
        hit = (freq.astype(np.float32), phase.astype(np.float32))
        _FUR_CACHE[key] = hit
        while len(_FUR_CACHE) > 16:
            _FUR_CACHE.popitem(last=False)
    return hit


def _materials(shape: MouseShape, material: NDArray[np.int8], scene: Scene) -> FloatArray:
    """(P, 3) RGB albedo of each body ellipsoid under the scene's light."""
    fur = np.asarray(shape.fur, dtype=np.float64)
    skin = np.asarray(shape.skin, dtype=np.float64)
    if scene.light == "infrared":  # fur reflects much more near-infrared; grey
        fur = np.full(3, 0.2 + 0.75 * _luma(fur))
        skin = np.full(3, 0.45 + 0.45 * _luma(skin))
    # ears: thin skin under sparse fur, lit from above and through from the floor: they
    # show as light lobes even on black mice
    ear = np.minimum(1.25 * skin, 1.0)
    table = {FUR: fur, SKIN: skin, EAR: ear, EYE: np.full(3, _EYE_ALBEDO)}
    return np.array([table.get(int(m), fur) for m in material])


@dataclass(frozen=True)
class _Surfaces:
    """Everything ray-cast as ellipsoids: the body, then the clutter objects."""

    centers: FloatArray
    axes: FloatArray
    radii: FloatArray
    albedo: FloatArray  # (P, 3) RGB
    material: NDArray[np.int8]  # body materials; -1 for clutter
    n_body: int
    coverage: FloatArray  # (P,) fraction of a thin part's drawn width it really covers


def _surfaces(shape: MouseShape, state: BodyState, scene: Scene, camera: Camera
              ) -> _Surfaces:
    """The body's and the clutter's ellipsoids, thin ones widened to half a pixel.

    Parts thinner than a pixel (the tail tip, droppings) would fall between the
    pixel centres and vanish from the image, the mask and the depth map; their
    cross-section radii are raised to half the pixel footprint at their depth and
    their colour is blended with what lies behind by the true fraction of the drawn
    width (a camera integrates over the pixel). The eyes are left as they are.
    """
    body = body_ellipsoids(shape, state)
    centers, axes, radii = [body.centers], [body.axes], [body.radii]
    albedo = [_materials(shape, body.material, scene)]
    for obj in scene.clutter:
        cy, sy = math.cos(obj.yaw), math.sin(obj.yaw)
        centers.append(np.array([[obj.x, obj.y, 0.85 * obj.radii[2]]]))
        axes.append(np.array([[[cy, -sy, 0.0], [sy, cy, 0.0], [0.0, 0.0, 1.0]]]))
        radii.append(np.array([obj.radii], dtype=np.float64))
        a = np.asarray(obj.albedo, dtype=np.float64)
        if scene.light == "infrared":
            a = np.full(3, 0.15 + 0.8 * _luma(a))
        albedo.append(a[None, :])
    n = len(scene.clutter)
    c_all, r_all = np.concatenate(centers), np.concatenate(radii)
    material = np.concatenate([body.material, np.full(n, -1, np.int8)])
    depth = np.abs(camera.to_camera(c_all)[:, 2])
    floor = (0.5 / float(camera.K[0, 0])) * depth
    drawn = np.where((material != EYE)[:, None], np.maximum(r_all, floor[:, None]), r_all)
    small = np.sort(r_all, axis=1)[:, :2]
    small_drawn = np.sort(drawn, axis=1)[:, :2]
    coverage = np.sqrt(np.prod(small / small_drawn, axis=1))
    return _Surfaces(centers=c_all, axes=np.concatenate(axes), radii=drawn,
                     albedo=np.concatenate(albedo), material=material,
                     n_body=len(body.centers), coverage=coverage)


def _smooth_on_mask(values: F32, pix: NDArray[np.intp], width: int, sigma: float) -> F32:
    """Gaussian-smooth per-pixel ``values`` (N,) or (N, C) over the pixels ``pix`` only
    (normalised).

    Removes the creases where the body's ellipsoids meet without leaking the
    background into the silhouette.
    """
    if pix.size == 0 or sigma < 0.3:
        return values
    rows, cols = pix // width, pix % width
    pad = math.ceil(3 * sigma) + 1
    r0, c0 = int(rows.min()) - pad, int(cols.min()) - pad
    hh, ww = int(rows.max()) + pad + 1 - r0, int(cols.max()) + pad + 1 - c0
    num = np.zeros((hh, ww, *values.shape[1:]), dtype=np.float32)
    den = np.zeros((hh, ww), dtype=np.float32)
    num[rows - r0, cols - c0] = values
    den[rows - r0, cols - c0] = 1.0
    num = cv2.GaussianBlur(num, (0, 0), sigma)
    den = cv2.GaussianBlur(den, (0, 0), sigma)
    weight = np.maximum(den[rows - r0, cols - c0], 1e-6)
    if values.ndim > 1:
        weight = weight[:, None]
    out = num[rows - r0, cols - c0] / weight
    return np.asarray(out, dtype=np.float32)


def _shade_hits(hits: _Hits, surf: _Surfaces, shape: MouseShape, state: BodyState,
                scene: Scene, camera: Camera, rays: RayGrid) -> F32:
    """(N, 3) linear RGB radiance (before the illumination field) of the winning hits.

    Lambertian light plus ambient, darker where the surface turns away from the
    camera, smoothed over the body's pixels at a fraction of its width (fur has no
    creases), times a low-frequency fur pattern fixed to the body; the fur adds its
    sheen (a broad Blinn lobe and a rim, smoothed alike) and the eyes a small
    specular highlight.
    """
    e = hits.eid
    # normal: gradient of |diag(1/r) A^T (x - c)|^2 = A diag(1/r) local
    nmat = (surf.axes / surf.radii[:, None, :]).astype(np.float32)  # A diag(1/r)
    normal = np.einsum("nij,jn->in", nmat[e], hits.local)
    normal /= np.maximum(np.sqrt((normal * normal).sum(axis=0)), 1e-12)
    lvec = np.asarray(scene.light_dir, dtype=np.float32)
    lam = np.maximum(lvec @ normal, 0.0)
    ray = np.stack([rays.x.reshape(-1)[hits.pix], rays.y.reshape(-1)[hits.pix],
                    np.ones(hits.pix.size, dtype=np.float32)])
    ray_arena = camera.R.T.astype(np.float32) @ ray  # unit-z rays, arena frame
    view = -ray_arena / np.sqrt((ray_arena * ray_arena).sum(axis=0))
    facing = np.abs((view * normal).sum(axis=0))
    amb = scene.ambient
    light = (amb + (1.0 - amb) * lam) * (0.75 + 0.25 * facing)
    body = np.flatnonzero(e < surf.n_body)
    sheen = None
    if body.size:
        width_px = 0.025 * shape.scale * shape.girth * camera.K[0, 0] / max(
            float(np.median(hits.t[body])), 1e-3)
        sigma = 0.15 * width_px
        if scene.fur_sheen > 0:
            half = lvec[:, None] + view[:, body]
            half /= np.maximum(np.sqrt((half * half).sum(axis=0)), 1e-6)
            nh = np.maximum((half * normal[:, body]).sum(axis=0), 0.0)
            nh *= nh
            nh *= nh
            nh *= nh
            nh *= nh  # (n.h)^16: a broad lobe
            nh *= lam[body] > 0
            rim = 1.0 - facing[body]
            nh += np.float32(0.35) * rim * rim
            nh *= np.float32(scene.fur_sheen) * (surf.material[e[body]] == FUR)
            both = _smooth_on_mask(np.stack([light[body], nh], axis=1), hits.pix[body],
                                   camera.width, sigma)
            light[body], sheen = both[:, 0], both[:, 1]
        else:
            light[body] = _smooth_on_mask(light[body], hits.pix[body], camera.width, sigma)
    if scene.fur_texture > 0 and body.size:
        # waves in the frame of the mid spine, so that they run across ellipsoids
        pts = camera.position.astype(np.float32)[:, None] + hits.t[body] * ray_arena[:, body]
        frame = state.spine_frames[2].astype(np.float32)
        local = frame.T @ (pts - state.joint("spine_center").astype(np.float32)[:, None])
        freq, phase = _fur_pattern(shape)
        wave = np.sin(freq @ local + phase[:, None]).sum(axis=0) / math.sqrt(len(phase))
        is_fur = np.isin(surf.material[e[body]], (FUR, EAR))
        light[body] *= 1.0 + np.float32(scene.fur_texture) * wave * is_fur
    rad = surf.albedo.astype(np.float32)[e] * light[:, None]
    if sheen is not None:
        rad[body] += sheen[:, None]
    eye = np.flatnonzero(surf.material[e] == EYE)
    if eye.size:  # a tiny specular highlight on the eyes
        half = lvec[:, None] + view[:, eye]
        half /= np.sqrt((half * half).sum(axis=0))
        spec = 0.9 * np.maximum((half * normal[:, eye]).sum(axis=0), 0.0) ** 60
        rad[eye] += spec[:, None]
    return np.asarray(rad, dtype=np.float32)


def _illumination(scene: Scene, rays: RayGrid) -> F32:
    """(H, W) illumination light: exposure, gradient, spotlight and vignetting."""
    light = cv2.pow(rays.one_plus_r2, -2.0 * scene.vignetting)  # cos^(4 v)
    gx, gy = scene.light_gradient
    if gx or gy:
        light *= np.clip(1.0 + np.float32(gx) * rays.x + np.float32(gy) * rays.y, 0.2, None)
    sx, sy, sigma, gain = scene.spot
    if gain:
        r2 = (rays.x - np.float32(sx)) ** 2 + (rays.y - np.float32(sy)) ** 2
        light *= 1.0 + np.float32(gain) * np.exp(r2 * np.float32(-0.5 / sigma**2))
        light *= np.float32(1.0 / (1.0 + gain * 0.5))
    light *= np.float32(scene.exposure)
    return np.asarray(light, dtype=np.float32)


# ---------------------------------------------------------------------- image effects


def _add_noise(img: F32, scene: Scene, rng: np.random.Generator) -> None:
    """Add sensor noise in place: read noise plus signal-dependent (shot) noise.

    The standard normal draws come from OpenCV's generator (fast) seeded from ``rng``.
    """
    noise = np.empty_like(img)
    cv2.setRNGSeed(int(rng.integers(0, 2**31 - 1)))
    cv2.randn(noise.reshape(img.shape[0], -1), 0.0, 1.0)
    sigma = img * np.float32(scene.shot_noise)
    sigma += np.float32(scene.noise**2)
    np.maximum(sigma, 0.0, out=sigma)
    cv2.sqrt(sigma, sigma)
    noise *= sigma
    img += noise


def _motion_blur(img: F32, mask: NDArray[np.bool_], length: float, angle: float) -> None:
    """Blur ``img`` in place along a line of ``length`` px around the mouse pixels."""
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return
    k = math.ceil(length) | 1
    pad = k + 2
    h, w = mask.shape
    y0, y1 = max(int(ys.min()) - pad, 0), min(int(ys.max()) + pad + 1, h)
    x0, x1 = max(int(xs.min()) - pad, 0), min(int(xs.max()) + pad + 1, w)
    line = np.zeros((k, k), dtype=np.uint8)
    c = (k - 1) / 2.0
    dx, dy = 0.5 * length * math.cos(angle), 0.5 * length * math.sin(angle)
    p0 = (round((c - dx) * 16), round((c - dy) * 16))
    p1 = (round((c + dx) * 16), round((c + dy) * 16))
    cv2.line(line, p0, p1, 255, 1, cv2.LINE_AA, 4)
    kernel = line.astype(np.float32)
    kernel /= max(float(kernel.sum()), 1e-6)
    sub = img[y0:y1, x0:x1]
    blurred = cv2.filter2D(sub, -1, kernel, borderType=cv2.BORDER_REFLECT)
    weight = cv2.dilate(mask[y0:y1, x0:x1].astype(np.float32), np.ones((k, k), np.uint8))
    weight = cv2.GaussianBlur(weight, (0, 0), max(k / 4.0, 0.5))
    if sub.ndim == 3:
        weight = weight[..., None]
    sub += weight * (blurred - sub)


# --------------------------------------------------------------------------- render


def render(shape: MouseShape, state: BodyState, camera: Camera, scene: Scene,
           rng: np.random.Generator) -> Sample:
    """Render ``shape`` posed as ``state`` in ``scene`` through ``camera``.

    ``rng`` draws the sensor noise, the only per-frame randomness (one integer from it
    seeds OpenCV's generator, which draws the normal deviates). See :class:`Sample`
    for the outputs. A keypoint is in view when it is in front of the camera, inside
    ``[-0.5, W - 0.5) x [-0.5, H - 0.5)`` and inside the one-to-one part of the lens
    model; it is visible when in view and the first surface along its nearest pixel's
    ray lies no more than its surface offset
    (:func:`~.synth.body.keypoint_surface_offsets`) plus 1.5 mm in front of it. Parts
    thinner than half a pixel are drawn half a pixel wide (faded by their coverage),
    so the tail stays in the image, the mask and the depth map at low resolution.
    """
    h, w = camera.height, camera.width
    n = h * w
    rays = ray_grid(camera)
    ir = scene.light == "infrared"
    floor_rgb = np.asarray(scene.floor_albedo, dtype=np.float64)
    wall_rgb = np.asarray(scene.wall_albedo, dtype=np.float64)
    if ir:
        floor_rgb = np.full(3, min(1.0, 0.05 + 0.8 * _luma(floor_rgb)))
        wall_rgb = np.full(3, _luma(wall_rgb))
    colour = scene.colour and not ir
    # the grey path folds the albedo's luminance into the shading; colour multiplies later
    albedo = {"floor": 1.0 if colour else _luma(floor_rgb),
              "wall": 1.0 if colour else _luma(wall_rgb),
              "background": scene.background}
    bg = _background(camera, scene, rays, albedo)
    top = scene.view == "top"
    shade = bg.shade.reshape(h, w)
    parts = scene_parts(scene.objects) if scene.objects else []

    # floor texture, marks and the body's shadows (the walls overwrite their pixels)
    footprint = abs(float(camera.position[2])) / float(camera.K[0, 0])
    floor_px = bg.region == REGION_FLOOR
    if floor_px.any():
        tex = _sample_floor_texture(scene, bg.floor_xy, (h, w), footprint)
        if not top:
            tex -= 1.0
            tex *= 0.3
            tex += 1.0
        mult = tex
        canvas = _marks_canvas(scene, camera)
        if canvas is not None:
            ink = canvas.astype(np.float32)
            ink *= np.float32((-1.0 if top else -0.4) / 255.0)
            ink += 1.0
            mult *= ink
        surf = _surfaces(shape, state, scene, camera)
        if top and scene.shadow > 0:
            casters = np.flatnonzero(surf.material != EYE)
            cast = _shadow(scene, camera, surf.centers[casters], surf.axes[casters],
                           surf.radii[casters], bg.floor_xy)
            if cast is not None:
                sh, (x0, y0, x1, y1) = cast
                sh *= np.float32(-scene.shadow)
                sh += 1.0
                mult[y0:y1, x0:x1] *= sh
        if parts and top:
            for om, (x0, y0, x1, y1) in floor_shading(
                    parts, scene.objects, camera, light_dir=scene.light_dir,
                    shadow=scene.shadow, softness=scene.shadow_softness,
                    ambient=scene.ambient):
                mult[y0:y1, x0:x1] *= om
        cv2.copyTo(shade * mult, floor_px.reshape(h, w).view(np.uint8), shade)
    else:
        surf = _surfaces(shape, state, scene, camera)

    # the objects, the body and the clutter; from below the clear floor does not hide them
    zbuf = bg.depth.copy() if top else np.full(n, np.inf, dtype=np.float32)
    obj_hits = cast_parts(camera, rays.x, rays.y, parts, zbuf) if parts else None
    hits = _cast_ellipsoids(camera, rays, surf.centers, surf.axes, surf.radii, zbuf)
    region = bg.region.copy()
    if obj_hits is not None:  # what the body or the clutter hides loses
        obj_hits = obj_hits.select(obj_hits.t <= zbuf[obj_hits.pix])
        region[obj_hits.pix] = REGION_CLUTTER
    if top:
        depth = zbuf
    else:
        depth = bg.depth
        if obj_hits is not None:
            depth[obj_hits.pix] = obj_hits.t
        depth[hits.pix] = hits.t
    is_body = hits.eid < surf.n_body
    region[hits.pix] = np.where(is_body, REGION_MOUSE, REGION_CLUTTER).astype(np.uint8)

    # linear image
    light = _illumination(scene, rays)
    hit_rad = _shade_hits(hits, surf, shape, state, scene, camera, rays)
    alpha = surf.coverage.astype(np.float32)[hits.eid]
    obj_rad = None
    if obj_hits is not None:
        obj_rad = shade_parts(obj_hits, parts, scene.objects, camera,
                              light_dir=scene.light_dir, ambient=scene.ambient,
                              shadow=scene.shadow, infrared=ir)
    if colour:
        tint = np.asarray(scene.light_tint, dtype=np.float32)
        table = (np.stack([np.ones(3), floor_rgb, wall_rgb, np.ones(3), np.ones(3)])
                 .astype(np.float32) * tint)[:, ::-1]  # by region, BGR
        flat = shade.reshape(n)
        img: F32 = np.empty((n, 3), dtype=np.float32)
        for ch in range(3):
            img[:, ch] = flat * np.take(table[:, ch], bg.region)
        if obj_hits is not None and obj_rad is not None:
            img[obj_hits.pix] = (obj_rad * tint)[:, ::-1]
        img[hits.pix] += alpha[:, None] * ((hit_rad * tint)[:, ::-1] - img[hits.pix])
        img = img.reshape(h, w, 3)
        img *= light[:, :, None]
    else:
        img = shade
        flat = img.reshape(n)
        if obj_hits is not None and obj_rad is not None:
            flat[obj_hits.pix] = obj_rad @ _LUMA.astype(np.float32)
        flat[hits.pix] += alpha * (hit_rad @ _LUMA.astype(np.float32) - flat[hits.pix])
        img *= light
    if scene.glare:
        on_surface = np.isin(region, (REGION_FLOOR, REGION_WALL)).reshape(h, w)
        spots = _glare(scene, h, w) * on_surface
        img += spots[:, :, None] if img.ndim == 3 else spots
    mask2d = (region == REGION_MOUSE).reshape(h, w)

    # camera effects: optics blur, motion blur, flare, noise, tone curve, JPEG
    if scene.blur_sigma > 0:
        img = cv2.GaussianBlur(img, (0, 0), scene.blur_sigma)
    if scene.motion_blur[0] >= 1.0:
        _motion_blur(img, mask2d, scene.motion_blur[0], scene.motion_blur[1])
    if scene.flare > 0:
        img += np.float32(scene.flare * float(img.mean()))
    _add_noise(img, scene, rng)
    np.maximum(img, 0.0, out=img)
    img = cv2.pow(img, 1.0 / scene.gamma)
    out = cv2.convertScaleAbs(img, alpha=255.0)
    if scene.jpeg_quality > 0:
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, scene.jpeg_quality])
        if ok:
            out = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)

    # keypoints
    depth[~np.isfinite(depth)] = 0.0
    depth2d = depth.reshape(h, w)
    kp_arena = np.array(state.keypoints, dtype=np.float64)
    kp_cam = camera.to_camera(kp_arena)
    kp_2d, z = camera.project(kp_arena)
    zs = np.maximum(z, 1e-12)
    r2 = (kp_cam[:, 0] ** 2 + kp_cam[:, 1] ** 2) / zs**2
    in_view = (z > _NEAR) & (kp_2d[:, 0] >= -0.5) & (kp_2d[:, 0] < w - 0.5) & \
        (kp_2d[:, 1] >= -0.5) & (kp_2d[:, 1] < h - 0.5) & (r2 < fold_r2(camera.dist))
    visible = in_view.copy()
    offsets = keypoint_surface_offsets(shape)
    for k in np.flatnonzero(in_view):
        u = min(max(round(kp_2d[k, 0]), 0), w - 1)
        v = min(max(round(kp_2d[k, 1]), 0), h - 1)
        d = float(depth2d[v, u])
        visible[k] = d == 0.0 or d >= z[k] - offsets[k] - _VISIBILITY_TOL
    return Sample(image=out, depth=depth2d, mask=mask2d.view(np.uint8),
                  region=region.reshape(h, w), keypoints_2d=kp_2d, keypoints_camera=kp_cam,
                  keypoints_arena=kp_arena, visible=visible, in_view=in_view, camera=camera)
