"""Tests of mouse_lifter_ros.core.images (Image message <-> numpy without cv_bridge)."""

from __future__ import annotations

import array
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from mouse_lifter_ros.core.errors import InputError
from mouse_lifter_ros.core.images import (
    SUPPORTED_ENCODINGS,
    ImageFields,
    bytes_per_pixel,
    encoding_info,
    image_to_numpy,
    numpy_to_image_fields,
)

HOST_BIG = int(sys.byteorder == "big")


@dataclass
class Msg:
    """A hand-made (or rosbags-like) Image message."""

    height: int
    width: int
    encoding: str
    is_bigendian: int
    step: int
    data: Any


def msg_from_fields(fields: ImageFields, data: Any = None) -> Msg:
    return Msg(fields.height, fields.width, fields.encoding, fields.is_bigendian, fields.step,
               bytes(fields.data) if data is None else data)


def random_image(encoding: str, height: int = 5, width: int = 7, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    info = encoding_info(encoding)
    shape = (height, width) if info.channels == 1 else (height, width, info.channels)
    if info.dtype == np.float32:
        return rng.normal(size=shape).astype(np.float32)
    return rng.integers(0, np.iinfo(info.dtype).max, size=shape, endpoint=True,
                        dtype=info.dtype)


def test_supported_encodings_and_sizes() -> None:
    for name in ("mono8", "mono16", "bgr8", "rgb8", "bgra8", "16UC1", "32FC1"):
        assert name in SUPPORTED_ENCODINGS
    assert [bytes_per_pixel(e) for e in ("mono8", "mono16", "bgr8", "bgra8", "32FC1")] == \
        [1, 2, 3, 4, 4]
    assert encoding_info("16UC1").dtype == np.dtype(np.uint16)
    assert encoding_info("rgb8").channels == 3


@pytest.mark.parametrize("encoding", SUPPORTED_ENCODINGS)
def test_round_trip(encoding: str) -> None:
    image = random_image(encoding)
    fields = numpy_to_image_fields(image, encoding)
    assert (fields.height, fields.width, fields.encoding) == (5, 7, encoding)
    assert fields.step == 7 * bytes_per_pixel(encoding)
    assert fields.is_bigendian == HOST_BIG
    assert fields.data.format == "B" and fields.data.nbytes == fields.step * 5
    back = image_to_numpy(msg_from_fields(fields))
    assert back.dtype == image.dtype and back.shape == image.shape
    np.testing.assert_array_equal(back, image)


def test_fields_alias_contiguous_array_and_copy_otherwise() -> None:
    image = random_image("mono16")
    fields = numpy_to_image_fields(image, "mono16")
    assert np.shares_memory(np.frombuffer(fields.data, np.uint8), image)
    assert fields.data.readonly
    strided = random_image("bgr8", 6, 8)[::2, ::2]
    fields = numpy_to_image_fields(strided, "bgr8")
    assert not np.shares_memory(np.frombuffer(fields.data, np.uint8), strided)
    np.testing.assert_array_equal(image_to_numpy(msg_from_fields(fields)), strided)


def test_decode_is_zero_copy_and_read_only() -> None:
    image = random_image("bgr8")
    fields = numpy_to_image_fields(image, "bgr8")
    buffer = bytearray(fields.data)
    view = image_to_numpy(msg_from_fields(fields, buffer))
    assert np.shares_memory(view, np.frombuffer(buffer, np.uint8))
    assert not view.flags.writeable
    buffer[0] = (buffer[0] + 1) % 256  # pixel (0, 0), channel 0
    assert view[0, 0, 0] == (int(image[0, 0, 0]) + 1) % 256
    with pytest.raises(ValueError):
        view[0, 0, 0] = 0


def test_padded_step_gives_right_pixels_without_copy() -> None:
    image = random_image("mono16", 4, 3)
    step = 3 * 2 + 10  # 10 bytes of padding per row
    buffer = bytearray(b"\xee" * (step * 4))
    for row in range(4):
        buffer[row * step:row * step + 6] = image[row].tobytes()
    msg = Msg(4, 3, "mono16", HOST_BIG, step, buffer)
    view = image_to_numpy(msg)
    np.testing.assert_array_equal(view, image)
    assert view.strides == (step, 2)
    assert np.shares_memory(view, np.frombuffer(buffer, np.uint8))


def test_padded_multichannel() -> None:
    image = random_image("bgra8", 3, 2)
    step = 2 * 4 + 3
    raw = b"".join(row.tobytes() + b"\x01\x02\x03" for row in image)
    np.testing.assert_array_equal(image_to_numpy(Msg(3, 2, "bgra8", 0, step, raw)), image)


@pytest.mark.parametrize(("encoding", "big_dtype"),
                         [("mono16", ">u2"), ("16UC1", ">u2"), ("32FC1", ">f4")])
def test_big_endian_data_decodes_to_native_values(encoding: str, big_dtype: str) -> None:
    image = random_image(encoding)
    raw = image.astype(big_dtype).tobytes()
    decoded = image_to_numpy(Msg(5, 7, encoding, 1, 7 * 2 if big_dtype == ">u2" else 7 * 4,
                                 raw))
    assert decoded.dtype == image.dtype and decoded.dtype.isnative
    np.testing.assert_array_equal(decoded, image)
    little = image.astype(big_dtype.replace(">", "<")).tobytes()
    np.testing.assert_array_equal(image_to_numpy(Msg(5, 7, encoding, 0, len(little) // 5,
                                                     little)), image)


def test_big_endian_8bit_is_still_a_view() -> None:
    buffer = bytearray(range(12))
    view = image_to_numpy(Msg(2, 2, "rgb8", 1 - HOST_BIG, 6, buffer))
    assert np.shares_memory(view, np.frombuffer(buffer, np.uint8))


def test_non_native_array_is_converted() -> None:
    image = random_image("32FC1")
    fields = numpy_to_image_fields(image.astype(">f4" if not HOST_BIG else "<f4"), "32FC1")
    assert fields.is_bigendian == HOST_BIG
    np.testing.assert_array_equal(image_to_numpy(msg_from_fields(fields)), image)


def test_single_channel_accepts_trailing_axis_of_one() -> None:
    image = random_image("mono8")
    fields = numpy_to_image_fields(image[:, :, None], "mono8")
    assert image_to_numpy(msg_from_fields(fields)).shape == (5, 7)


def test_rclpy_message_round_trip() -> None:
    sensor_msgs = pytest.importorskip("sensor_msgs.msg",
                                      reason="sensor_msgs (ROS 2 Python env) not available")
    image = random_image("16UC1", 6, 9)
    fields = numpy_to_image_fields(image, "16UC1")
    msg = sensor_msgs.Image()
    msg.height, msg.width, msg.encoding = fields.height, fields.width, fields.encoding
    msg.is_bigendian, msg.step = fields.is_bigendian, fields.step
    data = array.array("B")
    data.frombytes(fields.data)
    # The setter stores array.array('B', value): a copy unless ROS_PYTHON_CHECK_FIELDS=1, in
    # which case an array.array('B') is kept as is (and other types are checked per byte).
    msg.data = data
    assert isinstance(msg.data, array.array) and msg.data.tobytes() == data.tobytes()
    view = image_to_numpy(msg)
    np.testing.assert_array_equal(view, image)
    assert np.shares_memory(view, np.frombuffer(msg.data, np.uint8))
    with pytest.raises(BufferError):  # array.array cannot resize while the view exports it
        msg.data.append(0)


def test_rosbags_like_numpy_data() -> None:
    image = random_image("rgb8")
    fields = numpy_to_image_fields(image, "rgb8")
    data = np.frombuffer(fields.data, np.uint8).copy()
    view = image_to_numpy(msg_from_fields(fields, data))
    np.testing.assert_array_equal(view, image)
    assert np.shares_memory(view, data)


def test_list_data_is_accepted_by_copy() -> None:
    msg = Msg(1, 2, "mono8", 0, 2, [3, 250])
    np.testing.assert_array_equal(image_to_numpy(msg), [[3, 250]])


def test_empty_images() -> None:
    assert image_to_numpy(Msg(0, 4, "bgr8", 0, 12, b"")).shape == (0, 4, 3)
    assert image_to_numpy(Msg(3, 0, "32FC1", 0, 0, b"")).shape == (3, 0)
    with pytest.raises(InputError, match="empty"):
        image_to_numpy(Msg(0, 4, "mono8", 0, 4, b"abcd"))


def test_unknown_encoding_lists_supported() -> None:
    with pytest.raises(InputError) as info:
        image_to_numpy(Msg(1, 1, "yuv422", 0, 2, b"ab"))
    assert "yuv422" in str(info.value) and "mono16" in str(info.value)
    assert "32FC1" in str(info.value)
    with pytest.raises(InputError, match="8UC3"):
        numpy_to_image_fields(np.zeros((2, 2, 3), np.uint8), "8UC3")


def test_data_too_short() -> None:
    with pytest.raises(InputError) as info:
        image_to_numpy(Msg(4, 3, "mono16", 0, 6, bytes(23)))
    text = str(info.value)
    assert "mono16" in text and "23" in text and "24" in text and "step 6" in text


def test_step_too_small_or_misaligned() -> None:
    with pytest.raises(InputError, match=r"step 8.*smaller"):
        image_to_numpy(Msg(2, 3, "bgr8", 0, 8, bytes(16)))
    with pytest.raises(InputError, match="multiple"):
        image_to_numpy(Msg(2, 3, "32FC1", 0, 13, bytes(26)))


def test_numpy_data_of_wrong_dtype() -> None:
    with pytest.raises(InputError, match="uint8"):
        image_to_numpy(Msg(1, 1, "mono16", 0, 2, np.zeros(1, np.uint16)))


@pytest.mark.parametrize(("array", "encoding", "words"), [
    (np.zeros((2, 2), np.uint8), "mono16", ["mono16", "uint16", "uint8"]),
    (np.zeros((2, 2), np.float64), "32FC1", ["float32", "float64"]),
    (np.zeros((2, 2, 3), np.uint8), "mono8", ["mono8", "(2, 2, 3)"]),
    (np.zeros((2, 2), np.uint8), "bgr8", ["bgr8", "(H, W, 3)", "(2, 2)"]),
    (np.zeros((2, 2, 3), np.uint8), "bgra8", ["bgra8", "(H, W, 4)"]),
])
def test_numpy_to_fields_mismatch(array: np.ndarray, encoding: str, words: list[str]) -> None:
    with pytest.raises(InputError) as info:
        numpy_to_image_fields(array, encoding)
    for word in words:
        assert word in str(info.value)


def test_import_does_not_load_rclpy() -> None:
    code = ("import sys, mouse_lifter_ros.core.images; "
            "sys.exit(1 if any(m == 'rclpy' or m.startswith(('rclpy.', 'sensor_msgs')) "
            "for m in sys.modules) else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stderr
