"""Tests of the behaviour classifier (mouse_lifter_ros.core.behavior) and its training
(mouse_lifter_ros.training.trainbehavior, databehavior)."""

from __future__ import annotations

import functools
import math
import re
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from mouse_lifter_ros.core import behavior as B
from mouse_lifter_ros.core.body import CLASSES, KEYPOINTS
from mouse_lifter_ros.core.errors import InputError, ParameterError
from mouse_lifter_ros.training import databehavior as D
from mouse_lifter_ros.training import trainbehavior as T

F = {name: i for i, name in enumerate(B.FEATURE_NAMES)}
K = {name: i for i, name in enumerate(KEYPOINTS)}
CARD = B.DEFAULT_MODEL.parent / "MODEL_CARD.md"


def mouse(pitch: float = 0.0, heading: float = 0.0, at: tuple[float, float] = (0.0, 0.0),
          ) -> np.ndarray:
    """(14, 3) hand-made keypoints: a straight spine of five 2 cm segments from the tail
    base (1.2 cm up) pitched ``pitch`` rad up, facing ``heading``, paws on the floor."""
    u = np.array([math.cos(pitch), 0.0, math.sin(pitch)])
    kp = np.zeros((14, 3))
    base = np.array([0.0, 0.0, 0.012])
    for i, name in enumerate(("tail_base", "lumbar_spine", "spine_center", "neck", "head",
                              "nose")):
        kp[K[name]] = base + 0.02 * i * u
    kp[K["left_ear"]] = kp[K["head"]] + [-0.005, 0.008, 0.004]
    kp[K["right_ear"]] = kp[K["head"]] + [-0.005, -0.008, 0.004]
    kp[K["tail_mid"]] = [-0.04, 0.0, 0.002]
    kp[K["tail_tip"]] = [-0.08, 0.0, 0.002]
    kp[K["left_forepaw"]] = [0.05, 0.012, 0.002]
    kp[K["right_forepaw"]] = [0.05, -0.012, 0.002]
    kp[K["left_hindpaw"]] = [0.01, 0.015, 0.002]
    kp[K["right_hindpaw"]] = [0.01, -0.015, 0.002]
    c, s = math.cos(heading), math.sin(heading)
    kp[:, :2] = kp[:, :2] @ np.array([[c, s], [-s, c]]) + np.asarray(at)
    return kp


def still_window(kp: np.ndarray) -> np.ndarray:
    return np.broadcast_to(kp, (1, B.GRID_POINTS, 14, 3)).copy()


@functools.cache
def shipped() -> B.BehaviorModel:
    return B.BehaviorModel.load()


def test_classes_and_keypoints_are_the_engines() -> None:
    assert B.CLASS_NAMES == CLASSES
    assert shipped().class_names == CLASSES
    used = [B._NOSE, B._HEAD, B._NECK, B._SPC, B._LUM, B._TB, B._LF, B._RF, B._LH, B._RH]
    names = ("nose", "head", "neck", "spine_center", "lumbar_spine", "tail_base",
             "left_forepaw", "right_forepaw", "left_hindpaw", "right_hindpaw")
    assert used == [K[n] for n in names]


def test_rearing_pose_has_higher_nose_and_less_elongation_than_walking() -> None:
    walk = B.window_features(still_window(mouse(0.0)))[0]
    rear = B.window_features(still_window(mouse(1.1)))[0]
    assert walk[F["nose_z"]] == pytest.approx(0.012)
    assert rear[F["nose_z"]] == pytest.approx(0.012 + 0.1 * math.sin(1.1))
    assert rear[F["body_pitch"]] == pytest.approx(1.1)
    assert rear[F["elongation"]] == pytest.approx(math.cos(1.1))
    assert walk[F["elongation"]] == pytest.approx(1.0)
    assert walk[F["spine_length"]] == pytest.approx(rear[F["spine_length"]])
    # Without heights the nose height and pitch are gone; the projection is shorter.
    rear2 = B.window_features(still_window(mouse(1.1)), dims=2)[0]
    assert rear2[F["nose_z"]] == 0.0 and rear2[F["body_pitch"]] == 0.0
    assert rear2[F["spine_length"]] == pytest.approx(0.1 * math.cos(1.1))


@pytest.mark.parametrize("heading", [0.0, 2.0, -2.7])
def test_moving_body_gives_its_speed_and_turn_rate(heading: float) -> None:
    v, omega = 0.2, 1.5  # m/s nose first; rad/s
    offsets = B.GRID_OFFSETS_S
    direction = np.array([math.cos(heading), math.sin(heading)])
    moving = np.stack([mouse(0.0, heading, tuple(v * t * direction)) for t in offsets])
    f = B.window_features(moving[None])[0]
    assert f[F["speed"]] == pytest.approx(v, rel=1e-9)
    assert f[F["speed_recent"]] == pytest.approx(v, rel=1e-9)
    assert f[F["forward_speed"]] == pytest.approx(v, rel=1e-9)
    assert f[F["turn_rate"]] == pytest.approx(0.0, abs=1e-9)
    backwards = B.window_features(moving[::-1][None])[0]
    assert backwards[F["forward_speed"]] == pytest.approx(-v, rel=1e-9)
    turning = np.stack([mouse(0.0, heading + omega * t) for t in offsets])
    assert B.window_features(turning[None])[0][F["turn_rate"]] == pytest.approx(omega)


def test_stream_with_drops_and_odd_rate_gives_the_true_speed() -> None:
    rng = np.random.default_rng(1)
    stamps = np.arange(60) / 25.0
    stamps = stamps[rng.random(60) > 0.2]  # 20 % of the frames dropped
    kp = np.stack([mouse(0.0, 0.0, (0.15 * t, 0.0)) for t in stamps])
    f = B.stream_features(stamps, kp)
    late = stamps >= B.WINDOW_S + 1e-9  # the window is full
    assert late.sum() > 20
    np.testing.assert_allclose(f[late, F["speed"]], 0.15, rtol=1e-9)
    assert f[0, F["speed"]] == 0.0  # the first frame pads the window


def corrupted_stream(seed: int = 3, n: int = 120) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    stamps = np.arange(n) / 30.0
    kp = np.stack([mouse(0.8 * (i > n // 2), 0.1 * i, (0.002 * i, 0.0)) for i in range(n)])
    kp += rng.normal(0.0, 0.002, kp.shape)
    valid = rng.random((n, 14)) > 0.2
    kp[rng.random((n, 14)) < 0.1] = np.nan
    kp[5, 3] = [np.inf, -np.inf, np.nan]
    kp[6] = 1e200  # absurd but finite
    valid[20:23] = False  # whole frames without a usable keypoint
    kp[40:45] = np.nan
    valid[0, :13] = False  # the first frame has one usable keypoint
    return stamps, kp, valid


@pytest.mark.parametrize("dims", [3, 2])
def test_nan_and_invalid_keypoints_never_give_nan_probabilities(dims: int) -> None:
    stamps, kp, valid = corrupted_stream()
    clf = B.BehaviorClassifier(shipped(), dims=dims)
    for i in range(len(stamps)):
        label, names, probs = clf.update(stamps[i], kp[i], valid[i])
        assert names == CLASSES
        assert probs.shape == (4,) and np.all(np.isfinite(probs)) and np.all(probs >= 0.0)
        assert probs.sum() == pytest.approx(1.0, abs=1e-9)
        assert label == names[int(np.argmax(probs))]
    # Before any usable frame: "unknown", uniform.
    fresh = B.BehaviorClassifier(shipped(), dims=dims)
    label, _, probs = fresh.update(0.0, np.full((14, 3), np.nan))
    assert label == "unknown"
    np.testing.assert_allclose(probs, 0.25)


def test_probabilities_sum_to_one_on_random_poses() -> None:
    rng = np.random.default_rng(0)
    clf = B.BehaviorClassifier(shipped())
    for i in range(50):
        _, _, probs = clf.update(i / 30.0, rng.normal(0.0, 0.05, (14, 3)))
        assert probs.sum() == pytest.approx(1.0, abs=1e-9) and np.all(probs >= 0.0)


def test_online_update_equals_the_whole_stream_computation_with_gaps() -> None:
    stamps, kp, valid = corrupted_stream(n=150)
    stamps = stamps.copy()
    stamps[60:] += 2.0  # a gap over max_gap_s: reset
    stamps[100:] -= 10.0  # the stamps go back: reset
    stamps[30] = stamps[29]  # a repeated stamp: ignored
    feats = B.stream_features(stamps, kp, valid)
    assert np.isnan(feats[[20, 21, 22, 30]]).all() and np.isfinite(feats[[0, 29, 31]]).all()
    model = shipped()
    stream = B.prepare_stream(stamps, kp, valid)
    assert set(np.flatnonzero(stream.reset)) == {0, 60, 100}
    raw = model.networks[3].probabilities(stream.features[3])
    batch, known = B.smooth_stream(stream, raw, model.smooth_tau_s)
    clf = B.BehaviorClassifier(model)
    online = np.array([clf.update(stamps[i], kp[i], valid[i])[2] for i in range(len(stamps))])
    np.testing.assert_allclose(online, batch, atol=1e-12)
    assert known.all()
    # After the gap the classifier is what a fresh one gives for the same frames.
    fresh = B.BehaviorClassifier(model)
    after = np.array([fresh.update(stamps[i], kp[i], valid[i])[2] for i in range(60, 100)])
    np.testing.assert_allclose(after, online[60:100], atol=1e-12)


def test_smoothing_damps_a_flip_and_follows_a_lasting_change() -> None:
    model = shipped()
    smooth = B.BehaviorClassifier(model)
    raw = B.BehaviorClassifier(model, smooth_tau_s=0.0)
    rear, walk = mouse(1.1), mouse(0.0)
    seq = [walk] * 30 + [rear] + [walk] * 5 + [rear] * 30
    out = {"smooth": [], "raw": []}
    for i, kp in enumerate(seq):
        out["smooth"].append(smooth.update(i / 30.0, kp)[2])
        out["raw"].append(raw.update(i / 30.0, kp)[2])
    s, r = np.array(out["smooth"]), np.array(out["raw"])
    alpha = 1.0 - math.exp(-1.0 / 30.0 / model.smooth_tau_s)  # 0.49 at 30 fps
    raw_jump = np.abs(r[30] - r[29]).sum()
    assert raw_jump > 0.1  # the one-frame rear moves the raw output
    np.testing.assert_allclose(s[30] - s[29], alpha * (r[30] - s[29]), atol=1e-12)
    assert np.abs(s[30] - s[29]).sum() < 0.6 * raw_jump
    np.testing.assert_allclose(s[-1], r[-1], atol=1e-3)  # 1 s later the lag is gone


def test_two_dimensional_input_and_bad_shapes() -> None:
    clf2 = B.BehaviorClassifier(shipped(), dims=2)
    label, _, probs = clf2.update(0.0, mouse()[:, :2])
    assert label in CLASSES and np.isfinite(probs).all()
    clf3 = B.BehaviorClassifier(shipped())
    with pytest.raises(InputError, match="14, 2"):
        clf3.update(0.0, mouse()[:, :2])
    with pytest.raises(InputError, match="shape"):
        clf3.update(0.0, np.zeros((13, 3)))
    with pytest.raises(InputError, match="stamp"):
        clf3.update(float("nan"), mouse())
    with pytest.raises(ParameterError, match="dims"):
        B.BehaviorClassifier(shipped(), dims=1)


def test_per_frame_cost_is_well_under_a_millisecond() -> None:
    stamps, kp, valid = corrupted_stream(n=300)
    clf = B.BehaviorClassifier(shipped())
    start = time.perf_counter()
    for i in range(len(stamps)):
        clf.update(stamps[i], kp[i], valid[i])
    per_frame = (time.perf_counter() - start) / len(stamps)
    assert per_frame < 3e-3  # measured ~0.3 ms; generous for a loaded test machine


def test_shipped_model_beats_a_floor_and_2d_on_held_out_sequences() -> None:
    # The first ten held-out sequences of seed 0 (the model card's figures use 100):
    # 3D macro F1 0.95 here, 0.97 over 100; 2D-only 0.88 here, 0.91 over 100. A floor
    # of 0.90 and a margin of 0.04 over 2D fail for a broken or swapped model; with six
    # sequences the 2D figure swung to 0.925, too close to the margin.
    result = T.evaluate_behavior(seed=0, sequences=10)
    assert result["3d"]["macro_f1"] >= 0.90
    assert result["3d"]["macro_f1"] >= result["2d"]["macro_f1"] + 0.04
    assert set(result["3d"]["f1"]) == set(CLASSES)
    assert result["frames"] > 10 * 15 * 20


def test_model_card_states_the_shipped_models_figures() -> None:
    heldout = shipped().meta["metrics"]["heldout"]
    text = CARD.read_text(encoding="utf-8")
    for dims in ("3d", "2d"):
        assert f"{heldout[dims]['macro_f1']:.3f}" in text
        for f1 in heldout[dims]["f1"].values():
            assert f"{f1:.3f}" in text
    assert "mouse-lifter eval-behavior --seed 0" in text
    assert B.DEFAULT_MODEL.stat().st_size < 1_000_000


def test_bad_model_files_raise_input_errors_naming_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "none.npz"
    with pytest.raises(InputError, match=re.escape(str(missing)) + ".*no such file"):
        B.BehaviorModel.load(missing)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a model at all" * 10)
    with pytest.raises(InputError, match=re.escape(str(garbage)) + ".*not a readable"):
        B.BehaviorClassifier(garbage)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(B.DEFAULT_MODEL.read_bytes()[:2000])
    with pytest.raises(InputError, match=re.escape(str(truncated))):
        B.BehaviorModel.load(truncated)
    array = tmp_path / "array.npz"
    with array.open("wb") as fh:
        np.save(fh, np.zeros(3))
    with pytest.raises(InputError, match="single array"):
        B.BehaviorModel.load(array)
    with np.load(B.DEFAULT_MODEL) as npz:
        arrays = {k: npz[k] for k in npz.files}
    old = tmp_path / "old.npz"
    np.savez(old, **{**arrays, "version": np.array(B.MODEL_VERSION + 1)})
    with pytest.raises(InputError, match=f"{re.escape(str(old))}.*version"):
        B.BehaviorModel.load(old)
    short = tmp_path / "short.npz"
    np.savez(short, **{k: v for k, v in arrays.items() if k != "d2_w1"})
    with pytest.raises(InputError, match=re.escape(str(short))):
        B.BehaviorModel.load(short)
    bent = tmp_path / "bent.npz"
    np.savez(bent, **{**arrays, "d3_w0": arrays["d3_w0"][:-1]})
    with pytest.raises(InputError, match="shapes"):
        B.BehaviorModel.load(bent)
    assert zipfile.is_zipfile(B.DEFAULT_MODEL)


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    model = shipped()
    again = B.BehaviorModel.load(model.save(tmp_path / "sub" / "m.npz"))
    assert again.class_names == model.class_names and again.meta == model.meta
    x = np.random.default_rng(0).normal(size=(5, len(B.FEATURE_NAMES)))
    for dims in (2, 3):
        np.testing.assert_allclose(again.networks[dims].probabilities(x),
                                   model.networks[dims].probabilities(x), atol=1e-12)


def test_training_is_deterministic_given_the_seed(tmp_path: Path) -> None:
    config = T.TrainConfig(hidden=(8,), epochs=2, batch=256)
    kwargs = {"sequences": 2, "seconds": 3.0, "eval_sequences": 1, "config": config,
              "progress": False}
    m1 = T.train_behavior(tmp_path / "a.npz", seed=5, **kwargs)
    m2 = T.train_behavior(tmp_path / "b.npz", seed=5, **kwargs)
    m3 = T.train_behavior(tmp_path / "c.npz", seed=6, **kwargs)
    assert m1["heldout"]["3d"] == m2["heldout"]["3d"]
    a, b, c = (B.BehaviorModel.load(tmp_path / f"{n}.npz") for n in "abc")
    for dims in (2, 3):
        for wa, wb, wc in zip(a.networks[dims].weights, b.networks[dims].weights,
                              c.networks[dims].weights, strict=True):
            np.testing.assert_array_equal(wa, wb)
            assert not np.array_equal(wa, wc)
    assert m3["train"]["frames"] != m1["train"]["frames"] or not np.array_equal(
        a.networks[3].mean, c.networks[3].mean)


def test_lifted_sequences_run_the_whole_core_and_are_cached(tmp_path: Path) -> None:
    # One second rendered and lifted by the real models: the classifier's input is the
    # lifter's (paws filled by the body model, so flagged invalid), the labels the
    # engine's, and the cache gives back the same poses without rendering again.
    clip, stream = D.lifted_clip(0, T.LIFTED_KEY, 1.0, cache=tmp_path)
    frames = round(D.LIFTED_FPS)
    assert clip.keypoints.shape == (frames, len(KEYPOINTS), 3)
    assert clip.valid.shape == (frames, len(KEYPOINTS))
    assert set(np.unique(clip.labels)) <= set(range(len(B.CLASS_NAMES)))
    assert clip.valid[:, KEYPOINTS.index("neck")].mean() > 0.5
    paws = [KEYPOINTS.index(k) for k in ("left_forepaw", "right_forepaw")]
    assert not clip.valid[:, paws].any()
    assert stream.used.sum() >= frames - 2
    assert np.all(np.isfinite(stream.features[3]))
    (cached,) = tmp_path.glob("lifted_s0_*.npz")
    with np.load(cached) as z:
        arrays = {k: z[k] for k in z.files}
    np.testing.assert_array_equal(arrays["keypoints"], clip.keypoints)
    np.savez(cached, **{**arrays, "labels": (arrays["labels"] + 1) % len(B.CLASS_NAMES)})
    again, _ = D.lifted_clip(0, T.LIFTED_KEY, 1.0, cache=tmp_path)  # read, not rendered
    np.testing.assert_array_equal(again.labels, (clip.labels + 1) % len(B.CLASS_NAMES))


def test_warmup_holds_unknown_for_the_first_window_after_each_restart() -> None:
    kp = mouse(0.0)
    plain = B.BehaviorClassifier(shipped())
    warm = B.BehaviorClassifier(shipped(), warmup_s=B.WINDOW_S)
    for start in (0.0, 10.0):  # a gap of over 1 s restarts the stream
        for i in range(30):
            t = start + i / 30
            label, _, probs = warm.update(t, kp)
            ref_label, _, ref = plain.update(t, kp)
            if i / 30 < B.WINDOW_S - 1e-9:
                assert label == "unknown"
                np.testing.assert_allclose(probs, 0.25)
            else:  # the same networks and smoothing state as without warm-up
                assert label == ref_label
                np.testing.assert_allclose(probs, ref)
    with pytest.raises(ParameterError, match="warmup_s"):
        B.BehaviorClassifier(shipped(), warmup_s=-1.0)
