"""Tests of the synthetic dataset writer and reader, and of `mouse-lifter synth`."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from mouse_lifter_ros.cli import main
from mouse_lifter_ros.core.body import BEHAVIORS, KEYPOINTS
from mouse_lifter_ros.core.errors import InputError, ParameterError
from mouse_lifter_ros.core.synth.dataset import (
    FORMAT,
    VERSION,
    SynthConfig,
    SynthDataset,
    write_dataset,
)


def digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_whatever_the_workers(tmp_path: Path) -> None:
    config = SynthConfig(count=4, seed=3, crop=128)
    a = digest(write_dataset(tmp_path / "a", config, workers=1, progress=False))
    b = digest(write_dataset(tmp_path / "b", config, workers=2, progress=False))
    assert a == b
    assert len(a) == 2 + 3 * 4  # dataset.json, manifest.jsonl, 3 files per sample
    c = digest(write_dataset(tmp_path / "c", SynthConfig(count=4, seed=4, crop=128),
                             workers=1, progress=False))
    assert a["images/000000.png"] != c["images/000000.png"]


def test_read_back_matches_the_manifest(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "ds", SynthConfig(count=3, seed=1, width=320, height=240),
                         workers=1, progress=False)
    ds = SynthDataset(root)
    assert len(ds) == 3
    header = json.loads((root / "dataset.json").read_text())
    assert header["format"] == FORMAT and header["version"] == VERSION
    assert header["keypoints"] == list(KEYPOINTS)
    for i in range(len(ds)):
        r = ds[i].sample
        assert ds[i].behavior in BEHAVIORS
        assert r.image.shape == (240, 320) and r.image.dtype == np.uint8
        assert r.depth.shape == (240, 320) and r.depth.dtype == np.float32
        assert set(np.unique(r.mask)) <= {0, 1} and r.mask.any()
        assert set(np.unique(r.region)) <= {0, 1, 2, 3, 4}
        floor = r.region == 1  # the floor's depth is finite and positive
        assert floor.any() and (r.depth[floor] > 0).all()
        assert r.keypoints_2d.shape == (14, 2) and r.keypoints_arena.shape == (14, 3)
        # the saved camera reproduces the saved 2D keypoints from the saved 3D ones
        px, z = r.camera.project(r.keypoints_arena)
        assert np.abs(px - r.keypoints_2d).max() < 1e-3
        assert np.allclose(z, r.keypoints_camera[:, 2], atol=1e-5)
        # the mask covers the visible keypoints on the mouse body
        for k in np.flatnonzero(r.visible):
            u, v = np.rint(r.keypoints_2d[k]).astype(int)
            near = r.mask[max(v - 2, 0):v + 3, max(u - 2, 0):u + 3]
            assert near.any(), f"sample {i}: visible {KEYPOINTS[k]} is off the mask"


def test_sequences_label_every_frame_and_keep_the_mouse(tmp_path: Path) -> None:
    config = SynthConfig(count=2, seed=5, sequence_s=1.0, fps=10.0, crop=160)
    ds = SynthDataset(write_dataset(tmp_path / "seq", config, workers=2, progress=False))
    assert len(ds) == 20
    recs = ds.records
    assert [r["sequence"] for r in recs] == [0] * 10 + [1] * 10
    assert [r["frame"] for r in recs[:10]] == list(range(10))
    assert recs[9]["time"] == pytest.approx(0.9)
    assert all(r["behavior"] in BEHAVIORS for r in recs)
    # one mouse per sequence: its shape does not change from frame to frame
    assert all(r["shape"] == recs[0]["shape"] for r in recs[:10])
    assert recs[10]["shape"] != recs[0]["shape"]
    for i in range(len(ds)):
        assert ds[i].sample.image.shape == (160, 160)


def test_invalid_config_lists_every_problem() -> None:
    with pytest.raises(ParameterError) as err:
        SynthConfig(count=0, view="side", crop=8, fps=0.0).validate()
    text = str(err.value)
    for word in ("count=0", "view='side'", "crop=8", "fps=0.0"):
        assert word in text


def test_refuses_to_replace_a_folder_that_is_not_a_dataset(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(InputError, match="not empty"):
        write_dataset(tmp_path, SynthConfig(count=1), workers=1, progress=False)
    assert (tmp_path / "notes.txt").read_text() == "keep me"


def test_an_interrupted_dataset_is_not_read(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "ds", SynthConfig(count=1, width=160, height=120),
                         workers=1, progress=False)
    (root / "dataset.json").unlink()
    with pytest.raises(InputError, match=r"no dataset\.json"):
        SynthDataset(root)


def test_cli_synth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    code = main(["synth", "--out", str(out), "--count", "2", "--seed", "9", "--view", "bottom",
                 "--size", "320x240", "--workers", "1", "--quiet"])
    assert code == 0
    assert "wrote 2 samples" in capsys.readouterr().out
    ds = SynthDataset(out)
    assert ds.header["config"]["view"] == "bottom" and len(ds) == 2
    assert main(["synth", "--out", str(out), "--count", "1", "--size", "big"]) == 2
    assert "WIDTHxHEIGHT" in capsys.readouterr().err
