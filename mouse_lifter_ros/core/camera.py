"""The camera: one lens model and the projection geometry every module uses.

A :class:`Camera` is a pinhole camera with lens distortion, placed in the arena: its
intrinsics ``K``, distortion coefficients ``dist`` of one of the
:data:`DISTORTION_MODELS` (OpenCV's formulas: ``plumb_bob`` k1, k2, p1, p2, k3;
``rational_polynomial`` k1..k6 with p1, p2; ``equidistant`` fisheye k1..k4), its image
size and its pose. It projects arena points to pixels (:meth:`Camera.project`) and
casts pixels back: rays (:meth:`Camera.rays`), points at a known depth
(:meth:`Camera.backproject`) or on a horizontal plane (:meth:`Camera.points_at_height`).
The arena calibration (:class:`~.arena.ArenaCalibration`), the lifter, the body fit, the
depth stage, the evaluations and the synthetic renderer all use this one class.

The lens, as functions of normalised coordinates: :func:`distort` (the model),
:func:`undistort` (its inverse as the runtime computes it: OpenCV's estimate polished by
two Newton steps, any model) and :func:`undistort_newton` (Newton's method to
convergence, plumb_bob, for the renderer's per-pixel ray grids; :func:`fold_r2` says
where the plumb_bob model stops being one-to-one).

Frames and units: the arena frame follows REP-103 (metres; x, y on the floor, z up away
from the floor, the floor is z = 0); the camera frame is the optical one (z forward, x
right, y down), ``x_cam = R @ x_arena + t``; pixel (0, 0) is the centre of the top-left
pixel (OpenCV's convention); depth is camera-frame z in metres. numpy and OpenCV only.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any, Final

import cv2
import numpy as np
from numpy.typing import ArrayLike, NDArray

from mouse_lifter_ros.core.errors import InputError

__all__ = [
    "DISTORTION_MODELS",
    "ROTATION_TOL",
    "Camera",
    "distort",
    "fold_r2",
    "look_at",
    "undistort",
    "undistort_newton",
]

FloatArray = NDArray[np.float64]

#: Distortion models understood, with their number of coefficients.
DISTORTION_MODELS: Final[dict[str, int]] = {
    "plumb_bob": 5, "rational_polynomial": 8, "equidistant": 4}
#: Largest ``max |R R^T - I|`` of a rotation matrix accepted.
ROTATION_TOL: Final = 1e-5

_CRITERIA: Final = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-13)


# ------------------------------------------------------------------------------ lens


def distort(x: FloatArray, y: FloatArray, model: str, d: FloatArray
            ) -> tuple[FloatArray, FloatArray]:
    """Distort normalised coordinates ``x``, ``y`` (any shape) with OpenCV's formulas.

    ``model`` is one of :data:`DISTORTION_MODELS`, ``d`` its coefficients. Returns the
    distorted normalised coordinates, the shape of ``x``.
    """
    if model == "equidistant":
        r = np.hypot(x, y)
        theta = np.arctan(r)
        t2 = theta * theta
        theta_d = theta * (1.0 + t2 * (d[0] + t2 * (d[1] + t2 * (d[2] + t2 * d[3]))))
        scale = np.where(r > 1e-12, theta_d / np.maximum(r, 1e-12), 1.0)
        return x * scale, y * scale
    k1, k2, p1, p2, k3 = (float(v) for v in d[:5])
    r2 = x * x + y * y
    radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
    if model == "rational_polynomial":
        k4, k5, k6 = (float(v) for v in d[5:8])
        radial = radial / (1.0 + r2 * (k4 + r2 * (k5 + r2 * k6)))
    xy = x * y
    xd = x * radial + 2.0 * p1 * xy + p2 * (r2 + 2.0 * x * x)
    yd = y * radial + p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * xy
    return xd, yd


def undistort(xd: FloatArray, yd: FloatArray, model: str, d: FloatArray
              ) -> tuple[FloatArray, FloatArray]:
    """Invert :func:`distort`: distorted normalised ``xd``, ``yd`` (N,) -> undistorted.

    OpenCV's fixed-point estimate (``cv2.undistortPoints``, ``cv2.fisheye`` for the
    equidistant model) polished by two Newton steps (OpenCV's iteration may stop short);
    returned as they are when ``d`` is all zeros.
    """
    if len(xd) == 0 or not np.any(d):
        return xd, yd
    src = np.stack([xd, yd], axis=1).reshape(-1, 1, 2)
    if model == "equidistant":
        out = cv2.fisheye.undistortPoints(src, np.eye(3), d.reshape(1, 4), criteria=_CRITERIA)
    else:
        out = cv2.undistortPoints(src, np.eye(3), d, criteria=_CRITERIA)
    x, y = (np.array(a, dtype=np.float64) for a in out.reshape(-1, 2).T)
    for _ in range(2):  # Newton steps: OpenCV's fixed-point iteration may stop short
        fx, fy = distort(x, y, model, d)
        h = 1e-7
        ax, ay = distort(x + h, y, model, d)
        bx, by = distort(x, y + h, model, d)
        j11, j21, j12, j22 = (ax - fx) / h, (ay - fy) / h, (bx - fx) / h, (by - fy) / h
        det = j11 * j22 - j12 * j21
        ok = np.abs(det) > 1e-12
        det = np.where(ok, det, 1.0)
        ex, ey = fx - xd, fy - yd
        x = x - np.where(ok, (j22 * ex - j12 * ey) / det, 0.0)
        y = y - np.where(ok, (j11 * ey - j21 * ex) / det, 0.0)
    return x, y


def undistort_newton(xd: FloatArray, yd: FloatArray, d: FloatArray,
                     iterations: int = 30) -> tuple[FloatArray, FloatArray]:
    """Invert the plumb_bob :func:`distort` by Newton's method (float64, to ~1e-14).

    ``xd``, ``yd`` any shape, ``d`` the 5 plumb_bob coefficients. Converges
    monotonically inside the region where the radial map is increasing (see
    :func:`fold_r2`), which holds for every pixel of a sampled synthetic camera. The
    synthetic renderer's ray grids use it (their bytes depend on it).
    """
    k1, k2, p1, p2, k3 = (float(v) for v in d)
    x, y = xd.astype(np.float64), yd.astype(np.float64)
    for _ in range(iterations):
        r2 = x * x + y * y
        radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
        dr = k1 + r2 * (2.0 * k2 + 3.0 * k3 * r2)  # d radial / d r2
        xy = x * y
        ex = x * radial + 2.0 * p1 * xy + p2 * (r2 + 2.0 * x * x) - xd
        ey = y * radial + p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * xy - yd
        a = radial + 2.0 * x * x * dr + 2.0 * p1 * y + 6.0 * p2 * x
        b = 2.0 * xy * dr + 2.0 * p1 * x + 2.0 * p2 * y
        dd = radial + 2.0 * y * y * dr + 6.0 * p1 * y + 2.0 * p2 * x
        det = a * dd - b * b
        sx = (dd * ex - b * ey) / det
        sy = (a * ey - b * ex) / det
        x -= sx
        y -= sy
        if float(np.max(np.abs(sx), initial=0.0)) < 1e-14 and \
                float(np.max(np.abs(sy), initial=0.0)) < 1e-14:
            break
    return x, y


def fold_r2(d: FloatArray) -> float:
    """Squared normalised radius where the plumb_bob radial distortion ``d`` stops
    increasing (inf if never).

    Beyond it the model folds back: far points would project into the image, so they
    are never counted in view.
    """
    return _fold_r2_cached(float(d[0]), float(d[1]), float(d[4]))


@functools.lru_cache(maxsize=64)
def _fold_r2_cached(k1: float, k2: float, k3: float) -> float:
    # d/dr [r (1 + k1 r^2 + k2 r^4 + k3 r^6)] = 1 + 3 k1 s + 5 k2 s^2 + 7 k3 s^3, s = r^2
    coeffs = np.array([7.0 * k3, 5.0 * k2, 3.0 * k1, 1.0])
    nz = np.flatnonzero(np.abs(coeffs) > 1e-15)
    if nz[0] == 3:
        return math.inf
    roots = np.roots(coeffs[nz[0]:])
    real = [float(r.real) for r in roots if abs(r.imag) < 1e-9 and r.real > 0]
    return min(real) if real else math.inf


# ---------------------------------------------------------------------------- camera


def _as_array(value: Any, shape: tuple[int, ...], name: str) -> FloatArray:
    try:
        arr = np.array(value, dtype=np.float64).reshape(shape)
    except (TypeError, ValueError) as exc:
        raise InputError(f"camera {name}: expected shape {shape}: {exc}") from None
    if not np.all(np.isfinite(arr)):
        raise InputError(f"camera {name}: non-finite values")
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class Camera:
    """A pinhole camera with lens distortion, placed in the arena.

    Attributes
    ----------
    K:
        (3, 3) intrinsics of this image (after any crop), pixels.
    dist:
        Coefficients of ``model``: (5,) plumb_bob k1, k2, p1, p2, k3 (zeros: no
        distortion), (8,) rational_polynomial or (4,) equidistant.
    R, t:
        (3, 3) rotation and (3,) translation (m), ``x_cam = R @ x_arena + t``.
    width, height:
        Image size, pixels.
    roi:
        x_offset, y_offset, width, height of this image inside the full sensor image
        (as ``sensor_msgs/CameraInfo.roi``); zeros: this is the full image. Offsets are
        negative for a window reaching past the sensor's top or left edge.
    model:
        The distortion model, one of :data:`DISTORTION_MODELS`.

    Raises
    ------
    InputError
        Listing every problem: arrays of the wrong shape or not finite, a size that is
        not two positive integers, a ``K`` without positive focal lengths, ``K[1, 0] = 0``
        and last row 0 0 1, an ``R`` that is not a rotation (:data:`ROTATION_TOL`), an
        unknown model or a ``dist`` of another length than the model's.
    """

    K: FloatArray
    dist: FloatArray
    R: FloatArray
    t: FloatArray
    width: int
    height: int
    roi: tuple[int, int, int, int] = (0, 0, 0, 0)
    model: str = "plumb_bob"
    _ray_grid: NDArray[np.float32] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        n_dist = DISTORTION_MODELS.get(self.model)
        if n_dist is None:
            raise InputError(f"camera: unknown distortion model {self.model!r} (allowed: "
                             f"{', '.join(DISTORTION_MODELS)})")
        for name, shape in (("K", (3, 3)), ("dist", (n_dist,)), ("R", (3, 3)), ("t", (3,))):
            object.__setattr__(self, name, _as_array(getattr(self, name), shape, name))
        problems = []
        if not (isinstance(self.width, int | np.integer) and isinstance(self.height,
                                                                         int | np.integer)
                and self.width > 0 and self.height > 0):
            problems.append(f"size {self.width}x{self.height}: positive integers needed")
        if self.K[0, 0] <= 0 or self.K[1, 1] <= 0 or not np.allclose(self.K[2], [0, 0, 1]) \
                or self.K[1, 0] != 0:
            problems.append("K: needs fx, fy > 0, K[1,0] = 0 and last row 0 0 1")
        if np.abs(self.R @ self.R.T - np.eye(3)).max() > ROTATION_TOL \
                or np.linalg.det(self.R) < 0:
            problems.append("R: not a rotation")
        if len(self.roi) != 4:
            problems.append(f"roi {self.roi}: 4 integers needed")
        if problems:
            raise InputError("camera: " + "; ".join(problems))
        object.__setattr__(self, "width", int(self.width))
        object.__setattr__(self, "height", int(self.height))
        object.__setattr__(self, "roi", tuple(int(v) for v in self.roi))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Camera):
            return NotImplemented
        return (self.width, self.height, self.roi, self.model) == (
            other.width, other.height, other.roi, other.model) \
            and all(np.array_equal(getattr(self, n), getattr(other, n))
                    for n in ("K", "dist", "R", "t"))

    __hash__ = None  # type: ignore[assignment]

    # -------------------------------------------------------------- arena -> pixels

    @property
    def position(self) -> FloatArray:
        """(3,) camera centre in the arena frame, metres."""
        return np.asarray(-self.R.T @ self.t)

    def to_camera(self, pts_arena: ArrayLike) -> FloatArray:
        """(N, 3) arena-frame points -> (N, 3) camera-frame points, metres."""
        pts = np.asarray(pts_arena, dtype=np.float64)
        return np.asarray(pts @ self.R.T + self.t)

    def project(self, pts_arena: ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Project (N, 3) arena-frame points (m).

        Returns
        -------
        pixels:
            (N, 2) distorted pixel coordinates in this image. Meaningless (but finite)
            for points at or behind the camera.
        z:
            (N,) camera-frame depth, metres (> 0 in front of the camera).
        """
        cam = self.to_camera(np.reshape(pts_arena, (-1, 3)))
        z = cam[:, 2]
        zs = np.where(np.abs(z) < 1e-12, 1e-12, z)
        xd, yd = distort(cam[:, 0] / zs, cam[:, 1] / zs, self.model, self.dist)
        k = self.K
        u = k[0, 0] * xd + k[0, 1] * yd + k[0, 2]
        v = k[1, 1] * yd + k[1, 2]
        return np.stack([u, v], axis=1), np.asarray(z)

    # -------------------------------------------------------------- pixels -> arena

    def normalised(self, u: FloatArray, v: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Pixel coordinates ``u``, ``v`` (broadcastable) -> distorted normalised x, y."""
        k = self.K
        yd = (v - k[1, 2]) / k[1, 1]
        xd = (u - k[0, 2] - k[0, 1] * yd) / k[0, 0]
        return xd, yd

    def ray_xy(self, pixels: ArrayLike) -> FloatArray:
        """(N, 2) distorted pixels -> (N, 2) undistorted normalised x, y (camera frame):
        the ray through each pixel meets camera z = 1 there (:func:`undistort`)."""
        uv = np.asarray(pixels, dtype=np.float64).reshape(-1, 2)
        xn, yn = self.normalised(uv[:, 0], uv[:, 1])
        x, y = undistort(xn, yn, self.model, self.dist)
        return np.stack([x, y], axis=1)

    def rays(self, pixels: ArrayLike) -> FloatArray:
        """(N, 2) distorted pixels -> (N, 3) undistorted rays ``(x, y, 1)``, camera frame."""
        xy = self.ray_xy(pixels)
        return np.concatenate([xy, np.ones((len(xy), 1))], axis=1)

    def ray_grid(self) -> NDArray[np.float32]:
        """(H, W, 2) float32 ray x, y of every pixel centre (computed once, read-only)."""
        grid = self._ray_grid
        if grid is None:
            u, v = np.meshgrid(np.arange(self.width, dtype=np.float64),
                               np.arange(self.height, dtype=np.float64))
            xy = self.ray_xy(np.stack([u.ravel(), v.ravel()], axis=1))
            grid = xy.astype(np.float32).reshape(self.height, self.width, 2)
            grid.setflags(write=False)
            object.__setattr__(self, "_ray_grid", grid)
        return grid

    def _to_arena(self, cam: FloatArray) -> FloatArray:
        return np.asarray((cam - self.t) @ self.R)

    def backproject(self, pixels: ArrayLike, depth: ArrayLike) -> FloatArray:
        """(N, 2) pixels and (N,) camera z (m) -> (N, 3) arena points (m).

        Rows are NaN where the depth is NaN or not positive.
        """
        rays = self.rays(pixels)
        z = np.broadcast_to(np.asarray(depth, dtype=np.float64).reshape(-1), (len(rays),))
        z = np.where(z > 0, z, np.nan)
        return self._to_arena(rays * z[:, None])

    def points_at_height(self, pixels: ArrayLike, height: ArrayLike = 0.0) -> FloatArray:
        """(N, 2) pixels -> (N, 3) arena points where each ray meets the plane z = height.

        ``height`` (m) is a scalar or (N,); rows are NaN where the ray does not meet the
        plane in front of the camera.
        """
        rays = self.rays(pixels)
        depth = self.depth_at_height(rays[:, :2], np.asarray(height, dtype=np.float64))
        return self._to_arena(rays * depth[:, None])

    def depth_at_height(self, rays_xy: NDArray[Any], height: ArrayLike) -> NDArray[Any]:
        """Camera z (m) of the point at arena height ``height`` on each ray.

        ``rays_xy`` (..., 2) holds undistorted ray x, y (as :meth:`ray_grid` gives);
        ``height`` is a scalar or broadcasts against ``(...)``. Float32 rays give float32
        depths. NaN where the plane lies behind the camera or along the ray.
        """
        rays = np.asarray(rays_xy)
        dtype = rays.dtype if rays.dtype == np.float32 else np.dtype(np.float64)
        rays = rays.astype(dtype, copy=False)
        r = self.R.astype(dtype)
        cz = dtype.type(self.position[2])
        # arena z of camera z s on ray (x, y, 1): cz + s * (R[0,2] x + R[1,2] y + R[2,2])
        denom = rays[..., 0] * r[0, 2] + rays[..., 1] * r[1, 2] + r[2, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            depth = (np.asarray(height, dtype=dtype) - cz) / denom
        return np.where((depth > 0) & np.isfinite(depth), depth, dtype.type(np.nan))

    # ------------------------------------------------------------------ other images

    def crop(self, x0: int, y0: int, w: int, h: int) -> Camera:
        """The camera of the window ``[x0, x0 + w) x [y0, y0 + h)`` of this image.

        The principal point shifts by the offset and :attr:`roi` accumulates; a window
        reaching past this image's edges is allowed (the sensor is extended).
        """
        if w <= 0 or h <= 0:
            raise InputError(f"crop: window {w}x{h} must have a positive size")
        k = self.K.copy()
        k[0, 2] -= x0
        k[1, 2] -= y0
        rx, ry = self.roi[0], self.roi[1]
        return Camera(K=k, dist=self.dist, R=self.R, t=self.t, width=int(w), height=int(h),
                      roi=(rx + int(x0), ry + int(y0), int(w), int(h)), model=self.model)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict: K (3x3), dist, R (3x3), t, width, height, roi, and the
        model when it is not plumb_bob."""
        out = {"K": self.K.tolist(), "dist": self.dist.tolist(), "R": self.R.tolist(),
               "t": self.t.tolist(), "width": self.width, "height": self.height,
               "roi": list(self.roi)}
        if self.model != "plumb_bob":
            out["model"] = self.model
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Camera:
        """Inverse of :meth:`to_dict` (``roi`` and ``model`` optional)."""
        try:
            return cls(K=d["K"], dist=d["dist"], R=d["R"], t=d["t"], width=int(d["width"]),
                       height=int(d["height"]), roi=tuple(d.get("roi", (0, 0, 0, 0))),
                       model=str(d.get("model", "plumb_bob")))
        except KeyError as exc:
            raise InputError(f"camera dict: missing key {exc}") from None


def look_at(eye: ArrayLike, target: ArrayLike, *, fx: float, fy: float, cx: float,
            cy: float, width: int, height: int, dist: ArrayLike | None = None,
            up: ArrayLike = (0.0, 1.0, 0.0)) -> Camera:
    """A plumb_bob camera at ``eye`` (3,) looking at ``target`` (3,), arena frame, metres.

    ``up`` is the arena direction that appears upwards in the image (a different one
    is used if it is along the line of sight); ``dist`` the 5 plumb_bob coefficients
    (default none); ``fx``, ``fy``, ``cx``, ``cy`` the intrinsics in pixels.
    """
    eye_a = np.asarray(eye, dtype=np.float64)
    z = np.asarray(target, dtype=np.float64) - eye_a
    n = float(np.linalg.norm(z))
    if n < 1e-12:
        raise InputError("look_at: eye and target coincide")
    z /= n
    up_a = np.asarray(up, dtype=np.float64)
    for cand in (up_a, np.array([0.0, 1.0, 0.0]), np.array([1.0, 0.0, 0.0])):
        y = -(cand - np.dot(cand, z) * z)
        if np.linalg.norm(y) > 1e-6:
            break
    y /= np.linalg.norm(y)
    x = np.cross(y, z)
    rot = np.stack([x, y, z])
    k = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
    d = np.zeros(5) if dist is None else np.asarray(dist, dtype=np.float64)
    return Camera(K=k, dist=d, R=rot, t=-rot @ eye_a, width=width, height=height)
