"""Conversion between ``sensor_msgs/Image``-like messages and numpy arrays, without cv_bridge.

This module is ROS-free: it never imports rclpy. A message is duck-typed as any object with
the attributes ``height``, ``width``, ``encoding``, ``is_bigendian``, ``step`` and ``data``,
where ``data`` is a bytes-like object (``bytes``, ``bytearray``, ``memoryview``, the
``array.array('B')`` of an rclpy ``sensor_msgs.msg.Image``) or a uint8 numpy array (a
rosbags ``Image`` dataclass).

Decoding is zero-copy whenever the byte order matches the host: the returned array is a
read-only view that aliases ``msg.data`` (and keeps it alive).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from mouse_lifter_ros.core.errors import InputError

_HOST_IS_BIGENDIAN = sys.byteorder == "big"

_ENCODINGS: dict[str, tuple[np.dtype[Any], int]] = {
    "mono8": (np.dtype(np.uint8), 1),
    "mono16": (np.dtype(np.uint16), 1),
    "bgr8": (np.dtype(np.uint8), 3),
    "rgb8": (np.dtype(np.uint8), 3),
    "bgra8": (np.dtype(np.uint8), 4),
    "rgba8": (np.dtype(np.uint8), 4),
    "16UC1": (np.dtype(np.uint16), 1),
    "32FC1": (np.dtype(np.float32), 1),
}

SUPPORTED_ENCODINGS: tuple[str, ...] = tuple(_ENCODINGS)


class ImageLike(Protocol):
    """Structural type of a ``sensor_msgs/Image`` message (rclpy, rosbags or hand-made)."""

    @property
    def height(self) -> int: ...
    @property
    def width(self) -> int: ...
    @property
    def encoding(self) -> str: ...
    @property
    def is_bigendian(self) -> int: ...
    @property
    def step(self) -> int: ...
    @property
    def data(self) -> Any: ...


@dataclass(frozen=True)
class EncodingInfo:
    """Pixel layout of an encoding.

    Attributes
    ----------
    dtype : numpy.dtype
        Native-byte-order element type (uint8, uint16 or float32).
    channels : int
        Number of elements per pixel (1, 3 or 4).
    """

    dtype: np.dtype[Any]
    channels: int


@dataclass(frozen=True)
class ImageFields:
    """Field values of a ``sensor_msgs/Image`` built from an array.

    Attributes
    ----------
    height, width : int
        Image size in pixels (rows, columns).
    encoding : str
        One of `SUPPORTED_ENCODINGS`.
    is_bigendian : int
        1 if ``data`` is big-endian (follows the host), else 0.
    step : int
        Row length in bytes, ``width * bytes_per_pixel(encoding)`` (no padding).
    data : memoryview
        Read-only, flat ``'B'`` (uint8) view of ``step * height`` bytes. It aliases the input
        array when that was already C-contiguous, native-order and of the right dtype.
    """

    height: int
    width: int
    encoding: str
    is_bigendian: int
    step: int
    data: memoryview


def encoding_info(encoding: str) -> EncodingInfo:
    """Return the dtype and channel count of `encoding`; raise `InputError` if unsupported."""
    try:
        dtype, channels = _ENCODINGS[encoding]
    except (KeyError, TypeError):
        raise InputError(
            f"unsupported image encoding {encoding!r}; supported encodings: "
            f"{', '.join(SUPPORTED_ENCODINGS)}"
        ) from None
    return EncodingInfo(dtype=dtype, channels=channels)


def bytes_per_pixel(encoding: str) -> int:
    """Return the size of one pixel of `encoding` in bytes (e.g. 3 for bgr8, 4 for 32FC1)."""
    info = encoding_info(encoding)
    return info.dtype.itemsize * info.channels


def _as_uint8(data: Any) -> np.ndarray[Any, np.dtype[np.uint8]]:
    """Return a flat uint8 array over `data`'s buffer (no copy unless it is not contiguous)."""
    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8:
            raise InputError(f"image data must be a uint8 array, got dtype {data.dtype}")
        return data.reshape(-1)  # a view when contiguous
    try:
        return np.frombuffer(data, dtype=np.uint8)
    except (TypeError, ValueError, BufferError):  # a list of ints, a strided memoryview...
        pass
    try:
        return np.frombuffer(bytearray(data), dtype=np.uint8)  # one copy
    except (TypeError, ValueError) as exc:
        raise InputError(f"image data must be bytes-like or a sequence of ints in [0, 255], "
                         f"got {type(data).__name__}") from exc


def image_to_numpy(msg: ImageLike) -> np.ndarray[Any, np.dtype[Any]]:
    """Decode an image message into an array.

    Parameters
    ----------
    msg : ImageLike
        Message with ``height``, ``width`` (pixels), ``encoding``, ``is_bigendian``,
        ``step`` (bytes per row, padding allowed) and ``data`` (at least ``step * height``
        bytes; trailing bytes beyond that are ignored).

    Returns
    -------
    numpy.ndarray
        Shape ``(height, width)`` for 1-channel encodings, ``(height, width, channels)``
        otherwise; dtype uint8, uint16 or float32 (native byte order), in the encoding's own
        units and channel order (no scaling, no BGR/RGB swap). Always read-only. When the
        data's byte order matches the host (always for 8-bit encodings), it is a strided view
        that aliases ``msg.data``, so later writes to that buffer show through; call
        ``.copy()`` to own the pixels. The one case that copies is multi-byte data whose
        ``is_bigendian`` differs from the host's byte order.

    Raises
    ------
    InputError
        Unsupported encoding, or a size, ``step`` or data length that does not fit.
    """
    encoding = msg.encoding
    info = encoding_info(encoding)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    buf = _as_uint8(msg.data)
    itemsize = info.dtype.itemsize
    row_bytes = width * info.channels * itemsize
    shape = (height, width) if info.channels == 1 else (height, width, info.channels)
    where = (
        f"{encoding} image of width {width}, height {height}, step {step} "
        f"with {buf.size} data bytes"
    )
    if height < 0 or width < 0 or step < 0:
        raise InputError(f"{where}: negative size")
    if height == 0 or width == 0:
        if buf.size:
            raise InputError(f"{where}: an empty image must have empty data")
        empty = np.empty(shape, dtype=info.dtype)
        empty.setflags(write=False)
        return empty
    if step < row_bytes:
        raise InputError(f"{where}: step is smaller than width * {itemsize * info.channels}"
                         f" = {row_bytes} bytes per row")
    if step % itemsize:
        raise InputError(f"{where}: step is not a multiple of the {itemsize}-byte element size")
    if buf.size < step * height:
        raise InputError(f"{where}: need step * height = {step * height} data bytes")
    strides = (step, itemsize) if info.channels == 1 else (step, info.channels * itemsize,
                                                           itemsize)
    swapped = itemsize > 1 and bool(msg.is_bigendian) != _HOST_IS_BIGENDIAN
    dtype = info.dtype.newbyteorder("S") if swapped else info.dtype
    out: np.ndarray[Any, np.dtype[Any]] = np.ndarray(shape, dtype=dtype, buffer=buf,
                                                     strides=strides)
    if swapped:
        out = out.astype(info.dtype)  # the one copy: to native byte order
    out.setflags(write=False)
    return out


def numpy_to_image_fields(array: np.ndarray[Any, np.dtype[Any]], encoding: str) -> ImageFields:
    """Encode an array as the fields of an image message.

    Parameters
    ----------
    array : numpy.ndarray
        Shape ``(height, width)`` (or ``(height, width, 1)``) for 1-channel encodings,
        ``(height, width, channels)`` otherwise; dtype as the encoding needs (uint8, uint16
        or float32) in either byte order.
    encoding : str
        One of `SUPPORTED_ENCODINGS`.

    Returns
    -------
    ImageFields
        Unpadded fields in host byte order. ``data`` aliases `array` if it is already
        C-contiguous and native-order; otherwise it views one converted copy.

    Raises
    ------
    InputError
        Unsupported encoding, or an array whose dtype or shape does not fit it.
    """
    info = encoding_info(encoding)
    arr = np.asarray(array)
    if arr.dtype.newbyteorder("=") != info.dtype:
        raise InputError(f"encoding {encoding} needs dtype {info.dtype}, got an array of dtype "
                         f"{arr.dtype} and shape {arr.shape}")
    if info.channels == 1 and arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    ok = arr.ndim == 2 if info.channels == 1 else arr.ndim == 3 and arr.shape[2] == info.channels
    if not ok:
        need = "(H, W) or (H, W, 1)" if info.channels == 1 else f"(H, W, {info.channels})"
        raise InputError(f"encoding {encoding} needs an array of shape {need}, got shape "
                         f"{arr.shape}")
    arr = np.ascontiguousarray(arr, dtype=info.dtype)
    height, width = int(arr.shape[0]), int(arr.shape[1])
    return ImageFields(
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=int(_HOST_IS_BIGENDIAN),
        step=width * info.channels * info.dtype.itemsize,
        data=arr.reshape(-1).view(np.uint8).data.toreadonly(),
    )


#: Encodings the vision models take, and the view of the decoded array that gives grey
#: (H, W) or BGR (H, W, 3) uint8 pixels without a copy.
BGR_VIEWS: dict[str, Any] = {
    "mono8": np.s_[...],
    "bgr8": np.s_[...],
    "rgb8": np.s_[..., ::-1],
    "bgra8": np.s_[..., :3],
    "rgba8": np.s_[..., 2::-1],
}


def image_to_grey_or_bgr(msg: ImageLike) -> np.ndarray[Any, np.dtype[np.uint8]]:
    """Decode an 8-bit image message as the vision models take it: (H, W) grey or
    (H, W, 3) BGR uint8, a read-only view of ``msg.data`` (see :func:`image_to_numpy`).

    Raises
    ------
    InputError
        An encoding other than those of :data:`BGR_VIEWS`, or a malformed message.
    """
    view = BGR_VIEWS.get(msg.encoding)
    if view is None:
        raise InputError(f"image encoding {msg.encoding!r}: the vision models take "
                         f"{', '.join(BGR_VIEWS)}")
    out: np.ndarray[Any, np.dtype[np.uint8]] = image_to_numpy(msg)[view]
    return out
