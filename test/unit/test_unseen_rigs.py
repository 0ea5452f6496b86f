"""The shipped 2D model, zero-shot, on a rig it never saw: ``xmwell-oft`` (a beige box,
a black mouse 40-60 px long in 500x500 colour frames, mice 1-3, 120 labelled frames;
kept out of every training). Issue 21's figures: no detection on something else, at
most 1 % of the mice missed, nose and tail base within 5 px on average."""

from __future__ import annotations

from pathlib import Path

import pytest

from mouse_lifter_ros.core.eval2d import evaluate_2d
from mouse_lifter_ros.core.keypoints import KeypointModel

XMWELL = (Path(__file__).resolve().parents[2].parent / "shared" / "data" / "xmwell-oft"
          / "labeled-data")


@pytest.mark.skipif(not XMWELL.is_dir(), reason=f"xmwell-oft labels absent: {XMWELL}")
def test_the_shipped_model_finds_the_mouse_on_a_rig_it_never_saw() -> None:
    got = evaluate_2d(KeypointModel(threads=2), XMWELL,
                      {"NOSE": "nose", "HEAD": "head", "TAIL": "tail_base"})["overall"]
    assert got["frames"] == 120
    assert got["wrong_detection"] == 0, got
    assert got["missed"] <= 0.01 * got["frames"], got
    for part in ("NOSE", "TAIL"):
        assert got["keypoints"][part]["mean_px"] < 5.0, (part, got["keypoints"][part])
