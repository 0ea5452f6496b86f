"""Tests of the synthetic renderer: cameras, geometry of depth and keypoints, visibility."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest

from mouse_lifter_ros.core.body import KEYPOINTS, BodyState, MouseShape, Pose, forward_kinematics
from mouse_lifter_ros.core.camera import Camera, look_at
from mouse_lifter_ros.core.errors import InputError
from mouse_lifter_ros.core.synth.body import (
    body_ellipsoids,
    keypoint_surface_offsets,
    sample_shape,
)
from mouse_lifter_ros.core.synth.render import (
    REGION_CLUTTER,
    REGION_FLOOR,
    REGION_MOUSE,
    VIEWS,
    ClutterObject,
    Sample,
    Scene,
    camera_over_arena,
    mouse_window,
    render,
    sample_camera,
    sample_scene,
)

K = np.array([[420.0, 0.0, 322.5], [0.0, 418.0, 236.0], [0.0, 0.0, 1.0]])
BARREL = np.array([-0.12, 0.01, 0.0, 0.0, 0.002])
KP = {name: i for i, name in enumerate(KEYPOINTS)}


def posed(rng: np.random.Generator, shape: MouseShape, arena: tuple[float, float]
          ) -> BodyState:
    """A still pose: the default one moved, turned and bent a little."""
    pose = Pose()
    pose.position = np.array([rng.uniform(-1, 1) * (arena[0] / 2 - 0.07),
                              rng.uniform(-1, 1) * (arena[1] / 2 - 0.07), 0.012])
    pose.heading = float(rng.uniform(-math.pi, math.pi))
    pose.spine_yaw = rng.normal(0.0, 0.12, 5)
    pose.spine_pitch = pose.spine_pitch + rng.normal(0.0, 0.06, 5)
    pose.tail_yaw = rng.normal(0.0, 0.2, 8)
    return forward_kinematics(shape, pose)


def draw(seed: int, view: str = "top", *, size: tuple[int, int] = (640, 480),
         crop: int = 0, colour: bool | None = False) -> tuple[Sample, MouseShape, BodyState]:
    """One random sample, as the dataset writer draws a still."""
    rng = np.random.default_rng(seed)
    shape = sample_shape(rng)
    scene = sample_scene(rng, view=view, colour=colour)
    camera = sample_camera(rng, scene, width=size[0], height=size[1])
    state = posed(rng, shape, scene.arena)
    if crop:
        camera = camera.crop(*mouse_window(camera, state, (crop, crop), rng))
    return render(shape, state, camera, scene, rng), shape, state


def exact_rays(camera: Camera, px: np.ndarray) -> np.ndarray:
    """(N, 3) unit-z camera rays of pixels, undistorted by OpenCV to 1e-12 (independent)."""
    crit = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 200, 1e-12)
    und = cv2.undistortPoints(px.reshape(-1, 1, 2).astype(np.float64), camera.K,
                              camera.dist, criteria=crit).reshape(-1, 2)
    return np.column_stack([und, np.ones(len(und))])


def fixed_scene(view: str, **kw: object) -> Scene:
    """A quiet scene: no noise, blur, JPEG or clutter."""
    base = {"view": view, "noise": 0.0, "shot_noise": 0.0, "blur_sigma": 0.0,
            "light_dir": (0.0, 0.0, 1.0 if view == "top" else -1.0)}
    base.update(kw)
    return Scene(**base)  # type: ignore[arg-type]


# ----------------------------------------------------------------- keypoints / camera


@pytest.mark.parametrize("view", VIEWS)
@pytest.mark.parametrize("dist", [np.zeros(5), BARREL], ids=["pinhole", "barrel"])
def test_keypoints_2d_are_the_projected_3d_keypoints(view: str, dist: np.ndarray) -> None:
    shape = MouseShape()
    state = forward_kinematics(shape, Pose())
    camera = camera_over_arena(view=view, height_m=0.45, K=K, dist=dist, width=640,
                               height=480, yaw=0.3)
    s = render(shape, state, camera, fixed_scene(view), np.random.default_rng(0))
    assert np.array_equal(s.keypoints_arena, state.keypoints)
    px, z = camera.project(s.keypoints_arena)
    assert np.abs(px - s.keypoints_2d).max() < 1e-6
    assert np.allclose(z, s.keypoints_camera[:, 2], atol=1e-12)
    assert np.allclose(camera.to_camera(s.keypoints_arena), s.keypoints_camera, atol=1e-12)
    # OpenCV's own model agrees with ours
    rvec, _ = cv2.Rodrigues(camera.R)
    cv_px, _ = cv2.projectPoints(s.keypoints_arena, rvec, camera.t, camera.K, camera.dist)
    assert np.abs(cv_px.reshape(-1, 2) - s.keypoints_2d).max() < 1e-6
    if not dist.any():
        hom = (K @ s.keypoints_camera.T).T
        assert np.abs(hom[:, :2] / hom[:, 2:] - s.keypoints_2d).max() < 1e-6
    assert s.in_view.all()


def test_depth_at_visible_keypoints_matches_their_depth() -> None:
    """Over many random samples, a visible keypoint's pixel sees its own surface.

    A visible keypoint's pixel is by definition at most its surface offset + 1.5 mm in
    front of it; where that pixel shows the mouse, the surface may also lie behind
    the keypoint (a keypoint on the surface, seen near the silhouette): the pixel
    centre is up to 0.71 px from the projected keypoint, so a surface point is at
    most ~one pixel footprint (z / fx) away sideways and, on the rounded body, not
    more than that behind it. Any z-buffer error (a far surface winning) breaks it.
    """
    checked = 0
    for seed in range(40):
        view = VIEWS[seed % 2]
        s, shape, _ = draw(seed, view, size=(320, 240), crop=128)
        off = keypoint_surface_offsets(shape)
        fx = s.camera.K[0, 0]
        for k in np.flatnonzero(s.visible):
            u, v = np.rint(s.keypoints_2d[k]).astype(int)
            z = s.keypoints_camera[k, 2]
            d = float(s.depth[v, u])
            assert d == 0.0 or d >= z - off[k] - 0.0015
            if s.region[v, u] == REGION_MOUSE:
                assert d <= z + off[k] + z / fx, (seed, KEYPOINTS[k], d, z)
                checked += 1
    assert checked > 300


@pytest.mark.parametrize("view", VIEWS)
def test_depth_map_matches_an_independent_float64_ray_cast(view: str) -> None:
    shape = sample_shape(np.random.default_rng(5), fur="white")
    state = posed(np.random.default_rng(6), shape, (0.3, 0.3))
    camera = camera_over_arena(view=view, height_m=0.3, K=K, dist=BARREL, width=640,
                               height=480)
    s = render(shape, state, camera, fixed_scene(view), np.random.default_rng(0))
    ell = body_ellipsoids(shape, state)
    vs, us = np.nonzero(s.mask)
    pick = np.random.default_rng(1).choice(len(vs), 300, replace=False)
    px = np.column_stack([us[pick], vs[pick]]).astype(np.float64)
    rays = exact_rays(camera, px) @ camera.R  # arena-frame directions, camera z = 1
    best = np.full(len(px), np.inf)
    for c, a, r in zip(ell.centers, ell.axes, ell.radii, strict=True):
        o = ((camera.position - c) @ a) / r
        d = (rays @ a) / r
        qa, qb, qc = (d * d).sum(1), (o * d).sum(1), o @ o - 1.0
        disc = qb * qb - qa * qc
        t = np.where(disc > 0, (-qb - np.sqrt(np.maximum(disc, 0))) / qa, np.inf)
        best = np.minimum(best, t)
    got = s.depth[vs[pick], us[pick]]
    inside = np.isfinite(best)
    assert inside.mean() > 0.97  # the mask's pixels do hit the body
    assert np.abs(got[inside] - best[inside]).max() < 2e-5


@pytest.mark.parametrize("view", VIEWS)
@pytest.mark.parametrize("seed", [3, 4])
def test_floor_pixels_lie_on_the_floor_plane(view: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    scene = sample_scene(rng, view=view)
    camera = sample_camera(rng, scene, width=320, height=240)
    camera = Camera(K=camera.K, dist=BARREL, R=camera.R, t=camera.t, width=320, height=240)
    shape = MouseShape()
    s = render(shape, posed(rng, shape, scene.arena), camera, scene, rng)
    vs, us = np.nonzero(s.region == REGION_FLOOR)
    assert len(vs) > 1000
    rays = exact_rays(camera, np.column_stack([us, vs]).astype(np.float64))
    pts_cam = rays * s.depth[vs, us][:, None].astype(np.float64)
    pts = (pts_cam - camera.t) @ camera.R  # R^T (x - t)
    assert np.abs(pts[:, 2]).max() < 1e-4
    half = np.array(scene.arena) / 2
    assert (np.abs(pts[:, :2]) <= half + 1e-4).all()


@pytest.mark.parametrize("height", [0.15, 0.5])
def test_wall_pixels_lie_on_the_walls_or_their_tops(height: float) -> None:
    """From below the walls' tops (0.15 m) and from above them (0.5 m)."""
    camera = look_at((0.03, -0.02, height), (0.08, 0.0, 0.0), fx=250, fy=250, cx=320, cy=240,
                     width=640, height=480, dist=[-0.05, 0, 0, 0, 0])
    scene = fixed_scene("top", arena=(0.4, 0.3), wall_height=0.3, wall_thickness=0.01)
    shape = MouseShape()
    s = render(shape, forward_kinematics(shape, Pose()), camera, scene,
               np.random.default_rng(0))
    vs, us = np.nonzero(s.region == 2)
    assert len(vs) > 10000
    rays = exact_rays(camera, np.column_stack([us, vs]).astype(np.float64))
    p = (rays * s.depth[vs, us][:, None].astype(np.float64) - camera.t) @ camera.R
    on_x = np.abs(np.abs(p[:, 0]) - 0.2) < 1e-4
    on_y = np.abs(np.abs(p[:, 1]) - 0.15) < 1e-4
    wall = (on_x | on_y) & (p[:, 2] > -1e-4) & (p[:, 2] < 0.3 + 1e-4)
    rim = (np.abs(p[:, 2] - 0.3) < 1e-4) & ((np.abs(p[:, 0]) > 0.2 - 1e-4)
                                             | (np.abs(p[:, 1]) > 0.15 - 1e-4))
    assert (wall | rim).all()
    assert (s.region == 0).any() == (height > 0.3)  # over the walls only from above


def test_clutter_objects_are_in_depth_and_region() -> None:
    pellet = ClutterObject(kind="pellet", x=-0.1, y=0.05, yaw=0.4, radii=(0.006, 0.004, 0.004),
                           albedo=(0.5, 0.4, 0.3))
    scene = fixed_scene("top", clutter=(pellet,))
    camera = camera_over_arena(view="top", height_m=0.4, K=K, dist=None, width=640,
                               height=480)
    shape = MouseShape()
    s = render(shape, forward_kinematics(shape, Pose()), camera, scene,
               np.random.default_rng(0))
    top = 0.85 * 0.004 + 0.004  # it rests on the floor, slightly sunk
    (u, v), = np.rint(camera.project([[-0.1, 0.05, top]])[0]).astype(int)
    assert s.region[v, u] == REGION_CLUTTER and not s.mask[v, u]
    assert s.depth[v, u] == pytest.approx(0.4 - top, abs=1e-4)
    assert (s.region == REGION_CLUTTER).sum() > 50


def test_every_kind_of_scene_renders() -> None:
    kinds = set()
    for seed in range(24):
        rng = np.random.default_rng(seed)
        shape = sample_shape(rng)
        # one in four from below, where the floor is always a clear plate
        view = VIEWS[1] if seed % 4 == 0 else VIEWS[0]
        scene = sample_scene(rng, view=view, colour=None)
        assert view == "top" or (scene.floor == "white" and scene.shadow == 0.0)
        camera = sample_camera(rng, scene, width=160, height=120)
        s = render(shape, posed(rng, shape, scene.arena), camera, scene, rng)
        kinds |= {scene.floor, scene.light, f"colour={scene.colour}"}
        kinds |= {"clutter"} if scene.clutter else set()
        kinds |= {"motion blur"} if scene.motion_blur[0] else set()
        kinds |= {"jpeg"} if scene.jpeg_quality else set()
        assert s.image.shape[:2] == (120, 160) and s.image.dtype == np.uint8
        assert np.isfinite(s.depth).all() and (s.depth >= 0).all()
        assert s.mask.any()
        assert s.image.std() > 2  # not a flat picture
    assert {"white", "black", "textured", "bedding", "infrared", "uneven", "colour=True",
            "colour=False", "clutter", "motion blur", "jpeg"} <= kinds


def test_same_seed_same_bytes_other_seed_other_image() -> None:
    a, _, _ = draw(11, crop=96, colour=None)
    b, _, _ = draw(11, crop=96, colour=None)
    c, _, _ = draw(12, crop=96, colour=None)
    for name in ("image", "depth", "mask", "region"):
        assert getattr(a, name).tobytes() == getattr(b, name).tobytes(), name
    assert a.image.shape != c.image.shape or a.image.tobytes() != c.image.tobytes()
    # the noise alone makes the same scene differ with another generator
    shape = MouseShape()
    state = forward_kinematics(shape, Pose())
    camera = camera_over_arena(view="top", height_m=0.4, K=K, dist=None, width=64, height=48)
    scene = Scene()
    one = render(shape, state, camera, scene, np.random.default_rng(1)).image
    two = render(shape, state, camera, scene, np.random.default_rng(2)).image
    assert one.tobytes() != two.tobytes()


def test_mask_region_and_depth_agree() -> None:
    for seed in range(6):
        s, _, _ = draw(seed, "top", size=(320, 240))
        assert np.array_equal(s.mask, (s.region == REGION_MOUSE).astype(np.uint8))
        assert s.mask.any()
        assert ((s.depth > 0) == (s.region > 0)).all()
        # each mouse pixel is in front of the floor plane behind it
        vs, us = np.nonzero(s.mask)
        rays = exact_rays(s.camera, np.column_stack([us, vs]).astype(np.float64))
        dz = (rays @ s.camera.R)[:, 2]  # arena z change per unit camera z
        t_floor = -s.camera.position[2] / dz
        assert (s.depth[vs, us] < t_floor).all()


def test_a_paw_under_the_body_is_hidden_from_above_and_seen_from_below() -> None:
    shape = MouseShape()
    pose = Pose()
    pose.spine_pitch = np.array([0.1, -0.05, 0.0, -0.05, -0.1])  # low, flat body
    pose.paws[0] = [0.045, 0.004, 0.002]  # left forepaw tucked under the chest
    state = forward_kinematics(shape, pose)
    seen = {}
    for view in VIEWS:
        camera = camera_over_arena(view=view, height_m=0.4, K=K, dist=None, width=640,
                                   height=480)
        s = render(shape, state, camera, fixed_scene(view), np.random.default_rng(0))
        assert s.in_view.all()
        seen[view] = s.visible
    paw = KP["left_forepaw"]
    assert not seen["top"][paw] and seen["bottom"][paw]
    assert seen["top"][KP["spine_center"]] and seen["top"][KP["tail_base"]]
    for name in ("left_ear", "right_ear"):  # the back of the head hides them from below
        assert not seen["bottom"][KP[name]]


def test_keypoints_outside_the_image_are_not_in_view() -> None:
    shape = MouseShape()
    pose = Pose()
    pose.heading = 0.0  # the tail points to -x
    state = forward_kinematics(shape, pose)
    camera = camera_over_arena(view="top", height_m=0.4, K=K, dist=None, width=640,
                               height=480)
    # a window just around the head: the tail is out of it
    px, _ = camera.project(state.keypoints)
    u, v = px[KP["head"]]
    crop = camera.crop(int(u) - 40, int(v) - 40, 80, 80)
    s = render(shape, state, crop, fixed_scene("top"), np.random.default_rng(0))
    for name in ("tail_mid", "tail_tip", "tail_base"):
        assert not s.in_view[KP[name]] and not s.visible[KP[name]]
    assert s.in_view[KP["head"]]
    out = s.keypoints_2d[KP["tail_tip"]]
    assert not (-0.5 <= out[0] < 79.5 and -0.5 <= out[1] < 79.5)


# --------------------------------------------------------------------------- cameras


def test_crop_keeps_projections_consistent() -> None:
    camera = camera_over_arena(view="top", height_m=0.5, K=K, dist=BARREL, width=640,
                               height=480, yaw=0.7)
    pts = np.random.default_rng(0).uniform([-0.2, -0.15, 0.0], [0.2, 0.15, 0.05], (50, 3))
    full, zf = camera.project(pts)
    crop = camera.crop(100, 60, 256, 200)
    sub, zs = crop.project(pts)
    assert np.abs(sub - (full - [100, 60])).max() < 1e-9 and np.array_equal(zf, zs)
    assert crop.roi == (100, 60, 256, 200) and (crop.width, crop.height) == (256, 200)
    twice = crop.crop(10, 20, 64, 64)
    assert twice.roi == (110, 80, 64, 64)
    assert np.abs(twice.project(pts)[0] - (full - [110, 80])).max() < 1e-9
    # a crop renders the same pixels as the full image (ray grids agree to float32)
    shape = MouseShape()
    state = forward_kinematics(shape, Pose())
    scene = fixed_scene("top")
    a = render(shape, state, camera, scene, np.random.default_rng(0))
    x0, y0, w, h = mouse_window(camera, state, (96, 96))
    b = render(shape, state, camera.crop(x0, y0, w, h), scene, np.random.default_rng(0))
    assert np.array_equal(a.region[y0:y0 + h, x0:x0 + w], b.region)
    assert np.abs(a.depth[y0:y0 + h, x0:x0 + w] - b.depth).max() < 1e-5


def test_camera_dict_round_trip_through_json() -> None:
    camera = sample_camera(np.random.default_rng(2), sample_scene(np.random.default_rng(2)),
                           width=640, height=480).crop(5, 7, 300, 200)
    back = Camera.from_dict(json.loads(json.dumps(camera.to_dict())))
    assert back == camera
    assert back.roi == (5, 7, 300, 200)
    with pytest.raises(InputError, match="missing key"):
        Camera.from_dict({"K": K.tolist()})
    with pytest.raises(InputError, match="not a rotation"):
        Camera(K=K, dist=np.zeros(5), R=2 * np.eye(3), t=np.zeros(3), width=4, height=4)


def test_the_renderer_draws_plumb_bob_lenses_only() -> None:
    cam = look_at((0.0, 0.0, 0.4), (0.0, 0.0, 0.0), fx=60, fy=60, cx=31.5, cy=23.5,
                  width=64, height=48)
    fisheye = Camera(K=cam.K, dist=np.zeros(4), R=cam.R, t=cam.t, width=64, height=48,
                     model="equidistant")
    shape = MouseShape()
    with pytest.raises(InputError, match="plumb_bob"):
        render(shape, forward_kinematics(shape, Pose()), fisheye, Scene(),
               np.random.default_rng(0))


def test_look_at_orientation() -> None:
    top = look_at((0.0, 0.0, 0.5), (0.0, 0.0, 0.0), fx=400, fy=400, cx=320, cy=240,
                  width=640, height=480)
    assert np.allclose(top.R @ [0.0, 0.0, 1.0], [0.0, 0.0, -1.0])  # it looks down
    assert np.allclose(top.position, [0.0, 0.0, 0.5])
    (u, v), = top.project([[0.0, 0.1, 0.0]])[0]
    assert v < 240 and abs(u - 320) < 1e-9  # arena +y is up in the image
    (u, v), = top.project([[0.1, 0.0, 0.0]])[0]
    assert u > 320  # and +x to the right
    bottom = camera_over_arena(view="bottom", height_m=0.3, K=K, dist=None, width=640,
                               height=480)
    assert np.allclose(bottom.R @ [0.0, 0.0, 1.0], [0.0, 0.0, 1.0])  # it looks up
    assert bottom.position[2] == pytest.approx(-0.3)


def test_sampled_cameras_frame_the_floor() -> None:
    """The floor fills the image: its corners lie within 10% of the image size of it, and
    its centre region (the middle 80% of each side) is always in view."""
    for seed in range(30):
        rng = np.random.default_rng(seed)
        view = VIEWS[seed % 2]
        scene = sample_scene(rng, view=view)
        cam = sample_camera(rng, scene, width=640, height=480)
        hx, hy = np.array(scene.arena) / 2
        corners = np.array([[sx * hx, sy * hy, 0.0] for sx in (-1, 1) for sy in (-1, 1)])
        px, z = cam.project(corners)
        assert (z > 0).all()
        margin = 0.1 * np.array([640, 480])
        assert ((px >= -0.5 - margin) & (px < np.array([639.5, 479.5]) + margin)).all(), (seed, px)
        inner, zi = cam.project(0.8 * corners)
        assert (zi > 0).all() and ((inner >= -0.5) & (inner < [639.5, 479.5])).all(), seed
        height = cam.position[2] if view == "top" else -cam.position[2]
        assert 0.19 <= height <= 1.0
        assert -0.25 <= cam.dist[0] <= 0.05


def test_mouse_window_frames_the_mouse() -> None:
    camera = camera_over_arena(view="top", height_m=0.5, K=K, dist=None, width=640,
                               height=480)
    pose = Pose()
    pose.position = np.array([0.28, 0.2, 0.012])  # near a corner of the image
    state = forward_kinematics(MouseShape(), pose)
    x0, y0, w, h = mouse_window(camera, state, (128, 128))
    assert (w, h) == (128, 128) and 0 <= x0 <= 640 - 128 and 0 <= y0 <= 480 - 128
    a = mouse_window(camera, state, (128, 128), np.random.default_rng(3))
    assert a == mouse_window(camera, state, (128, 128), np.random.default_rng(3))
    pose.position = np.array([0.0, 0.0, 0.012])
    state = forward_kinematics(MouseShape(), pose)
    x0, y0, _, _ = mouse_window(camera, state, (128, 128))
    px, _ = camera.project(state.keypoints[KP["spine_center"]][None])
    assert x0 < px[0, 0] < x0 + 128 and y0 < px[0, 1] < y0 + 128


# ---------------------------------------------------------------------------- output


def test_grey_and_colour_outputs() -> None:
    grey, _, _ = draw(21, size=(160, 120), colour=False)
    colour, _, _ = draw(21, size=(160, 120), colour=True)
    assert grey.image.shape == (120, 160) and grey.image.dtype == np.uint8
    assert colour.image.shape == (120, 160, 3) and colour.image.dtype == np.uint8
    for s in (grey, colour):
        assert s.depth.shape == (120, 160) and s.depth.dtype == np.float32
        assert s.mask.dtype == np.uint8 and s.region.dtype == np.uint8
        assert s.keypoints_2d.shape == (14, 2) and s.keypoints_camera.shape == (14, 3)
        assert s.visible.dtype == np.bool_ and s.in_view.shape == (14,)
    # a black mouse on a white floor: the mouse is much darker than the floor
    shape = sample_shape(np.random.default_rng(0), fur="black")
    state = forward_kinematics(shape, Pose())
    camera = camera_over_arena(view="top", height_m=0.35, K=K, dist=None, width=640,
                               height=480)
    s = render(shape, state, camera, Scene(floor="white"), np.random.default_rng(0))
    mouse = s.image[s.mask.astype(bool)]
    floor = s.image[s.region == REGION_FLOOR]
    assert np.median(mouse) < 0.4 * np.median(floor)


def test_fur_sheen_lightens_black_fur_but_not_the_silhouette() -> None:
    shape = MouseShape()  # black
    state = forward_kinematics(shape, Pose())
    camera = camera_over_arena(view="top", height_m=0.3, K=K, dist=None, width=640,
                               height=480)
    out = {}
    for sheen in (0.0, 0.1):
        s = render(shape, state, camera, fixed_scene("top", fur_sheen=sheen, fur_texture=0.0),
                   np.random.default_rng(0))
        out[sheen] = s
    assert np.array_equal(out[0.0].mask, out[0.1].mask)
    body = out[0.0].mask.astype(bool)
    matte, shiny = out[0.0].image[body].astype(float), out[0.1].image[body].astype(float)
    assert np.all(shiny >= matte - 1)
    assert np.percentile(shiny - matte, 90) > 10  # a visible highlight along the back
    with pytest.raises(InputError, match="fur_sheen"):
        Scene(fur_sheen=-0.1)


def test_the_lit_open_field_rig_is_well_represented() -> None:
    """About 30% of top views are the classic rig: white floor, white diffuse light,
    strong vignetting, a wide-angle camera with barrel distortion, framed tightly."""
    rigs, barrel = 0, 0
    for seed in range(200):
        rng = np.random.default_rng(seed)
        scene = sample_scene(rng, view="top")
        cam = sample_camera(rng, scene, width=640, height=480)
        if scene.floor == "white" and scene.light == "white" and scene.vignetting >= 0.8 \
                and scene.ambient >= 0.5 and scene.line_darkness <= 0.3:
            rigs += 1
            barrel += cam.dist[0] < 0
    assert 40 <= rigs <= 90
    assert barrel >= 0.65 * rigs


def test_scene_round_trip_and_validation() -> None:
    scenes = [sample_scene(np.random.default_rng(seed)) for seed in range(30)]
    assert any(s.marks for s in scenes) and any(s.clutter for s in scenes)
    assert any(s.lines for s in scenes)
    for scene in scenes:
        text = json.dumps(scene.to_dict())
        assert Scene.from_dict(json.loads(text)) == scene
    with pytest.raises(InputError) as err:
        Scene(view="side", floor="carpet", light="laser")
    assert all(word in str(err.value) for word in ("view", "floor", "light"))
    with pytest.raises(InputError):
        sample_scene(np.random.default_rng(0), view="side")
