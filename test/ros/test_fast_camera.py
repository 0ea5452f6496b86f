"""A camera faster than the machine: the graph skips frames at the source, counts them,
and everything the lifter still makes reaches the recording."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

pytest.importorskip("sensor_msgs.msg", reason="sensor_msgs (ROS 2) is not installed")

from conftest import failed_exits, write_params

from mouse_lifter_ros.core.pose_files import read_dlc_csv
from mouse_lifter_ros.runner import GraphRun


def test_120_fps_offered_records_every_pose_the_lifter_published(
        ros_domain: int, namespace: str, tmp_path: Path) -> None:
    """The demo clip replayed at x4 (120 fps offered) as a camera would deliver it
    (when_busy skip): the source reports what it skipped, the monitor's totals say the
    same, and the recording holds a row for every pose the lifter published."""
    from mouse_lifter_ros.core.democlip import write_demo_clip

    clip = write_demo_clip(tmp_path / "clip", seconds=4.0)
    params = write_params(tmp_path / "p.yaml", {"bag_source": {"rate": 4.0,
                                                               "when_busy": "skip"}})
    with GraphRun("replay", arguments={"bag": str(clip.bag), "arena": str(clip.arena),
                                       "record": "true", "record_dir": str(tmp_path / "rec"),
                                       "record_prefix": "fast", "stimulus": "false"},
                  namespace=namespace, params_file=params) as run:
        assert run.wait_any(timeout=120) == "bag_source", run.output("bag_source")
        time.sleep(4.0)  # the last frames' poses reach the recorder
        codes = run.stop()
        logs = {name: run.output(name) for name in run.processes}
    assert set(codes.values()) == {0}, failed_exits(codes, logs)
    flow = re.search(r"flow: (\d+) frames offered, (\d+) sent, (\d+) skipped", logs["bag_source"])
    assert flow, logs["bag_source"]
    offered, sent, skipped = map(int, flow.groups())
    assert offered == clip.frames and sent + skipped == offered and sent > 0, flow.group(0)
    # the monitor's totals give the source's final counts, not its last periodic report
    # (the source ends with the bag, seconds before the monitor)
    stage = re.findall(r"total: stage \S+bag_source: source: (\d+) frames offered, (\d+) sent",
                       logs["monitor"])
    assert stage and tuple(map(int, stage[-1])) == (offered, sent), (stage, flow.group(0))
    poses = re.search(r"total: frame_rate_hz [\d.na]+, poses (\d+)", logs["lifter"])
    assert poses, logs["lifter"]
    rows = len(read_dlc_csv(tmp_path / "rec" / "fast.csv"))
    assert rows == int(poses.group(1)) > 0.5 * sent, (rows, poses.group(0), flow.group(0),
                                                      logs["recorder"])
