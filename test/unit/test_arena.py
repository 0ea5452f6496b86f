"""Tests of mouse_lifter_ros.core.arena: the camera's pose over the arena floor."""

from __future__ import annotations

import math
import re
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from mouse_lifter_ros.cli import main
from mouse_lifter_ros.core.arena import (
    DEFAULT_MAX_ERROR,
    ArenaCalibration,
    arena_from_camera,
    arena_from_checkerboard,
    arena_from_corners,
    arena_to_yaml,
    bedding_from_board,
    load_arena,
    parse_arena,
    save_arena,
)
from mouse_lifter_ros.core.calibration import (
    CameraCalibration,
    save_calibration,
    uncalibrated,
)
from mouse_lifter_ros.core.camera import Camera, look_at
from mouse_lifter_ros.core.democlip import demo_camera
from mouse_lifter_ros.core.errors import CalibrationError
from mouse_lifter_ros.core.synth.render import camera_over_arena

CONFIG = Path(__file__).resolve().parents[2] / "config/calibration"
K = np.array([[600.0, 0.0, 319.5], [0.0, 600.0, 239.5], [0.0, 0.0, 1.0]])
PINHOLE = {"fx": 600.0, "fy": 600.0, "cx": 319.5, "cy": 239.5, "width": 640, "height": 480}
SIZE = (0.46, 0.34)
BARREL = (-0.22, 0.06, 0.0008, -0.0005, -0.01)  # plumb_bob k1, k2, p1, p2, k3


def _corners3(size: tuple[float, float] = SIZE) -> np.ndarray:
    w, h = size[0] / 2, size[1] / 2
    return np.array([[-w, -h, 0.0], [w, -h, 0.0], [w, h, 0.0], [-w, h, 0.0]])


CAMERAS = {
    "straight": camera_over_arena(view="top", height_m=0.6, K=K, dist=None, width=640,
                                  height=480, yaw=0.3),
    "tilted_distorted": look_at((0.08, -0.22, 0.5), (0.0, 0.02, 0.0), dist=BARREL, **PINHOLE),
    "bottom": camera_over_arena(view="bottom", height_m=0.45, K=K, dist=None, width=640,
                                height=480),
}


def _with_model(model: str) -> ArenaCalibration:
    """A tilted camera over the floor with a given distortion model."""
    cam = CAMERAS["tilted_distorted"]
    d = {"plumb_bob": BARREL, "rational_polynomial": (0.3, -0.1, 0.0006, -0.0004, 0.02,
                                                      0.55, -0.05, 0.03),
         "equidistant": (0.05, -0.02, 0.01, -0.003)}[model]
    intr = CameraCalibration(640, 480, "", K, model, d, np.eye(3), np.hstack([K, np.zeros((3, 1))]))
    return ArenaCalibration(intr, cam.R, cam.t, 0.0, "camera", SIZE)


def _pixels(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.uniform([0.0, 0.0], [639.0, 479.0], (n, 2))


def _pose_error(a: ArenaCalibration, cam: Camera) -> tuple[float, float]:
    """Position error (m) and rotation error (degrees) against a known camera."""
    angle = math.degrees(math.acos(min(1.0, (np.trace(a.rotation.T @ cam.R) - 1) / 2)))
    return float(np.linalg.norm(a.camera_position - cam.position)), angle


# ------------------------------------------------------------------------- corners


@pytest.mark.parametrize("name", list(CAMERAS))
def test_exact_corners_recover_the_pose(name: str) -> None:
    cam = CAMERAS[name]
    truth = arena_from_camera(cam)
    px, z = truth.project(_corners3())
    assert np.all(z > 0)
    a = arena_from_corners(truth.intrinsics, px, SIZE)
    dist, angle = _pose_error(a, cam)
    assert dist < 1e-3 and angle < 0.1
    assert a.reprojection_error < 1e-6
    assert a.method == "corners" and a.arena_size == SIZE
    assert a.view == ("bottom" if name == "bottom" else "top")


def test_noisy_corners_report_their_error() -> None:
    cam = CAMERAS["tilted_distorted"]
    truth = arena_from_camera(cam)
    px, _ = truth.project(_corners3())
    noisy = px + np.random.default_rng(1).normal(0.0, 1.0, px.shape)
    a = arena_from_corners(truth.intrinsics, noisy, SIZE)
    assert 0.05 < a.reprojection_error < DEFAULT_MAX_ERROR
    dist, angle = _pose_error(a, cam)
    assert dist < 0.02 and angle < 2.0
    with pytest.raises(CalibrationError, match=r"RMS reprojection error .* px exceeds the "
                       r"limit 0\.01 px"):
        arena_from_corners(truth.intrinsics, noisy, SIZE, max_error=0.01)


def _refusal(intr: CameraCalibration, corners: object, size: object) -> str:
    with pytest.raises(CalibrationError) as exc:
        arena_from_corners(intr, corners, size)  # type: ignore[arg-type]
    return str(exc.value)


def test_corner_refusals_name_every_problem() -> None:
    truth = arena_from_camera(CAMERAS["straight"])
    intr = truth.intrinsics
    px, _ = truth.project(_corners3())
    moved = px.copy()
    moved[0, 0] += 700.0
    msg = _refusal(uncalibrated(640, 480), moved, (0.46, -1.0))
    assert msg.startswith("arena calibration from 4 corners: ")
    assert "uncalibrated" in msg and "corner 1" in msg and "outside the 640x480 image" in msg
    assert "arena size must be two positive finite metres" in msg
    assert "4 finite pixel points" in _refusal(intr, px[:3], SIZE)
    assert "non-finite" in _refusal(intr, np.where(np.eye(4, 2) > 0, np.nan, px), SIZE)
    assert "self-intersecting" in _refusal(intr, px[[0, 2, 1, 3]], SIZE)
    line = np.array([[100.0, 100.0], [200.0, 110.0], [300.0, 120.0], [400.0, 130.0]])
    assert "collinear" in _refusal(intr, line, SIZE)
    assert "corners 2 and 3 coincide" in _refusal(intr, px[[0, 1, 1, 3]], SIZE)
    assert "two numbers" in _refusal(intr, px, "big")


def test_implausible_poses_are_refused() -> None:
    straight = arena_from_camera(CAMERAS["straight"])
    px, _ = straight.project(_corners3())
    near = _refusal(straight.intrinsics, px, (0.0046, 0.0034))  # camera 6 mm up
    assert "closer than 5 cm" in near
    far = _refusal(straight.intrinsics, px, (46.0, 34.0))  # camera 60 m up
    assert "60.00 m from the floor plane: farther than 10 m" in far
    oblique = arena_from_camera(look_at((0.0, -1.2, 0.35), (0.0, 0.0, 0.0), **PINHOLE))
    opx, z = oblique.project(_corners3())
    assert np.all(z > 0) and np.all((opx >= 0) & (opx < [640, 480]))
    assert re.search(r"optical axis tilted 7\d\.\d degrees from the floor normal \(limit 60\)",
                     _refusal(oblique.intrinsics, opx, SIZE))


# -------------------------------------------------------------------- board images


def _render_plane(cam: Camera, texture: np.ndarray, px_per_m: float) -> np.ndarray:
    """Image of ``texture`` lying face up on the floor, centred on the arena origin.

    Texture pixel (i, j) (centre) sits at arena x = (i + 0.5) / ppm - W/2,
    y = H/2 - (j + 0.5) / ppm: the texture's rows run along -y, so a camera above sees
    it unmirrored. No lens distortion: the floor-to-image map is a homography.
    """
    th, tw = texture.shape
    w, h = tw / px_per_m, th / px_per_m
    to_floor = np.array([[1 / px_per_m, 0.0, 0.5 / px_per_m - w / 2],
                         [0.0, -1 / px_per_m, h / 2 - 0.5 / px_per_m], [0.0, 0.0, 1.0]])
    floor_to_image = cam.K @ np.column_stack([cam.R[:, 0], cam.R[:, 1], cam.t])
    return cv2.warpPerspective(texture, floor_to_image @ to_floor, (cam.width, cam.height),
                               flags=cv2.INTER_LINEAR, borderValue=90)


def _checkerboard(cols: int, rows: int, px: int) -> np.ndarray:
    """A board of (cols + 1) x (rows + 1) squares of ``px`` pixels, one white square around."""
    img = np.full(((rows + 3) * px, (cols + 3) * px), 255, np.uint8)
    for j in range(rows + 1):
        for i in range(cols + 1):
            if (i + j) % 2 == 0:
                img[(j + 1) * px:(j + 2) * px, (i + 1) * px:(i + 2) * px] = 0
    return img


def _board_offset(a: ArenaCalibration, cam: Camera) -> tuple[np.ndarray, float]:
    """Recovered-from-true arena rotation and the true origin's offset in the recovered frame."""
    rel = a.rotation.T @ cam.R
    return rel, float(np.linalg.norm(a.rotation.T @ (cam.t - a.translation)))


SQUARE = 0.03
BOARD_CAMERAS = {"straight": camera_over_arena(view="top", height_m=0.5, K=K, dist=None,
                                               width=640, height=480, yaw=0.2),
                 "tilted": look_at((0.1, -0.25, 0.45), (0.0, 0.0, 0.0), **PINHOLE)}


@pytest.mark.parametrize("name", list(BOARD_CAMERAS))
def test_checkerboard_image_gives_the_pose(name: str) -> None:
    cam = BOARD_CAMERAS[name]
    image = _render_plane(cam, _checkerboard(9, 6, 40), 40 / SQUARE)
    intr = arena_from_camera(cam).intrinsics
    a = arena_from_checkerboard(intr, image, pattern=(9, 6), square=SQUARE)
    rel, offset = _board_offset(a, cam)
    # the plane is exact; x, y are known up to the board's half-turn symmetry
    assert np.allclose(np.abs(rel), np.eye(3), atol=2e-3) and rel[2, 2] > 0.999
    assert offset < 2e-3
    assert float(np.linalg.norm(a.camera_position - cam.position)) < 2e-3
    assert a.method == "checkerboard" and a.view == "top" and a.reprojection_error < 0.3
    grey3 = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)  # colour images work too
    b = arena_from_checkerboard(intr, grey3, pattern=(9, 6), square=SQUARE, view="bottom")
    assert b.view == "bottom" and np.allclose(b.camera_position[:2], a.camera_position[:2] *
                                              [1, -1], atol=1e-6)


#: The board cameras 20 mm nearer the board: what they see of a board laid on 20 mm of
#: bedding (the board plane is z = 0 of the camera's frame).
RAISED_BOARD_CAMERAS = {
    "straight": camera_over_arena(view="top", height_m=0.48, K=K, dist=None, width=640,
                                  height=480, yaw=0.2),
    "tilted": look_at((0.1, -0.25, 0.43), (0.0, 0.0, -0.02), **PINHOLE)}


@pytest.mark.parametrize("name", list(BOARD_CAMERAS))
def test_a_board_laid_on_the_bedding_measures_its_depth(name: str) -> None:
    floor = arena_from_checkerboard(
        arena_from_camera(BOARD_CAMERAS[name]).intrinsics,
        _render_plane(BOARD_CAMERAS[name], _checkerboard(9, 6, 40), 40 / SQUARE),
        pattern=(9, 6), square=SQUARE)
    raised = RAISED_BOARD_CAMERAS[name]
    board = arena_from_checkerboard(
        floor.intrinsics, _render_plane(raised, _checkerboard(9, 6, 40), 40 / SQUARE),
        pattern=(9, 6), square=SQUARE)
    assert bedding_from_board(floor, board) == pytest.approx(0.02, abs=1e-3)
    with pytest.raises(CalibrationError, match=r"-(19|20)\.\d mm over the floor"):
        bedding_from_board(board, floor)  # the board under the floor
    tilted = replace(board, rotation=board.rotation @ cv2.Rodrigues(np.array(
        [0.3, 0.0, 0.0]))[0])  # a board 17 degrees off the floor
    with pytest.raises(CalibrationError, match=r"17\.2 degrees off the floor's plane"):
        bedding_from_board(floor, tilted)


def test_checkerboard_refusals() -> None:
    cam = BOARD_CAMERAS["straight"]
    intr = arena_from_camera(cam).intrinsics
    image = _render_plane(cam, _checkerboard(9, 6, 40), 40 / SQUARE)
    with pytest.raises(CalibrationError) as exc:
        arena_from_checkerboard(uncalibrated(640, 480), image[:, :600], pattern=(9, 1),
                                square=-0.03)
    msg = str(exc.value)
    assert msg.startswith("arena calibration from a checkerboard image: ")
    for part in ("uncalibrated", "image is 600x480 but the intrinsics are for 640x480",
                 "pattern must be two integers >= 2", "square must be a positive length"):
        assert part in msg
    with pytest.raises(CalibrationError, match="checkerboard of 7x5 inner corners not found"):
        arena_from_checkerboard(intr, image, pattern=(7, 5), square=SQUARE)
    with pytest.raises(CalibrationError, match="not found"):
        arena_from_checkerboard(intr, np.full((480, 640), 128, np.uint8), pattern=(9, 6),
                                square=SQUARE)
    with pytest.raises(CalibrationError, match="unknown ArUco dictionary 'DICT_NOPE'"):
        arena_from_checkerboard(intr, image, pattern=(7, 5), square=SQUARE, charuco=True,
                                dictionary="DICT_NOPE")


@pytest.mark.parametrize("name", list(BOARD_CAMERAS))
def test_charuco_image_gives_the_pose(name: str) -> None:
    aruco = getattr(cv2, "aruco", None)
    if aruco is None or not hasattr(aruco, "CharucoDetector"):
        pytest.skip("this OpenCV has no cv2.aruco.CharucoDetector (OpenCV >= 4.7 contrib)")
    cam = BOARD_CAMERAS[name]
    board = aruco.CharucoBoard((7, 5), SQUARE, 0.75 * SQUARE,
                               aruco.getPredefinedDictionary(aruco.DICT_4X4_50))
    texture = board.generateImage((7 * 40 + 40, 5 * 40 + 40), marginSize=20)
    image = _render_plane(cam, texture, 40 / SQUARE)
    a = arena_from_checkerboard(arena_from_camera(cam).intrinsics, image, pattern=(7, 5),
                                square=SQUARE, charuco=True)
    rel, offset = _board_offset(a, cam)
    assert np.allclose(rel, np.eye(3), atol=3e-3)  # a ChArUco board's frame is unique
    assert offset < 2e-3 and a.method == "charuco" and a.view == "top"


# ------------------------------------------------------------------------ geometry


@pytest.mark.parametrize("model", ["plumb_bob", "rational_polynomial", "equidistant"])
def test_rays_and_project_round_trip(model: str) -> None:
    a = _with_model(model)
    rng = np.random.default_rng(2)
    px = np.concatenate([_pixels(rng, 2000), [[0, 0], [639, 479], [0, 479], [639, 0]]])
    rays = a.rays(px)
    assert rays.shape == (len(px), 3) and np.all(rays[:, 2] == 1.0)
    depth = rng.uniform(0.2, 2.0, len(px))
    back, z = a.project(a.backproject(px, depth))
    assert np.allclose(z, depth, atol=1e-12)
    assert float(np.abs(back - px).max()) < 1e-3
    grid = a.ray_grid()
    assert grid.shape == (480, 640, 2) and grid.dtype == np.float32
    assert a.ray_grid() is grid and not grid.flags.writeable
    i = rng.integers(0, [640, 480], (50, 2))
    assert np.allclose(grid[i[:, 1], i[:, 0]], a.rays(i)[:, :2], atol=1e-6)
    assert not np.allclose(a.rays(px)[:, :2], (px - [319.5, 239.5]) / 600.0, atol=1e-3)


def test_plumb_bob_matches_the_synthetic_camera() -> None:
    cam = CAMERAS["tilted_distorted"]
    a = arena_from_camera(cam, arena_size=SIZE)
    pts = np.random.default_rng(3).uniform([-0.3, -0.2, 0.0], [0.3, 0.2, 0.2], (10_000, 3))
    px, z = a.project(pts)
    cpx, cz = cam.project(pts)
    assert float(np.abs(px - cpx).max()) < 1e-6 and np.allclose(z, cz)
    assert np.allclose(a.camera_position, cam.position)
    assert a.camera == cam


def test_heights_depths_and_backprojection_agree() -> None:
    a = _with_model("plumb_bob")
    rng = np.random.default_rng(4)
    px = _pixels(rng, 500)
    heights = rng.uniform(0.0, 0.1, len(px))
    pts = a.points_at_height(px, heights)
    assert np.allclose(pts[:, 2], heights, atol=1e-9)
    back, z = a.project(pts)
    assert float(np.abs(back - px).max()) < 1e-3
    depth = a.depth_at_height(a.rays(px)[:, :2], heights)
    assert np.allclose(depth, z, rtol=1e-9)
    assert np.allclose(a.backproject(px, depth), pts, atol=1e-9)
    floor = a.points_at_height(px)  # default: the floor
    assert np.allclose(floor[:, 2], 0.0, atol=1e-9)
    # float32 ray grid path: a 150x150 region, per-pixel heights
    region = a.ray_grid()[100:250, 200:350]
    d32 = a.depth_at_height(region, np.full((150, 150), 0.03, np.float32))
    assert d32.dtype == np.float32 and d32.shape == (150, 150)
    v, u = np.mgrid[100:250, 200:350]
    ref = a.depth_at_height(a.rays(np.stack([u.ravel(), v.ravel()], 1))[:, :2], 0.03)
    assert np.allclose(d32.ravel(), ref, rtol=1e-5)
    # no intersection in front: a plane above the camera, NaN / negative depths
    above = a.camera_position[2] + 0.1
    assert np.all(np.isnan(a.points_at_height(px[:5], above)))
    bad = a.backproject(px[:3], [np.nan, -1.0, 0.5])
    assert np.all(np.isnan(bad[:2])) and np.all(np.isfinite(bad[2]))


def test_camera_orientation_and_position_map_camera_points_to_the_arena() -> None:
    # The parent-arena / child-camera transform a TF broadcast carries: q (x, y, z, w)
    # rotates camera-frame points into the arena frame, then the camera position adds.
    a = _with_model("plumb_bob")
    x, y, z, w = a.camera_orientation
    assert math.isclose(x * x + y * y + z * z + w * w, 1.0, rel_tol=1e-12) and w >= 0
    rot = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                    [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                    [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
    rng = np.random.default_rng(9)
    px = _pixels(rng, 50)
    depth = rng.uniform(0.3, 0.6, len(px))
    cam_points = a.rays(px) * depth[:, None]
    arena_points = cam_points @ rot.T + a.camera_position
    np.testing.assert_allclose(arena_points, a.backproject(px, depth), atol=1e-9)
    # the camera looks down: its optical axis (z) points to the floor in the arena frame
    assert (rot @ [0.0, 0.0, 1.0])[2] < -0.5


def test_scaled_frames_project_scaled_pixels() -> None:
    a = arena_from_camera(CAMERAS["straight"])
    half = a.scaled(320, 240)
    assert (half.width, half.height) == (320, 240) and a.scaled(640, 480) is a
    pts = np.random.default_rng(5).uniform(-0.2, 0.2, (20, 3))
    # calibration.scaled multiplies K's rows by the scale factors
    assert np.allclose(half.project(pts)[0], a.project(pts)[0] * 0.5)


# ---------------------------------------------------------------------------- files


def test_yaml_round_trip_is_exact(tmp_path: Path) -> None:
    truth = arena_from_camera(CAMERAS["tilted_distorted"])
    px, _ = truth.project(_corners3())
    noisy = px + np.random.default_rng(6).normal(0.0, 0.7, px.shape)
    for a in (arena_from_corners(truth.intrinsics, noisy, SIZE), _with_model("equidistant"),
              arena_from_camera(CAMERAS["bottom"])):
        path = tmp_path / "arena.yaml"
        save_arena(path, a, comment="two\nlines")
        b = load_arena(path)
        assert b.intrinsics == a.intrinsics
        assert np.array_equal(b.rotation, a.rotation)
        assert np.array_equal(b.translation, a.translation)
        assert (b.reprojection_error, b.method, b.arena_size) == (
            a.reprojection_error, a.method, a.arena_size)
        data = yaml.safe_load(path.read_text())
        assert data["format"] == "mouse_lifter_arena" and data["version"] == 1
        assert data["camera_height_m"] == pytest.approx(abs(a.camera_position[2]), abs=1e-4)
        assert data["view"] == a.view
        assert path.read_text().startswith("# two\n# lines\n")


def test_bedding_raises_the_surface_the_arena_frame_stands_on(tmp_path: Path) -> None:
    """With bedding b over the calibrated floor, arena height h is floor height h + b:
    both calibrations see the same point at the same pixel and depth."""
    floor = arena_from_camera(CAMERAS["tilted_distorted"])
    bed = replace(floor, bedding=0.02)
    assert np.array_equal(bed.rotation, floor.rotation)
    assert np.array_equal(bed.translation, floor.translation)  # the calibrated pose
    pts = np.random.default_rng(8).uniform([-0.2, -0.15, 0.0], [0.2, 0.15, 0.08], (50, 3))
    px_bed, z_bed = bed.project(pts)
    px_floor, z_floor = floor.project(pts + np.array([0.0, 0.0, 0.02]))
    assert np.allclose(px_bed, px_floor, atol=1e-9) and np.allclose(z_bed, z_floor)
    assert bed.camera_position[2] == pytest.approx(floor.camera_position[2] - 0.02)
    assert bed.describe().endswith("m over the surface, bedding 20 mm")
    path = tmp_path / "bed.yaml"
    save_arena(path, bed)
    back = load_arena(path)
    assert back.bedding == 0.02 and np.array_equal(back.camera.t, bed.camera.t)
    data = yaml.safe_load(path.read_text())
    assert data["bedding_m"] == 0.02
    assert data["camera_height_m"] == pytest.approx(floor.camera_position[2], abs=1e-4)
    del data["bedding_m"]  # a file from before bedding: none
    assert parse_arena(data).bedding == 0.0


def test_impossible_bedding_is_refused() -> None:
    top = arena_from_camera(CAMERAS["straight"])
    for bedding, part in ((-0.01, "must be >= 0"), (0.5, "<= 0.1 m"),
                          (math.nan, "must be >= 0")):
        with pytest.raises(CalibrationError, match=part):
            replace(top, bedding=bedding)
    with pytest.raises(CalibrationError, match="bottom-view camera"):
        replace(arena_from_camera(CAMERAS["bottom"]), bedding=0.01)
    good = yaml.safe_load(arena_to_yaml(top))
    assert "bedding_m must be a number" in _corrupt(dict(good, bedding_m="deep"))
    assert "bedding_m: -0.02 m: must be >= 0" in _corrupt(dict(good, bedding_m=-0.02))


def _corrupt(data: dict[str, object]) -> str:
    with pytest.raises(CalibrationError) as exc:
        parse_arena(data, source="'x.yaml'")
    return str(exc.value)


def test_corrupt_files_list_every_problem(tmp_path: Path) -> None:
    good = yaml.safe_load(arena_to_yaml(arena_from_camera(CAMERAS["straight"])))
    assert parse_arena(good).method == "camera"
    missing = {k: v for k, v in good.items() if k not in ("rotation", "translation", "camera")}
    msg = _corrupt(missing)
    assert msg.startswith("arena calibration 'x.yaml': ")
    for key in ("rotation", "translation", "camera"):
        assert f"missing key {key!r}" in msg
    bad = dict(good, rotation={"rows": 3, "cols": 3, "data": [1, 0, 0, 0, 1, 0, 0, 0, 2]},
               translation=[0, 0], method="guess", arena_size_m=[0.4, -1],
               reprojection_error_px=-1, format="other", version=7)
    msg = _corrupt(bad)
    for part in ("rotation is not a rotation", "translation must be a list of 3",
                 "method must be one of", "arena_size_m must be two positive",
                 "reprojection_error_px must be a number >= 0", "format is 'other'",
                 "version 7 is not supported"):
        assert part in msg
    mirrored = dict(good, rotation={"rows": 3, "cols": 3, "data": [-1, 0, 0, 0, 1, 0, 0, 0, 1]})
    assert "det = -1" in _corrupt(mirrored)
    camera = dict(good["camera"], camera_matrix={"rows": 3, "cols": 3, "data": [0] * 9})
    assert "camera: uncalibrated" in _corrupt(dict(good, camera=camera))
    assert "camera: missing key 'image_width'" in _corrupt(
        dict(good, camera={k: v for k, v in good["camera"].items() if k != "image_width"}))
    assert "farther than 10 m" in _corrupt(dict(good, translation=[0.0, 0.0, 20.0]))
    assert "top level is not a mapping" in _corrupt([1, 2])  # type: ignore[arg-type]
    with pytest.raises(CalibrationError, match="does not exist"):
        load_arena(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("rotation: [unclosed\n")
    with pytest.raises(CalibrationError, match="cannot be read"):
        load_arena(tmp_path / "bad.yaml")


def test_demo_arena_file_matches_the_demo_clip_camera() -> None:
    # democlip.demo_camera() is the camera the demo clip is rendered with.
    cam = demo_camera()
    a = load_arena(CONFIG / "demo_arena.yaml")
    pts = np.random.default_rng(7).uniform([-0.23, -0.17, 0.0], [0.23, 0.17, 0.25], (1000, 3))
    assert float(np.abs(a.project(pts)[0] - cam.project(pts)[0]).max()) < 1e-6
    assert a.arena_size == (0.46, 0.34) and a.view == "top" and a.method == "camera"
    assert a.intrinsics.camera_name == "demo_top_camera"


# ------------------------------------------------------------------------------ CLI


def _cli_files(tmp_path: Path, cam: Camera) -> tuple[str, np.ndarray]:
    intr = arena_from_camera(cam).intrinsics
    save_calibration(intr, tmp_path / "cam.yaml")
    return str(tmp_path / "cam.yaml"), arena_from_camera(cam).project(_corners3())[0]


def test_cli_calibrate_from_corners(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                    ) -> None:
    cam = CAMERAS["straight"]
    intr_path, px = _cli_files(tmp_path, cam)
    image = _render_plane(cam, _checkerboard(9, 6, 40), 40 / SQUARE)
    cv2.imwrite(str(tmp_path / "img.png"), image)
    corners = " ".join(f"{float(u)!r},{float(v)!r}" for u, v in px)
    out, preview = tmp_path / "arena.yaml", tmp_path / "preview.png"
    assert main(["calibrate", "--intrinsics", intr_path, "--out", str(out), "--corners",
                 corners, "--arena-size", "0.46x0.34", "--image", str(tmp_path / "img.png"),
                 "--preview", str(preview)]) == 0
    printed = capsys.readouterr().out
    assert "reprojection error 0.000 px" in printed and "0.600 m from the floor (top view)" \
        in printed
    a = load_arena(out)
    assert _pose_error(a, cam)[0] < 1e-3 and a.arena_size == SIZE
    drawn = cv2.imread(str(preview))
    assert drawn.shape == (480, 640, 3) and np.any(drawn[:, :, 2] != drawn[:, :, 0])


def test_cli_calibrate_from_a_checkerboard(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    cam = BOARD_CAMERAS["tilted"]
    intr_path, _ = _cli_files(tmp_path, cam)
    cv2.imwrite(str(tmp_path / "board.png"),
                _render_plane(cam, _checkerboard(9, 6, 40), 40 / SQUARE))
    out = tmp_path / "arena.yaml"
    assert main(["calibrate", "--intrinsics", intr_path, "--out", str(out), "--image",
                 str(tmp_path / "board.png"), "--checkerboard", "9x6", "--square", "0.03",
                 "--preview", str(tmp_path / "p.png")]) == 0
    assert "(checkerboard)" in capsys.readouterr().out
    assert float(np.linalg.norm(load_arena(out).camera_position - cam.position)) < 2e-3
    assert (tmp_path / "p.png").is_file()


def test_cli_gives_an_earlier_calibration_a_bedding_depth(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = tmp_path / "arena.yaml"
    save_arena(first, arena_from_camera(CAMERAS["straight"]))
    out = tmp_path / "bedded.yaml"
    assert main(["calibrate", "--from", str(first), "--bedding", "0.015", "--out", str(out)]
                ) == 0
    assert "0.600 m from the floor (top view); the mouse stands on bedding 15 mm deep" \
        in capsys.readouterr().out
    a = load_arena(out)
    assert a.bedding == 0.015 and a.camera_position[2] == pytest.approx(0.585)
    assert main(["calibrate", "--from", str(first), "--bedding", "0.3", "--out",
                 str(tmp_path / "no.yaml")]) == 1
    assert "bedding 0.3 m: must be >= 0 and <= 0.1 m" in capsys.readouterr().err
    assert not (tmp_path / "no.yaml").exists()
    for argv in (["calibrate", "--from", str(first), "--intrinsics", "x.yaml", "--out", "o"],
                 ["calibrate", "--out", "o", "--corners", "1,2 3,4 5,6 7,8"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2 and "--intrinsics YAML is needed" in \
            capsys.readouterr().err


def test_cli_measures_the_bedding_from_a_board_laid_on_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    floor = tmp_path / "floor.yaml"
    save_arena(floor, arena_from_camera(BOARD_CAMERAS["straight"]))
    cv2.imwrite(str(tmp_path / "on_bedding.png"), _render_plane(
        RAISED_BOARD_CAMERAS["straight"], _checkerboard(9, 6, 40), 40 / SQUARE))
    out = tmp_path / "bedded.yaml"
    base = ["calibrate", "--from", str(floor), "--checkerboard", "9x6", "--square", "0.03",
            "--out", str(out)]
    assert main([*base, "--image", str(tmp_path / "on_bedding.png")]) == 0
    assert "the mouse stands on bedding 20 mm deep" in capsys.readouterr().out
    a = load_arena(out)
    assert a.bedding == pytest.approx(0.02, abs=1e-3)
    assert np.array_equal(a.translation, load_arena(floor).translation)
    with pytest.raises(SystemExit) as exit_:
        main([*base, "--image", str(tmp_path / "on_bedding.png"), "--bedding", "0.01"])
    assert exit_.value.code == 2 and "and no --bedding" in capsys.readouterr().err


def test_cli_refusals_and_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    intr_path, px = _cli_files(tmp_path, CAMERAS["straight"])
    out = tmp_path / "arena.yaml"
    base = ["calibrate", "--intrinsics", intr_path, "--out", str(out)]
    swapped = " ".join(f"{u},{v}" for u, v in px[[0, 2, 1, 3]])
    assert main([*base, "--corners", swapped, "--arena-size", "0.46x0.34"]) == 1
    err = capsys.readouterr().err
    assert "calibration refused" in err and "self-intersecting" in err and not out.exists()
    for argv in ([*base, "--corners", "1,2 3,4", "--arena-size", "1x1"],  # 2 points
                 [*base, "--corners", swapped],  # no --arena-size
                 [*base, "--arena-size", "1x1"],  # no mode
                 [*base, "--checkerboard", "9x6", "--square", "0.03"],  # no --image
                 [*base, "--corners", swapped, "--arena-size", "0.46"],
                 [*base, "--corners", swapped, "--arena-size", "1x1", "--checkerboard", "9x6"],
                 [*base, "--corners", swapped, "--arena-size", "1x1", "--charuco"],
                 [*base, "--pick", "--arena-size", "1x1"]):  # --pick needs --image
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2, argv
        assert "error:" in capsys.readouterr().err
    cv2.imwrite(str(tmp_path / "img.png"), np.zeros((480, 640, 3), np.uint8))
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main([*base, "--pick", "--image", str(tmp_path / "img.png"), "--arena-size",
                 "1x1"]) == 2
    assert "--corners" in capsys.readouterr().err
    assert main([*base, "--corners", swapped, "--arena-size", "1x1", "--intrinsics",
                 str(tmp_path / "none.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err
