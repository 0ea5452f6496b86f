"""Camera intrinsics in the standard ROS calibration YAML format.

Reads and writes the files of ``camera_calibration`` / ``camera_info_manager``
(``image_width``, ``camera_matrix``, ``distortion_coefficients``, ...), validates them
reporting every problem at once, rescales them for resized frames and turns them into
the fields of a ``sensor_msgs/CameraInfo`` following REP-104. No ROS import here.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from mouse_lifter_ros.core.camera import DISTORTION_MODELS
from mouse_lifter_ros.core.errors import CalibrationError


@dataclass(frozen=True)
class CameraCalibration:
    """Intrinsics of one camera at one image size (arrays are float64 and read-only).

    All lengths are in pixels. ``k`` (3, 3) maps a point in the camera's optical frame
    (metres; REP-103 optical convention: z forward, x right, y down) to homogeneous
    pixel coordinates, ``[u, v, 1] ~ k @ [x, y, z]``, with ``(0, 0)`` the centre of the
    top-left pixel. ``d`` (N,) holds the ``distortion_model`` coefficients, ``r`` (3, 3)
    the rectification rotation and ``p`` (3, 4) the projection of the rectified image.
    A ``k`` of all zeros is the ROS convention for an uncalibrated camera.
    """

    width: int
    height: int
    camera_name: str
    k: np.ndarray
    distortion_model: str
    d: np.ndarray
    r: np.ndarray
    p: np.ndarray

    def __post_init__(self) -> None:
        for name, shape in (("k", (3, 3)), ("d", None), ("r", (3, 3)), ("p", (3, 4))):
            arr = np.array(getattr(self, name), dtype=np.float64).reshape(shape or (-1,))
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CameraCalibration):
            return NotImplemented
        return (self.width, self.height, self.camera_name, self.distortion_model) == (
            other.width, other.height, other.camera_name, other.distortion_model
        ) and all(np.array_equal(getattr(self, n), getattr(other, n)) for n in "kdrp")

    @property
    def is_calibrated(self) -> bool:
        """False for the ROS "uncalibrated" convention (``k[0, 0] == 0``)."""
        return bool(self.k[0, 0] != 0.0)


@dataclass(frozen=True)
class CameraInfoFields:
    """The fields of a ``sensor_msgs/CameraInfo``, as plain Python (row-major lists)."""

    height: int
    width: int
    distortion_model: str
    d: list[float]
    k: list[float]
    r: list[float]
    p: list[float]
    binning_x: int
    binning_y: int
    roi_x_offset: int
    roi_y_offset: int
    roi_height: int
    roi_width: int
    roi_do_rectify: bool


def yaml_number(value: object) -> float | None:
    """A finite float from a YAML number (or numeric string, e.g. ``1e-05``), else None."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, str)):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def read_matrix(data: Mapping[str, Any], key: str, rows: int, cols: int | None,
            problems: list[str]) -> np.ndarray | None:
    """Read ``{rows, cols, data}`` under ``key``; ``cols=None`` accepts any column count."""
    block = data.get(key)
    if not isinstance(block, Mapping):
        problems.append(f"missing key {key!r}" if block is None else f"{key}: not a mapping")
        return None
    r, c, values = block.get("rows"), block.get("cols"), block.get("data")
    if not isinstance(values, list):
        problems.append(f"{key}: 'data' missing or not a list")
        return None
    if r != rows or (cols is not None and c != cols):
        problems.append(f"{key}: rows/cols are {r}x{c}, expected {rows}x{cols or 'N'}")
        return None
    if not isinstance(c, int) or len(values) != rows * c:
        problems.append(f"{key}: rows x cols = {rows}x{c} but data has {len(values)} values")
        return None
    numbers = [yaml_number(v) for v in values]
    bad = [repr(v) for v, n in zip(values, numbers, strict=True) if n is None]
    if bad:
        problems.append(f"{key}: non-numeric or non-finite values {', '.join(bad)}")
        return None
    return np.array(numbers, dtype=np.float64).reshape(rows, c)


def parse_calibration(data: Mapping[str, Any], *, source: str = "<calibration>"
                      ) -> CameraCalibration:
    """Validate already-loaded calibration YAML (see :func:`load_calibration`).

    Raises
    ------
    CalibrationError
        Naming ``source`` and listing every problem found.
    """
    if not isinstance(data, Mapping):
        raise CalibrationError(f"calibration {source}: top level is not a mapping")
    problems: list[str] = []
    size: list[int | None] = []  # width, height; None when invalid
    for key in ("image_width", "image_height"):
        value = data.get(key)
        ok = isinstance(value, int) and not isinstance(value, bool) and value > 0
        size.append(value if ok else None)
        if value is None:
            problems.append(f"missing key {key!r}")
        elif not ok:
            problems.append(f"{key} must be a positive integer, got {value!r}")
    model = data.get("distortion_model")
    n_coeffs = DISTORTION_MODELS.get(model) if isinstance(model, str) else None
    if model is None:
        problems.append("missing key 'distortion_model'")
    elif n_coeffs is None:
        problems.append(f"unknown distortion_model {model!r} "
                        f"(allowed: {', '.join(DISTORTION_MODELS)})")
    k = read_matrix(data, "camera_matrix", 3, 3, problems)
    d = read_matrix(data, "distortion_coefficients", 1, None, problems)
    if d is not None and n_coeffs is not None and d.size != n_coeffs:
        problems.append(f"distortion_model {model!r} needs {n_coeffs} coefficients, "
                        f"got {d.size}")
    r = p = None
    if "rectification_matrix" in data:
        r = read_matrix(data, "rectification_matrix", 3, 3, problems)
    if "projection_matrix" in data:
        p = read_matrix(data, "projection_matrix", 3, 4, problems)
    if k is not None and np.any(k):  # all zeros: uncalibrated, accepted as is
        fx, fy, cx, cy = k[0, 0], k[1, 1], k[0, 2], k[1, 2]
        if fx <= 0 or fy <= 0:
            problems.append(f"focal lengths must be positive, got fx={fx}, fy={fy}")
        w, h = (math.inf if n is None else n for n in size)  # check what can be checked
        if not (0 <= cx <= w and 0 <= cy <= h):
            problems.append(f"principal point ({cx}, {cy}) lies outside the "
                            f"{size[0]}x{size[1]} image")
    if problems:
        raise CalibrationError(f"calibration {source}: " + "; ".join(problems))
    assert k is not None and d is not None and isinstance(model, str)
    assert size[0] is not None and size[1] is not None
    return CameraCalibration(
        width=size[0], height=size[1], camera_name=str(data.get("camera_name", "")), k=k,
        distortion_model=model, d=d.ravel(), r=np.eye(3) if r is None else r,
        p=np.hstack([k, np.zeros((3, 1))]) if p is None else p)


def load_calibration(path: str | os.PathLike[str]) -> CameraCalibration:
    """Load a ``camera_calibration`` YAML file.

    A missing ``rectification_matrix`` means identity, a missing ``projection_matrix``
    ``[K | 0]``; ``camera_name`` defaults to ``""``.

    Raises
    ------
    CalibrationError
        Naming the file: it does not exist, is not YAML, or lists every problem found
        (missing keys, rows/cols vs data length, non-numeric values, fx/fy <= 0,
        principal point outside the image, non-positive size, unknown distortion model).
    """
    file = Path(path)
    if not file.is_file():
        raise CalibrationError(f"calibration file {str(file)!r} does not exist")
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise CalibrationError(f"calibration file {str(file)!r} cannot be read: {exc}") from exc
    return parse_calibration(data, source=repr(str(file)))


def yaml_float(x: float) -> str:
    """A float YAML 1.1 (PyYAML) reads back exactly: needs a '.' and a signed exponent."""
    text = repr(float(x))
    mantissa, _, exponent = text.partition("e")
    if "." not in mantissa:
        mantissa += ".0"
    return mantissa + ("e" + exponent if exponent else "")


def calibration_to_yaml(calib: CameraCalibration) -> str:
    """The calibration as ``camera_calibration`` YAML text (round-trips exactly)."""
    def block(key: str, arr: np.ndarray) -> str:
        rows, cols = arr.shape if arr.ndim == 2 else (1, arr.size)
        data = ", ".join(yaml_float(v) for v in arr.ravel())
        return f"{key}:\n  rows: {rows}\n  cols: {cols}\n  data: [{data}]\n"

    def scalar(key: str, value: str) -> str:
        return yaml.safe_dump({key: value}, default_flow_style=False)

    return (f"image_width: {calib.width}\nimage_height: {calib.height}\n"
            + scalar("camera_name", calib.camera_name) + block("camera_matrix", calib.k)
            + scalar("distortion_model", calib.distortion_model)
            + block("distortion_coefficients", calib.d)
            + block("rectification_matrix", calib.r) + block("projection_matrix", calib.p))


def save_calibration(calib: CameraCalibration, path: str | os.PathLike[str]) -> None:
    """Write ``calib`` to ``path`` in the format :func:`load_calibration` reads."""
    try:
        Path(path).write_text(calibration_to_yaml(calib), encoding="utf-8")
    except OSError as exc:
        raise CalibrationError(f"calibration file {str(path)!r} cannot be written: {exc}"
                               ) from exc


def uncalibrated(width: int, height: int) -> CameraCalibration:
    """An uncalibrated camera of ``width`` x ``height`` pixels.

    Follows the ROS convention: K and P all zeros (``is_calibrated`` is False),
    R identity, plumb_bob with zero coefficients.
    """
    if width <= 0 or height <= 0:
        raise CalibrationError(f"image size must be positive, got {width}x{height}")
    return CameraCalibration(width, height, "", np.zeros((3, 3)), "plumb_bob",
                             np.zeros(5), np.eye(3), np.zeros((3, 4)))


def scaled(calib: CameraCalibration, width: int, height: int) -> CameraCalibration:
    """Intrinsics of the same camera delivering frames resized to ``width`` x ``height``.

    fx, cx (and P's first row) scale by ``sx = width / calib.width``, fy, cy (P's second
    row) by ``sy``; D and R are unchanged. Returns ``calib`` itself for the same size.
    """
    if width <= 0 or height <= 0:
        raise CalibrationError(f"image size must be positive, got {width}x{height}")
    if (width, height) == (calib.width, calib.height):
        return calib
    s = np.diag([width / calib.width, height / calib.height, 1.0])
    return CameraCalibration(width, height, calib.camera_name, s @ calib.k,
                             calib.distortion_model, calib.d, calib.r, s @ calib.p)


def camera_info_fields(calib: CameraCalibration, *, frame_size: tuple[int, int] | None = None,
                       crop: tuple[int, int, int, int] | None = None) -> CameraInfoFields:
    """``sensor_msgs/CameraInfo`` fields per REP-104.

    Parameters
    ----------
    calib:
        The calibration.
    frame_size:
        ``(width, height)`` of the full frames, in pixels, when resized from the
        calibrated size (intrinsics go through :func:`scaled`).
    crop:
        ``(x, y, w, h)`` in pixels of the full frame actually published: reported as the
        ROI (``do_rectify`` True) with K, D, R, P still those of the full frame.

    Raises
    ------
    CalibrationError
        When the crop is empty or does not lie inside the frame.
    """
    if frame_size is not None:
        calib = scaled(calib, *frame_size)
    x = y = w = h = 0
    if crop is not None:
        x, y, w, h = crop
        if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > calib.width or y + h > calib.height:
            raise CalibrationError(f"crop x={x}, y={y}, w={w}, h={h} does not lie inside "
                                   f"the {calib.width}x{calib.height} frame")
    return CameraInfoFields(
        height=calib.height, width=calib.width, distortion_model=calib.distortion_model,
        d=calib.d.tolist(), k=calib.k.ravel().tolist(), r=calib.r.ravel().tolist(),
        p=calib.p.ravel().tolist(), binning_x=0, binning_y=0, roi_x_offset=x,
        roi_y_offset=y, roi_height=h, roi_width=w, roi_do_rectify=crop is not None)
