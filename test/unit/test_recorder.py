"""Tests of the recorder's pairing and writing (mouse_lifter_ros.core.recorder)."""

from __future__ import annotations

import gc
import os
import resource
import signal
import subprocess
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mouse_lifter_ros.core.behavior import KeypointMapper
from mouse_lifter_ros.core.errors import InputError
from mouse_lifter_ros.core.pose_files import read_annotations, read_dlc_csv, read_dlc_h5
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
    rec = Recorder(tmp_path, "r", fmt="csv", flush_period=0.01)
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


# -- start-up checks, write failures, memory ------------------------------------------------

NAMES = ("nose", "left_ear", "right_ear", "tail_base")


def feed(rec: Recorder, frames: range, clock: list[float] | None = None) -> None:
    """Frames ``frames`` (30 fps stamps; ``clock`` advanced 1/30 s each), values by frame."""
    for i in frames:
        stamp = 1_000_000_000 + i * 33_333_333
        rng = np.random.default_rng(i)
        rec.add(stamp, "keypoints", Keypoints(NAMES, rng.uniform(0, 640, (4, 2)),
                                              rng.uniform(0, 1, 4)))
        rec.add(stamp, "pose", Pose(NAMES, rng.uniform(-0.3, 0.3, (4, 3))))
        rec.add(stamp, "behavior", behavior_of("rearing", ["rearing"], [0.9]))
        if clock is not None:
            clock[0] += 1 / 30


def test_output_dir_under_a_file_is_refused_at_start_up(tmp_path: Path) -> None:
    (tmp_path / "hostname").write_text("x")
    with pytest.raises(InputError) as err:
        Recorder(tmp_path / "hostname" / "x", "r")
    text = str(err.value)
    assert f"output_dir = '{tmp_path / 'hostname' / 'x'}'" in text, text
    assert "Not a directory" in text and "create and write files in" in text, text
    with pytest.raises(InputError, match="File exists"):  # a file, not a folder
        Recorder(tmp_path / "hostname", "r")


def test_read_only_output_dir_is_refused_at_start_up(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() == 0:  # root writes through permissions: a read-only mount instead
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)],
                          capture_output=True).returncode:
            pytest.skip("root, and no read-only mount possible here")
    else:
        folder.chmod(0o500)
    try:
        with pytest.raises(InputError, match=r"output_dir = '.*ro/rec': cannot write there: "
                           r"(Read-only file system|Permission denied)"):
            Recorder(folder / "rec", "r")
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", str(folder)], check=True)
        else:
            folder.chmod(0o700)


def test_too_little_free_space_is_refused_at_start_up(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"MB free, less than min_free_mb = 1e\+12 MB"):
        Recorder(tmp_path, "r", min_free_mb=1e12)
    assert list(tmp_path.iterdir()) == []  # nothing written
    Recorder(tmp_path, "r", min_free_mb=0.0).close()


@pytest.fixture
def file_size_limit() -> Iterator[Callable[[int], None]]:
    """Set this process's RLIMIT_FSIZE (bytes): a write beyond it fails for real with
    EFBIG (SIGXFSZ ignored, as the recorder node does); both restored afterwards."""
    old = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    yield lambda n: resource.setrlimit(resource.RLIMIT_FSIZE, (n, old[1]))
    resource.setrlimit(resource.RLIMIT_FSIZE, old)
    signal.signal(signal.SIGXFSZ, old_handler)


def test_failed_writes_are_counted_and_the_other_files_go_on(
        tmp_path: Path, file_size_limit: Callable[[int], None]) -> None:
    # A 100 kB file-size limit: the .h5 appends fail from the first (their space is
    # reserved first), the annotations CSV fails at its ~200th row (a row written in
    # part is cut off again), the DeepLabCut CSV at its ~440th; no write raises. With
    # the limit lifted, every file takes the next rows again.
    limit = 100_000
    clock = [0.0]
    rec = Recorder(tmp_path, "r", flush_period=0.5, clock=lambda: clock[0])
    file_size_limit(limit)
    feed(rec, range(600), clock)
    sizes = {p.name: p.stat().st_size for p in rec.files}
    file_size_limit(resource.RLIM_INFINITY)
    feed(rec, range(600, 630), clock)
    line = rec.close()
    h5, dlc = read_dlc_h5(tmp_path / "r.h5"), read_dlc_csv(tmp_path / "r.csv")
    table = read_annotations(tmp_path / "r_annotations.csv")
    failures = rec.failures
    assert rec.frames == 630
    for path, rows in ((tmp_path / "r.h5", h5.index), (tmp_path / "r.csv", dlc.index),
                       (tmp_path / "r_annotations.csv", table["Frame number"])):
        f = failures[path]
        assert f.rows > 0 and len(rows) + f.rows == 630, (path, len(rows), f)
        assert "File too large" in f.last, f
        assert f"{path.name} {f.rows} rows in {f.writes} failed writes" in line, line
        assert rows.tolist()[-30:] == list(range(600, 630))  # going again
    assert 570 <= failures[tmp_path / "r.h5"].rows <= 600  # every append until the limit went
    assert failures[tmp_path / "r_annotations.csv"].rows > failures[tmp_path / "r.csv"].rows
    assert sizes["r.csv"] <= limit and sizes["r_annotations.csv"] <= limit, sizes
    for name in ("r.csv", "r_annotations.csv"):  # whole rows only: no torn row
        data = (tmp_path / name).read_bytes()
        assert data.endswith(b"\n") and data.count(b"\n") == len(
            read_dlc_csv(tmp_path / name) if name == "r.csv" else table) + (
            3 if name == "r.csv" else 1)
    # The rows each file holds are the same frames' same values.
    common = dlc.index.intersection(table["Frame number"])
    assert len(common) > 100
    np.testing.assert_array_equal(
        table.set_index("Frame number").loc[common, [f"{n} x" for n in NAMES]].to_numpy(),
        dlc.loc[common].iloc[:, 0::3].to_numpy())
    both = h5.index.intersection(dlc.index)
    assert len(both) >= 30
    pd.testing.assert_frame_equal(h5.loc[both], dlc.loc[both], check_exact=True)


def test_a_failed_h5_does_not_stop_the_csvs(tmp_path: Path) -> None:
    # The .h5 replaced by a folder mid-session (it is opened for each append): every
    # append fails, the CSVs take every row.
    clock = [0.0]
    rec = Recorder(tmp_path, "r", flush_period=0.5, clock=lambda: clock[0])
    feed(rec, range(40), clock)
    (tmp_path / "r.h5").unlink()
    (tmp_path / "r.h5").mkdir()
    feed(rec, range(40, 100), clock)
    line = rec.close()
    assert len(read_dlc_csv(tmp_path / "r.csv")) == 100
    assert len(read_annotations(tmp_path / "r_annotations.csv")) == 100
    f = rec.failures[tmp_path / "r.h5"]
    assert f.writes >= 4 and f.rows >= 60 - 15, f
    assert "r.h5" in line and "write failures: r.h5" in line, line


def test_parquet_annotations_are_converted_at_the_close(tmp_path: Path) -> None:
    clock = [0.0]
    rec = Recorder(tmp_path, "r", fmt="parquet", clock=lambda: clock[0])
    feed(rec, range(50), clock)
    live = read_annotations(tmp_path / "r_annotations.csv")  # during the session
    assert len(live) == 50 and not (tmp_path / "r_annotations.parquet").exists()
    rec.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "r.csv", "r.h5", "r_annotations.parquet"]
    pd.testing.assert_frame_equal(read_annotations(tmp_path / "r_annotations.parquet"), live,
                                  check_exact=True)


def test_memory_does_not_grow_with_the_session(tmp_path: Path) -> None:
    # Python-allocated memory (numpy arrays and pandas frames included) held after 1000
    # and after 4000 frames at 30 fps: the same, within 0.5 MB (keeping every row, as
    # the .h5 rewrite did, held 0.4 kB more per frame here: 1.2 MB).
    clock = [0.0]
    rec = Recorder(tmp_path, "r", clock=lambda: clock[0])
    feed(rec, range(200), clock)
    tracemalloc.start()
    try:
        feed(rec, range(200, 1000), clock)
        gc.collect()
        after_1000 = tracemalloc.get_traced_memory()[0]
        feed(rec, range(1000, 4000), clock)
        gc.collect()
        after_4000 = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    rec.close()
    assert after_4000 - after_1000 < 500_000, (after_1000, after_4000)
    assert len(read_dlc_h5(tmp_path / "r.h5")) == 4000
