"""Tests of the ``mouse-lifter`` command line, in process (demo-clip and bag-info only)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mouse_lifter_ros.cli import main


def test_demo_clip_then_bag_info(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "clip"
    assert main(["demo-clip", "--out", str(out), "--seconds", "0.5", "--fps", "12"]) == 0
    printed = capsys.readouterr().out
    assert "6 frames" in printed and str(out / "demo.mp4") in printed
    assert (out / "demo.mp4").is_file() and (out / "demo_bag" / "metadata.yaml").is_file()

    assert main(["bag-info", str(out / "demo_bag")]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    rows = [line.split("\t") for line in captured.out.splitlines()]
    assert ["/camera/image_raw", "sensor_msgs/msg/Image", "6"] in rows
    assert ["/camera/camera_info", "sensor_msgs/msg/CameraInfo", "6"] in rows
    assert len(rows) == 2


def test_bag_info_on_a_missing_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                      ) -> None:
    missing = tmp_path / "no_such_bag"
    assert main(["bag-info", str(missing)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "error" in captured.err and str(missing) in captured.err


def test_usage_errors_exit_through_argparse(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["demo-clip"])  # --out is required
    assert exc.value.code == 2
    assert "--out" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([])
