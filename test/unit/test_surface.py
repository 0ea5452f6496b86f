"""The bedding's depth measured in the image where its surface meets the arena's walls
(``core/surface.py``, ``calibrate --from ARENA.yaml --walls IMAGE``), on frames the
synthetic engine renders with the camera calibrated on a floor under the surface the
mouse stands on."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from mouse_lifter_ros.cli import main
from mouse_lifter_ros.core.arena import (
    ArenaCalibration,
    arena_from_camera,
    floor_below,
    load_arena,
    save_arena,
)
from mouse_lifter_ros.core.errors import CalibrationError
from mouse_lifter_ros.core.surface import bedding_from_walls
from mouse_lifter_ros.core.synth.dataset import SynthConfig, render_item


def _rendered(seed: int, item: int, bedding: float
              ) -> tuple[ArenaCalibration, np.ndarray, tuple[float, float]]:
    """A rendered frame, the calibration a lab would have made on the floor ``bedding``
    metres under its surface (knowing nothing of the bedding), and the arena's size."""
    got = render_item(SynthConfig(count=item + 1, seed=seed, colour=None), item)
    sample = next(got.frames)[0]
    floor = replace(floor_below(arena_from_camera(sample.camera), bedding), bedding=0.0)
    return floor, sample.image, got.scene.arena


@pytest.mark.parametrize("bedding", [0.0, 0.012, 0.03])
def test_the_depth_is_read_where_the_bedding_meets_the_walls(bedding: float) -> None:
    errors = []
    for item in range(4):
        floor, image, size = _rendered(21, item, bedding)
        fit = bedding_from_walls(floor, [image], arena_size=size)
        assert fit.edge_points >= 150 and fit.contrast >= 2.0
        errors.append(fit.depth - bedding)
    assert np.abs(errors).max() < 1e-3, errors  # metres


def test_what_cannot_be_measured_is_refused_with_the_reasons() -> None:
    floor, image, size = _rendered(21, 0, 0.02)
    with pytest.raises(CalibrationError, match="the arena's size is not known"):
        bedding_from_walls(floor, [image])  # a camera calibration has no size
    flat = np.full_like(image, 128)
    with pytest.raises(CalibrationError, match="no line along the walls stands out"):
        bedding_from_walls(floor, [flat], arena_size=size)
    with pytest.raises(CalibrationError) as exc:
        bedding_from_walls(floor, [image[:100]], arena_size=None)
    assert "the arena's size is not known" in str(exc.value) and \
        f"the calibration is of {floor.width}x{floor.height}" in str(exc.value)
    with pytest.raises(CalibrationError, match="the walls must be in the image"):
        bedding_from_walls(floor, [image], arena_size=(5.0, 5.0))  # walls out of view


def test_calibrate_from_walls_writes_the_measured_depth(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    floor, image, size = _rendered(21, 1, 0.02)
    cv2.imwrite(str(tmp_path / "cage.png"), image)
    first = tmp_path / "floor.yaml"
    save_arena(first, floor)
    out = tmp_path / "bedded.yaml"
    base = ["calibrate", "--from", str(first), "--out", str(out)]
    assert main([*base, "--walls", str(tmp_path / "cage.png"), "--arena-size",
                 f"{size[0]}x{size[1]}"]) == 0
    got = capsys.readouterr()
    assert "the mouse stands on bedding 20 mm deep" in got.out and "points in view" in got.err
    bedded = load_arena(out)
    assert bedded.bedding == pytest.approx(0.02, abs=1e-3)
    assert np.array_equal(bedded.translation, floor.translation)
    # a video of the cage: its frames' median
    writer = cv2.VideoWriter(str(tmp_path / "cage.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 30,
                             (image.shape[1], image.shape[0]))
    for _ in range(5):
        writer.write(image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR))
    writer.release()
    assert main([*base, "--walls", str(tmp_path / "cage.avi"), "--arena-size",
                 f"{size[0]}x{size[1]}"]) == 0
    assert load_arena(out).bedding == pytest.approx(0.02, abs=1.5e-3)
    capsys.readouterr()
    # no size: refused, nothing written
    assert main(["calibrate", "--from", str(first), "--out", str(tmp_path / "no.yaml"),
                 "--walls", str(tmp_path / "cage.png")]) == 1
    assert "the arena's size is not known" in capsys.readouterr().err
    assert not (tmp_path / "no.yaml").exists()
    for argv, says in (([*base, "--walls", "x.png", "--bedding", "0.01"], "not with"),
                       (["calibrate", "--out", "o", "--walls", "x.png"], "--intrinsics"),
                       ([*base, "--arena-size", "0.4x0.4"], "only with --walls")):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2 and says in capsys.readouterr().err
