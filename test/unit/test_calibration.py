"""Tests of mouse_lifter_ros.core.calibration (ROS-free)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from mouse_lifter_ros.core.calibration import (
    CameraCalibration,
    calibration_to_yaml,
    camera_info_fields,
    load_calibration,
    parse_calibration,
    save_calibration,
    scaled,
    uncalibrated,
)
from mouse_lifter_ros.core.errors import CalibrationError, InputError

CONFIG = Path(__file__).resolve().parents[2] / "config/calibration"


def _demo() -> CameraCalibration:
    return load_calibration(CONFIG / "demo_camera.yaml")


def test_demo_camera_file() -> None:
    calib = _demo()
    assert (calib.width, calib.height, calib.camera_name) == (640, 480, "demo_top_camera")
    np.testing.assert_array_equal(calib.k, [[600, 0, 319.5], [0, 600, 239.5], [0, 0, 1]])
    assert calib.distortion_model == "plumb_bob"
    np.testing.assert_array_equal(calib.d, np.zeros(5))
    np.testing.assert_array_equal(calib.r, np.eye(3))
    np.testing.assert_array_equal(calib.p, np.hstack([calib.k, np.zeros((3, 1))]))
    assert calib.k.dtype == np.float64 and calib.p.shape == (3, 4)
    assert calib.is_calibrated
    with pytest.raises(ValueError):
        calib.k[0, 0] = 1.0  # read-only


def test_example_lab_camera_file() -> None:
    calib = load_calibration(CONFIG / "example_lab_camera.yaml")
    assert (calib.width, calib.height) == (1280, 1024)
    assert calib.d.shape == (5,) and np.any(calib.d != 0)
    assert 0 < calib.k[0, 2] < calib.width and 0 < calib.k[1, 2] < calib.height


def test_round_trip(tmp_path: Path) -> None:
    original = load_calibration(CONFIG / "example_lab_camera.yaml")
    odd = CameraCalibration(
        7, 5, "cam: one", np.array([[3.0, 0, 1e-5], [0, 2.5e20, 2], [0, 0, 1]]),
        "rational_polynomial", np.arange(8) / 3.0, np.eye(3), np.arange(12.0))
    for calib in (original, odd, uncalibrated(32, 24)):
        path = tmp_path / "cal.yaml"
        save_calibration(calib, path)
        again = load_calibration(path)
        assert again == calib
        assert yaml.safe_load(calibration_to_yaml(calib))["camera_matrix"]["rows"] == 3


def test_optional_matrices_default() -> None:
    data = yaml.safe_load((CONFIG / "demo_camera.yaml").read_text())
    del data["rectification_matrix"], data["projection_matrix"]
    calib = parse_calibration(data)
    np.testing.assert_array_equal(calib.r, np.eye(3))
    np.testing.assert_array_equal(calib.p, np.hstack([calib.k, np.zeros((3, 1))]))


def test_every_problem_in_one_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(
        "image_width: 640\n"
        "image_height: -4\n"
        "camera_matrix: {rows: 3, cols: 3, data: [-5, 0, 9000, 0, 600, 100, 0, 0, 1]}\n"
        "distortion_model: fisheye_magic\n"
        "distortion_coefficients: {rows: 1, cols: 5, data: [0, 0, 0, 0]}\n"
        "rectification_matrix: {rows: 3, cols: 3, data: [1, 0, 0, 0, one, 0, 0, 0, 1]}\n"
    )
    with pytest.raises(CalibrationError) as info:
        load_calibration(path)
    message = str(info.value)
    assert "broken.yaml" in message
    for fragment in ("image_height", "-4", "fisheye_magic", "distortion_coefficients",
                     "data has 4 values", "rectification_matrix", "'one'", "fx=-5",
                     "principal point", "(9000.0, 100.0)"):
        assert fragment in message, fragment
    assert isinstance(info.value, InputError)


def test_missing_keys_and_model_size_mismatch() -> None:
    with pytest.raises(CalibrationError) as info:
        parse_calibration({"image_width": 10, "distortion_model": "equidistant",
                           "distortion_coefficients": {"rows": 1, "cols": 5, "data": [0] * 5}},
                          source="inline")
    message = str(info.value)
    for fragment in ("inline", "'image_height'", "'camera_matrix'", "needs 4 coefficients"):
        assert fragment in message, fragment


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CalibrationError, match=r"nope\.yaml.*does not exist"):
        load_calibration(tmp_path / "nope.yaml")


def test_scaled_halves_intrinsics_and_projections() -> None:
    calib = load_calibration(CONFIG / "example_lab_camera.yaml")
    half = scaled(calib, 640, 512)
    assert (half.width, half.height) == (640, 512)
    np.testing.assert_allclose(half.k[:2], calib.k[:2] / 2)
    np.testing.assert_allclose(half.p[:2], calib.p[:2] / 2)
    np.testing.assert_array_equal(half.k[2], [0, 0, 1])
    np.testing.assert_array_equal(half.d, calib.d)
    assert scaled(calib, 1280, 1024) is calib

    points = np.array([[0.1, -0.05, 0.8], [-0.2, 0.15, 1.1], [0.0, 0.0, 0.5]])
    full_px, _ = cv2.projectPoints(points, np.zeros(3), np.zeros(3), calib.k, calib.d)
    half_px, _ = cv2.projectPoints(points, np.zeros(3), np.zeros(3), half.k, half.d)
    np.testing.assert_allclose(half_px, full_px / 2, rtol=1e-9)
    # Plain pinhole math agrees for the distortion-free demo camera.
    demo = scaled(_demo(), 320, 240)
    x, y, z = points[0]
    assert np.allclose([demo.k[0, 0] * x / z + demo.k[0, 2], demo.k[1, 1] * y / z + demo.k[1, 2]],
                       [(600 * x / z + 319.5) / 2, (600 * y / z + 239.5) / 2])


def test_camera_info_fields_with_crop_keeps_k() -> None:
    calib = _demo()
    info = camera_info_fields(calib, crop=(100, 50, 320, 240))
    assert (info.width, info.height) == (640, 480)
    assert info.k == calib.k.ravel().tolist() and len(info.p) == 12 and len(info.r) == 9
    assert (info.roi_x_offset, info.roi_y_offset, info.roi_width, info.roi_height) == (
        100, 50, 320, 240)
    assert info.roi_do_rectify
    plain = camera_info_fields(calib)
    assert (plain.roi_width, plain.roi_height, plain.roi_do_rectify) == (0, 0, False)
    assert plain.d == [0.0] * 5 and plain.distortion_model == "plumb_bob"


def test_camera_info_fields_frame_size_scales() -> None:
    info = camera_info_fields(_demo(), frame_size=(1280, 960), crop=(0, 0, 1280, 960))
    assert (info.width, info.height) == (1280, 960)
    assert info.k[0] == 1200.0 and info.k[2] == 639.0 and info.p[6] == 479.0


@pytest.mark.parametrize("crop", [(600, 0, 100, 100), (0, 0, 0, 10), (-1, 0, 10, 10),
                                  (0, 400, 640, 81)])
def test_crop_outside_frame_raises(crop: tuple[int, int, int, int]) -> None:
    with pytest.raises(CalibrationError, match="640x480"):
        camera_info_fields(_demo(), crop=crop)


def test_uncalibrated() -> None:
    calib = uncalibrated(640, 480)
    assert not calib.is_calibrated
    assert not np.any(calib.k) and not np.any(calib.p)
    assert camera_info_fields(calib).k == [0.0] * 9
    assert not scaled(calib, 320, 240).is_calibrated
