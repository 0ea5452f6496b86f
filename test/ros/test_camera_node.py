"""camera_node in its own process, over DDS: a video file reaches a subscriber."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

msgs = pytest.importorskip("sensor_msgs.msg", reason="sensor_msgs (ROS 2) is not installed")

from conftest import Listener, write_params  # noqa: E402

from mouse_lifter_ros.core.images import image_to_numpy  # noqa: E402
from mouse_lifter_ros.core.video import write_video  # noqa: E402
from mouse_lifter_ros.nodes._ros import LATEST_FRAME_QOS, stamp_ns  # noqa: E402
from mouse_lifter_ros.runner import GraphRun, package_share  # noqa: E402

FRAMES, FPS = 45, 30.0


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 320x240 clip whose frame i has a bright square at column 5 * i."""
    frames = []
    for i in range(FRAMES):
        f = np.full((240, 320, 3), 40, np.uint8)
        f[100:140, 5 * i:5 * i + 40] = 220
        frames.append(f)
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    write_video(path, frames, FPS)
    return path


def test_video_file_reaches_subscriber(listener: Listener, namespace: str, video: Path,
                                       tmp_path: Path) -> None:
    images = listener.subscribe(msgs.Image, f"/{namespace}/camera/image_raw", LATEST_FRAME_QOS)
    infos = listener.subscribe(msgs.CameraInfo, f"/{namespace}/camera/camera_info",
                               LATEST_FRAME_QOS)
    args = {"source": str(video), "monitor": "false", "lift": "false",
            "calibration": "package://mouse_lifter_ros/config/calibration/demo_camera.yaml"}
    # The camera waits until our subscriber and the graph's keypoint node are matched,
    # then plays the file to its end.
    params = write_params(tmp_path / "params.yaml", {"camera": {"wait_for_subscribers": 2}})
    with GraphRun("live", arguments=args, namespace=namespace, params_file=params) as run:
        assert run.wait_any(timeout=20) == "camera", run.output("camera")
        code = run.processes["camera"].returncode
        out = run.output("camera")
    assert code == 0, out
    assert "video ended after 45 frames" in out
    # Best-effort delivery may lose a frame at start-up; nearly all must arrive.
    assert len(images) >= FRAMES * 0.8, (len(images), out)
    first = images[0][1]
    assert (first.width, first.height, first.encoding) == (320, 240, "bgr8")
    assert first.step == 320 * 3 and first.header.frame_id == "camera_optical_frame"
    stamps = [stamp_ns(m.header.stamp) for _, m in images]
    assert all(np.diff(stamps) > 0), "stamps not monotonic"
    # Paced at the file's rate: 30 fps within 20 %.
    period = np.median(np.diff(stamps)) / 1e9
    assert 0.8 / FPS < period < 1.2 / FPS, period
    # The square moves right frame after frame: frames arrive in capture order.
    cols = [int(np.argmax(image_to_numpy(m)[120, :, 0] > 128)) for _, m in images]
    assert cols == sorted(cols) and cols[-1] > cols[0]
    # camera_info: the calibration, scaled to the 320x240 frames, stamped like the images.
    assert infos, "no camera_info"
    info = infos[-1][1]
    assert (info.width, info.height) == (320, 240)
    assert info.k[0] == pytest.approx(300.0) and info.k[2] == pytest.approx(159.75)
    assert {stamp_ns(m.header.stamp) for _, m in infos} <= set(stamps)


def test_crop_mono_and_roi(listener: Listener, namespace: str, video: Path,
                           tmp_path: Path) -> None:
    images = listener.subscribe(msgs.Image, f"/{namespace}/camera/image_raw", LATEST_FRAME_QOS)
    infos = listener.subscribe(msgs.CameraInfo, f"/{namespace}/camera/camera_info",
                               LATEST_FRAME_QOS)
    params = write_params(tmp_path / "params.yaml", {"camera": {
        "source": str(video), "crop": [100, 80, 160, 120], "encoding": "mono8",
        "wait_for_subscribers": 2}})  # this test and the keypoint node
    with GraphRun("live", arguments={"monitor": "false", "lift": "false"}, namespace=namespace,
                  params_file=params) as run:
        assert run.wait_any(timeout=20) == "camera"
        out = run.output("camera")
    assert len(images) >= FRAMES * 0.8, out
    msg = images[0][1]
    assert (msg.width, msg.height, msg.encoding, msg.step) == (160, 120, "mono8", 160)
    info = infos[0][1]
    # REP-104: full-frame size and K, the crop in roi.
    assert (info.width, info.height) == (320, 240)
    assert (info.roi.x_offset, info.roi.y_offset, info.roi.width, info.roi.height) == (
        100, 80, 160, 120)


def _run_camera(namespace: str, args: dict[str, str],
                params: Path | None = None) -> tuple[int, str]:
    """Start the live graph without the monitor; return the camera's exit code and output."""
    with GraphRun("live", arguments={**args, "monitor": "false", "lift": "false"},
                  namespace=namespace, params_file=params) as run:
        assert run.wait_any(timeout=20) == "camera"
        return run.processes["camera"].returncode, run.output("camera")


def test_missing_file_is_one_clear_error(namespace: str, ros_domain: int) -> None:
    code, out = _run_camera(namespace, {"source": "/no/such/clip.mp4"})
    assert code == 1
    assert "/no/such/clip.mp4" in out and "does not exist" in out
    assert "Traceback" not in out


def test_missing_device_is_one_clear_error(namespace: str, ros_domain: int) -> None:
    code, out = _run_camera(namespace, {"source": "57"})
    assert code == 1
    assert "camera device 57" in out and "Traceback" not in out


def test_invalid_parameters_are_listed_together(namespace: str, ros_domain: int,
                                                tmp_path: Path) -> None:
    params = write_params(tmp_path / "params.yaml", {"camera": {
        "fps": -5.0, "encoding": "yuv422", "crop": [10, 10, 0, 5]}})
    code, out = _run_camera(namespace, {}, params)
    assert code == 2
    for text in ("fps = -5.0", "encoding = 'yuv422'", "crop = [10, 10, 0, 5]", ">= 0",
                 "bgr8, rgb8, mono8"):
        assert text in out, out
    assert "Traceback" not in out


def test_bad_calibration_file(namespace: str, ros_domain: int, video: Path,
                              tmp_path: Path) -> None:
    bad = tmp_path / "cal.yaml"
    bad.write_text("image_width: 640\nimage_height: -1\ncamera_matrix: {rows: 3, cols: 3}\n")
    code, out = _run_camera(namespace, {"source": str(video), "calibration": str(bad)})
    assert code == 1 and str(bad) in out and "Traceback" not in out


def test_shipped_calibrations_exist() -> None:
    share = package_share() / "config" / "calibration"
    assert (share / "demo_camera.yaml").is_file()


def test_no_camera_calibration_is_no_warning_for_3d(namespace: str, ros_domain: int,
                                                    video: Path) -> None:
    """Without calibration_file the depth and lifter nodes still lift (their arena file
    has the intrinsics): the camera says so, and warns about nothing."""
    code, out = _run_camera(namespace, {"source": str(video)})
    assert code == 0, out
    assert "use the intrinsics of their arena calibration" in out, out
    assert "WARN" not in out and "3D lifting needs" not in out, out
