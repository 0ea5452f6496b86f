"""The depth stage: the shipped ONNX depth model on rendered frames, made metric by the
arena calibration; its YAML checks; the training path (with the train extra)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from mouse_lifter_ros.core.arena import arena_from_camera
from mouse_lifter_ros.core.democlip import demo_arena, demo_samples
from mouse_lifter_ros.core.depth import DEFAULT_DEPTH_MODEL, DepthModel, load_depth_spec
from mouse_lifter_ros.core.errors import InputError
from mouse_lifter_ros.core.keypoints import ModelError
from mouse_lifter_ros.core.synth.render import Sample


@pytest.fixture(scope="module")
def model() -> DepthModel:
    return DepthModel(arena=demo_arena(), threads=1)


@pytest.fixture(scope="module")
def samples() -> list[Sample]:
    # the demo clip scaled to 4 s: walking (frames 0-40), rearing (~45-60), grooming (100+)
    return [s for s, _, _ in demo_samples(seconds=4.0, fps=30.0)][::10]


def _mouse_errors(d: object, sample: Sample) -> np.ndarray:
    x0, y0, w, h = d.roi  # type: ignore[attr-defined]
    truth = sample.depth[y0:y0 + h, x0:x0 + w]
    on = sample.mask[y0:y0 + h, x0:x0 + w].astype(bool)
    inner = cv2.erode(on.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    inner &= d.mask  # type: ignore[attr-defined]  # off its mask the map has no reading
    return np.abs(d.depth[inner] - truth[inner]) * 1e3  # type: ignore[attr-defined]


def test_metric_depth_of_the_demo_mouse(model: DepthModel, samples: list[Sample]) -> None:
    medians, ious = [], []
    for sample in samples:
        d = model(sample.image)
        assert d.found and d.depth.dtype == np.float32
        x0, y0, w, h = d.roi
        assert d.depth.shape == d.mask.shape == (h, w) and w > 20 and h > 20
        assert x0 >= 0 and x0 + w <= 640 and y0 >= 0 and y0 + h <= 480
        # the window covers the mouse
        ys, xs = np.nonzero(sample.mask)
        assert np.mean((xs >= x0) & (xs < x0 + w) & (ys >= y0) & (ys < y0 + h)) > 0.9
        truth_mask = sample.mask[y0:y0 + h, x0:x0 + w].astype(bool)
        ious.append((d.mask & truth_mask).sum() / (d.mask | truth_mask).sum())
        medians.append(float(np.median(_mouse_errors(d, sample))))
        # off the mouse there is no reading; on it every reading is a depth
        assert np.isnan(d.depth[~d.mask]).all() and (d.height[~d.mask] == 0).all()
        assert np.isfinite(d.depth[d.mask]).all() and (d.depth[d.mask] > 0).all()
    print(f"\ndepth on the demo mouse: median error per frame (mm) "
          f"{np.round(medians, 1).tolist()}, mask IoU {np.round(ious, 2).tolist()}")
    assert np.median(medians) < 5.0 and max(medians) < 12.0, medians
    assert min(ious) > 0.6, ious


def test_no_mouse_gives_an_empty_map(model: DepthModel) -> None:
    d = model(np.full((480, 640), 230, np.uint8))
    assert not d.found and d.depth.shape == (0, 0) and d.roi == (0, 0, 0, 0)


def test_resized_frames_use_the_scaled_calibration(model: DepthModel,
                                                   samples: list[Sample]) -> None:
    sample = samples[1]
    full = model(sample.image)
    half = model(cv2.resize(sample.image, (320, 240), interpolation=cv2.INTER_AREA))
    assert half.found
    # the same mouse at half the resolution: about the same depths on it
    assert abs(np.median(half.depth[half.mask]) - np.median(full.depth[full.mask])) < 0.004


def test_another_camera(model: DepthModel, samples: list[Sample]) -> None:
    """The network works in heights; another camera height changes depths, not heights."""
    from mouse_lifter_ros.core.body import MouseShape, Pose, forward_kinematics
    from mouse_lifter_ros.core.democlip import demo_camera, demo_scene
    from mouse_lifter_ros.core.synth.render import camera_over_arena, render

    cam0 = demo_camera()
    cam = camera_over_arena(view="top", height_m=0.35, K=cam0.K, dist=None, width=640,
                            height=480)
    state = forward_kinematics(MouseShape(), Pose(position=np.array([0.02, 0.01, 0.012])))
    sample = render(MouseShape(), state, cam, demo_scene(), np.random.default_rng(0))
    m = DepthModel(arena=arena_from_camera(cam), threads=1)
    d = m(sample.image)
    assert d.found and np.median(_mouse_errors(d, sample)) < 5.0


def test_bad_frames_and_model_files(model: DepthModel, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="uint8"):
        model(np.zeros((480, 640), np.float32))  # type: ignore[arg-type]
    bad = tmp_path / "d.yaml"
    bad.write_text("name: x\noutput: {stride: 0}\ninput: {width: 160, height: 120}\n")
    with pytest.raises(ModelError) as err:
        load_depth_spec(bad)
    msg = str(err.value)
    assert str(bad) in msg and "'onnx' missing" in msg and "'detector' missing" in msg
    assert "stride 0" in msg and "unit None" in msg and "square grey crop" in msg
    corrupt = tmp_path / "depth.onnx"
    corrupt.write_bytes(b"not an onnx file")
    spec = load_depth_spec(DEFAULT_DEPTH_MODEL)
    text = DEFAULT_DEPTH_MODEL.read_text().replace("onnx: depth.onnx",
                                                   f"onnx: {corrupt}")
    text = text.replace(f"detector: {spec.detector.relative_to(DEFAULT_DEPTH_MODEL.parent)}",
                        f"detector: {spec.detector}")
    (tmp_path / "c.yaml").write_text(text)
    with pytest.raises(ModelError, match="cannot load it"):
        DepthModel(tmp_path / "c.yaml", arena=demo_arena())


def test_a_bottom_view_is_refused_by_the_top_view_model() -> None:
    from mouse_lifter_ros.core.democlip import demo_camera
    from mouse_lifter_ros.core.synth.render import camera_over_arena

    cam = camera_over_arena(view="bottom", height_m=0.4, K=demo_camera().K, dist=None,
                            width=640, height=480)
    with pytest.raises(ModelError, match=r"trained on top views.*under the floor"):
        DepthModel(DEFAULT_DEPTH_MODEL, arena=arena_from_camera(cam))
    # without a model the calibration's view picks the bottom-view one
    assert DepthModel(arena=arena_from_camera(cam), threads=1).spec.view == "bottom"


def test_tiny_training_run_exports_a_usable_model(tmp_path: Path) -> None:
    pytest.importorskip("torch", reason="the train extra (PyTorch) is not installed")
    from mouse_lifter_ros.training.traindepth import TrainDepthConfig, train_depth

    cfg = TrainDepthConfig(out=tmp_path / "m", crops=12, val=4, steps=2, batch=4, workers=1,
                           threads=1)
    log = train_depth(cfg)
    assert set(log["held_out"]) == {"height_mae_mm", "height_median_mm", "mask_iou",
                                    "raised_mae_mm", "raised_bias_mm"}
    m = DepthModel(cfg.out / "default.yaml", arena=demo_arena(), threads=1)
    sample = next(iter(demo_samples(seconds=0.1)))[0]
    d = m(sample.image)
    assert d.depth.dtype == np.float32  # untrained: any values, but the path runs


def test_training_extends_a_cached_render_and_starts_from_given_weights(
        tmp_path: Path) -> None:
    """More crops than a cached run renders only the new ones (item i depends on the
    seed and i alone); ``init`` starts from an earlier run's weights."""
    torch = pytest.importorskip("torch", reason="the train extra (PyTorch) is not installed")
    from mouse_lifter_ros.training.datadepth import depth_crop
    from mouse_lifter_ros.training.traindepth import TrainDepthConfig, train_depth

    cache = tmp_path / "cache"
    first = TrainDepthConfig(out=tmp_path / "a", crops=6, val=2, steps=1, batch=2,
                             workers=1, threads=1, cache=cache)
    train_depth(first)
    more = TrainDepthConfig(out=tmp_path / "b", crops=9, val=3, steps=0, batch=2, workers=1,
                            threads=1, cache=cache, init=first.out / "depth.pt")
    train_depth(more)
    small = np.load(cache / "depth_crops_m_s0_n6_160.npz")
    big = np.load(cache / "depth_crops_m_s0_n9_160.npz")
    assert big["images"].shape[0] == 9
    np.testing.assert_array_equal(big["images"][:6], small["images"])
    img, height, mask = depth_crop((0, 7))
    np.testing.assert_array_equal(big["images"][7], img)
    np.testing.assert_array_equal(big["heights"][7], height)
    np.testing.assert_array_equal(big["masks"][7], mask)
    a = torch.load(first.out / "depth.pt", weights_only=True)
    b = torch.load(more.out / "depth.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)  # no step taken: the init's weights


def test_raised_cells_weigh_in_the_height_loss_as_asked(tmp_path: Path) -> None:
    """A prediction 1 cm low on a raised cell (6 cm) and right on a low one (3 cm): the
    height term is the raised cell's error over the weights' sum."""
    torch = pytest.importorskip("torch", reason="the train extra (PyTorch) is not installed")
    from mouse_lifter_ros.training.traindepth import TrainDepthConfig, depth_loss, train_depth

    height = torch.tensor([[[[6.0, 3.0]]]])  # DEPTH_UNIT (cm)
    cover = torch.ones_like(height)
    pred = torch.tensor([[[[5.0, 3.0]]]])

    def net(img: object) -> tuple[object, object]:
        return pred, torch.full_like(height, 30.0)  # a certain mask: no mask loss to speak of

    batch = (torch.zeros(1), height, cover)
    plain = float(depth_loss(net, batch))  # type: ignore[arg-type]
    weighted = float(depth_loss(net, batch, raised_weight=3.0))  # type: ignore[arg-type]
    assert plain == pytest.approx(4.0 * 1.0 / 2.0, abs=1e-6)
    assert weighted == pytest.approx(4.0 * 3.0 / 4.0, abs=1e-6)
    with pytest.raises(ValueError, match=r"--crops 2 must exceed --val 2; --raised-weight 0.0"):
        train_depth(TrainDepthConfig(out=tmp_path, crops=2, val=2, raised_weight=0.0))
    assert not any(tmp_path.iterdir())  # refused before anything is drawn or written
