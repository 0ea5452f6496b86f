"""The bottom view (a camera under a clear floor) through the whole core: the view picks
the shipped 2D and depth models, a model of the other view is refused, the lifter
places the joints beyond the surface seen from below, ``analyze --view`` and ``eval-3d
--view bottom`` run, and the bottom-view model finds what the top-view one cannot."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest

from mouse_lifter_ros.cli import main
from mouse_lifter_ros.core.analysis import AnalysisOptions, analyze, check_options
from mouse_lifter_ros.core.body import KEYPOINTS
from mouse_lifter_ros.core.democlip import DemoClip, demo_arena, write_demo_clip
from mouse_lifter_ros.core.depth import load_depth_spec
from mouse_lifter_ros.core.errors import ParameterError
from mouse_lifter_ros.core.keypoints import (
    SHIPPED_MODELS,
    KeypointModel,
    ModelError,
    load_model_spec,
)
from mouse_lifter_ros.core.lifter import Lifter, keypoint_depth
from mouse_lifter_ros.core.pipeline import PosePipeline
from mouse_lifter_ros.core.synth.dataset import SynthConfig, render_item
from mouse_lifter_ros.core.views import VIEWS, view_of, view_problem

SECONDS = 1.0


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> DemoClip:
    """The demo clip seen from under its clear floor, 1 s (its arena calibration too)."""
    return write_demo_clip(tmp_path_factory.mktemp("bottom"), seconds=SECONDS,
                           view="bottom")


@functools.cache
def model(view: str) -> KeypointModel:
    return KeypointModel(threads=1, view=view)


def test_views_are_defined_once() -> None:
    assert VIEWS == ("top", "bottom")
    assert view_of(0.47) == "top" and view_of(-0.47) == "bottom"
    assert view_problem("bottom") is None
    assert "'side': top or bottom" in str(view_problem("side"))
    assert demo_arena("bottom").view == "bottom" and demo_arena().view == "top"


def test_the_view_picks_the_shipped_models() -> None:
    for view in VIEWS:
        spec = load_model_spec(view=view)
        assert spec.path == SHIPPED_MODELS[view] and spec.view == view
        depth = load_depth_spec(view=view)
        assert depth.view == view
        # the depth model crops where the 2D model of its view finds the mouse
        assert depth.detector.resolve() == (spec.path.parent / "detector.yaml").resolve()
        card = (spec.path.parent / "MODEL_CARD.md").read_text()
        assert "view" in card
    with pytest.raises(ModelError, match="'side': top or bottom"):
        load_model_spec(view="side")
    with pytest.raises(ModelError, match="'side': top or bottom"):
        load_depth_spec(view="side")


def test_a_model_of_the_other_view_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="trained on top views, but the camera sees the "
                                         "mouse from the bottom"):
        PosePipeline(demo_arena("bottom"), keypoint_model=SHIPPED_MODELS["top"], threads=1)
    pipe = PosePipeline(demo_arena("bottom"), threads=1)  # the bottom models
    assert pipe.keypoints.spec.view == pipe.depth.spec.view == "bottom"
    with pytest.raises(ModelError, match="trained on bottom views"):
        pipe.set_arena(demo_arena("top"))
    # a model YAML with a view that is neither: listed with its other problems
    text = SHIPPED_MODELS["bottom"].read_text().replace("view: bottom", "view: side")
    bad = SHIPPED_MODELS["bottom"].parent / "bad_view_test.yaml"
    try:
        bad.write_text(text)
        with pytest.raises(ModelError, match="view 'side'"):
            load_model_spec(bad)
    finally:
        bad.unlink()


def test_joints_lie_beyond_the_surface_seen_from_below() -> None:
    readings = np.full(len(KEYPOINTS), 0.5)
    top, bottom = keypoint_depth(readings), keypoint_depth(readings, view="bottom")
    paws = [KEYPOINTS.index(k) for k in KEYPOINTS if k.endswith("paw")]
    spine = KEYPOINTS.index("spine_center")
    assert np.isnan(top[paws]).all()  # from above the belly hides them
    assert np.all(bottom[paws] - 0.5 < 0.003)  # from below the paw is what is seen
    assert 0.01 < bottom[spine] - 0.5 < 0.02  # the spine, over the belly
    lifter = Lifter(demo_arena("bottom").camera)
    assert lifter.view == "bottom"
    assert np.allclose(lifter.keypoint_depth(readings), bottom)


def test_bottom_model_places_the_paws_from_below() -> None:
    """On held-out bottom-view renders (a seed stream the training never drew) the bottom
    model places the paws, which a camera under the floor sees, within a few pixels; the
    top-view model, given the same frames and the same detector, does not (it learnt
    the paws from above, where the body hides them)."""
    paws = [KEYPOINTS.index(k) for k in KEYPOINTS if k.endswith("paw")]
    cfg = SynthConfig(count=24, seed=4242, view="bottom", objects=False)
    err: dict[str, list[float]] = {v: [] for v in VIEWS}
    for i in range(cfg.count):
        sample = next(render_item(cfg, i).frames)[0]
        seen = [j for j in paws if sample.visible[j]]
        for view in VIEWS:
            kp = model(view)(sample.image)
            d = np.linalg.norm(kp.xy[seen] - sample.keypoints_2d[seen], axis=1)
            err[view].extend(np.where(np.isfinite(d), d, 1e3).tolist())
    bottom, top = np.median(err["bottom"]), np.median(err["top"])
    assert bottom < 4.0, sorted(err["bottom"])
    assert top > 3 * bottom, (top, bottom)


def test_analyze_view_option(clip: DemoClip, tmp_path: Path) -> None:
    # 2D only: --view picks the model
    result = analyze([clip.video], AnalysisOptions(out=tmp_path / "a", view="bottom",
                                                   threads=1, progress=False),
                     notice=lambda _m: None)
    summary = result["movies"][0] if "movies" in result else result
    assert json.dumps(summary)  # plain JSON
    csv = (tmp_path / "a" / "demo.csv")
    assert csv.is_file() and (tmp_path / "a" / "demo_labelled.mp4").is_file()
    # with the arena the view comes from it; a --view that contradicts it, or a model of
    # the other view, is one error naming both
    _, arena, spec = check_options([clip.video], AnalysisOptions(out=tmp_path / "b",
                                                                  arena=clip.arena))
    assert arena is not None and arena.view == "bottom" and spec.view == "bottom"
    with pytest.raises(ParameterError) as err:
        check_options([clip.video], AnalysisOptions(out=tmp_path / "b", arena=clip.arena,
                                                    view="top"))
    assert "--view 'top': the arena calibration's view (bottom)" in str(err.value)
    with pytest.raises(ParameterError) as err:
        check_options([clip.video], AnalysisOptions(
            out=tmp_path / "b", arena=clip.arena, keypoint_model=SHIPPED_MODELS["top"]))
    assert "a 2D model of bottom views (this one was trained on top views)" \
        in str(err.value)
    with pytest.raises(ParameterError, match="--view 'side': top or bottom"):
        check_options([clip.video], AnalysisOptions(out=tmp_path / "b", view="side"))


def test_eval_3d_from_below(capsys: pytest.CaptureFixture[str]) -> None:
    # seed 5: a white and a grey mouse, found in every frame (black mice under some
    # lights are missed from below: the README's bottom-view figures)
    assert main(["eval-3d", "--synthetic", "--view", "bottom", "--seed", "5", "--count",
                 "2", "--seconds", "0.5", "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["view"] == "bottom" and out["frames"] == 30
    assert "bottom" in out["models"]["keypoints"] and out["frames_without_mouse"] == 0
    assert out["lifter"]["mean_mm"] < 20.0, out["lifter"]
    # the 2D-only baseline, each keypoint put on the floor along its ray, is worse
    assert out["floor_baseline_2d_only"]["mean_mm"] > out["lifter_where_2d_found"]["mean_mm"]


VAME = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "vame-bottom"
VAME_MAP = {"Nose": "nose", "Tailroot": "tail_base", "Forehand-Left": "left_forepaw",
            "Forehand-Right": "right_forepaw", "Hindhand-Left": "left_hindpaw",
            "Hindhand-Right": "right_hindpaw"}


@pytest.mark.skipif(not VAME.is_dir(), reason=f"VAME's bottom-view video absent: {VAME}")
def test_vame_bottom_view_zero_shot(tmp_path: Path) -> None:
    """A real bottom-view video no model saw, against its DeepLabCut predictions where
    they are sure: the bottom view's models come closer than the top view's (by far on
    the tail root and hind paws; on the nose the top view's model with its turn test is
    at 25 px, 103 without), and no worse than with the turn test when it came (nose 21.4,
    tail root 16.1 px median; 33.1 and 21.2 when the model was shipped). The issue's
    8 px are not reached yet (README, bottom view)."""
    from mouse_lifter_ros.core.agreement import agreement
    from mouse_lifter_ros.core.pose_files import read_dlc_csv, read_dlc_h5

    theirs = read_dlc_csv(VAME / "cropped_video.csv")
    got = {}
    for view, model_path in (("bottom", None), ("top", SHIPPED_MODELS["top"])):
        out = tmp_path / view
        analyze([VAME / "cropped_video.mp4"],
                AnalysisOptions(out=out, keypoint_model=model_path, view=None if model_path
                                else "bottom", threads=1, progress=False),
                notice=lambda _m: None)
        got[view] = agreement(read_dlc_h5(out / "cropped_video.h5"), theirs, VAME_MAP)["parts"]
    bottom, top = got["bottom"], got["top"]
    print({k: (v["median_px"], top[k]["median_px"]) for k, v in bottom.items()})
    assert bottom["Nose"]["found"] > 0.6 * bottom["Nose"]["compared"]
    assert bottom["Nose"]["median_px"] < 30 and bottom["Tailroot"]["median_px"] < 24
    assert bottom["Nose"]["median_px"] < top["Nose"]["median_px"], (bottom, top)
    for part in ("Tailroot", "Hindhand-Left", "Hindhand-Right"):
        assert bottom[part]["median_px"] < 0.7 * top[part]["median_px"], (part, bottom, top)
