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
from mouse_lifter_ros.core.keypoints import KeypointModel
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
    "issue 21, open: the shipped 2D stage takes the object in 2 of these 150 frames and "
    "misses the mouse in 11 (3 and 10 before its turn test; with its first detector "
    "network only: 6 and 29; that network before the verifier: 63 wrong, 0 missed); "
    "strict: once a model passes, this marker must go"))
def test_the_mouse_is_chosen_over_a_dark_object(frames: list[HeldOutFrame]) -> None:
    model = KeypointModel(threads=1)
    assert all(f.dark_objects.any() for f in frames)
    outcomes = [outcome(model, f) for f in frames]
    not_found = [(i, o) for i, o in enumerate(outcomes) if o != "found"]
    assert len(not_found) <= 0.01 * FRAMES, not_found

