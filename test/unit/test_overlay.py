"""Tests of mouse_lifter_ros.core.overlay: drawing poses and writing labelled videos."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from mouse_lifter_ros.core.errors import InputError, ParameterError, SourceError
from mouse_lifter_ros.core.keypoints import DEFAULT_MODEL, KeypointModel
from mouse_lifter_ros.core.overlay import (
    draw_pose,
    keypoint_colours,
    skeleton_indices,
    write_labelled_video,
)

NAMES = ("nose", "head", "tail_base")
XY = np.array([[100.25, 80.5], [140.0, 90.0], [220.75, 150.0]], np.float32)


def saturation(img: np.ndarray) -> np.ndarray:
    """Per-pixel colourfulness (max - min channel) of a BGR image."""
    return img.max(axis=2).astype(int) - img.min(axis=2).astype(int)


def test_colours_are_distinct_and_saturated() -> None:
    cols = keypoint_colours(14)
    assert len(set(cols)) == 14
    assert all(max(c) - min(c) > 200 for c in cols)
    assert keypoint_colours(0) == [] and len(keypoint_colours(1)) == 1


def test_skeleton_by_names_indices_and_aliases() -> None:
    assert skeleton_indices([["nose", "head"], [1, 2]], NAMES) == [(0, 1), (1, 2)]
    assert skeleton_indices([("0", "2")], NAMES) == [(0, 2)]  # digit strings are indices
    assert skeleton_indices([("snout", "head")], NAMES, ("snout", "h", "t")) == [(0, 1)]
    with pytest.raises(InputError, match="tail_tip"):
        skeleton_indices([("nose", "head"), ("tail_tip", "nose"), (7, 0)], NAMES)


def test_grey_frame_drawn_in_colour_at_keypoints_and_along_bones() -> None:
    grey = np.full((240, 320), 200, np.uint8)
    img = draw_pose(grey, XY, np.array([0.9, 0.9, 0.9]), names=NAMES,
                    skeleton=[("nose", "head"), ("head", "tail_base")])
    assert img.shape == (240, 320, 3) and img.dtype == np.uint8
    assert (grey == 200).all()  # the input is not touched
    sat = saturation(img)
    cols = keypoint_colours(3)
    for (x, y), col in zip(XY, cols, strict=True):
        px = img[round(y), round(x)].astype(int)
        assert np.abs(px - np.array(col)).max() < 40, (px, col)
    for a, b in ((0, 1), (1, 2)):  # the middle of each bone is coloured
        mid = 0.5 * (XY[a] + XY[b])
        assert sat[round(mid[1]) - 1:round(mid[1]) + 2, round(mid[0]) - 1:round(mid[0]) + 2
                   ].max() > 100
    # only the dots and bones are coloured: a line's pixels, not whole regions
    assert (sat > 50).sum() < 0.05 * sat.size


def test_nothing_drawn_when_all_nan_or_below_cutoff() -> None:
    frame = np.full((120, 160, 3), 90, np.uint8)
    nan = np.full((3, 2), np.nan, np.float32)
    assert (draw_pose(frame, nan, None, names=NAMES, skeleton=[(0, 1), (1, 2)]) == 90).all()
    low = draw_pose(frame, XY * 0.5, np.array([0.1, 0.2, 0.49]), names=NAMES,
                    skeleton=[(0, 1)], p_cutoff=0.5)
    assert (low == 90).all()
    nan_trails = np.full((5, 3, 2), np.nan)
    assert (draw_pose(frame, nan, None, names=NAMES, trails=nan_trails) == 90).all()


def test_bgr_in_place_and_copy() -> None:
    frame = np.full((240, 320, 3), 255, np.uint8)
    out = draw_pose(frame, XY, None, names=NAMES)
    assert out is not frame and (frame == 255).all() and (out != 255).any()
    same = draw_pose(frame, XY, None, names=NAMES, in_place=True)
    assert same is frame and (frame != 255).any()


def test_trails_fade_with_age() -> None:
    frame = np.full((200, 400, 3), 255, np.uint8)
    xy = np.array([[350.0, 100.0]])
    trails = np.array([[[50.0 + 60 * i, 100.0]] for i in range(5)])  # x 50 .. 290, oldest first
    img = draw_pose(frame, xy, None, names=("nose",), trails=trails, thickness=3)
    sat = saturation(img)[100]
    old, new = sat[60:100].max(), sat[300:340].max()
    assert new > old > 10  # both drawn, the older fainter
    assert sat[:40].max() == 0  # nothing before the oldest point


def test_bad_shapes_are_input_errors() -> None:
    with pytest.raises(InputError, match=r"\(3, 2\)"):
        draw_pose(np.zeros((10, 10), np.uint8), XY[:2], None, names=NAMES)
    with pytest.raises(InputError, match="uint8"):
        draw_pose(np.zeros((10, 10), np.float32), XY, None, names=NAMES)
    with pytest.raises(InputError, match="trails"):
        draw_pose(np.zeros((10, 10), np.uint8), XY, None, names=NAMES,
                  trails=np.zeros((2, 4, 2)))


# ------------------------------------------------------------------ labelled videos


def constant_model(tmp: Path, xy_in: list[tuple[int, int]], *, conf: float = 0.9) -> Path:
    """A crop-mode-full model (64x48 grey in, stride 4 heatmaps) whose heatmap peaks are
    fixed at cells ``xy_in``, whatever the image: its YAML's path."""
    import onnx
    import yaml
    from onnx import TensorProto, helper, numpy_helper

    k, h, w = len(xy_in), 12, 16
    hm = np.zeros((1, k, h, w), np.float32)
    for j, (cx, cy) in enumerate(xy_in):
        hm[0, j, cy, cx] = conf
    nodes = [
        helper.make_node("ReduceMean", ["image"], ["m"], keepdims=0),
        helper.make_node("Mul", ["m", "zero"], ["z"]),
        helper.make_node("Add", ["hm_const", "z"], ["heatmaps"]),
    ]
    graph = helper.make_graph(
        nodes, "const", [helper.make_tensor_value_info("image", TensorProto.FLOAT,
                                                       [1, 1, 48, 64])],
        [helper.make_tensor_value_info("heatmaps", TensorProto.FLOAT, [1, k, h, w])],
        [numpy_helper.from_array(hm, "hm_const"),
         numpy_helper.from_array(np.zeros((), np.float32), "zero")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
              tmp / "const.onnx")
    desc = {"name": "const-test", "onnx": "const.onnx", "keypoints": list(NAMES),
            "skeleton": [["nose", "head"], ["head", "tail_base"]],
            "input": {"width": 64, "height": 48, "channels": 1},
            "output": {"kind": "heatmap", "stride": 4, "grid_offset": 1.5,
                       "activation": "none"},
            "crop": {"mode": "full"}}
    path = tmp / "const.yaml"
    path.write_text(yaml.safe_dump(desc))
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mouse_lifter_ros.core.democlip import write_demo_clip

    return write_demo_clip(tmp_path_factory.mktemp("clip"), seconds=1.0).video


def read_all(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames


def test_labelled_video_and_dlc_files(clip: Path, tmp_path: Path) -> None:
    import pandas as pd

    model = KeypointModel(constant_model(tmp_path, [(4, 3), (8, 6), (12, 9)]), device="cpu",
                          threads=1)
    out = tmp_path / "out" / "labelled.mp4"
    stats = write_labelled_video(clip, out, model, dlc_stem=tmp_path / "pred",
                                 progress=False)
    src = read_all(clip)
    frames = read_all(out)
    assert len(src) == 30 and len(frames) == len(src) == stats["frames"]
    assert frames[0].shape == (*src[0].shape[:2], 3)
    assert stats["frames_with_mouse"] == 30 and stats["width"] == 640
    assert stats["mean_confidence"] == pytest.approx(0.9, abs=1e-6)
    assert stats["inference_ms_p99"] >= stats["inference_ms_p50"] > 0
    # keypoint 0 at input px 4*4+1.5 = 17.5 -> full frame (17.5 + 0.5) * 10 - 0.5
    x0, y0 = (17.5 + 0.5) * 10 - 0.5, (13.5 + 0.5) * 10 - 0.5
    assert saturation(frames[10])[round(y0) - 1:round(y0) + 2,
                                  round(x0) - 1:round(x0) + 2].min() > 80
    df = pd.read_hdf(stats["dlc_h5"])
    assert len(df) == 30 and list(df.index) == list(range(30))
    assert df.columns.get_level_values("scorer")[0] == "const-test"
    assert list(dict.fromkeys(df.columns.get_level_values("bodyparts"))) == list(NAMES)
    assert df[("const-test", "nose", "x")].to_numpy() == pytest.approx(np.full(30, x0))
    assert df[("const-test", "nose", "y")].to_numpy() == pytest.approx(np.full(30, y0))
    assert df[("const-test", "nose", "likelihood")].to_numpy() == pytest.approx(0.9)
    csv = pd.read_csv(stats["dlc_csv"], header=[0, 1, 2], index_col=0)
    assert len(csv) == 30


def test_max_frames_no_trail_and_low_confidence(clip: Path, tmp_path: Path) -> None:
    model = KeypointModel(constant_model(tmp_path, [(4, 3), (8, 6), (12, 9)], conf=0.3),
                          device="cpu", threads=1)
    stats = write_labelled_video(clip, tmp_path / "l.avi", model, trail=0, max_frames=7,
                                 progress=False)
    assert stats["frames"] == 7 and len(read_all(tmp_path / "l.avi")) == 7
    assert stats["frames_with_mouse"] == 0 and stats["mean_confidence"] is None
    assert stats["dlc_h5"] is None


def test_missing_or_bad_video_and_arguments(tmp_path: Path) -> None:
    model = KeypointModel(constant_model(tmp_path, [(1, 1), (2, 2), (3, 3)]), device="cpu",
                          threads=1)
    with pytest.raises(SourceError, match=r"nothere\.mp4"):
        write_labelled_video(tmp_path / "nothere.mp4", tmp_path / "o.mp4", model,
                             progress=False)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 100)
    with pytest.raises(SourceError, match=r"junk\.mp4"):
        write_labelled_video(junk, tmp_path / "o.mp4", model, progress=False)
    with pytest.raises(ParameterError) as err:
        write_labelled_video(junk, tmp_path / "o.mp4", model, p_cutoff=2.0, trail=-1,
                             max_frames=0, progress=False)
    assert all(w in str(err.value) for w in ("p_cutoff", "trail", "max_frames"))
    with pytest.raises(InputError, match="suffix"):
        write_labelled_video(junk, tmp_path / "o.mkv", model, progress=False)


@pytest.mark.skipif(not DEFAULT_MODEL.is_file(), reason=f"no shipped model at {DEFAULT_MODEL}")
def test_shipped_model_finds_the_demo_mouse(clip: Path, tmp_path: Path) -> None:
    model = KeypointModel(device="cpu", threads=1)
    stats = write_labelled_video(clip, tmp_path / "d.mp4", model, max_frames=10,
                                 progress=False)
    assert stats["frames"] == 10 and stats["frames_with_mouse"] >= 8
