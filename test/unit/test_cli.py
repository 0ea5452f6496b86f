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


def test_demo_verdict_names_the_links_that_carried_too_little(tmp_path: Path) -> None:
    """What `make demo` prints and exits 1 on: a link below 95 % of the clip's frames (a
    link that never matched carries 0) or a stimulus that never fired."""
    import json

    import numpy as np
    import pandas as pd

    from mouse_lifter_ros.cli.demo import flow_problems

    records = tmp_path / "rec"
    records.mkdir()
    columns = pd.MultiIndex.from_product([["s"], ["nose"], ["x", "y", "likelihood"]],
                                         names=["scorer", "bodyparts", "coords"])
    pd.DataFrame(np.ones((100, 3)), columns=columns).to_csv(records / "demo.csv")
    summary = tmp_path / "totals.json"
    summary.write_text(json.dumps({"messages": {
        "/demo/camera/image_raw": 100, "/demo/keypoints": 100, "/demo/pose": 0,
        "/demo/behavior": 99}, "triggers": {"on": 0, "off": 0}}))
    problems = flow_problems(100, summary, records)
    assert problems == [
        "pose at the monitor: 0 of 100 frames (at least 95 expected): this link never "
        "carried data",
        "trigger at the monitor: the stimulus never turned on (the clip's mouse rears)"]
    assert ("rows written by the recorder: 100 of 110 frames (at least 105 expected)"
            in flow_problems(110, summary, records))
    summary.write_text(json.dumps({"messages": {
        "/demo/camera/image_raw": 100, "/demo/keypoints": 100, "/demo/pose": 100,
        "/demo/behavior": 100}, "triggers": {"on": 1, "off": 1}}))
    assert flow_problems(100, summary, records) == []
    assert "cannot be read" in flow_problems(100, tmp_path / "missing.json",
                                                   records)[0]
