"""The camera's pose over the arena floor: intrinsics plus a rotation and translation.

An :class:`ArenaCalibration` is a :class:`~.camera.Camera` (:attr:`ArenaCalibration.camera`:
it projects arena points to pixels and casts pixels back onto the floor or any plane
parallel to it) with the intrinsics file it came from and how its pose was found. It is
made from a known camera (:func:`arena_from_camera`), four arena corners of known size
picked in an image (:func:`arena_from_corners`) or a checkerboard / ChArUco board lying
flat on the floor (:func:`arena_from_checkerboard`); each refuses a calibration that is
clearly wrong (bad inputs, reprojection error over the limit, camera implausibly near,
far or tilted), raising :class:`CalibrationError` that lists every problem. numpy,
OpenCV and PyYAML only: no ROS import here.

Frames and units: the arena frame follows REP-103 (metres; x, y on the floor, z up
away from the floor, z = 0 the surface the mouse stands on: the calibrated floor, or the
top of the bedding ``bedding`` metres above it); the camera frame is the optical one (z
forward, x right, y down), ``x_cam = rotation @ x_floor + translation`` for the calibrated
floor's frame (the arena frame lowered by ``bedding``); pixel (0, 0) is the centre of the
top-left pixel. Distortion models: those of
``camera.DISTORTION_MODELS`` (OpenCV's formulas).

File layout (written by :func:`save_arena`, read by :func:`load_arena`)::

    format: mouse_lifter_arena
    version: 1
    method: corners                  # checkerboard | charuco | corners | camera
    reprojection_error_px: 0.21      # RMS over the points used to calibrate
    arena_size_m: [0.46, 0.34]       # arena x, y extent centred on the origin, or null
    bedding_m: 0.02                  # bedding depth over the calibrated floor (optional, 0)
    camera_height_m: 0.4703          # for people reading the file: ignored when loading
    view: top                        # likewise (top: camera above the floor)
    rotation: {rows: 3, cols: 3, data: [...]}   # row-major, x_cam = R x_floor + t
    translation: [x, y, z]           # metres (the calibrated floor's pose)
    camera:                          # the intrinsics, camera_calibration YAML layout
      image_width: 640
      ...
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

import cv2
import numpy as np
import yaml
from numpy.typing import ArrayLike, NDArray

from mouse_lifter_ros.core.calibration import (
    CameraCalibration,
    calibration_to_yaml,
    parse_calibration,
    read_matrix,
    yaml_float,
    yaml_number,
)
from mouse_lifter_ros.core.calibration import scaled as scaled_intrinsics
from mouse_lifter_ros.core.camera import ROTATION_TOL, Camera
from mouse_lifter_ros.core.errors import CalibrationError, InputError
from mouse_lifter_ros.core.views import view_of, view_problem

FloatArray = NDArray[np.float64]

#: Largest RMS reprojection error (pixels) accepted by default.
DEFAULT_MAX_ERROR: Final = 2.0
#: Plausible distance of the camera from the floor plane, metres.
MIN_DISTANCE_M: Final = 0.05
MAX_DISTANCE_M: Final = 10.0
#: Largest angle between the optical axis and the floor normal, degrees.
MAX_TILT_DEG: Final = 60.0
#: Values of :attr:`ArenaCalibration.method`.
METHODS: Final = ("checkerboard", "charuco", "corners", "camera")
#: Deepest bedding (metres over the calibrated floor) a calibration takes.
MAX_BEDDING_M: Final = 0.1
FORMAT: Final = "mouse_lifter_arena"
VERSION: Final = 1


# ------------------------------------------------------------------------ the class


@dataclass(frozen=True, eq=False)
class ArenaCalibration:
    """Intrinsics plus the camera's pose over the arena floor.

    Arena frame (REP-103): x, y on the floor, z up away from the floor, z = 0 the surface
    the mouse stands on (the calibrated floor raised by :attr:`bedding`), metres.
    ``x_cam = rotation @ x_floor + translation`` with ``x_floor`` the arena point
    lowered by ``bedding`` (camera optical frame: z forward, x right, y down); the
    :attr:`camera` is placed in the arena frame. The geometry is :attr:`camera`'s;
    :meth:`project`,
    :meth:`rays`, :meth:`ray_grid`, :meth:`backproject`, :meth:`points_at_height` and
    :meth:`depth_at_height` are its methods.

    Attributes
    ----------
    intrinsics:
        The camera's intrinsics (must be calibrated).
    rotation, translation:
        (3, 3) and (3,) float64, read-only: the calibrated pose over the floor
        (translation in metres).
    reprojection_error:
        RMS pixel error over the points used to calibrate (0.0 when exact or from a
        known camera).
    method:
        One of :data:`METHODS`.
    arena_size:
        Arena extent along arena x and y (metres, centred on the origin), when known.
    bedding:
        Depth of the bedding over the calibrated floor, metres (0 to
        :data:`MAX_BEDDING_M`): the mouse stands that much higher. A board calibrates
        the cage floor; the lab gives the bedding's depth (``calibrate --bedding``).
    camera:
        The :class:`~.camera.Camera` of ``intrinsics`` in the arena frame: the pose
        raised by ``bedding`` (derived, not a constructor argument).
    """

    intrinsics: CameraCalibration
    rotation: FloatArray
    translation: FloatArray
    reprojection_error: float
    method: str
    arena_size: tuple[float, float] | None = None
    bedding: float = 0.0
    camera: Camera = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.intrinsics, CameraCalibration) \
                or not self.intrinsics.is_calibrated:
            raise CalibrationError("arena calibration: intrinsics missing or uncalibrated")
        try:  # the pose is the camera's (float64, read-only)
            floor = _camera(self.intrinsics, self.rotation, self.translation)
        except InputError as exc:
            raise CalibrationError(f"arena calibration: {exc}") from None
        bedding = float(self.bedding)
        problems = _bedding_problems(bedding, floor)
        if problems:
            raise CalibrationError("arena calibration: " + "; ".join(problems))
        # x_cam = R x_floor + t and x_floor = x_arena + bedding * z: the arena frame's t
        camera = floor if bedding == 0.0 else _camera(
            self.intrinsics, floor.R, floor.t + bedding * floor.R[:, 2])
        object.__setattr__(self, "camera", camera)
        object.__setattr__(self, "rotation", floor.R)
        object.__setattr__(self, "translation", floor.t)
        object.__setattr__(self, "bedding", bedding)
        object.__setattr__(self, "reprojection_error", float(self.reprojection_error))
        if self.method not in METHODS:
            raise CalibrationError(f"arena calibration: method {self.method!r} not one of "
                                   f"{', '.join(METHODS)}")
        if self.arena_size is not None:
            w, h = (float(v) for v in self.arena_size)
            object.__setattr__(self, "arena_size", (w, h))

    @property
    def camera_position(self) -> FloatArray:
        """(3,) camera centre in the arena frame, metres."""
        return self.camera.position

    @property
    def camera_orientation(self) -> FloatArray:
        """(4,) unit quaternion ``(x, y, z, w)`` of the camera optical frame in the arena
        frame: it rotates camera-frame vectors into arena-frame ones (``rotation.T``).

        With :attr:`camera_position` it is the transform a ROS ``TransformStamped`` with
        parent ``arena`` and child the camera frame carries.
        """
        from scipy.spatial.transform import Rotation

        q = np.asarray(Rotation.from_matrix(self.rotation.T).as_quat(), dtype=np.float64)
        return q if q[3] >= 0 else -q

    @property
    def floor_distance(self) -> float:
        """The camera's distance from the calibrated floor's plane (under any bedding),
        metres."""
        return abs(float((-self.rotation.T @ self.translation)[2]))

    def describe(self) -> str:
        """E.g. ``corners, camera 0.450 m over the surface, bedding 20 mm``: for logs."""
        return (f"{self.method}, camera {abs(float(self.camera_position[2])):.3f} m over the "
                f"surface, bedding {self.bedding * 1000:.0f} mm")

    @property
    def view(self) -> str:
        """``top`` when the camera is above the floor (z > 0), else ``bottom``."""
        return view_of(float(self.camera_position[2]))

    @property
    def width(self) -> int:
        return self.intrinsics.width

    @property
    def height(self) -> int:
        return self.intrinsics.height

    def project(self, points: ArrayLike) -> tuple[FloatArray, FloatArray]:
        """:meth:`.Camera.project` of :attr:`camera`."""
        return self.camera.project(points)

    def rays(self, pixels: ArrayLike) -> FloatArray:
        """:meth:`.Camera.rays` of :attr:`camera`."""
        return self.camera.rays(pixels)

    def ray_grid(self) -> NDArray[np.float32]:
        """:meth:`.Camera.ray_grid` of :attr:`camera`."""
        return self.camera.ray_grid()

    def backproject(self, pixels: ArrayLike, depth: ArrayLike) -> FloatArray:
        """:meth:`.Camera.backproject` of :attr:`camera`."""
        return self.camera.backproject(pixels, depth)

    def points_at_height(self, pixels: ArrayLike, height: ArrayLike = 0.0) -> FloatArray:
        """:meth:`.Camera.points_at_height` of :attr:`camera`."""
        return self.camera.points_at_height(pixels, height)

    def depth_at_height(self, rays_xy: NDArray[Any], height: ArrayLike) -> NDArray[Any]:
        """:meth:`.Camera.depth_at_height` of :attr:`camera`."""
        return self.camera.depth_at_height(rays_xy, height)

    def scaled(self, width: int, height: int) -> ArenaCalibration:
        """The same camera delivering frames resized to ``width`` x ``height``.

        The pose is unchanged; the intrinsics go through ``calibration.scaled`` and the
        reprojection error scales by the RMS of the two scale factors.
        """
        intr = scaled_intrinsics(self.intrinsics, width, height)
        if intr is self.intrinsics:
            return self
        sx, sy = width / self.width, height / self.height
        return ArenaCalibration(intr, self.rotation, self.translation,
                                self.reprojection_error * math.sqrt((sx * sx + sy * sy) / 2),
                                self.method, self.arena_size, self.bedding)


#: Largest angle between the floor and a board laid on the bedding, degrees, for
#: :func:`bedding_from_board`: more, and the bedding is not one level surface.
MAX_BEDDING_TILT_DEG: Final = 8.0


def bedding_from_board(floor: ArenaCalibration, board: ArenaCalibration) -> float:
    """The bedding's depth, metres: how much nearer the camera a board laid on the
    bedding (``board``, calibrated from its image with the same camera) lies than the
    floor ``floor`` was calibrated on, along the floor's normal.

    Raises
    ------
    CalibrationError
        Listing every problem: the two are of different cameras (intrinsics or view),
        the planes are tilted more than :data:`MAX_BEDDING_TILT_DEG` against each other,
        or the depth is negative or deeper than :data:`MAX_BEDDING_M`.
    """
    problems = []
    if floor.intrinsics != board.intrinsics:
        problems.append("the board was calibrated with other intrinsics than the floor")
    if floor.view != board.view:
        problems.append(f"the board's view ({board.view}) is not the floor's ({floor.view})")
    # the floor plane's normal and the board plane's, in the camera frame
    cos = float(abs(floor.rotation[:, 2] @ board.rotation[:, 2]))
    tilt = math.degrees(math.acos(min(1.0, cos)))
    if tilt > MAX_BEDDING_TILT_DEG:
        problems.append(f"the board lies {tilt:.1f} degrees off the floor's plane (at most "
                        f"{MAX_BEDDING_TILT_DEG:g}): lay it flat on levelled bedding")
    # the floor's calibrated pose (not raised by any bedding it gives) against the board's
    depth = floor.floor_distance - board.floor_distance
    if not problems and not 0.0 <= depth <= MAX_BEDDING_M:
        problems.append(f"the board lies {depth * 1000:.1f} mm over the floor: bedding must "
                        f"be >= 0 and <= {MAX_BEDDING_M * 1000:g} mm (the same camera, not "
                        "moved between the two images?)")
    if problems:
        raise CalibrationError("bedding from a board: " + "; ".join(problems))
    return depth


def floor_below(arena: ArenaCalibration, bedding: float) -> ArenaCalibration:
    """The calibration of ``arena``'s camera made on a floor ``bedding`` metres under the
    surface the mouse stands on (``arena``'s z = 0), giving that bedding: the floor's
    pose, the same :attr:`~ArenaCalibration.camera`. What a lab has that calibrated the
    cage floor with a board and then filled in bedding (``calibrate --bedding``)."""
    camera = arena.camera
    return replace(arena, translation=camera.t - bedding * camera.R[:, 2], bedding=bedding)


def _camera(intr: CameraCalibration, rotation: FloatArray, translation: FloatArray) -> Camera:
    """The :class:`~.camera.Camera` of calibrated intrinsics ``intr`` at a pose."""
    return Camera(K=intr.k, dist=intr.d, R=rotation, t=translation, width=intr.width,
                  height=intr.height, model=intr.distortion_model)


# ---------------------------------------------------------------------- validation


def _bedding_problems(bedding: float, floor: Camera) -> list[str]:
    """A bedding depth that is no number, negative, deeper than :data:`MAX_BEDDING_M`,
    or under a bottom-view camera (which sees the mouse through the floor)."""
    if not (math.isfinite(bedding) and 0.0 <= bedding <= MAX_BEDDING_M):
        return [f"bedding {bedding!r} m: must be >= 0 and <= {MAX_BEDDING_M:g} m"]
    height = float(floor.position[2])
    if bedding > 0.0 and height < 0:
        return [f"bedding {bedding:g} m under a bottom-view camera: the mouse stands on "
                "the clear floor it films through (bedding 0)"]
    if bedding > 0.0 and height - bedding < MIN_DISTANCE_M:
        return [f"bedding {bedding:g} m leaves the camera {(height - bedding) * 100:.1f} cm "
                f"over its top: closer than {MIN_DISTANCE_M * 100:.0f} cm"]
    return []


def _intrinsics_problems(intr: CameraCalibration) -> list[str]:
    if not intr.is_calibrated:
        return ["intrinsics are uncalibrated (camera_matrix all zeros)"]
    return []


def _size_problems(size: Any, what: str) -> list[str]:
    try:
        w, h = (float(v) for v in size)
    except (TypeError, ValueError):
        return [f"{what} must be two numbers (metres), got {size!r}"]
    if not (math.isfinite(w) and math.isfinite(h) and w > 0 and h > 0):
        return [f"{what} must be two positive finite metres, got {w:g} x {h:g}"]
    return []


def _pose_problems(rotation: FloatArray, translation: FloatArray) -> list[str]:
    """Camera implausibly near or far from the floor, or looking too far sideways."""
    problems = []
    cz = float((-rotation.T @ translation)[2])
    if abs(cz) < MIN_DISTANCE_M:
        problems.append(f"camera {abs(cz) * 100:.1f} cm from the floor plane: closer than "
                        f"{MIN_DISTANCE_M * 100:.0f} cm")
    elif abs(cz) > MAX_DISTANCE_M:
        problems.append(f"camera {abs(cz):.2f} m from the floor plane: farther than "
                        f"{MAX_DISTANCE_M:g} m")
    towards_floor = -math.copysign(1.0, cz) * float(rotation[2, 2]) if cz else 0.0
    tilt = math.degrees(math.acos(min(1.0, max(-1.0, towards_floor))))
    if tilt > MAX_TILT_DEG:
        problems.append(f"optical axis tilted {tilt:.1f} degrees from the floor normal "
                        f"(limit {MAX_TILT_DEG:g})")
    return problems


def _corner_problems(corners: ArrayLike, intr: CameraCalibration) -> list[str]:
    try:
        p = np.asarray(corners, dtype=np.float64)
    except (TypeError, ValueError):
        return [f"corners must be 4 pixel points x, y, got {corners!r}"]
    if p.shape != (4, 2) or not np.all(np.isfinite(p)):
        return [f"corners must be 4 finite pixel points x, y, got shape {p.shape}"
                + ("" if p.shape != (4, 2) else " with non-finite values")]
    problems = []
    w, h = intr.width, intr.height
    for i, (u, v) in enumerate(p):
        if not (-0.5 <= u <= w - 0.5 and -0.5 <= v <= h - 0.5):
            problems.append(f"corner {i + 1} ({u:g}, {v:g}) lies outside the {w}x{h} image")
    same = [(i, j) for i in range(4) for j in range(i + 1, 4)
            if np.linalg.norm(p[i] - p[j]) < 1.0]
    for i, j in same:
        problems.append(f"corners {i + 1} and {j + 1} coincide")
    if same:
        return problems
    sines = []
    for i in range(4):
        a, b = p[i] - p[i - 1], p[(i + 1) % 4] - p[i]
        sines.append(float(a[0] * b[1] - a[1] * b[0]) / float(np.linalg.norm(a) *
                                                              np.linalg.norm(b)))
    flat = [i for i, s in enumerate(sines) if abs(s) < math.sin(math.radians(2.0))]
    if flat:
        problems.append("the corners are (nearly) collinear: corner(s) "
                        f"{', '.join(str(i + 1) for i in flat)} lie on the line of their "
                        "neighbours")
    elif not (all(s > 0 for s in sines) or all(s < 0 for s in sines)):
        problems.append("the corners do not go round a convex quadrilateral (self-"
                        "intersecting or non-convex): give them in order round the arena")
    return problems


def _solve(intr: CameraCalibration, obj: FloatArray, img: FloatArray
           ) -> tuple[FloatArray, FloatArray, float]:
    """Pose of the planar (z = 0) points ``obj`` (N, 3) seen at pixels ``img`` (N, 2).

    IPPE's two solutions and SQPnP's (IPPE alone misses exact half turns about the
    optical axis) on the undistorted rays, each refined by Levenberg-Marquardt; the one
    with the smallest RMS pixel reprojection error wins. Returns rotation, translation
    and that error.
    """
    lens = _camera(intr, np.eye(3), np.zeros(3))  # rays in the camera frame
    xy = lens.ray_xy(img)
    obj = np.ascontiguousarray(obj, dtype=np.float64)
    eye, none = np.eye(3), np.zeros(5)
    candidates = []
    for flags in (cv2.SOLVEPNP_IPPE, cv2.SOLVEPNP_SQPNP):
        try:
            n, rvecs, tvecs, _ = cv2.solvePnPGeneric(obj, xy, eye, none, flags=flags)
        except cv2.error:
            continue
        candidates += list(zip(rvecs[:n], tvecs[:n], strict=True))
    best: tuple[FloatArray, FloatArray, float] | None = None
    for rvec, tvec in candidates:
        rvec, tvec = cv2.solvePnPRefineLM(obj, xy, eye, none, rvec, tvec, criteria=(
            cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-14))
        rotation = np.asarray(cv2.Rodrigues(rvec)[0], dtype=np.float64)
        translation = np.asarray(tvec, dtype=np.float64).reshape(3)
        px, z = _camera(intr, rotation, translation).project(obj)
        rms = float(np.sqrt(np.mean(np.sum((px - img) ** 2, axis=1))))
        if np.all(z > 0) and math.isfinite(rms) and (best is None or rms < best[2]):
            best = rotation, translation, rms
    if best is None:
        raise CalibrationError("arena calibration: no camera pose puts the points in front "
                               "of the camera")
    return best


def _finish(what: str, intr: CameraCalibration, rotation: FloatArray, translation: FloatArray,
            rms: float, max_error: float, method: str,
            arena_size: tuple[float, float] | None) -> ArenaCalibration:
    problems = []
    if not rms <= max_error:
        problems.append(f"RMS reprojection error {rms:.3g} px exceeds the limit "
                        f"{max_error:g} px")
    problems += _pose_problems(rotation, translation)
    if problems:
        raise CalibrationError(f"{what}: " + "; ".join(problems))
    return ArenaCalibration(intr, rotation, translation, rms, method, arena_size)


# --------------------------------------------------------------------- constructors


def arena_from_camera(camera: Camera, *, arena_size: tuple[float, float] | None = None,
                      camera_name: str = "") -> ArenaCalibration:
    """The arena calibration of a known camera (method ``camera``, error 0), e.g. a
    synthetic one; its :attr:`~ArenaCalibration.camera` equals ``camera`` (roi aside).

    ``camera``'s K, distortion, R, t and size are taken as they are (no plausibility
    checks: such cameras are known exactly).
    """
    if arena_size is not None and (problems := _size_problems(arena_size, "arena size")):
        raise CalibrationError("arena calibration from a camera: " + "; ".join(problems))
    k = np.asarray(camera.K, dtype=np.float64)
    intr = CameraCalibration(camera.width, camera.height, camera_name, k, camera.model,
                             camera.dist, np.eye(3), np.hstack([k, np.zeros((3, 1))]))
    return ArenaCalibration(intr, camera.R, camera.t, 0.0, "camera",
                            None if arena_size is None else
                            (float(arena_size[0]), float(arena_size[1])))


def arena_from_corners(intrinsics: CameraCalibration, corners: ArrayLike,
                       size: tuple[float, float], *,
                       max_error: float = DEFAULT_MAX_ERROR) -> ArenaCalibration:
    """The pose from the pixels of the arena floor's four corners and its size.

    Parameters
    ----------
    corners:
        (4, 2) distorted pixels of the floor's corners in this order: the corner at arena
        (-w/2, -h/2), then (+w/2, -h/2), (+w/2, +h/2), (-w/2, +h/2). The arena frame
        has its origin at the floor's centre, x along the first edge (corner 1 to 2),
        y along the second; z = x cross y: towards the camera when the corners go
        round anticlockwise as seen from it (a top view), away from it otherwise.
    size:
        (w, h) floor extent along arena x and y, metres.
    max_error:
        Largest RMS reprojection error accepted, pixels.

    Raises
    ------
    CalibrationError
        Listing every problem: uncalibrated intrinsics, corners not 4 finite points,
        outside the image, coinciding, collinear or not round a convex quadrilateral;
        a size that is not two positive metres; then an error over ``max_error``, a
        camera closer than 5 cm or farther than 10 m from the floor or tilted more than
        60 degrees.
    """
    what = "arena calibration from 4 corners"
    problems = _intrinsics_problems(intrinsics) + _corner_problems(corners, intrinsics) \
        + _size_problems(size, "arena size")
    if problems:
        raise CalibrationError(f"{what}: " + "; ".join(problems))
    w, h = float(size[0]), float(size[1])
    obj = np.array([[-w / 2, -h / 2, 0.0], [w / 2, -h / 2, 0.0], [w / 2, h / 2, 0.0],
                    [-w / 2, h / 2, 0.0]])
    img = np.asarray(corners, dtype=np.float64)
    rotation, translation, rms = _solve(intrinsics, obj, img)
    return _finish(what, intrinsics, rotation, translation, rms, max_error, "corners", (w, h))


def _grey(image: NDArray[Any]) -> NDArray[np.uint8]:
    img = image
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2GRAY if img.shape[2] == 4
                           else cv2.COLOR_BGR2GRAY) if img.shape[2] in (3, 4) else img[..., 0]
    if img.dtype != np.uint8:
        img = cv2.normalize(img.astype(np.float32), None, 0, 255, cv2.NORM_MINMAX)
    return np.ascontiguousarray(img, dtype=np.uint8)


def _find_checkerboard(grey: NDArray[np.uint8], pattern: tuple[int, int], square: float
                       ) -> tuple[FloatArray, FloatArray] | None:
    """Object points (board-centred, z = 0) and refined pixels, or None if not found."""
    flags = cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE
    found, pts = cv2.findChessboardCorners(grey, pattern, flags=flags)
    if not found:
        return None
    pts = pts.astype(np.float32).reshape(-1, 1, 2)
    grid = pts.reshape(pattern[1], pattern[0], 2)
    spacing = float(min(np.linalg.norm(np.diff(grid, axis=1), axis=2).min(),
                        np.linalg.norm(np.diff(grid, axis=0), axis=2).min()))
    win = int(min(11, max(2, spacing / 3)))
    pts = cv2.cornerSubPix(grey, pts, (win, win), (-1, -1),
                           (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-4))
    cols, rows = pattern
    i, j = np.meshgrid(np.arange(cols), np.arange(rows))  # corners come row by row
    obj = np.stack([(i.ravel() - (cols - 1) / 2) * square, (j.ravel() - (rows - 1) / 2) * square,
                    np.zeros(cols * rows)], axis=1)
    return obj, pts.reshape(-1, 2).astype(np.float64)


def _find_charuco(grey: NDArray[np.uint8], pattern: tuple[int, int], square: float,
                  marker: float, dictionary: str) -> tuple[FloatArray, FloatArray] | None:
    aruco = cv2.aruco
    board = aruco.CharucoBoard(pattern, square, marker,
                               aruco.getPredefinedDictionary(getattr(aruco, dictionary)))
    corners, ids, _, _ = aruco.CharucoDetector(board).detectBoard(grey)
    if corners is None or ids is None or len(ids) < 6 \
            or board.checkCharucoCornersCollinear(ids):
        return None
    all_obj = np.asarray(board.getChessboardCorners(), dtype=np.float64)
    obj = all_obj[ids.ravel()] - all_obj.mean(axis=0)
    obj[:, 2] = 0.0
    return obj, np.asarray(corners, dtype=np.float64).reshape(-1, 2)


def arena_from_checkerboard(intrinsics: CameraCalibration, image: NDArray[Any], *,
                            pattern: tuple[int, int], square: float, charuco: bool = False,
                            dictionary: str = "DICT_4X4_50", marker: float | None = None,
                            view: str = "top",
                            max_error: float = DEFAULT_MAX_ERROR) -> ArenaCalibration:
    """The pose from an image of a checkerboard or ChArUco board lying flat on the floor.

    Parameters
    ----------
    image:
        (H, W) or (H, W, 3|4) BGR image at the intrinsics' size.
    pattern:
        Checkerboard: inner corners (cols, rows); ChArUco: squares (cols, rows).
    square:
        Side of a square, metres. ``marker`` is the ChArUco marker side (default
        0.75 ``square``); ``dictionary`` a ``cv2.aruco`` predefined dictionary name.
    view:
        ``top``: the camera is above the floor (z, the floor normal, points at it);
        ``bottom``: it looks up through a clear floor (z points away from it).

    The arena frame has its origin at the board's centre, x along the board's rows
    (first to last corner of a detected row), z as ``view`` says, y = z cross x.
    A checkerboard's x, y are known only up to the board's symmetry (a half turn for
    most patterns); a ChArUco board's are unique. Corners are refined to subpixels.

    Raises
    ------
    CalibrationError
        Listing every problem: uncalibrated intrinsics, an image of another size than
        the intrinsics', a bad pattern, square, marker, dictionary or view, the board
        not found; then an error over ``max_error`` or an implausible pose.
    """
    method = "charuco" if charuco else "checkerboard"
    what = f"arena calibration from a {method} image"
    problems = _intrinsics_problems(intrinsics)
    img = np.asarray(image)
    if img.ndim not in (2, 3) or img.size == 0:
        problems.append(f"image must be an (H, W) or (H, W, C) array, got shape {img.shape}")
    elif (img.shape[1], img.shape[0]) != (intrinsics.width, intrinsics.height):
        problems.append(f"image is {img.shape[1]}x{img.shape[0]} but the intrinsics are "
                        f"for {intrinsics.width}x{intrinsics.height}")
    least = 3 if charuco else 2
    if not (len(pattern) == 2 and all(isinstance(n, int) and n >= least for n in pattern)):
        problems.append(f"pattern must be two integers >= {least}, got {pattern!r}")
    if not (math.isfinite(square) and square > 0):
        problems.append(f"square must be a positive length in metres, got {square!r}")
    marker_m = 0.75 * square if marker is None else float(marker)
    if charuco:
        if not (0 < marker_m < square):
            problems.append(f"marker {marker_m:g} m must be positive and smaller than the "
                            f"square {square:g} m")
        if not (dictionary.startswith("DICT_") and hasattr(cv2.aruco, dictionary)):
            problems.append(f"unknown ArUco dictionary {dictionary!r}")
    if (problem := view_problem(view)) is not None:
        problems.append(problem)
    if problems:
        raise CalibrationError(f"{what}: " + "; ".join(problems))
    grey = _grey(img)
    pattern = (int(pattern[0]), int(pattern[1]))
    found = _find_charuco(grey, pattern, square, marker_m, dictionary) if charuco \
        else _find_checkerboard(grey, pattern, square)
    if found is None:
        kind = f"ChArUco board of {pattern[0]}x{pattern[1]} squares ({dictionary})" \
            if charuco else f"checkerboard of {pattern[0]}x{pattern[1]} inner corners"
        raise CalibrationError(f"{what}: {kind} not found in the image")
    obj, pixels = found
    rotation, translation, rms = _solve(intrinsics, obj, pixels)
    above = float((-rotation.T @ translation)[2]) > 0
    if above != (view == "top"):  # half turn about x: z and y flip, x stays
        rotation = rotation @ np.diag([1.0, -1.0, -1.0])
    return _finish(what, intrinsics, rotation, translation, rms, max_error, method, None)


# ------------------------------------------------------------------------------ files


def parse_arena(data: Mapping[str, Any], *, source: str = "<arena>") -> ArenaCalibration:
    """Validate an already-loaded arena YAML mapping (see :func:`load_arena`).

    Raises
    ------
    CalibrationError
        Naming ``source`` and listing every problem found.
    """
    head = f"arena calibration {source}"
    if not isinstance(data, Mapping):
        raise CalibrationError(f"{head}: top level is not a mapping")
    problems: list[str] = []
    fmt, version = data.get("format"), data.get("version")
    if fmt != FORMAT:
        problems.append("missing key 'format'" if fmt is None
                        else f"format is {fmt!r}, expected {FORMAT!r}")
    if version != VERSION:
        problems.append("missing key 'version'" if version is None
                        else f"version {version!r} is not supported (expected {VERSION})")
    intr = None
    block = data.get("camera")
    if not isinstance(block, Mapping):
        problems.append("missing key 'camera'" if block is None else "camera: not a mapping")
    else:
        try:
            intr = parse_calibration(block, source="camera")
        except CalibrationError as exc:
            problems.append(str(exc).removeprefix("calibration "))
        if intr is not None and not intr.is_calibrated:
            problems.append("camera: uncalibrated (camera_matrix all zeros)")
    rotation = read_matrix(data, "rotation", 3, 3, problems)
    if rotation is not None:
        off = float(np.abs(rotation @ rotation.T - np.eye(3)).max())
        det = float(np.linalg.det(rotation))
        if off > ROTATION_TOL or det < 0:
            problems.append(f"rotation is not a rotation (max |R R^T - I| = {off:.3g}, "
                            f"det = {det:.3g})")
            rotation = None
    value = data.get("translation")
    numbers = [yaml_number(v) for v in value] if isinstance(value, list) else []
    translation = None
    if len(numbers) == 3 and all(n is not None for n in numbers):
        translation = np.array(numbers, dtype=np.float64)
    else:
        problems.append("missing key 'translation'" if value is None else
                        f"translation must be a list of 3 finite numbers, got {value!r}")
    error = yaml_number(data.get("reprojection_error_px"))
    if error is None or error < 0:
        problems.append("reprojection_error_px must be a number >= 0, got "
                        f"{data.get('reprojection_error_px')!r}")
    method = data.get("method")
    if method not in METHODS:
        problems.append(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    size = data.get("arena_size_m")
    if size is not None:
        if not isinstance(size, list) or len(size) != 2 or any(
                yaml_number(v) is None for v in size):
            problems.append(f"arena_size_m must be null or [w, h] in metres, got {size!r}")
        else:
            problems += _size_problems(size, "arena_size_m")
    bedding = yaml_number(data.get("bedding_m", 0.0))
    if bedding is None:
        problems.append(f"bedding_m must be a number of metres, got {data.get('bedding_m')!r}")
    if rotation is not None and translation is not None:
        problems += _pose_problems(rotation, translation)
    if not problems and bedding is not None:  # the pose is sound: the bedding under it
        assert intr is not None and rotation is not None and translation is not None
        problems += [f"bedding_m: {p.removeprefix('bedding ')}" for p in
                     _bedding_problems(bedding, _camera(intr, rotation, translation))]
    if problems:
        raise CalibrationError(f"{head}: " + "; ".join(problems))
    assert intr is not None and rotation is not None and translation is not None
    assert error is not None and isinstance(method, str) and bedding is not None
    return ArenaCalibration(intr, rotation, translation, error, method,
                            None if size is None else (float(size[0]), float(size[1])),
                            bedding)


def load_arena(path: str | os.PathLike[str]) -> ArenaCalibration:
    """Load an arena calibration YAML file (layout: this module's docstring).

    Raises
    ------
    CalibrationError
        Naming the file: it does not exist, is not YAML, or every problem found.
    """
    file = Path(path)
    if not file.is_file():
        raise CalibrationError(f"arena calibration file {str(file)!r} does not exist")
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise CalibrationError(f"arena calibration file {str(file)!r} cannot be read: {exc}"
                               ) from exc
    return parse_arena(data, source=repr(str(file)))


def arena_to_yaml(arena: ArenaCalibration, *, comment: str | None = None) -> str:
    """The arena calibration as YAML text (round-trips exactly through :func:`parse_arena`)."""
    def floats(values: ArrayLike) -> str:
        return "[" + ", ".join(yaml_float(v) for v in np.ravel(values)) + "]"

    lines = [f"# {line}".rstrip() for line in (comment or "").splitlines()]
    size = "null" if arena.arena_size is None else floats(arena.arena_size)
    lines += [f"format: {FORMAT}", f"version: {VERSION}", f"method: {arena.method}",
              f"reprojection_error_px: {yaml_float(arena.reprojection_error)}",
              f"arena_size_m: {size}",
              "# the bedding's depth over the calibrated floor: the mouse stands on its top",
              f"bedding_m: {yaml_float(arena.bedding)}",
              "# camera_height_m (over the calibrated floor) and view are for people reading",
              "# this file: not loaded",
              f"camera_height_m: {arena.floor_distance:.4f}",
              f"view: {arena.view}",
              "rotation:", "  rows: 3", "  cols: 3", f"  data: {floats(arena.rotation)}",
              f"translation: {floats(arena.translation)}", "camera:"]
    lines += [f"  {line}" for line in calibration_to_yaml(arena.intrinsics).splitlines()]
    return "\n".join(lines) + "\n"


def save_arena(path: str | os.PathLike[str], arena: ArenaCalibration, *,
               comment: str | None = None) -> None:
    """Write ``arena`` to ``path`` (``comment`` lines go first, as YAML comments)."""
    try:
        Path(path).write_text(arena_to_yaml(arena, comment=comment), encoding="utf-8")
    except OSError as exc:
        raise CalibrationError(f"arena calibration file {str(path)!r} cannot be written: "
                               f"{exc}") from exc
