"""Tests of the recorder's pairing and writing (mouse_lifter_ros.core.recorder)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mouse_lifter_ros.core.behavior import KeypointMapper
from mouse_lifter_ros.core.errors import InputError
from mouse_lifter_ros.core.record import read_annotations, read_dlc_csv
from mouse_lifter_ros.core.recorder import (
    Keypoints,
    Pose,
    Recorder,
    StampMatcher,
    behavior_of,
    describe_recording,
)


def test_matcher_pairs_in_any_order_and_drops_what_cannot_complete() -> None:
    m = StampMatcher(max_pending=3)
    assert m.add(1, "pose", "p1") == [] and m.add(1, "keypoints", "k1") == []
    assert m.add(2, "keypoints", "k2") == []  # frame 2 never gets its pose
    assert m.add(1, "behavior", "b1") == [(1, {"pose": "p1", "keypoints": "k1",
                                               "behavior": "b1"})]
    for s in ("keypoints", "pose", "behavior"):
        done = m.add(3, s, s[0] + "3")
    assert [stamp for stamp, _ in done] == [3]
    assert m.dropped == 1 and m.unmatched == {"keypoints": 1, "pose": 0, "behavior": 0}
    for stamp in range(10, 15):  # bounded: beyond 3 pending, the oldest go
        m.add(stamp, "keypoints", stamp)
    assert m.pending == 3 and m.dropped == 3
    m.flush()
    assert m.pending == 0 and m.dropped == 6 and m.unmatched["keypoints"] == 6
    with pytest.raises(InputError, match="unknown stream"):
        m.add(1, "image", None)


def test_behavior_of_takes_the_labels_probability() -> None:
    assert behavior_of("b", ["a", "b"], [0.25, 0.75]).probability == 0.75
    assert np.isnan(behavior_of("x", ["a"], [1.0]).probability)


def test_recorder_writes_complete_frames_and_refuses_existing_files(tmp_path: Path) -> None:
    names = ("nose", "tail_base")
    rec = Recorder(tmp_path, "r", fmt="csv", checkpoint_every=2)
    for i in range(4):
        stamp = 1_000_000_000 + i * 50_000_000
        rec.add(stamp, "keypoints", Keypoints(names, np.array([[i, 1.0], [2.0, np.inf]]),
                                              np.array([0.5, 2.0])))
        if i != 2:  # frame 2 has no pose: dropped once frame 3 completes
            rec.add(stamp, "pose", Pose(("tail_base", "nose"), np.array([[0, 0, 1.0],
                                                                          [i, 0, 0]])))
        rec.add(stamp, "behavior", behavior_of("rearing", ["rearing"], [0.9]))
    line = rec.close()
    assert "3 frames written, 1 incomplete frames dropped" in line, line
    dlc = read_dlc_csv(tmp_path / "r.csv")
    table = read_annotations(tmp_path / "r_annotations.csv")
    assert list(dlc.index) == [0, 1, 2] and list(table["Frame number"]) == [0, 1, 2]
    np.testing.assert_allclose(table["Time since start (s)"], [0.0, 0.05, 0.15])
    np.testing.assert_array_equal(table["nose X (m)"], [0.0, 1.0, 3.0])  # by name
    assert np.isnan(table["tail_base y"]).all()  # inf became "missing"
    assert (table["tail_base likelihood"] == 1.0).all()  # clipped to 0..1
    assert list(table["Behavior"]) == ["rearing"] * 3
    lines = describe_recording(tmp_path, "r")
    assert [line.split(":")[0] for line in lines] == [
        str(tmp_path / n) for n in ("r.h5", "r.csv", "r_annotations.csv")]
    assert all(" kB, 3 rows" in line for line in lines), lines
    assert lines[2].endswith("3 rows (rearing 3)"), lines
    assert describe_recording(tmp_path, "none")[0] == f"{tmp_path / 'none.h5'}: missing"
    with pytest.raises(InputError, match="overwrite"):
        Recorder(tmp_path, "r")
    Recorder(tmp_path, "r", overwrite=True).close()


def test_keypoint_mapper_orders_by_name_and_marks_missing_ones() -> None:
    mapper = KeypointMapper()
    names = [*reversed(mapper.keypoints[1:]), "extra"]
    positions = np.arange(len(names) * 3, dtype=float).reshape(-1, 3)
    kp, valid = mapper.map(names, positions, [True] * len(names))
    assert mapper.missing == ("nose",)
    assert not valid[0] and np.isnan(kp[0]).all() and valid[1:].all()
    np.testing.assert_array_equal(kp[1], positions[names.index(mapper.keypoints[1])])
    with pytest.raises(InputError):
        mapper.map(names, positions[:3], [True] * len(names))
