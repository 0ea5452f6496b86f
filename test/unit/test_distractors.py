"""The shipped 2D stage takes the mouse, not the dark cup, bowl or shelter beside it.

On a real rig the first detector took a dark cup for a small dark mouse; the engine now
draws such objects (``core/synth/objects.py``) and these frames, from a seed training
never draws (training renders from seed 0 with its own streams), always hold a dark
mouse-sized object 0.5-12 cm from the mouse.
"""

from __future__ import annotations

import numpy as np
import pytest

from mouse_lifter_ros.core.eval2d import detection_outcome
from mouse_lifter_ros.core.keypoints import KeypointModel, body_box
from mouse_lifter_ros.core.synth.heldout import HeldOutFrame, distractor_frames

FRAMES = 150
SEED = 2026


@pytest.fixture(scope="module")
def frames() -> list[HeldOutFrame]:
    return distractor_frames(SEED, FRAMES)


def outcome(model: KeypointModel, f: HeldOutFrame) -> str:
    # the frame's visible keypoints: a crop holding fewer than half of them is wrong
    return detection_outcome(model(f.image), np.where(f.visible[:, None], f.keypoints, np.nan))


@pytest.mark.xfail(strict=True, reason=(
    "issue 21, open: the shipped 2D stage takes the object in 1 of these 150 frames and "
    "misses the mouse in 3 (2 and 11 before the window scan and the keypoints' contest "
    "on a still frame; 3 and 10 before its turn test; with its first detector network "
    "only: 6 and 29; that network before the verifier: 63 wrong, 0 missed); strict: "
    "once a model passes, this marker must go"))
def test_the_mouse_is_chosen_over_a_dark_object(frames: list[HeldOutFrame]) -> None:
    model = KeypointModel(threads=1)
    assert all(f.dark_objects.any() for f in frames)
    outcomes = [outcome(model, f) for f in frames]
    not_found = [(i, o) for i, o in enumerate(outcomes) if o != "found"]
    assert len(not_found) <= 0.01 * FRAMES, not_found


def test_a_still_frames_rival_answers_are_settled_by_their_keypoints(
        frames: list[HeldOutFrame]) -> None:
    """Where the whole frame's answer (second look included) is found, the 2D stage
    now also weighs the frame's other answers judged a mouse by their crops' keypoints
    (and scans the frame when that answer's crop holds none): the answer changes only
    for the better (4 frames on the mouse that were not, none the other way, when
    written)."""
    model = KeypointModel(threads=1)
    assert model.detector is not None
    gained = lost = 0
    for f in frames:
        first = model.detector.locate(f.image)
        if not first.found:
            continue
        centre, size = body_box(f.keypoints)
        now = model(f.image).detection
        assert now is not None
        on_first = bool(np.linalg.norm(first.centre - centre) < 0.5 * size)
        on_now = now.found and bool(np.linalg.norm(now.centre - centre) < 0.5 * size)
        gained += on_now and not on_first
        lost += on_first and not on_now
    assert gained >= 2 and lost == 0, (gained, lost)
