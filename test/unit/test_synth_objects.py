"""Tests of the synthetic distractor objects (cups, shelters, tubes, cables...): their
geometry, shading and occlusion in the renderer, their own random stream (every draw of
the scenes before them stays) and the held-out frames of hard scene kinds."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest

from mouse_lifter_ros.core.body import KEYPOINTS, BodyState, MouseShape, Pose, forward_kinematics
from mouse_lifter_ros.core.camera import Camera
from mouse_lifter_ros.core.democlip import demo_scene
from mouse_lifter_ros.core.errors import InputError
from mouse_lifter_ros.core.synth.dataset import SynthConfig, render_item
from mouse_lifter_ros.core.synth.heldout import (
    HELD_OUT_KINDS,
    SMALL_MOUSE_PX,
    SMALL_MOUSE_WIDTH,
    distractor_frames,
    held_out_frame,
    held_out_frames,
)
from mouse_lifter_ros.core.synth.objects import (
    OBJECT_KINDS,
    SceneObject,
    clear_of_mouse,
    clearance,
    draw_object,
    inside_walls,
    overlaps,
    sample_objects,
)
from mouse_lifter_ros.core.synth.render import (
    REGION_CLUTTER,
    REGION_FLOOR,
    REGION_MOUSE,
    Sample,
    Scene,
    camera_over_arena,
    render,
    sample_scene,
)

KP = {name: i for i, name in enumerate(KEYPOINTS)}
K = np.array([[800.0, 0.0, 319.5], [0.0, 800.0, 239.5], [0.0, 0.0, 1.0]])
CAM_H = 0.6
DARK_CUP = SceneObject(kind="cup", x=0.0, y=0.0, yaw=0.0, size=(0.07, 0.07, 0.05),
                       albedo=(0.03, 0.03, 0.03), thickness=0.003)


def quiet(view: str = "top", **kw: object) -> Scene:
    """A white-floored scene without noise, blur or shadows' softness."""
    base: dict[str, object] = {
        "view": view, "noise": 0.0, "shot_noise": 0.0, "blur_sigma": 0.0, "flare": 0.0,
        "light_dir": (0.0, 0.0, 1.0 if view == "top" else -1.0)}
    base.update(kw)
    return Scene(**base)  # type: ignore[arg-type]


def camera(view: str = "top") -> Camera:
    return camera_over_arena(view=view, height_m=CAM_H, K=K, dist=None, width=640, height=480)


def mouse_at(x: float, y: float, heading: float = 0.0) -> tuple[MouseShape, BodyState]:
    shape = MouseShape()
    pose = Pose()
    pose.position = np.array([x, y, pose.position[2]])
    pose.heading = heading
    return shape, forward_kinematics(shape, pose)


def draw(scene: Scene, shape: MouseShape, state: BodyState, view: str = "top") -> Sample:
    return render(shape, state, camera(view), scene, np.random.default_rng(0))


# ------------------------------------------------------------ the draws that existed


# render_item(SynthConfig(count=1, seed=7), i) keypoints (px) as the renderer computed
# them before the objects existed (the commit before them); items 1 and 2 now hold
# objects (two cups; a tube), and their mice, cameras and visibility are those.
OLD_KEYPOINTS = {
    0: [[591.126, 297.514], [561.293, 312.511], [578.206, 331.662], [574.834, 313.717],
        [561.42, 324.542], [536.528, 344.082], [512.488, 360.182], [488.424, 375.06],
        [448.671, 389.258], [405.767, 388.641], [534.547, 320.43], [551.849, 342.277],
        [487.595, 344.504], [512.032, 381.287]],
    1: [[340.748, 290.852], [374.608, 282.544], [363.091, 262.87], [356.145, 280.31],
        [358.6, 277.012], [359.455, 273.152], [360.711, 269.365], [364.122, 264.201],
        [413.589, 232.362], [461.649, 193.984], [338.298, 297.77], [331.156, 287.747],
        [363.523, 280.224], [340.665, 252.202]],
    2: [[46.028, 173.697], [94.86, 190.208], [95.217, 159.744], [78.028, 174.668],
        [97.635, 175.329], [129.089, 176.296], [155.934, 177.103], [182.236, 177.821],
        [226.418, 181.322], [270.394, 187.042], [73.271, 190.747], [67.42, 161.842],
        [164.14, 198.268], [162.695, 151.835]],
}
OLD_VISIBLE = {
    0: [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 0],
    1: [1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 0, 1],
    2: [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0],
}


def test_dataset_items_keep_their_mouse_pose_and_camera() -> None:
    cfg = SynthConfig(count=1, seed=7)
    kinds = []
    for i, expected in OLD_KEYPOINTS.items():
        item = render_item(cfg, i)
        sample, _, _ = next(item.frames)
        np.testing.assert_allclose(sample.keypoints_2d, expected, atol=2e-3)
        assert sample.visible.astype(int).tolist() == OLD_VISIBLE[i]
        kinds.append([o.kind for o in item.scene.objects])
    assert kinds == [[], ["cup", "cup"], ["tube"]]


def test_objects_come_from_their_own_stream() -> None:
    with_objects = 0
    for seed in range(60):
        a, b = np.random.default_rng(seed), np.random.default_rng(seed)
        view = "top" if seed % 3 else "bottom"
        scene = sample_scene(a, view=view, colour=None)
        old = sample_scene(b, view=view, colour=None, objects=False)
        assert old.objects == ()
        assert replace(scene, objects=(), glare=()) == old
        assert a.random() == b.random()  # the camera, mouse and pose draws that follow
        with_objects += bool(scene.objects)
    assert 15 <= with_objects <= 45


def test_sampled_objects_fit_and_are_often_dark() -> None:
    rng = np.random.default_rng(3)
    objects = []
    for _ in range(150):
        arena = (float(rng.uniform(0.3, 0.6)), float(rng.uniform(0.3, 0.6)))
        drawn = sample_objects(rng, arena, 0.2)
        assert len(drawn) <= 3
        for i, obj in enumerate(drawn):
            assert inside_walls(obj, arena)
            assert not any(overlaps(obj, other) for other in drawn[i + 1:])
        objects.extend(drawn)
    kinds = {o.kind for o in objects}
    assert kinds == set(OBJECT_KINDS)
    assert 0.4 <= np.mean([o.dark for o in objects]) <= 0.75
    blobs = [o for o in objects if o.kind in ("cup", "bowl", "shelter", "tube", "half_tube")]
    lengths = np.array([o.size[0] for o in blobs])
    assert lengths.min() >= 0.04 and lengths.max() <= 0.16  # 0.5-1.5 mouse lengths or so


def test_demo_scene_has_no_objects() -> None:
    assert demo_scene().objects == ()


def test_scene_with_objects_round_trips_through_json() -> None:
    cable = SceneObject(kind="cable", x=0.05, y=0.0, yaw=0.0, size=(0.1, 0.004, 0.004),
                        albedo=(0.02, 0.02, 0.02), path=((0.0, 0.0), (0.05, 0.02), (0.1, 0.0)))
    scene = quiet(objects=(DARK_CUP, cable))
    again = Scene.from_dict(json.loads(json.dumps(scene.to_dict())))
    assert again == scene


def test_bad_objects_are_refused() -> None:
    with pytest.raises(InputError, match="kind"):
        SceneObject(kind="chair", x=0, y=0, yaw=0, size=(0.1, 0.1, 0.1), albedo=(0, 0, 0))
    with pytest.raises(InputError, match="thickness"):
        replace(DARK_CUP, thickness=0.05)
    with pytest.raises(InputError, match="path"):
        SceneObject(kind="cable", x=0, y=0, yaw=0, size=(0.1, 0.004, 0.004), albedo=(0, 0, 0))


# ------------------------------------------------------------- geometry and shading


@pytest.mark.parametrize("kind", OBJECT_KINDS)
def test_every_kind_renders_as_region_3(kind: str) -> None:
    rng = np.random.default_rng(OBJECT_KINDS.index(kind))
    obj = None
    while obj is None:
        obj = draw_object(rng, kind, (0.45, 0.45), 0.2, dark=False, centre=(0.0, 0.0))
    shape, state = mouse_at(0.15, 0.17)
    for view in ("top", "bottom"):
        sample = draw(quiet(view, objects=(obj,)), shape, state, view)
        covered = int((sample.region == REGION_CLUTTER).sum())
        assert covered > 150, (kind, view, covered)
        assert (sample.depth[sample.region == REGION_CLUTTER] > 0).all()


def test_cup_geometry_rim_inside_and_outside() -> None:
    shape, state = mouse_at(0.15, 0.17)
    sample = draw(quiet(objects=(DARK_CUP,)), shape, state)
    f = K[0, 0]
    r_px = 0.035 * f / (CAM_H - 0.05)  # the rim's outer edge, seen from the camera
    v, u = 239, 319  # straight under the camera: the cup's inner bottom
    assert sample.region[v, u] == REGION_CLUTTER
    assert sample.depth[v, u] == pytest.approx(CAM_H - 0.003, abs=2e-4)
    rim = sample.depth[v, round(u + r_px - 1.5)]
    assert rim == pytest.approx(CAM_H - 0.05, abs=2e-4)
    assert sample.region[v, round(u + r_px + 2)] == REGION_FLOOR


def test_dark_object_is_dark_in_visible_and_infrared_light() -> None:
    shape, state = mouse_at(0.15, 0.17)
    for light, ratio in (("white", 0.25), ("infrared", 0.6)):
        scene = quiet(objects=(replace(DARK_CUP, size=(0.07, 0.07, 0.02)),), light=light,
                      light_dir=(0.3, 0.2, math.sqrt(0.87)), shadow=0.4)
        sample = draw(scene, shape, state)
        img = sample.image.astype(float)
        obj = img[sample.region == REGION_CLUTTER].mean()
        floor = img[sample.region == REGION_FLOOR].mean()
        assert obj < ratio * floor, (light, obj, floor)


def test_objects_cast_shadows_on_the_floor() -> None:
    shape, state = mouse_at(0.15, 0.17)
    light = (0.6, 0.0, 0.8)  # from +x: the shadow falls towards -x
    white = replace(DARK_CUP, albedo=(0.8, 0.8, 0.8))
    sample = draw(quiet(objects=(white,), light_dir=light, shadow=0.5), shape, state)
    bare = draw(quiet(light_dir=light, shadow=0.5), shape, state)
    v = 239
    u_shadow = round(319 - 0.045 * K[0, 0] / CAM_H)  # just past the cup on its -x side
    u_lit = round(319 + 0.045 * K[0, 0] / CAM_H)
    assert sample.region[v, u_shadow] == sample.region[v, u_lit] == REGION_FLOOR
    assert int(sample.image[v, u_shadow]) < 0.8 * int(bare.image[v, u_shadow])
    assert abs(int(sample.image[v, u_lit]) - int(bare.image[v, u_lit])) < 0.15 * int(
        bare.image[v, u_lit])


def test_object_hides_the_mouse_and_its_keypoints() -> None:
    shape, state = mouse_at(0.0, 0.0)
    head = state.joint("head")
    roof = SceneObject(kind="shelter", x=float(head[0]) + 0.01, y=float(head[1]), yaw=0.0,
                       size=(0.05, 0.06, 0.06), albedo=(0.5, 0.1, 0.1), thickness=0.002)
    assert clear_of_mouse((roof,), shape, [state]) == (roof,)  # the mouse fits under it
    seen = draw(quiet(), shape, state)
    hidden = draw(quiet(objects=(roof,)), shape, state)
    head_kps = [KP[k] for k in ("nose", "left_ear", "right_ear", "head")]
    assert seen.visible[head_kps].all()
    assert not hidden.visible[head_kps].any()
    assert hidden.in_view.all()
    assert hidden.visible[KP["tail_base"]] and hidden.visible[KP["tail_mid"]]
    assert 0 < hidden.mask.sum() < 0.8 * seen.mask.sum()
    np.testing.assert_array_equal(hidden.keypoints_2d, seen.keypoints_2d)


def test_mouse_hides_a_cable_under_it() -> None:
    shape, state = mouse_at(0.0, 0.0, heading=0.0)
    cable = SceneObject(kind="cable", x=0.0, y=-0.06, yaw=0.0, size=(0.12, 0.004, 0.004),
                        albedo=(0.02, 0.02, 0.02), path=((0.0, 0.0), (0.0, 0.12)))
    assert clear_of_mouse((cable,), shape, [state]) == (cable,)
    sample = draw(quiet(objects=(cable,)), shape, state)
    u, v = np.round(sample.keypoints_2d[KP["spine_center"]]).astype(int)
    assert sample.region[v, u] == REGION_MOUSE
    assert (sample.region == REGION_CLUTTER).sum() > 100
    assert sample.visible[KP["spine_center"]]


def test_clear_of_mouse_drops_what_the_mouse_would_pass_through() -> None:
    shape, state = mouse_at(0.0, 0.0)
    centre = state.joint("spine_center")
    on = replace(DARK_CUP, x=float(centre[0]), y=float(centre[1]))
    far = replace(DARK_CUP, x=0.15, y=0.15)
    assert clear_of_mouse((on, far), shape, [state]) == (far,)
    assert clearance(far, shape, state) > 0.05 > 0.0 > clearance(on, shape, state)
    low = SceneObject(kind="shelter", x=float(centre[0]), y=float(centre[1]), yaw=0.0,
                      size=(0.2, 0.08, 0.015), albedo=(0.5, 0.5, 0.5), thickness=0.002)
    assert clear_of_mouse((low,), shape, [state]) == ()  # too low a roof for the mouse


# -------------------------------------------------------------------- held-out frames


def test_distractor_frames_hold_a_dark_object_near_the_mouse() -> None:
    frames = distractor_frames(11, 3, size=(480, 360))
    for f in frames:
        assert f.kind == "distractor"
        assert f.image.shape[:2] == (360, 480) and f.image.dtype == np.uint8
        assert f.keypoints.shape == (14, 2) and f.visible.shape == (14,)
        assert f.in_view.all() and f.visible.sum() >= 7
        assert f.objects[0].dark and f.dark_objects[0]
        assert f.object_boxes.shape == (len(f.objects), 4)
        assert not np.isnan(f.object_boxes[0]).any()
        x0, y0, x1, y1 = f.object_boxes[0]
        assert x1 > x0 and y1 > y0
        obj_px = f.sample.region[int(y0):int(y1) + 1, int(x0):int(x1) + 1] == REGION_CLUTTER
        assert obj_px.sum() > 30
        mx0, my0, mx1, my1 = f.mouse_box
        assert (mx0 <= f.keypoints[KP["spine_center"], 0] <= mx1
                and my0 <= f.keypoints[KP["spine_center"], 1] <= my1)
        # near: the object's box centre lies within 4 mouse lengths of the body's
        gap = np.hypot(0.5 * (x0 + x1) - 0.5 * (mx0 + mx1), 0.5 * (y0 + y1) - 0.5 * (my0 + my1))
        assert gap < 4.0 * f.mouse_length_px
    # frame i does not depend on how many are drawn
    again = held_out_frame("distractor", 11, 2, (480, 360))
    np.testing.assert_array_equal(again.image, frames[2].image)
    np.testing.assert_array_equal(again.keypoints, frames[2].keypoints)


def test_held_out_kinds() -> None:
    ir = held_out_frames("infrared", 5, 1, (320, 240))[0]
    assert ir.scene.light == "infrared" and ir.image.ndim == 2
    bedding = held_out_frames("bedding", 5, 1, (320, 240), dark_object=True)[0]
    assert bedding.scene.floor == "bedding" and bedding.objects[0].dark
    small = held_out_frames("small_mouse", 5, 1)[0]
    h, w = small.image.shape[:2]
    assert SMALL_MOUSE_WIDTH[0] <= w <= SMALL_MOUSE_WIDTH[1] and 0.69 * w <= h <= 0.96 * w
    assert SMALL_MOUSE_PX[0] <= small.mouse_length_px <= SMALL_MOUSE_PX[1]
    assert small.in_view.all()
    assert set(HELD_OUT_KINDS) == {"distractor", "infrared", "bedding", "small_mouse"}
    with pytest.raises(InputError, match="kind"):
        held_out_frames("fog", 0, 1)
