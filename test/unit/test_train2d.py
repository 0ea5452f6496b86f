"""The training path of the 2D stage (needs the ``train`` extra: PyTorch and onnx)."""

from __future__ import annotations

import re
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the train extra (PyTorch) is not installed")
pytest.importorskip("onnx", reason="the train extra (onnx) is not installed")

from mouse_lifter_ros.core.body import KEYPOINTS  # noqa: E402
from mouse_lifter_ros.core.keypoints import KeypointModel, body_box  # noqa: E402
from mouse_lifter_ros.training import train2d as T  # noqa: E402
from mouse_lifter_ros.training.data2d import detector_frame, keypoint_window  # noqa: E402
from mouse_lifter_ros.training.nets import KeypointNet, export_onnx  # noqa: E402

LABELS = (Path(__file__).resolve().parents[2].parent / "shared" / "data" / "openfield-dlc"
          / "labeled" / "CollectedData.csv")


def test_onnx_export_matches_torch(tmp_path: Path) -> None:
    import onnxruntime as ort

    torch.manual_seed(0)
    net = KeypointNet().eval()
    path = tmp_path / "kp.onnx"
    export_onnx(net, str(path), (1, 1, 160, 160), output_names=("heatmaps", "offsets"))
    x = np.random.default_rng(0).normal(size=(1, 1, 160, 160)).astype(np.float32)
    with torch.no_grad():
        ref = [t.numpy() for t in net(torch.from_numpy(x))]
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"image": x})
    for a, b in zip(ref, got, strict=True):
        assert a.shape == b.shape
        assert np.abs(a - b).max() < 1e-4


def test_windows_and_frames_carry_their_labels() -> None:
    img, kp, flags = keypoint_window((3, 0))
    assert img.shape == (224, 224) and img.dtype == np.uint8
    assert kp.shape == (14, 2) and set(np.unique(flags)) <= {0, 1, 2}
    centre, size = body_box(kp)
    # the window is WINDOW_SCALE (2) body sizes wide, centred on the body box
    assert np.allclose(centre, 111.5, atol=1.0) and abs(size - 112) < 2
    frame, target = detector_frame((3, 1))
    assert frame.shape == (128, 160)
    assert target.shape == (4,) and target[0] in (0.0, 1.0)


def test_augmented_crop_moves_keypoints_with_the_image() -> None:
    """A bright dot drawn at each keypoint stays under the transformed keypoint after
    the random scale/shift/rotation/mirror, and mirroring swaps left and right."""
    rng = np.random.default_rng(1)
    img = np.zeros((480, 640), np.uint8)
    kp = np.full((14, 2), np.nan, np.float32)
    pts = {"nose": (300, 200), "left_ear": (290, 215), "right_ear": (310, 215),
           "tail_base": (300, 300)}
    for n, (x, y) in pts.items():
        kp[KEYPOINTS.index(n)] = (x, y)
    img[200, 300] = 255
    for _ in range(10):
        crop, out, _ = T._crop_sample(img, kp, rng)
        y, x = np.unravel_index(int(crop.argmax()), crop.shape)
        assert np.hypot(x - out[0, 0], y - out[0, 1]) < 1.5
        left, right = out[KEYPOINTS.index("left_ear")], out[KEYPOINTS.index("right_ear")]
        nose = out[0]
        tail = out[KEYPOINTS.index("tail_base")]
        d, e = nose - tail, left - right
        # left stays the mouse's left: the sign of the cross product is kept by mirroring
        assert d[0] * e[1] - d[1] * e[0] < 0


def test_split_keeps_a_gap() -> None:
    names = [f"img{i:04d}.png" for i in range(40)]
    train, held = T.split_labels(names, 10, 3)
    assert held == names[30:] and train == names[:27]
    with pytest.raises(ValueError, match="holdout_last"):
        T.split_labels(names, 38, 3)


def test_tiny_training_run_exports_a_usable_model(tmp_path: Path) -> None:
    cfg = T.Train2DConfig(out=tmp_path / "m", seed=0, windows=16, detector_frames=16,
                          det_steps=2, det_real_steps=2, kp_steps=2, finetune_steps=2,
                          batch=4, real_per_batch=2, workers=1, threads=1,
                          labels=LABELS if LABELS.exists() else None,
                          label_map={"snout": "nose", "tailbase": "tail_base"},
                          holdout_last=20, gap=2)
    log = T.train_2d(cfg)
    for folder in (cfg.out, cfg.out / "synthetic_only"):
        model = KeypointModel(folder / "default.yaml", threads=1)
        kp = model(np.full((480, 640), 200, np.uint8))
        assert kp.xy.shape == (14, 2)
    assert (cfg.out / "training_log.json").exists() and log["seconds"] > 0


def test_same_seed_same_weights(tmp_path: Path) -> None:
    """`train-2d` reproduces its model: two runs with one seed give the same network."""
    import onnxruntime as ort

    outs = []
    for run in ("a", "b"):
        cfg = T.Train2DConfig(out=tmp_path / run, seed=3, windows=8, detector_frames=8,
                              det_steps=3, kp_steps=3, finetune_steps=0, batch=4,
                              workers=1, threads=1)
        T.train_2d(cfg)
        x = np.random.default_rng(0).normal(size=(1, 1, 160, 160)).astype(np.float32)
        sess = ort.InferenceSession(str(cfg.out / "keypoints.onnx"),
                                    providers=["CPUExecutionProvider"])
        outs.append(sess.run(None, {"image": x})[0])
    assert np.array_equal(outs[0], outs[1])


def test_keypoint_training_continues_from_given_weights(tmp_path: Path) -> None:
    """``init_keypoints`` and ``init_detector`` start the networks from an earlier run's
    weights: with no step taken the exported networks are that run's."""
    import onnxruntime as ort

    first = T.Train2DConfig(out=tmp_path / "a", seed=3, windows=8, detector_frames=8,
                            det_steps=1, kp_steps=2, finetune_steps=0, batch=4, workers=1,
                            threads=1)
    T.train_2d(first)
    more = T.Train2DConfig(out=tmp_path / "b", seed=3, windows=8, detector_frames=8,
                           det_steps=0, kp_steps=0, finetune_steps=0, batch=4, workers=1,
                           threads=1,
                           init_keypoints=first.out / "synthetic_only" / "keypoints.pt",
                           init_detector=first.out / "synthetic_only" / "detector.pt",
                           mine_with=first.out / "detector.yaml", mine_fraction=0.25)
    log = T.train_2d(more)
    assert len(log["keypoints_init_sha256"]) == len(log["detector_init_sha256"]) == 16
    assert log["mining"]["hard_frames"] == 2 and log["mining"]["error_median"] >= 0.0
    for part, (h, w) in (("keypoints", (160, 160)), ("detector", (128, 160))):
        x = np.random.default_rng(0).normal(size=(1, 1, h, w)).astype(np.float32)
        outs = [ort.InferenceSession(str(run.out / f"{part}.onnx"),
                                     providers=["CPUExecutionProvider"]).run(None,
                                                                             {"image": x})[0]
                for run in (first, more)]
        np.testing.assert_allclose(outs[0], outs[1], atol=1e-5)


def test_mining_pool_repeats_the_worst_frames() -> None:
    errors = np.array([0.1, 3.0, 0.5, 0.2, 0.0, 0.9])
    pool = T.mining_pool(errors, 0.5, 2)
    assert sorted(pool.tolist()) == sorted([0, 1, 2, 3, 4, 5] + [1, 2, 5] * 2)
    assert T.mining_pool(errors, 0.01, 1).tolist()[-1] == 1  # at least the worst one
    with pytest.raises(ValueError, match="mine_fraction=0"):
        T.mining_pool(errors, 0.0, 2)


def test_detector_errors_score_each_frame(tmp_path: Path) -> None:
    """A barely trained detector: every frame gets a finite, non-negative score; a
    frame whose mouse is replaced by a blank one counts as missed or as a false find."""
    cfg = T.Train2DConfig(out=tmp_path / "a", seed=5, windows=4, detector_frames=6,
                          det_steps=2, kp_steps=0, finetune_steps=0, batch=4, workers=1,
                          threads=1, parts=("detector",))
    T.train_2d(cfg)
    from mouse_lifter_ros.training.data2d import synth_detector_frames

    frames = synth_detector_frames(6, 5, workers=1)
    scorer = T.detector_scorer(cfg.out / "detector.yaml")
    err = T.detector_errors(scorer, frames)
    assert err.shape == (6,) and np.all(np.isfinite(err)) and np.all(err >= 0.0)
    # an absurd threshold: nothing is ever found, so every mouse is missed (3)
    none = T.detector_errors(scorer, frames, threshold=1.1)
    present = frames["targets"][:, 0] >= 0.5
    assert np.all(none[present] == 3.0) and np.all(none[~present] == 0.0)


def test_keypoint_errors_score_each_window_and_the_pool_draws_from_them() -> None:
    """The shipped network scores windows it handles well low, the same windows with
    their keypoints moved far off high (never above MISSED_PX), and a keypoint batch
    drawn from a pool takes its synthetic windows from the pool only."""
    from mouse_lifter_ros.core.keypoints import DEFAULT_MODEL

    items = [keypoint_window((0, i)) for i in range(6)]
    windows = {"images": np.stack([w[0] for w in items]),
               "keypoints": np.stack([w[1] for w in items]),
               "flags": np.stack([w[2] for w in items])}
    scorer = T.keypoint_scorer(DEFAULT_MODEL)
    err = T.keypoint_errors(scorer, windows)
    assert err.shape == (6,) and np.all(err >= 0.0) and np.all(err <= T.MISSED_PX)
    moved = {**windows, "keypoints": windows["keypoints"] + np.float32(60.0)}
    far = T.keypoint_errors(scorer, moved)
    seen = (windows["flags"] == 2).any(axis=1)
    assert np.all(far[seen] > err[seen]) and np.median(err[seen]) < 0.5 * T.MISSED_PX
    # only window 2 keeps its labels: drawn from a pool of window 2, every sample of the
    # batch has heatmap peaks; drawn from all six, some have none
    unlabelled = {**windows, "flags": windows["flags"] * (np.arange(6) == 2)[:, None]
                  .astype(np.uint8)}
    heat = T.kp_batch(unlabelled, None, 12, 0, np.random.default_rng(0),
                      pool=np.array([2, 2], np.intp))[1].numpy()
    assert all(h.max() > 0.5 for h in heat)
    heat = T.kp_batch(unlabelled, None, 12, 0, np.random.default_rng(0))[1].numpy()
    assert any(h.max() == 0.0 for h in heat)


def test_bad_mining_options_are_refused_before_any_work(tmp_path: Path) -> None:
    from mouse_lifter_ros.core.errors import ParameterError
    from mouse_lifter_ros.core.keypoints import DEFAULT_MODEL

    cfg = T.Train2DConfig(out=tmp_path / "m", mine_keypoints_with=DEFAULT_MODEL,
                          mine_fraction=0.0, mine_repeat=-1, parts=("keypoints",))
    with pytest.raises(ParameterError, match=re.escape(
            "mine_fraction=0.0 (0 < f <= 1), mine_repeat=-1 (>= 0)")):
        T.train_2d(cfg)
    assert not cfg.out.exists()
    # a model whose keypoints are not ours (the shipped one, its nose renamed) is
    # refused before any work too, with what it has and what is needed; so is one
    # that cannot be read
    other = tmp_path / "other"
    shutil.copytree(DEFAULT_MODEL.parent, other)
    text = (other / "default.yaml").read_text().replace("nose", "snout")
    (other / "default.yaml").write_text(text)
    cfg = T.Train2DConfig(out=tmp_path / "m", mine_keypoints_with=other / "default.yaml",
                          parts=("keypoints",))
    with pytest.raises(ParameterError, match=r"scoring needs .*keypoints start \['snout'"):
        T.train_2d(cfg)
    (other / "keypoints.onnx").unlink()
    cfg = T.Train2DConfig(out=tmp_path / "m", mine_keypoints_with=other / "default.yaml",
                          parts=("keypoints",))
    with pytest.raises(ParameterError, match=r"mine_keypoints_with=.*keypoints\.onnx"):
        T.train_2d(cfg)
    assert not cfg.out.exists()
    # the detector's counterpart: a YAML that is not there
    cfg = T.Train2DConfig(out=tmp_path / "m", mine_with=tmp_path / "nothing.yaml",
                          parts=("detector",))
    with pytest.raises(ParameterError, match=r"mine_with=.*nothing\.yaml"):
        T.train_2d(cfg)
    assert not cfg.out.exists()


def test_dark_near_changes_only_the_frames_that_show_the_mouse() -> None:
    # 0 draws the frames as before the option existed (the first detector and the
    # bottom-view model are reproduced by it); 1 puts an object beside every mouse shown,
    # and none in the windows that miss the mouse (there it would be cut at the edge)
    # (a window meant to miss the mouse may still hold it, and an object may find no
    # place beside the mouse: such frames stay as they were too)
    changed = {0.0: 0, 1.0: 0}
    shown = 0
    for i in range(24):
        plain, target = detector_frame((3, i))
        again, _ = detector_frame((3, i), dark_near=0.0)
        assert np.array_equal(plain, again)
        dark, dark_target = detector_frame((3, i), dark_near=1.0)
        assert dark_target[0] == target[0]
        changed[float(target[0])] += int(not np.array_equal(dark, plain))
        shown += int(target[0])
    assert changed[0.0] == 0 and 0 < shown < 24
    assert changed[1.0] >= shown // 2


def test_a_dark_near_share_outside_0_to_1_is_refused(tmp_path: Path) -> None:
    cfg = T.Train2DConfig(out=tmp_path, dark_near=1.5, view="side", parts=("tail",),
                          synth_weight_labelled=-0.5)
    with pytest.raises(ValueError, match=r"--dark-near 1.5: a share, 0 to 1") as e:
        T.train_2d(cfg)
    assert "side" in str(e.value) and "--parts tail" in str(e.value)  # all at once
    assert "--synth-weight -0.5: 0 to 1" in str(e.value)
    assert not any(tmp_path.iterdir())


def test_only_the_data_of_the_networks_trained_is_rendered(tmp_path: Path) -> None:
    """The keypoint network alone renders no detector frames (24,000 by default), and
    the detector alone no keypoint windows."""
    cache = tmp_path / "cache"
    cfg = T.Train2DConfig(out=tmp_path / "a", seed=5, windows=4, detector_frames=6,
                          det_steps=2, kp_steps=2, finetune_steps=0, batch=4, workers=1,
                          threads=1, parts=("keypoints",), cache=cache)
    T.train_2d(cfg)
    assert [p.name.split("_")[0] for p in cache.iterdir()] == ["kp"]
    T.train_2d(replace(cfg, out=tmp_path / "b", parts=("detector",)))
    assert sorted(p.name.split("_")[0] for p in cache.iterdir()) == ["det", "kp"]


def test_tail_windows_and_crops_are_centred_on_the_tail() -> None:
    from mouse_lifter_ros.training.data2d import WINDOW_PX, tail_window

    mid, tip = KEYPOINTS.index("tail_mid"), KEYPOINTS.index("tail_tip")
    shown = 0
    for i in range(6):
        image, kp, flags = tail_window((3, i))
        assert image.shape == (WINDOW_PX, WINDOW_PX)
        np.testing.assert_allclose(kp[mid], (WINDOW_PX - 1) / 2, atol=1e-3)
        shown += int(flags[tip] > 0)
        _, in_crop, _ = T._crop_sample(image, kp, np.random.default_rng(i), jitter=False,
                                          centre_on=mid)
        np.testing.assert_allclose(in_crop[mid], (T.CROP_PX - 1) / 2, atol=1e-3)
    assert shown >= 5  # the tip lies in the window; a body window mostly cuts it off


def test_a_run_with_tail_windows_writes_a_model_that_cuts_the_tail_crop(
        tmp_path: Path) -> None:
    cfg = T.Train2DConfig(out=tmp_path / "a", seed=5, windows=4, kp_steps=2,
                          finetune_steps=0, batch=4, real_per_batch=1, workers=1, threads=1,
                          parts=("keypoints",), tail_windows=3, tail_per_batch=2)
    T.train_2d(cfg)
    from mouse_lifter_ros.core.keypoints import load_model_spec

    assert load_model_spec(cfg.out / "synthetic_only" / "default.yaml").tail_crop
    batch = T.kp_batch(T.synth_keypoint_windows(4, 5, workers=1), None, 4, 0,
                       np.random.default_rng(0),
                       tails=T.synth_tail_windows(3, 5, workers=1), n_tail=2)
    assert batch[0].shape == (4, 1, T.CROP_PX, T.CROP_PX)
    with pytest.raises(ValueError, match=r"--tail-windows 3 and --tail-per-batch 0"):
        T.train_2d(replace(cfg, tail_per_batch=0))
    with pytest.raises(ValueError, match=r"--tail-per-batch 5: .* 1 to 4 crops"):
        T.train_2d(replace(cfg, tail_per_batch=5))
