"""NWB output (core/nwb.py) of the demo clip: opened with pynwb, checked by nwbinspector,
every keypoint read back as written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ndx_pose import CalibratedCamera
from nwbinspector import Importance, inspect_nwbfile
from pynwb import NWBHDF5IO

from mouse_lifter_ros.core.analysis import (
    AnalysisOptions,
    Track,
    check_options,
    load_models,
    observe,
    track_of,
)
from mouse_lifter_ros.core.democlip import DemoClip, write_demo_clip
from mouse_lifter_ros.core.errors import InputError
from mouse_lifter_ros.core.nwb import behavior_bouts, write_nwb
from mouse_lifter_ros.core.synth.body import KEYPOINTS

NOT_ALLOWED = {Importance.ERROR, Importance.PYNWB_VALIDATION, Importance.CRITICAL}


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> DemoClip:
    return write_demo_clip(tmp_path_factory.mktemp("clip"))


def analysed(movie: Path, arena: Path | None, out: Path) -> dict[str, Any]:
    options = AnalysisOptions(out=out, arena=arena, threads=1, progress=False)
    (m,), calibration, spec = check_options([movie], options)
    model, pipe = load_models(spec, calibration, options)
    track = track_of([observe(m, options, model, pipe, calibration)], m, options, model.names,
                     pipe, calibration)
    path = write_nwb(out / f"{m.stem}.nwb", track=track, names=model.names,
                     skeleton=model.spec.skeleton, video=movie, scorer=model.description,
                     arena=None if calibration is None else calibration.scaled(*track.size))
    return {"path": path, "track": track, "names": model.names, "video": movie,
            "skeleton": model.spec.skeleton, "arena": calibration}


@pytest.fixture(scope="module")
def nwb3d(clip: DemoClip, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return analysed(clip.video, clip.arena, tmp_path_factory.mktemp("nwb3d"))


def same(a: Any, b: Any) -> bool:
    return bool(np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True))


def test_demo_clip_nwb_round_trips_the_keypoints(nwb3d: dict[str, Any]) -> None:
    track: Track = nwb3d["track"]
    names = nwb3d["names"]
    assert list(names) == list(KEYPOINTS)
    with NWBHDF5IO(str(nwb3d["path"]), "r") as io:
        f = io.read()
        behavior = f.processing["behavior"]
        pose2d, pose3d = behavior["PoseEstimation2D"], behavior["PoseEstimation3D"]
        assert set(pose2d.pose_estimation_series) == set(names) == set(
            pose3d.pose_estimation_series)
        for i, name in enumerate(names):
            s2, s3 = pose2d.pose_estimation_series[name], pose3d.pose_estimation_series[name]
            assert same(s2.data[:], track.xy[:, i]) and s2.unit == "pixels"
            assert same(s2.confidence[:], track.likelihood[:, i])
            assert same(s3.data[:], track.positions[:, i]) and s3.unit == "meters"
            assert s2.rate == 30.0 and s2.starting_time == 0.0 and s2.timestamps is None
        assert np.isfinite(track.xy).any() and np.isfinite(track.positions).any()
        skeleton = behavior["Skeletons"].skeletons["mouse"]
        assert list(skeleton.nodes[:]) == list(names)
        edges = {(names[a], names[b]) for a, b in skeleton.edges[:]}
        assert edges == set(nwb3d["skeleton"]) and edges
        assert pose2d.skeleton is skeleton and pose2d.source_video.name == "source_video"
        camera = pose2d.device
        assert isinstance(camera, CalibratedCamera)
        arena = nwb3d["arena"]
        assert same(camera.intrinsic_matrix[:], np.reshape(arena.intrinsics.k, (3, 3)))
        assert same(camera.rotation_matrix[:], arena.rotation)
        assert same(camera.translation_vector[:], arena.translation)
        video = f.acquisition["source_video"]
        relative = Path(video.external_file[0])
        assert not relative.is_absolute()
        assert (nwb3d["path"].parent / relative).resolve() == nwb3d["video"].resolve()
        bouts = f.intervals["behavior"].to_dataframe()
        expected = behavior_bouts(track.behavior, track.behavior_probability, track.times,
                                  track.fps)
        assert list(bouts["label"]) == [b[2] for b in expected] and len(expected) >= 2
        assert same(bouts["start_time"], [b[0] for b in expected])
        assert {"rearing", "locomotion"} <= set(bouts["label"])
        assert f.subject.species == "Mus musculus"


def test_demo_clip_nwb_passes_nwbinspector(nwb3d: dict[str, Any]) -> None:
    messages = list(inspect_nwbfile(nwbfile_path=nwb3d["path"]))
    bad = [(m.importance.name, m.check_function_name, m.message) for m in messages
           if m.importance in NOT_ALLOWED]
    assert bad == []


def test_bag_2d_nwb_has_stamps_and_an_uncalibrated_camera(clip: DemoClip,
                                                          tmp_path: Path) -> None:
    result = analysed(clip.bag, None, tmp_path)
    track = result["track"]
    with NWBHDF5IO(str(result["path"]), "r") as io:
        f = io.read()
        assert "PoseEstimation3D" not in f.processing["behavior"].data_interfaces
        assert f.intervals is None or "behavior" not in f.intervals
        series = f.processing["behavior"]["PoseEstimation2D"].pose_estimation_series["nose"]
        assert series.rate is None and same(series.timestamps[:], track.times)
        assert same(series.data[:], track.xy[:, 0])
        assert not isinstance(f.devices["camera"], CalibratedCamera)
    assert [m for m in inspect_nwbfile(nwbfile_path=result["path"])
            if m.importance in NOT_ALLOWED] == []


def test_bad_arguments_are_one_error(nwb3d: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(InputError) as err:
        write_nwb(tmp_path / "x.h5", track=nwb3d["track"], names=["nose"], skeleton=[],
                  video=nwb3d["path"], scorer="s")
    assert "must end in .nwb" in str(err.value) and "for 1 names ['nose']" in str(err.value)


def test_behavior_bouts() -> None:
    times = np.arange(6) / 10
    p = np.array([0.9, 0.7, np.nan, 0.6, 0.8, 0.5])
    assert behavior_bouts(["a", "a", "", "b", "b", "a"], p, times, 10.0) == [
        (0.0, pytest.approx(0.2), "a", pytest.approx(0.8)),
        (0.3, pytest.approx(0.5), "b", pytest.approx(0.7)),
        (0.5, pytest.approx(0.6), "a", 0.5)]
