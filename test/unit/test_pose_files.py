"""Tests of mouse_lifter_ros.core.pose_files: DeepLabCut files, annotation tables, crash safety.

The crash tests run a real writer in a child process (``python -m`` of this file's
``child`` entry point) and stop it with SIGINT, SIGTERM or SIGKILL.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mouse_lifter_ros.core.body import KEYPOINTS
from mouse_lifter_ros.core.errors import InputError, ParameterError
from mouse_lifter_ros.core.pose_files import (
    AnnotationsWriter,
    DlcWriter,
    FrameRecord,
    annotation_columns,
    read_annotations,
    read_dlc_csv,
    read_dlc_h5,
)

ROOT = Path(__file__).resolve().parents[2]
K = len(KEYPOINTS)
FPS = 30.0
SCORER = "DLC_test_scorer"


def make_record(frame: int, *, with_3d: bool = True) -> FrameRecord:
    """A deterministic record: keypoint k of frame f is missing when (f + k) % 5 == 0."""
    rng = np.random.default_rng(frame)
    xy = rng.uniform(0, 640, (K, 2))
    like = rng.uniform(0, 1, K)
    xyz = rng.uniform(-0.3, 0.3, (K, 3))
    depth = rng.uniform(0.4, 0.8, K)
    missing = (frame + np.arange(K)) % 5 == 0
    xy[missing] = np.nan
    like[missing] = 0.0
    xyz[missing] = np.nan
    depth[missing] = np.nan
    labelled = frame % 3 != 0
    return FrameRecord(
        frame=frame, time_s=frame / FPS, keypoints_2d=xy, likelihood=like,
        keypoints_3d=xyz if with_3d else None, depth=depth if with_3d else None,
        behavior=('rear, "up"' if frame % 2 else "walk") if labelled else "",
        behavior_probability=0.25 + frame % 4 / 8 if labelled else math.nan,
    )


def expected_dlc(frames: range | list[int], scorer: str = SCORER) -> pd.DataFrame:
    """The DeepLabCut table DeepLabCut itself would build for ``frames``."""
    columns = pd.MultiIndex.from_product([[scorer], KEYPOINTS, ["x", "y", "likelihood"]],
                                         names=["scorer", "bodyparts", "coords"])
    rows = []
    for f in frames:
        r = make_record(f)
        rows.append(np.column_stack([r.keypoints_2d, r.likelihood]).ravel())
    return pd.DataFrame(np.array(rows).reshape(len(rows), 3 * K), columns=columns,
                        index=pd.Index(list(frames), dtype="int64"))


def expected_annotations(frames: range | list[int]) -> pd.DataFrame:
    data: dict[str, list[Any]] = {c: [] for c in annotation_columns(KEYPOINTS)}
    for f in frames:
        r = make_record(f)
        data["Frame number"].append(f)
        data["Movie number"].append(0)
        data["Local frame number"].append(f)
        data["Time since start (s)"].append(f / FPS)
        assert r.keypoints_3d is not None and r.depth is not None
        for k, part in enumerate(KEYPOINTS):
            data[f"{part} x"].append(r.keypoints_2d[k, 0])
            data[f"{part} y"].append(r.keypoints_2d[k, 1])
            data[f"{part} likelihood"].append(r.likelihood[k])
            data[f"{part} z (m)"].append(r.depth[k])
            for axis, name in enumerate("XYZ"):
                data[f"{part} {name} (m)"].append(r.keypoints_3d[k, axis])
        data["Behavior"].append(r.behavior)
        data["Behavior probability"].append(r.behavior_probability)
    df = pd.DataFrame(data)
    for c in ("Frame number", "Movie number", "Local frame number"):
        df[c] = df[c].astype("int64")
    df["Behavior"] = df["Behavior"].astype(str)
    return df


def write_all(tmp_path: Path, n: int, **kw: Any) -> tuple[DlcWriter, AnnotationsWriter,
                                                          AnnotationsWriter]:
    dlc = DlcWriter(tmp_path / "run", KEYPOINTS, scorer=SCORER, **kw)
    csv = AnnotationsWriter(tmp_path / "ann.csv", KEYPOINTS, **kw)
    pq = AnnotationsWriter(tmp_path / "ann.parquet", KEYPOINTS, fmt="parquet", **kw)
    for f in range(n):
        rec = make_record(f)
        for w in (dlc, csv, pq):
            w.write(rec)
    return dlc, csv, pq


# -- formats ------------------------------------------------------------------------------


def test_dlc_h5_reads_back_with_pandas_as_deeplabcut_writes_it(tmp_path: Path) -> None:
    with DlcWriter(tmp_path / "run", KEYPOINTS, scorer=SCORER) as w:
        for f in range(20):
            w.write(make_record(f))
    want = expected_dlc(range(20))
    for df in (pd.read_hdf(tmp_path / "run.h5"), pd.read_hdf(tmp_path / "run.h5",
                                                             key="df_with_missing"),
               read_dlc_h5(tmp_path / "run.h5")):
        pd.testing.assert_frame_equal(df, want, check_exact=True)
        assert list(df.columns.names) == ["scorer", "bodyparts", "coords"]
        assert list(df.columns.get_level_values("bodyparts").unique()) == list(KEYPOINTS)
    with pd.HDFStore(tmp_path / "run.h5", mode="r") as store:
        assert store.keys() == ["/df_with_missing"]
        assert store.get_storer("df_with_missing").is_table  # format="table", as DLC
    assert not (tmp_path / "run.h5.tmp").exists()


def test_dlc_csv_has_three_header_rows_and_reads_to_the_same_frame(tmp_path: Path) -> None:
    with DlcWriter(tmp_path / "run", KEYPOINTS, scorer=SCORER) as w:
        for f in range(20):
            w.write(make_record(f))
    lines = (tmp_path / "run.csv").read_text().splitlines()
    assert lines[0].split(",")[:3] == ["scorer", SCORER, SCORER]
    assert lines[1].split(",")[:5] == ["bodyparts", "nose", "nose", "nose", "left_ear"]
    assert lines[2].split(",")[:4] == ["coords", "x", "y", "likelihood"]
    assert lines[3].split(",")[:2] == ["0", ""]  # frame 0: nose missing, an empty field
    assert len(lines) == 3 + 20
    want = expected_dlc(range(20))
    raw = pd.read_csv(tmp_path / "run.csv", header=[0, 1, 2], index_col=0)
    pd.testing.assert_frame_equal(raw, want, check_index_type=False)
    pd.testing.assert_frame_equal(read_dlc_csv(tmp_path / "run.csv"), want, check_exact=True)


def test_missing_keypoints_are_nan_in_every_file(tmp_path: Path) -> None:
    for w in write_all(tmp_path, 10):
        w.close()
    h5 = read_dlc_h5(tmp_path / "run.h5")
    dlc_csv = read_dlc_csv(tmp_path / "run.csv")
    ann_csv = read_annotations(tmp_path / "ann.csv")
    ann_pq = read_annotations(tmp_path / "ann.parquet")
    for f in range(10):
        for k, part in enumerate(KEYPOINTS):
            missing = (f + k) % 5 == 0
            for df, col in ((h5, (SCORER, part, "x")), (dlc_csv, (SCORER, part, "y")),
                            (ann_csv, f"{part} X (m)"), (ann_pq, f"{part} z (m)")):
                value = df[col].to_numpy()[f]
                assert math.isnan(value) == missing, (f, part, col)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_annotations_columns_and_values(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"ann.{fmt}"
    with AnnotationsWriter(path, KEYPOINTS, fmt=fmt) as w:  # type: ignore[arg-type]
        for f in range(12):
            w.write(make_record(f))
    df = read_annotations(path)
    cols = list(df.columns)
    assert cols[:4] == ["Frame number", "Movie number", "Local frame number",
                        "Time since start (s)"]
    assert cols[4:7] == ["nose x", "nose y", "nose likelihood"]
    assert cols[4 + 3 * K:8 + 3 * K] == ["nose z (m)", "nose X (m)", "nose Y (m)", "nose Z (m)"]
    assert cols[-2:] == ["Behavior", "Behavior probability"]
    assert len(cols) == 4 + 7 * K + 2
    pd.testing.assert_frame_equal(df, expected_annotations(range(12)), check_exact=True)
    assert df["Behavior"].tolist()[:4] == ["", 'rear, "up"', "walk", ""]
    raw = pd.read_parquet(path) if fmt == "parquet" else pd.read_csv(path)
    assert list(raw.columns) == cols
    assert raw["Frame number"].tolist() == list(range(12))


def test_annotations_without_3d_movie_and_local_frame(tmp_path: Path) -> None:
    path = tmp_path / "ann.csv"
    with AnnotationsWriter(path, KEYPOINTS) as w:
        w.write(make_record(0, with_3d=False))
        r = make_record(1, with_3d=False)
        w.write(FrameRecord(frame=1, time_s=r.time_s, keypoints_2d=r.keypoints_2d,
                            likelihood=r.likelihood, movie=2, local_frame=7))
    df = read_annotations(path)
    assert df["Movie number"].tolist() == [0, 2]
    assert df["Local frame number"].tolist() == [0, 7]  # None: the frame number
    assert df[[c for c in df.columns if c.endswith("(m)")]].isna().all().all()
    assert df["Behavior"].tolist()[1] == ""


def test_empty_recording_leaves_readable_files(tmp_path: Path) -> None:
    dlc, csv, pq = write_all(tmp_path, 0)
    for w in (dlc, csv, pq):
        w.close()
    for df in (read_dlc_h5(tmp_path / "run.h5"), read_dlc_csv(tmp_path / "run.csv")):
        assert df.shape == (0, 3 * K)
        assert list(df.columns) == list(expected_dlc([]).columns)
    for name in ("ann.csv", "ann.parquet"):
        df = read_annotations(tmp_path / name)
        assert df.shape == (0, 4 + 7 * K + 2)
        assert list(df.columns) == annotation_columns(KEYPOINTS)


# -- checkpoints, close, errors -------------------------------------------------------------


def test_checkpoints_rewrite_h5_and_parquet_every_n_frames(tmp_path: Path) -> None:
    dlc, csv, pq = write_all(tmp_path, 23, checkpoint_every=10)
    assert len(read_dlc_h5(tmp_path / "run.h5")) == 20
    assert len(read_annotations(tmp_path / "ann.parquet")) == 20
    assert len(read_dlc_csv(tmp_path / "run.csv")) == 23  # appended every frame
    assert len(read_annotations(tmp_path / "ann.csv")) == 23
    for w in (dlc, csv, pq):
        w.close()
        w.close()  # idempotent
        assert w.closed and w.frames == 23 and w.last_frame == 22
    pd.testing.assert_frame_equal(read_dlc_h5(tmp_path / "run.h5"), expected_dlc(range(23),),
                                  check_exact=True)
    pd.testing.assert_frame_equal(read_annotations(tmp_path / "ann.parquet"),
                                  expected_annotations(range(23)), check_exact=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ann.csv", "ann.parquet", "run.csv", "run.h5"]  # no .tmp left


def test_checkpoint_every_zero_writes_only_on_close(tmp_path: Path) -> None:
    dlc, _, pq = write_all(tmp_path, 5, checkpoint_every=0, fsync=True)
    assert len(read_dlc_h5(tmp_path / "run.h5")) == 0
    assert len(read_annotations(tmp_path / "ann.parquet")) == 0
    dlc.close()
    pq.close()
    assert len(read_dlc_h5(tmp_path / "run.h5")) == 5
    assert len(read_annotations(tmp_path / "ann.parquet")) == 5


@pytest.mark.parametrize("where", ["_encode", "_append"])
def test_close_from_a_signal_handler_during_a_write_finishes_after_it(
    tmp_path: Path, where: str
) -> None:
    """A handler interrupting write() (before it locks, or in the CSV append) defers close."""
    w = DlcWriter(tmp_path / "run", KEYPOINTS, scorer=SCORER)
    w.write(make_record(0))
    inner = getattr(w, where)
    seen: list[bool] = []

    def interrupted(arg: Any) -> Any:
        result = inner(arg)
        w.close()  # what the SIGINT handler does
        seen.append(w.closed)
        return result

    setattr(w, where, interrupted)
    w.write(make_record(1))
    assert seen == [False] and w.closed
    pd.testing.assert_frame_equal(read_dlc_h5(tmp_path / "run.h5"), expected_dlc(range(2)),
                                  check_exact=True)
    pd.testing.assert_frame_equal(read_dlc_csv(tmp_path / "run.csv"), expected_dlc(range(2)),
                                  check_exact=True)
    with pytest.raises(InputError, match="is closed; frame 2 not written"):
        w.write(make_record(2))


def test_handler_that_raises_during_a_write_still_closes(tmp_path: Path) -> None:
    w = AnnotationsWriter(tmp_path / "ann.parquet", KEYPOINTS, fmt="parquet")
    append = w._rows.append

    def interrupted(*args: Any) -> None:
        append(*args)
        w.close()
        raise SystemExit(0)

    w._rows.append = interrupted  # type: ignore[method-assign]
    with pytest.raises(SystemExit):
        w.write(make_record(0))
    assert w.closed
    pd.testing.assert_frame_equal(read_annotations(tmp_path / "ann.parquet"),
                                  expected_annotations(range(1)), check_exact=True)


def test_frames_must_increase_and_match_the_body_parts(tmp_path: Path) -> None:
    with DlcWriter(tmp_path / "run", KEYPOINTS) as w:
        w.write(make_record(5))
        with pytest.raises(InputError, match="frame 5 is not after the last frame written, 5"):
            w.write(make_record(5))
        r = make_record(6)
        short = FrameRecord(frame=6, time_s=0.2, keypoints_2d=r.keypoints_2d[:3],
                            likelihood=r.likelihood[:3])
        with pytest.raises(InputError, match="frame 6 has 3 keypoints; the recording has 14"):
            w.write(short)
        w.write(r)
    assert read_dlc_csv(tmp_path / "run.csv").index.tolist() == [5, 6]


def test_invalid_record_lists_every_problem() -> None:
    with pytest.raises(InputError) as err:
        FrameRecord(frame=-1, time_s=math.nan, keypoints_2d=np.zeros((13, 2)),
                    likelihood=np.zeros(14), keypoints_3d=np.full((14, 3), np.inf),
                    depth=np.zeros((14, 1)), behavior="a\nb", behavior_probability=1.5)
    text = str(err.value)
    for part in ("frame = -1", "time_s = nan", "keypoints_2d: shape (13, 2), expected (14, 2)",
                 "keypoints_3d: infinite values", "depth: shape (14, 1), expected (14,)",
                 "line breaks", "behavior_probability = 1.5"):
        assert part in text, part
    with pytest.raises(InputError, match=r"likelihood: shape \(0,\)"):
        FrameRecord(frame=0, time_s=0.0, keypoints_2d=np.zeros((0, 2)), likelihood=np.zeros(0))


def test_record_arrays_are_read_only_float64_copies() -> None:
    xy = np.zeros((K, 2), np.float32)
    r = FrameRecord(frame=np.int64(3), time_s=np.float32(0.5),  # type: ignore[arg-type]
                    keypoints_2d=xy, likelihood=np.ones(K, np.float32))
    xy[0, 0] = 1.0
    assert r.keypoints_2d.dtype == np.float64 and r.keypoints_2d[0, 0] == 0.0
    assert not r.keypoints_2d.flags.writeable
    assert type(r.frame) is int and r.local_frame == 3


def test_invalid_parameters_list_every_problem(tmp_path: Path) -> None:
    with pytest.raises(ParameterError) as err:
        AnnotationsWriter(tmp_path / "ann.txt", ["nose", "nose", ""],
                          fmt="xlsx", checkpoint_every=-3)  # type: ignore[arg-type]
    text = str(err.value)
    for part in ("ann.txt", "fmt = 'xlsx': must be one of csv, parquet", "['nose'] appear",
                 "checkpoint_every = -3"):
        assert part in text, part
    with pytest.raises(ParameterError, match=r"must end in \.parquet"):
        AnnotationsWriter(tmp_path / "ann.csv", KEYPOINTS, fmt="parquet")
    with pytest.raises(ParameterError, match=r"without \.h5/\.csv"):
        DlcWriter(tmp_path / "run.h5", KEYPOINTS)
    assert list(tmp_path.iterdir()) == []


def test_existing_files_are_kept_unless_overwrite(tmp_path: Path) -> None:
    write_all(tmp_path, 3)[0].close()
    with pytest.raises(InputError, match="already exist"):
        DlcWriter(tmp_path / "run", KEYPOINTS)
    assert len(read_dlc_h5(tmp_path / "run.h5")) == 3
    DlcWriter(tmp_path / "run", KEYPOINTS, overwrite=True).close()
    assert len(read_dlc_h5(tmp_path / "run.h5")) == 0


def test_readers_drop_a_row_torn_by_a_kill(tmp_path: Path) -> None:
    for w in write_all(tmp_path, 4):
        w.close()
    for name in ("run.csv", "ann.csv"):
        with open(tmp_path / name, "a") as f:
            f.write("4,0,4,0.13,12.5")  # a row cut short, no line break
    assert pd.read_csv(tmp_path / "run.csv", header=[0, 1, 2], index_col=0).shape[0] == 5
    pd.testing.assert_frame_equal(read_dlc_csv(tmp_path / "run.csv"),
                                  expected_dlc(range(4)), check_exact=True)
    pd.testing.assert_frame_equal(read_annotations(tmp_path / "ann.csv"),
                                  expected_annotations(range(4)), check_exact=True)


def test_readers_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nothing\.h5' does not exist"):
        read_dlc_h5(tmp_path / "nothing.h5")
    (tmp_path / "bad.h5").write_bytes(b"not hdf5")
    with pytest.raises(InputError, match=r"bad\.h5' holds no readable table"):
        read_dlc_h5(tmp_path / "bad.h5")
    with pytest.raises(InputError, match=r"extension \.xlsx is not one of \.csv, \.parquet"):
        read_annotations(tmp_path / "a.xlsx")


def test_importing_the_module_does_not_import_pandas() -> None:
    probe = ("import sys, mouse_lifter_ros.core.pose_files; "
             "print([m for m in ('pandas', 'tables', 'pyarrow') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                         text=True, timeout=60, check=True, env=_child_env())
    assert out.stdout.strip() == "[]"


# -- crash safety in a separate process -----------------------------------------------------

EVERY = 25  # checkpoint_every in the child


def child(out: str, handlers: bool) -> None:
    """Write frames until stopped, printing each frame number once all writers have it."""
    writers = [
        DlcWriter(Path(out) / "run", KEYPOINTS, scorer=SCORER, checkpoint_every=EVERY),
        AnnotationsWriter(Path(out) / "ann.csv", KEYPOINTS, checkpoint_every=EVERY),
        AnnotationsWriter(Path(out) / "ann.parquet", KEYPOINTS, fmt="parquet",
                          checkpoint_every=EVERY),
    ]

    # What the recorder node does (nodes/_signals.py): the handler only records the
    # request, and the writers are closed between frames. Closing them inside the handler
    # could interrupt a checkpoint half-way through its append; under load that lost the
    # rows being appended (75 of 99 in the .h5).
    requested = []

    def stop(signum: int, _frame: object) -> None:
        requested.append(signum)

    if handlers:
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
    for f in range(100_000):
        rec = make_record(f)
        for w in writers:
            w.write(rec)
        print(f, flush=True)
        if requested:
            for w in writers:
                w.close()
            raise SystemExit(0)


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def run_child_until(tmp_path: Path, min_frame: int, sig: int) -> tuple[int, int]:
    """Start the child, send ``sig`` once it reports ``min_frame``; return (last, rc)."""
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
            f"import test_pose_files; test_pose_files.child({str(tmp_path)!r}, True)")
    err_path = tmp_path / "child.stderr"
    with open(err_path, "w") as err_file:
        proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=_child_env(),
                                stdout=subprocess.PIPE, stderr=err_file, text=True)
    assert proc.stdout is not None
    last, deadline = -1, time.monotonic() + 60
    try:
        while last < min_frame:
            line = proc.stdout.readline()
            assert line, f"child ended early: {err_path.read_text()}"
            last = int(line)
            assert time.monotonic() < deadline, "child too slow"
        proc.send_signal(sig)
        rest = proc.stdout.read()  # the buffered stdout, up to the child's exit
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    err = err_path.read_text()
    err_path.unlink()
    for line in rest.split():
        last = int(line)
    assert proc.returncode in (0, -sig), err
    return last, proc.returncode


def frames_of(df: pd.DataFrame, column: str | None = None) -> list[int]:
    return (df.index if column is None else df[column]).tolist()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_leaves_every_file_complete(tmp_path: Path, sig: int) -> None:
    last, rc = run_child_until(tmp_path, 3 * EVERY + 7, sig)
    assert rc == 0  # the child's handler closed the writers and exited
    tables = {
        "run.h5": read_dlc_h5(tmp_path / "run.h5"),
        "run.csv": read_dlc_csv(tmp_path / "run.csv"),
        "ann.csv": read_annotations(tmp_path / "ann.csv"),
        "ann.parquet": read_annotations(tmp_path / "ann.parquet"),
    }
    for name, df in tables.items():
        frames = frames_of(df, None if name.startswith("run") else "Frame number")
        n = len(frames)
        # Complete up to the last frame reported; the frame being written when the signal
        # came may be in some files too (written, not yet reported).
        assert n in (last + 1, last + 2), (name, n, last)
        assert frames == list(range(n)), name
        if name.startswith("run"):
            pd.testing.assert_frame_equal(df, expected_dlc(range(n)), check_exact=True)
        else:
            pd.testing.assert_frame_equal(df, expected_annotations(range(n)), check_exact=True)
    assert not list(tmp_path.glob("*.tmp"))


def test_sigkill_keeps_csv_rows_and_the_last_checkpoint(tmp_path: Path) -> None:
    last, rc = run_child_until(tmp_path, 4 * EVERY + 3, signal.SIGKILL)
    assert rc == -signal.SIGKILL
    checkpointed = (last + 1) // EVERY * EVERY
    dlc_csv = read_dlc_csv(tmp_path / "run.csv")
    ann_csv = read_annotations(tmp_path / "ann.csv")
    for frames in (frames_of(dlc_csv), frames_of(ann_csv, "Frame number")):
        assert len(frames) in (last + 1, last + 2)
        assert frames == list(range(len(frames)))
    pd.testing.assert_frame_equal(dlc_csv, expected_dlc(range(len(dlc_csv))), check_exact=True)
    h5 = read_dlc_h5(tmp_path / "run.h5")
    pq = read_annotations(tmp_path / "ann.parquet")
    for df in (h5, pq):
        assert len(df) % EVERY == 0 and checkpointed <= len(df) <= last + 2, (len(df), last)
    pd.testing.assert_frame_equal(h5, expected_dlc(range(len(h5))), check_exact=True)
    pd.testing.assert_frame_equal(pq, expected_annotations(range(len(pq))), check_exact=True)


def test_read_dlc_csv_keeps_the_image_paths_of_labelled_data(tmp_path: Path) -> None:
    """A labelled-data file (CollectedData_*.csv) is indexed by image path, not frame."""
    path = tmp_path / "CollectedData_me.csv"
    path.write_text("scorer,me,me,me,me\nbodyparts,snout,snout,tailbase,tailbase\n"
                    "coords,x,y,x,y\nlabeled-data/v/img0001.png,10.5,20,,\n"
                    "labeled-data/v/img0007.png,11,21.25,30,40\n")
    df = read_dlc_csv(path)
    assert df.index.tolist() == ["labeled-data/v/img0001.png", "labeled-data/v/img0007.png"]
    assert df[("me", "snout", "y")].tolist() == [20.0, 21.25]
    assert np.isnan(df[("me", "tailbase", "x")].iloc[0])
