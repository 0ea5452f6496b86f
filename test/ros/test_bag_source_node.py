"""bag_source_node in its own process, over DDS: a bag the test writes replays in order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

msgs = pytest.importorskip("sensor_msgs.msg", reason="sensor_msgs (ROS 2) is not installed")

from conftest import Listener, write_params  # noqa: E402

from mouse_lifter_ros.core.bag import write_image_bag  # noqa: E402
from mouse_lifter_ros.core.calibration import camera_info_fields, uncalibrated  # noqa: E402
from mouse_lifter_ros.core.images import image_to_numpy  # noqa: E402
from mouse_lifter_ros.nodes._ros import LATEST_FRAME_QOS, stamp_ns  # noqa: E402
from mouse_lifter_ros.runner import GraphRun  # noqa: E402

FRAMES, FPS = 40, 20.0


def _write_bag(path: Path, storage: str) -> Path:
    """FRAMES mono8 frames; frame i is filled with the value 5 * i (its index, readable)."""
    frames = [np.full((60, 80), 5 * i, np.uint8) for i in range(FRAMES)]
    write_image_bag(path, frames, fps=FPS, encoding="mono8", storage=storage,  # type: ignore[arg-type]
                    camera_info=camera_info_fields(uncalibrated(80, 60)))
    return path


def _replay(listener: Listener, namespace: str, params: Path,
            args: dict[str, str]) -> tuple[int, str, list[tuple[int, object]], list]:
    images = listener.subscribe(msgs.Image, f"/{namespace}/camera/image_raw", LATEST_FRAME_QOS)
    infos = listener.subscribe(msgs.CameraInfo, f"/{namespace}/camera/camera_info",
                               LATEST_FRAME_QOS)
    with GraphRun("replay", arguments={"monitor": "false", "lift": "false", **args},
                  namespace=namespace, params_file=params) as run:
        assert run.wait_any(timeout=30) == "bag_source", run.output("bag_source")
        code, out = run.processes["bag_source"].returncode, run.output("bag_source")
    return code, out, images, infos


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_replay_in_order_at_rate(listener: Listener, namespace: str, tmp_path: Path,
                                 storage: str) -> None:
    bag = _write_bag(tmp_path / "bag", storage)
    # Two subscribers to the images: this test and the graph's keypoint node.
    params = write_params(tmp_path / "p.yaml", {"bag_source": {"wait_for_subscribers": 2}})
    code, out, images, infos = _replay(listener, namespace, params,
                                       {"bag": str(bag), "rate": "2.0"})
    assert code == 0 and f"bag ended after {2 * FRAMES} messages" in out, out
    assert len(images) >= FRAMES * 0.9, (len(images), out)
    index = [int(image_to_numpy(m)[0, 0]) // 5 for _, m in images]
    assert index == sorted(set(index)), f"out of order or repeated: {index}"
    # Restamped with the publish time: spacing = recorded spacing / rate.
    stamps = np.array([stamp_ns(m.header.stamp) for _, m in images], dtype=np.int64)
    per_frame = np.diff(stamps) / np.diff(index) / 1e9
    assert np.median(per_frame) == pytest.approx(1 / FPS / 2.0, rel=0.15), per_frame
    # The whole replay took about duration / rate.
    span = (stamps[-1] - stamps[0]) / 1e9 / (index[-1] - index[0])
    assert span == pytest.approx(1 / FPS / 2.0, rel=0.15)
    # Each camera_info carries the stamp of its image.
    assert infos and {stamp_ns(m.header.stamp) for _, m in infos} <= set(stamps.tolist())


def test_keep_recorded_stamps_and_start_offset(listener: Listener, namespace: str,
                                               tmp_path: Path) -> None:
    bag = _write_bag(tmp_path / "bag", "sqlite3")
    params = write_params(tmp_path / "p.yaml", {"bag_source": {
        "wait_for_subscribers": 2, "restamp": False, "rate": 4.0}})  # test + keypoint node
    code, out, images, _ = _replay(listener, namespace, params,
                                   {"bag": str(bag), "start_offset": "1.0"})
    assert code == 0, out
    index = [int(image_to_numpy(m)[0, 0]) // 5 for _, m in images]
    assert index[0] >= round(1.0 * FPS) and index[-1] == FRAMES - 1, index
    # Recorded stamps are 1/FPS apart, whatever the rate.
    stamps = np.array([stamp_ns(m.header.stamp) for _, m in images])
    assert np.all(np.diff(stamps) / np.diff(index) == round(1e9 / FPS))


def test_bag_without_topic_lists_topics(namespace: str, ros_domain: int, tmp_path: Path) -> None:
    bag = _write_bag(tmp_path / "bag", "sqlite3")
    params = write_params(tmp_path / "p.yaml", {"bag_source": {"image_topic": "/top/image"}})
    with GraphRun("replay", arguments={"bag": str(bag), "monitor": "false", "lift": "false"},
                  namespace=namespace, params_file=params) as run:
        assert run.wait_any(timeout=20) == "bag_source"
        code, out = run.processes["bag_source"].returncode, run.output("bag_source")
    assert code == 1
    assert "'/top/image'" in out and "/camera/image_raw (sensor_msgs/msg/Image)" in out, out
    assert "/camera/camera_info (sensor_msgs/msg/CameraInfo)" in out
    assert "Traceback" not in out


@pytest.mark.parametrize(("args", "expected"), [
    ({"bag": "/no/such/bag"}, "'/no/such/bag' does not exist"),
    ({"bag": "BAG", "rate": "0"}, "rate = 0.0: must be >= 0.001 and <= 1000"),
    ({"bag": "BAG", "start_offset": "99"}, "start_offset 99.0 s must be >= 0 and before the end"),
    ({"bag": ""}, "bag = '': must not be empty"),
])
def test_bad_input(namespace: str, ros_domain: int, tmp_path: Path, args: dict[str, str],
                   expected: str) -> None:
    bag = _write_bag(tmp_path / "bag", "sqlite3")
    args = {k: v.replace("BAG", str(bag)) for k, v in args.items()}
    with GraphRun("replay", arguments={**args, "monitor": "false", "lift": "false"},
                  namespace=namespace) as run:
        assert run.wait_any(timeout=20) == "bag_source"
        code, out = run.processes["bag_source"].returncode, run.output("bag_source")
    assert code in (1, 2) and expected in out, out
    assert "Traceback" not in out


def test_launch_argument_of_wrong_type_is_refused() -> None:
    from mouse_lifter_ros.core.errors import ParameterError

    with pytest.raises(ParameterError, match="rate = 'fast': must be a float"):
        GraphRun("replay", arguments={"bag": "x", "rate": "fast"})
