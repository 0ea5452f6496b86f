"""``mouse-lifter analyze`` on the demo clip: the real models, every output read back.

The demo clip (5.8 s, 174 frames: walk, rear, walk, groom) is analysed with its arena
calibration (3D) and without it, as a video and as a rosbag2 (2D, two movies in one
annotations table), and the numbers are checked against the clip's ground truth.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
import pytest

from mouse_lifter_ros.cli import main
from mouse_lifter_ros.core import locomotion as L
from mouse_lifter_ros.core.analysis import AnalysisOptions, analyze, check_options
from mouse_lifter_ros.core.bag import BagImages, write_image_bag
from mouse_lifter_ros.core.behavior import CLASS_NAMES
from mouse_lifter_ros.core.body import KEYPOINTS
from mouse_lifter_ros.core.democlip import DemoClip, write_demo_clip
from mouse_lifter_ros.core.errors import ParameterError, SourceError
from mouse_lifter_ros.core.overlay import Labeller, LabelStyle, colormap_colours
from mouse_lifter_ros.core.pose_files import read_annotations, read_dlc_csv

FRAMES = 174
OUTPUTS = ("{}.h5", "{}.csv", "{}_labelled.mp4", "{}_jumps.png", "{}_likelihood.png",
           "{}_coordinates.png", "{}_trajectory.png", "{}_locomotion.csv",
           "{}_locomotion.json")


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> DemoClip:
    return write_demo_clip(tmp_path_factory.mktemp("clip"))


@pytest.fixture(scope="module")
def run3d(clip: DemoClip, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The video with the arena: 3D and behaviour."""
    out = tmp_path_factory.mktemp("analysis3d")
    notes: list[str] = []
    result = analyze([clip.video],
                     AnalysisOptions(out=out, arena=clip.arena, threads=1, progress=False),
                     notice=notes.append)
    assert notes == []  # nothing to say with an arena
    return result


@pytest.fixture(scope="module")
def run2d(clip: DemoClip, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The video and the bag without an arena, from the command line: 2D, one table."""
    out = tmp_path_factory.mktemp("analysis2d")
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(["analyze", str(clip.video), str(clip.bag), "--out", str(out),
                     "--format", "parquet", "--colormap", "viridis", "--trail-points", "5",
                     "--output-fps", "15", "--dot-size", "5", "--threads", "1", "--quiet"])
    assert code == 0, stderr.getvalue()
    result: dict[str, Any] = json.loads(stdout.getvalue())
    result["stderr"] = stderr.getvalue()
    return result


@pytest.fixture(scope="module")
def truth(clip: DemoClip) -> pd.DataFrame:
    return pd.read_csv(clip.truth)


def truth_track(truth: pd.DataFrame, suffixes: tuple[str, str]) -> np.ndarray:
    return np.stack([truth[[f"{k}_{s}" for s in suffixes]].to_numpy() for k in KEYPOINTS], 1)


def video_frames(path: Path) -> Iterator[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                return
            yield frame
    finally:
        cap.release()


def check_movie_files(out: Path, stem: str, size: tuple[int, int] = (640, 480)) -> None:
    for pattern in OUTPUTS:
        path = out / pattern.format(stem)
        assert path.is_file() and path.stat().st_size > 0, path
    df = pd.read_hdf(out / f"{stem}.h5", key="df_with_missing")
    assert isinstance(df, pd.DataFrame)
    assert list(df.columns.names) == ["scorer", "bodyparts", "coords"]
    assert list(dict.fromkeys(df.columns.get_level_values("bodyparts"))) == list(KEYPOINTS)
    assert list(dict.fromkeys(df.columns.get_level_values("coords"))) == ["x", "y",
                                                                          "likelihood"]
    assert len(df) == FRAMES and list(df.index) == list(range(FRAMES))
    pd.testing.assert_frame_equal(read_dlc_csv(out / f"{stem}.csv"), df)
    for name in ("jumps", "likelihood", "coordinates", "trajectory"):
        png = cv2.imread(str(out / f"{stem}_{name}.png"))
        assert png is not None and png.shape[0] > 300 and png.shape[1] > 600, name
        assert png.std() > 10  # not a blank image
    cap = cv2.VideoCapture(str(out / f"{stem}_labelled.mp4"))
    assert (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
            ) == size
    cap.release()
    assert sum(1 for _ in video_frames(out / f"{stem}_labelled.mp4")) == FRAMES


def test_3d_writes_every_file(run3d: dict[str, Any]) -> None:
    out = Path(run3d["annotations"]).parent
    assert run3d["mode"] == "3d"
    (movie,) = run3d["movies"]
    check_movie_files(out, "demo")
    assert movie["frames"] == FRAMES and movie["fps"] == pytest.approx(30.0)
    assert movie["frames_with_mouse"] >= FRAMES - 2 and movie["mode"] == "3d"
    assert set(movie["behavior_frames"]) <= set(CLASS_NAMES)
    assert all(Path(p).is_file() for p in movie["files"].values())
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["annotations.csv"] + [p.format("demo") for p in OUTPUTS])
    df = read_annotations(run3d["annotations"])
    assert len(df) == FRAMES and df["Local frame number"].tolist() == list(range(FRAMES))
    xyz = df[[f"{k} {a} (m)" for k in KEYPOINTS for a in "XYZ"]].to_numpy()
    z = df[[f"{k} z (m)" for k in KEYPOINTS]].to_numpy()
    assert np.isfinite(xyz).mean() > 0.97 and np.isfinite(z).mean() > 0.97
    # the camera is 0.47 m above the floor: keypoints lie 0.38-0.47 m from it
    assert np.nanmin(z) > 0.35 and np.nanmax(z) < 0.48
    assert set(df["Behavior"]) <= {*CLASS_NAMES, ""}
    p = df["Behavior probability"].to_numpy()
    assert np.nanmin(p) >= 0.0 and np.nanmax(p) <= 1.0
    assert (df["Behavior"] != "").mean() > 0.95


def test_3d_locomotion_against_the_ground_truth(run3d: dict[str, Any],
                                                truth: pd.DataFrame) -> None:
    t = truth["time_s"].to_numpy()
    centre = L.centre_of_mass(truth_track(truth, ("x_m", "y_m")), names=KEYPOINTS)
    ref = L.locomotion(centre, t, unit="m", move_speed=0.02)
    out = Path(run3d["annotations"]).parent
    for movie in run3d["movies"]:
        stem = Path(movie["input"]).stem
        table = pd.read_csv(out / f"{stem}_locomotion.csv")
        assert list(table.columns) == ["Frame number", "Time since start (s)",
                                       "Centre x (m)", "Centre y (m)", "Speed (m/s)", "State"]
        c = table[["Centre x (m)", "Centre y (m)"]].to_numpy()
        err = np.linalg.norm(c - ref.centre, axis=1)
        assert err.mean() < 0.01, err.mean()  # within a centimetre on average
        # walking: the distance within 5 % (frames 0-60 and 105-132 walk)
        for a, b in ((0, 60), (105, 132)):
            assert L.path_length(c[a:b]) == pytest.approx(L.path_length(ref.centre[a:b]),
                                                          rel=0.05)
        states = table["State"].tolist()
        assert states[5:60] == ["moving"] * 55  # walking
        assert states[140:] == ["rest"] * (FRAMES - 140)  # grooming in place
        summary = json.loads((out / f"{stem}_locomotion.json").read_text())
        assert {k: summary[k] for k in movie["locomotion"]} == movie["locomotion"]
        assert summary["unit"] == "m" and summary["move_speed"] == 0.02
        # the whole clip: rearing, seen from above, adds some spurious trunk motion
        assert summary["distance_travelled"] == pytest.approx(
            ref.summary["distance_travelled"], rel=0.3)
        assert summary["time_moving_s"] + summary["time_resting_s"] == pytest.approx(5.8)


def test_2d_two_movies_in_one_table(run2d: dict[str, Any], truth: pd.DataFrame) -> None:
    assert run2d["stderr"].count("2D only") == 1  # said once, on stderr
    assert run2d["mode"] == "2d"
    out = Path(run2d["annotations"]).parent
    assert [m["kind"] for m in run2d["movies"]] == ["video", "rosbag2"]
    for stem in ("demo", "demo_bag"):
        check_movie_files(out, stem)
    df = read_annotations(out / "annotations.parquet")
    n = 2 * FRAMES
    assert len(df) == n
    assert df["Frame number"].tolist() == list(range(n))
    assert df["Movie number"].tolist() == [0] * FRAMES + [1] * FRAMES
    assert df["Local frame number"].tolist() == list(range(FRAMES)) * 2
    t = df["Time since start (s)"].to_numpy()
    assert np.all(np.diff(t) > 0)  # the movies end to end
    assert t[FRAMES] == pytest.approx(FRAMES / 30.0) and t[0] == 0.0
    assert df[[c for c in df.columns if c.endswith("(m)")]].isna().all().all()
    assert (df["Behavior"] == "").all() and df["Behavior probability"].isna().all()
    # each movie's DeepLabCut file holds its rows of the table
    for movie, stem in enumerate(("demo", "demo_bag")):
        h5 = pd.read_hdf(out / f"{stem}.h5")
        assert isinstance(h5, pd.DataFrame)
        rows = df[df["Movie number"] == movie]
        for c in ("x", "likelihood"):
            np.testing.assert_array_equal(h5.xs(c, axis=1, level="coords").to_numpy(),
                                          rows[[f"{k} {c}" for k in KEYPOINTS]].to_numpy())
    # pixels near the truth's
    true_px = truth_track(truth, ("u", "v"))
    for movie in (0, 1):
        rows = df[df["Movie number"] == movie]
        xy = rows[[f"{k} {c}" for k in KEYPOINTS for c in "xy"]].to_numpy().reshape(-1, 14, 2)
        good = rows[[f"{k} likelihood" for k in KEYPOINTS]].to_numpy() >= 0.5
        assert np.median(np.linalg.norm(xy - true_px, axis=2)[good]) < 5.0


def test_2d_locomotion_in_pixels(run2d: dict[str, Any], truth: pd.DataFrame) -> None:
    ref = L.locomotion(L.centre_of_mass(truth_track(truth, ("u", "v")), names=KEYPOINTS),
                       truth["time_s"].to_numpy(), unit="px", move_speed=20.0)
    for movie in run2d["movies"]:
        table = pd.read_csv(Path(movie["files"]["locomotion_csv"]))
        assert "Centre x (px)" in table.columns and "Speed (px/s)" in table.columns
        summary = movie["locomotion"]
        assert summary["unit"] == "px" and "body lengths" in summary["move_speed_rule"]
        assert summary["distance_travelled"] == pytest.approx(
            ref.summary["distance_travelled"], rel=0.15)
        assert table["State"].tolist()[5:60] == ["moving"] * 55
        cap = cv2.VideoCapture(movie["files"]["labelled_video"])
        assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(15.0)  # --output-fps
        cap.release()


def test_median_window_filters_what_is_written(clip: DemoClip, tmp_path: Path) -> None:
    def run(window: int) -> pd.DataFrame:
        out = tmp_path / f"w{window}"
        analyze([clip.video], AnalysisOptions(out=out, median_window=window, max_frames=30,
                                              threads=1, progress=False), notice=print)
        df = pd.read_hdf(out / "demo.h5")
        assert isinstance(df, pd.DataFrame) and len(df) == 30
        return df

    raw, filtered = run(0), run(7)
    coords = raw.columns.get_level_values("coords")
    xy = coords.isin(["x", "y"])
    want = L.median_filter(raw.loc[:, xy].to_numpy(), 7)
    np.testing.assert_allclose(filtered.loc[:, xy].to_numpy(), want)
    # likelihoods are left as they are
    like = coords == "likelihood"
    np.testing.assert_array_equal(filtered.loc[:, like].to_numpy(),
                                  raw.loc[:, like].to_numpy())


def test_keypoints_only_body_parts_and_no_skeleton(clip: DemoClip, tmp_path: Path) -> None:
    analyze([clip.video], AnalysisOptions(out=tmp_path, keypoints_only=True, skeleton=False,
                                          bodyparts=("nose", "tail_base"), max_frames=10,
                                          threads=1, progress=False), notice=print)
    frames = list(video_frames(tmp_path / "demo_labelled.mp4"))
    assert len(frames) == 10
    body = frames[5].copy()
    body[:40] = 0  # the text line
    # black but for two dots (compression smears them a little)
    assert (body.max(axis=2) > 60).sum() < 2 * 120


def test_invalid_options_are_one_error_naming_each(clip: DemoClip, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    code = main(["analyze", str(tmp_path / "missing.mp4"), str(afile), "--out", str(afile),
                 "--median-window", "4", "--p-cutoff", "2", "--format", "xlsx",
                 "--colormap", "nope", "--bodyparts", "nose,snout", "--dot-size", "0",
                 "--trail-points", "-1", "--output-fps", "0", "--move-speed", "-1",
                 "--min-bout", "soon", "--device", "tpu", "--arena",
                 str(tmp_path / "none.yaml"), "--max-frames", "0", "--threads", "1.5"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("mouse-lifter: error:") == 1
    for words in ("missing.mp4", "afile': suffix", "--out", "--median-window 4",
                  "--p-cutoff 2.0", "--format 'xlsx'", "--colormap 'nope'", "snout",
                  "--dot-size 0", "--trail-points -1", "--output-fps 0.0",
                  "--move-speed -1.0", "--min-bout 'soon'", "--device 'tpu'", "--arena",
                  "--max-frames 0", "--threads '1.5'"):
        assert words in err, words
    assert "odd integer >= 3" in err and "rainbow" in err  # what is allowed
    # nothing was written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_bag_topic_and_folder_problems(clip: DemoClip, tmp_path: Path) -> None:
    (tmp_path / "notabag").mkdir()
    with pytest.raises(ParameterError) as err:
        check_options([clip.bag, tmp_path / "notabag", clip.video, clip.video],
                      AnalysisOptions(out=tmp_path / "o", image_topic="/camera/nothing",
                                      rest_speed=0.5, move_speed=0.1))
    text = str(err.value)
    assert "--image-topic '/camera/nothing'" in text and "/camera/image_raw" in text
    assert "notabag" in text and "metadata.yaml" in text
    assert "all would write 'demo.*'" in text and "--rest-speed 0.5" in text
    assert not (tmp_path / "o").exists()


def test_bag_images_decode_as_recorded(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    frames = [rng.integers(0, 255, (12, 16, 3), dtype=np.uint8) for _ in range(3)]
    write_image_bag(tmp_path / "rgb", frames, fps=10.0, encoding="rgb8")
    with BagImages(tmp_path / "rgb") as bag:
        got = list(bag)
        assert bag.count == 3
    assert [s - got[0][0] for s, _ in got] == [0, 100_000_000, 200_000_000]
    for (_, frame), want in zip(got, frames, strict=True):
        np.testing.assert_array_equal(frame, want[..., ::-1])  # rgb8 -> BGR
    with pytest.raises(SourceError, match=r"has no topic '/x'.*image_raw"):
        BagImages(tmp_path / "rgb", "/x")
    write_image_bag(tmp_path / "m16", [np.zeros((8, 8), np.uint16)], fps=10.0,
                    encoding="mono16")
    with BagImages(tmp_path / "m16") as bag, pytest.raises(SourceError, match="mono16"):
        list(bag)


def test_labeller_style() -> None:
    names = ("a", "b", "c")
    xy = np.array([[10.0, 10.0], [30.0, 10.0], [50.0, 10.0]])
    conf = np.array([0.9, 0.9, 0.2])
    grey = np.full((40, 60), 200, np.uint8)
    img = Labeller(names, [("a", "b")], LabelStyle(p_cutoff=0.5, dot_size=4)).draw(
        grey, xy, conf)
    sat = img.max(axis=2).astype(int) - img.min(axis=2)
    assert sat[10, 10] > 100 and sat[10, 30] > 100 and sat[10, 50] < 20  # c below cutoff
    assert sat[10, 20] > 50  # the bone
    img = Labeller(names, [("a", "b")], LabelStyle(bodyparts=("a",), skeleton=False,
                                                   keypoints_only=True)).draw(grey, xy, conf)
    assert img[10, 10].max() > 100 and img[10, 30].max() == 0 and img[30, 5].max() == 0
    assert colormap_colours(3, "viridis") != colormap_colours(3)
    assert colormap_colours(2, "viridis")[0] == (84, 1, 68)  # viridis starts dark purple
    with pytest.raises(ParameterError, match="colormap 'nope'"):
        colormap_colours(3, "nope")


def test_damaged_movies_are_analysed_as_far_as_they_read_and_fail_the_run(
        tmp_path: Path) -> None:
    """A video whose frames stop decoding before its header's count, and a bag with a
    message of damaged bytes: the frames that read are analysed and written, each problem
    is reported (which movie, what), and the command exits 1, not 0."""
    import sqlite3

    short = write_demo_clip(tmp_path / "clip", seconds=1.0)
    video = tmp_path / "damaged.mp4"
    data = bytearray(short.video.read_bytes())
    mdat = data.index(b"mdat") - 4
    size = int.from_bytes(data[mdat:mdat + 4], "big")
    half = mdat + size // 2
    data[half:mdat + size] = bytes(mdat + size - half)  # the second half of the frames: zeros
    video.write_bytes(bytes(data))
    bag = tmp_path / "damaged_bag"
    frames = [np.full((48, 64), 40 * i, np.uint8) for i in range(6)]
    write_image_bag(bag, frames, fps=10.0, encoding="mono8", storage="sqlite3")
    [db] = bag.glob("*.db3")
    with sqlite3.connect(db) as con:
        con.execute("UPDATE messages SET data = ? WHERE id = 3", (b"\x00\x01\x00\x00\xff",))
    out = tmp_path / "out"
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(["analyze", str(video), str(bag), "--out", str(out), "--threads", "1",
                     "--quiet"])
    assert code == 1, stderr.getvalue()
    result = json.loads(stdout.getvalue())
    movie, bag_movie = result["movies"]
    assert 0 < movie["frames"] < short.frames
    [problem] = movie["problems"]
    assert f"ended after {movie['frames']} of the {short.frames} frames" in problem
    assert bag_movie["frames"] == 5
    [problem] = bag_movie["problems"]
    assert "1 of the 6 messages on /camera/image_raw could not be decoded" in problem
    assert "message 2 " in problem  # the third written, counted from 0
    assert f"{video}: " in stderr.getvalue() and f"{bag}: " in stderr.getvalue()
    # What was read is all written.
    assert len(read_dlc_csv(out / "damaged.csv")) == movie["frames"]
    assert len(read_dlc_csv(out / "damaged_bag.csv")) == 5
