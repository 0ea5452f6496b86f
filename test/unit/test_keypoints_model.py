"""The shipped 2D model (detector + keypoint network) through the inference core, and
``mouse-lifter eval-2d`` on the real labelled open-field frames when they are there."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest

from mouse_lifter_ros.cli import main
from mouse_lifter_ros.core.body import KEYPOINTS
from mouse_lifter_ros.core.eval2d import evaluate_2d
from mouse_lifter_ros.core.keypoints import (
    DEFAULT_MODEL,
    MIN_WINDOW,
    KeypointModel,
    body_box,
    load_model_spec,
    scan_windows,
)
from mouse_lifter_ros.core.synth.dataset import SynthConfig, render_item
from mouse_lifter_ros.core.synth.heldout import held_out_frames
from mouse_lifter_ros.core.synth.render import Sample

LABELS = (Path(__file__).resolve().parents[2].parent / "shared" / "data" / "openfield-dlc"
          / "labeled" / "CollectedData.csv")
needs_labels = pytest.mark.skipif(not LABELS.exists(),
                                  reason=f"real labelled frames absent: {LABELS}")
OPENFIELD = {"snout": "nose", "leftear": "left_ear", "rightear": "right_ear",
             "tailbase": "tail_base"}
K = {n: i for i, n in enumerate(KEYPOINTS)}


@functools.cache
def model() -> KeypointModel:
    return KeypointModel(threads=1)


@functools.cache
def frames(width: int, height: int, n: int = 12) -> list[Sample]:
    """Open-field-like synthetic frames with the mouse well inside the image (without
    the distractor objects, which the shipped model was not trained with)."""
    out = []
    cfg = SynthConfig(count=200, seed=4242, width=width, height=height, objects=False)
    for i in range(200):
        s = next(render_item(cfg, i).frames)[0]
        body = s.keypoints_2d[[K["nose"], K["tail_base"]]]
        if s.in_view.all() and s.visible[[K["nose"], K["tail_base"]]].all() and \
                (body.min(axis=0) > 40).all() and (body[:, 0] < width - 40).all() and \
                (body[:, 1] < height - 40).all():
            out.append(s)
        if len(out) == n:
            break
    return out


def test_shipped_model_files_and_card() -> None:
    spec = load_model_spec()
    assert spec.path == DEFAULT_MODEL
    assert spec.keypoints == KEYPOINTS
    folder = DEFAULT_MODEL.parent
    size = sum(f.stat().st_size for f in folder.iterdir() if f.suffix == ".onnx")
    assert size < 20e6
    card = (folder / "MODEL_CARD.md").read_text()
    for needle in ("Input", "Normalisation", "synthetic only", "PCK@10", "held out", "fps"):
        assert needle.lower() in card.lower(), needle
    assert "CPUExecutionProvider" in model().description


@pytest.mark.parametrize(("width", "height"), [(640, 480), (1920, 1080)])
def test_finds_the_mouse_in_synthetic_frames(width: int, height: int) -> None:
    """Body keypoints of visible, in-view mice land near the truth at any resolution
    (scaled to a 640 px wide image, the distances are the same as at 640x480)."""
    scale = 640 / width
    errs, found = [], 0
    for s in frames(width, height):
        kp = model()(s.image)
        found += bool(kp.detection and kp.detection.found)
        for name in ("nose", "tail_base", "spine_center"):
            errs.append(np.linalg.norm(kp.xy[K[name]] - s.keypoints_2d[K[name]]) * scale)
    assert found == len(frames(width, height))
    errs_a = np.array(errs)
    assert np.median(errs_a) < 4.0, np.round(errs_a, 1)
    assert np.mean(errs_a < 10.0) > 0.85, np.round(errs_a, 1)


def test_no_mouse_is_reported_not_guessed() -> None:
    """The half of a frame the mouse is not in, enlarged to a full frame: an arena with
    no mouse. The detector says so instead of guessing (all NaN, low confidence), and is
    always less sure there than with the mouse. (A dropping on a bright floor, enlarged,
    can pass for a far-away mouse: one miss in the draws is allowed, see the card.)"""
    import cv2

    empty_conf, mouse_conf = [], []
    for s in frames(640, 480)[:8]:
        x = s.keypoints_2d[:, 0]
        if (x > 330).all():
            half = s.image[:, :310]
        elif (x < 310).all():
            half = s.image[:, 330:]
        else:
            continue
        kp = model()(cv2.resize(half, (640, 480)))
        assert kp.detection is not None
        empty_conf.append(kp.detection.confidence)
        if not kp.detection.found:
            assert np.isnan(kp.xy).all() and (kp.confidence < 0.5).all()
        with_mouse = model()(s.image).detection
        assert with_mouse is not None and with_mouse.found
        mouse_conf.append(with_mouse.confidence)
    assert len(empty_conf) >= 4
    assert sum(c >= 0.5 for c in empty_conf) <= 1, empty_conf
    assert max(empty_conf) < min(mouse_conf), (empty_conf, mouse_conf)


@pytest.mark.parametrize(("width", "height", "count"),
                         [(640, 480, 9), (320, 240, 9), (2048, 2048, 9), (1280, 1024, 9),
                          (500, 500, 9), (100, 60, 3), (60, 40, 1), (1920, 400, 3)])
def test_scan_windows_cover_the_frame(width: int, height: int, count: int) -> None:
    """Every pixel lies in a window, none reaches past the frame along an axis longer
    than a window, and the windows are half the longer side (or MIN_WINDOW) wide."""
    windows = scan_windows(width, height)
    assert len(windows) == count
    side = max(MIN_WINDOW, max(width, height) / 2)
    assert all(w[2] == side for w in windows)
    ys, xs = np.mgrid[0:height, 0:width]
    covered = np.zeros((height, width), bool)
    for cx, cy, sd in windows:
        covered |= (np.abs(xs - cx) <= sd / 2) & (np.abs(ys - cy) <= sd / 2)
        for c, length in ((cx, width), (cy, height)):
            if length > sd:
                assert c - sd / 2 >= -0.5 and c + sd / 2 <= length - 0.5
    assert covered.all()


def test_the_window_scan_finds_small_mice_the_letterbox_misses() -> None:
    """Held-out small mice (30-120 px in 1500-2048 px frames, seed 2026): where the
    whole frame's answer, second look included, is no mouse, the window scan finds at
    least half of them (9 of 15 when written; the nose within 1-7 px)."""
    m = model()
    assert m.detector is not None
    missed, found, nose = 0, 0, []
    for f in held_out_frames("small_mouse", 2026, 24):
        if m.detector.locate(f.image).found:
            continue
        missed += 1
        kp = m(f.image)
        centre, size = body_box(f.keypoints)
        det = kp.detection
        if det is not None and det.found and np.linalg.norm(det.centre - centre) < 0.5 * size:
            found += 1
            nose.append(float(np.linalg.norm(kp.xy[K["nose"]] - f.keypoints[K["nose"]])))
    assert missed >= 8, missed
    assert found >= missed / 2, (found, missed)
    assert np.median(nose) < 5.0, np.round(nose, 1)


def test_roi_offsets_coordinates() -> None:
    """The same pixels inside a larger frame, found through ``roi``: the same keypoints,
    shifted by the roi's origin."""
    s = frames(640, 480)[1]
    x0, y0 = 37, 21
    big = np.zeros((480 + 60, 640 + 80), np.uint8)
    big[y0:y0 + 480, x0:x0 + 640] = s.image
    full = model()(s.image)
    part = model()(big, roi=(x0, y0, 640, 480))
    np.testing.assert_allclose(part.xy, full.xy + np.float32([x0, y0]), atol=1e-3)
    assert part.detection is not None and full.detection is not None
    np.testing.assert_allclose(part.detection.centre, full.detection.centre + np.array([x0, y0]))


def test_colour_and_grey_frames_agree() -> None:
    import cv2

    s = frames(640, 480)[2]
    grey = model()(s.image)
    bgr = model()(cv2.cvtColor(s.image, cv2.COLOR_GRAY2BGR))
    assert np.allclose(grey.xy, bgr.xy, atol=0.5, equal_nan=True)


def test_cutoff_blanks_low_confidence_points() -> None:
    kp = model()(frames(640, 480)[3].image)
    cut = kp.with_cutoff(1.01)
    assert np.isnan(cut.xy).all() and np.array_equal(cut.confidence, kp.confidence)


@needs_labels
def test_accuracy_on_held_out_real_frames() -> None:
    """The issue's bar, on the frames the model never saw (the split is in its YAML)."""
    import yaml

    notes = yaml.safe_load(DEFAULT_MODEL.read_text())["training"]
    holdout = notes["holdout"]
    assert len(holdout) >= 20 and not set(holdout) & set(notes["real_train_names"])
    res = evaluate_2d(model(), LABELS, OPENFIELD, frames=holdout)
    assert res["frames"] == len(holdout)
    for part, r in res["keypoints"].items():
        assert r["mean_px"] < 5.0, (part, r)
    assert res["mean"]["pck@10px"] >= 95.0, res["mean"]


@needs_labels
def test_eval_2d_command_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["eval-2d", "--labels", str(LABELS), "--frames", "img0000.png,img0001.png",
               "--map", "snout=nose,tailbase=tail_base", "--json", "-"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["frames"] == 2
    assert set(out["keypoints"]) == {"snout", "tailbase"}
    for key in ("mean_px", "pck@5px", "pck@10px", "median_px"):
        assert key in out["mean"]


@needs_labels
def test_eval_2d_bad_map_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval-2d", "--labels", str(LABELS), "--map", "nosetip=nose"]) == 2
    err = capsys.readouterr().err
    assert "nosetip" in err and "snout" in err


def test_the_tail_crop_takes_only_surer_tail_keypoints() -> None:
    """With ``tail_crop`` the model cuts a second crop around the tail: the tail's middle
    and tip come from it where it is surer, every other keypoint is the first crop's."""
    from dataclasses import replace

    from mouse_lifter_ros.core.keypoints import TAIL_KEYPOINTS

    tailed = model()
    assert tailed.spec.tail_crop  # the shipped model cuts it
    plain = KeypointModel(replace(tailed.spec, tail_crop=False), threads=1)
    tail = [K[n] for n in TAIL_KEYPOINTS]
    body = [k for k in range(len(KEYPOINTS)) if k not in tail]
    took = 0
    for s in frames(640, 480):
        a, b = plain(s.image), tailed(s.image)
        np.testing.assert_array_equal(a.xy[body], b.xy[body])
        np.testing.assert_array_equal(a.confidence[body], b.confidence[body])
        assert np.all(b.confidence[tail] >= a.confidence[tail])
        took += int(np.any(b.confidence[tail] > a.confidence[tail]))
    assert took > 0  # the second crop is cut and sometimes surer


def test_a_tail_crop_without_the_tail_keypoints_is_refused(tmp_path: Path) -> None:
    from dataclasses import replace

    from mouse_lifter_ros.core.keypoints import ModelError

    spec = replace(load_model_spec(), tail_crop=True,
                   keypoint_map={"tail_mid": "tail_middle", "lumbar_spine": "back"})
    with pytest.raises(ModelError, match=r"tail_crop: true needs the keypoints tail_mid, "
                                         r"lumbar_spine"):
        KeypointModel(spec, threads=1)


@pytest.mark.parametrize("turns", [1, 2, 3])
def test_unturn_maps_a_turned_crop_back(turns: int) -> None:
    """A pixel found in ``np.rot90(crop, turns)`` is mapped back to where it is in the
    crop as cut."""
    from mouse_lifter_ros.core.keypoints import unturn

    side = 9
    crop = np.zeros((side, side), np.uint8)
    spots = np.array([[1, 2], [7, 0], [4, 4]])
    crop[spots[:, 1], spots[:, 0]] = [50, 100, 150]
    turned = np.rot90(crop, turns)
    found = np.array([np.argwhere(turned == v)[0][::-1] for v in (50, 100, 150)], float)
    np.testing.assert_array_equal(unturn(found, turns, side), spots)


def test_combine_views_sets_aside_views_on_the_wrong_spot() -> None:
    """Six views agree about a keypoint and two found something else: the answer is the
    six's confidence-weighted mean, the confidence the mean of all eight. A NaN view is
    left out; mismatched shapes are refused."""
    from mouse_lifter_ros.core.keypoints import combine_views

    rng = np.random.default_rng(0)
    xy = np.empty((8, 2, 2))
    xy[:, 0] = np.array([40.0, 60.0]) + rng.normal(0, 0.5, (8, 2))
    xy[6:, 0] = [[90.0, 20.0], [10.0, 10.0]]  # two views on the wrong spot
    xy[:, 1] = [100.0, 100.0]
    xy[3, 1] = np.nan
    conf = rng.uniform(0.5, 1.0, (8, 2))
    out, c = combine_views(xy, conf)
    w = conf[:6, 0]
    np.testing.assert_allclose(out[0], (xy[:6, 0] * w[:, None]).sum(0) / w.sum(), atol=1e-4)
    np.testing.assert_allclose(out[1], [100.0, 100.0], atol=1e-4)
    np.testing.assert_allclose(c, conf.mean(axis=0), rtol=1e-6)
    assert np.linalg.norm(out[0] - xy[:, 0].mean(axis=0)) > 5  # where a mean would land
    with pytest.raises(ValueError, match="must be"):
        combine_views(xy[:, :1], conf)


def test_the_turn_test_agrees_with_one_view_on_clear_frames() -> None:
    """The shipped model runs its crops turned too (``turn_test``): on clear rendered
    frames the keypoints it finds move less than 2 px (median) from the mirrored pair's,
    and its error against the truth is no larger."""
    from dataclasses import replace

    turned = model()
    assert turned.spec.turn_test and turned.spec.flip_test
    pair = KeypointModel(replace(turned.spec, turn_test=False), threads=1)
    moved, err_pair, err_turned = [], [], []
    for s in frames(640, 480):
        a, b = pair(s.image), turned(s.image)
        ok = (a.confidence >= 0.5) & (b.confidence >= 0.5) & s.visible
        moved += list(np.linalg.norm(a.xy[ok] - b.xy[ok], axis=1))
        err_pair += list(np.linalg.norm(a.xy[ok] - s.keypoints_2d[ok], axis=1))
        err_turned += list(np.linalg.norm(b.xy[ok] - s.keypoints_2d[ok], axis=1))
    assert len(moved) > 50
    assert 0.0 < np.median(moved) < 2.0
    assert np.mean(err_turned) <= np.mean(err_pair) + 0.1


def test_the_shipped_model_finds_the_tail_tip_where_it_shows() -> None:
    """The crop around the body cuts the tail's tip off in most frames; with the tail
    crop the shipped model finds it in about half of the rendered frames that show it
    (before the tail crop: 3 %)."""
    found, errors = 0, []
    shown = [s for s in frames(640, 480) if s.visible[K["tail_tip"]]]
    for s in shown:
        kp = model()(s.image)
        if kp.confidence[K["tail_tip"]] >= 0.5:
            found += 1
            errors.append(float(np.linalg.norm(kp.xy[K["tail_tip"]]
                                               - s.keypoints_2d[K["tail_tip"]])))
    assert len(shown) >= 8 and found >= len(shown) // 3
    assert np.median(errors) < 5.0
