"""Our DeepLabCut .h5 and NWB files load in movement (the neuroinformatics toolbox for
animal movement) with the right keypoints, positions, confidence and frame rate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from movement.io import load_poses

from mouse_lifter_ros.core.analysis import (
    AnalysisOptions,
    analyze,
    check_options,
    load_models,
    observe,
    track_of,
)
from mouse_lifter_ros.core.democlip import write_demo_clip
from mouse_lifter_ros.core.nwb import write_nwb
from mouse_lifter_ros.core.pose_files import read_dlc_h5
from mouse_lifter_ros.core.synth.body import KEYPOINTS


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_demo_clip(tmp_path_factory.mktemp("clip"), seconds=1.5).video


def test_our_h5_loads_in_movement(video: Path, tmp_path: Path) -> None:
    result = analyze([video], AnalysisOptions(out=tmp_path, threads=1, progress=False))
    (movie,) = result["movies"]
    h5 = movie["files"]["h5"]
    ds = load_poses.from_dlc_file(h5, fps=movie["fps"])
    dlc = read_dlc_h5(h5)
    n = movie["frames"]
    assert n == 45 and ds.attrs["fps"] == 30.0 and ds.attrs["source_software"] == "DeepLabCut"
    assert list(ds.keypoints.values) == list(KEYPOINTS)
    assert np.allclose(ds.time.values, np.arange(n) / 30.0)
    scorer = dlc.columns.get_level_values("scorer")[0]
    for name in KEYPOINTS:
        point = ds.position.sel(keypoints=name, individuals=ds.individuals.values[0])
        for axis in ("x", "y"):
            assert np.array_equal(point.sel(space=axis).values,
                                  dlc[(scorer, name, axis)].to_numpy(), equal_nan=True)
        confidence = ds.confidence.sel(keypoints=name, individuals=ds.individuals.values[0])
        assert np.array_equal(confidence.values, dlc[(scorer, name, "likelihood")].to_numpy())
    assert np.isfinite(ds.position.values).mean() > 0.9


def test_our_nwb_loads_in_movement(video: Path, tmp_path: Path) -> None:
    options = AnalysisOptions(out=tmp_path, threads=1, progress=False)
    (m,), _, spec = check_options([video], options)
    model, _ = load_models(spec, None, options)
    track = track_of([observe(m, options, model, None, None)], m, options, model.names, None,
                     None)
    path = write_nwb(tmp_path / "demo.nwb", track=track, names=model.names,
                     skeleton=model.spec.skeleton, video=video, scorer=model.description)
    ds = load_poses.from_nwb_file(path, processing_module_key="behavior",
                                  pose_estimation_key="PoseEstimation2D")
    assert ds.attrs["fps"] == 30.0 and set(ds.keypoints.values) == set(KEYPOINTS)
    for i, name in enumerate(model.names):
        point = ds.position.sel(keypoints=name, individuals=ds.individuals.values[0])
        assert np.array_equal(point.values, track.xy[:, i], equal_nan=True)
        confidence = ds.confidence.sel(keypoints=name, individuals=ds.individuals.values[0])
        assert np.array_equal(confidence.values, track.likelihood[:, i])
