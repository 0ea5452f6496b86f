"""Tests of mouse_lifter_ros.core.video on small videos written into tmp_path."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from fakes import FakeTime

from mouse_lifter_ros.core.errors import InputError, MouseLifterError, SourceError
from mouse_lifter_ros.core.video import (
    FramePacer,
    VideoSource,
    VideoSourceConfig,
    parse_source,
    write_video,
)

W, H, N = 160, 120, 20


def ramp_video(path: Path, n: int = N) -> Path:
    """Frame i is flat grey of value 10 * i, so order survives compression."""
    write_video(path, (np.full((H, W, 3), 10 * i, np.uint8) for i in range(n)), fps=10.0)
    return path


def rect_video(path: Path, n: int = 5) -> Path:
    """Black frames, blue (BGR) at x 40..79, y 30..59; white from x 100 on."""
    frame = np.zeros((H, W, 3), np.uint8)
    frame[30:60, 40:80] = (255, 0, 0)
    frame[:, 100:] = 255
    write_video(path, [frame] * n, fps=10.0)
    return path


def read_all(src: VideoSource, limit: int = 1000) -> list[np.ndarray]:
    frames: list[np.ndarray] = []
    while (frame := src.read()) is not None and len(frames) < limit:
        frames.append(frame.copy())  # a frame is valid until the next read()
    return frames


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_frames_in_order_then_none(tmp_path: Path, suffix: str) -> None:
    path = ramp_video(tmp_path / f"ramp{suffix}")
    with VideoSource(VideoSourceConfig(str(path))) as src:
        assert src.is_file and src.frame_size == (W, H) and src.output_size == (W, H)
        assert src.fps == pytest.approx(10.0)
        assert src.frame_count == N
        frames = read_all(src)
        assert src.read() is None and src.read() is None
        assert src.frames_read == N and src.loops == 0
    assert len(frames) == N
    for i, frame in enumerate(frames):
        assert frame.shape == (H, W, 3) and frame.dtype == np.uint8
        assert abs(frame.mean() - 10 * i) < 5, (i, frame.mean())


def test_configured_fps_overrides_the_file_rate(tmp_path: Path) -> None:
    path = ramp_video(tmp_path / "ramp.mp4", n=3)
    with VideoSource(VideoSourceConfig(str(path), fps=25.0)) as src:
        assert src.fps == 25.0


def test_loop_keeps_delivering_and_counts_loops(tmp_path: Path) -> None:
    path = ramp_video(tmp_path / "ramp.mp4", n=5)
    with VideoSource(VideoSourceConfig(str(path), loop=True)) as src:
        means = []
        for _ in range(12):
            frame = src.read()
            assert frame is not None
            means.append(frame.mean())
        assert src.loops == 2 and src.frames_read == 12
    for k, mean in enumerate(means):
        assert abs(mean - 10 * (k % 5)) < 5, (k, means)


def test_crop_gives_the_right_size_and_region(tmp_path: Path) -> None:
    path = rect_video(tmp_path / "rect.mp4")
    with VideoSource(VideoSourceConfig(str(path), crop=(40, 30, 40, 30))) as src:
        assert src.frame_size == (W, H) and src.output_size == (40, 30)
        frame = src.read()
    assert frame is not None and frame.shape == (30, 40, 3)
    inner = frame[4:-4, 4:-4].reshape(-1, 3).mean(axis=0)
    assert inner[0] > 220 and inner[1] < 30 and inner[2] < 30  # blue, in BGR
    with VideoSource(VideoSourceConfig(str(path), crop=(0, 0, 30, 20))) as src:
        frame = src.read()
    assert frame is not None and frame.shape == (20, 30, 3) and frame.mean() < 20


def test_resize_then_crop(tmp_path: Path) -> None:
    path = rect_video(tmp_path / "rect.mp4")
    with VideoSource(VideoSourceConfig(str(path), width=80, height=60)) as src:
        assert src.frame_size == (80, 60)
        frame = src.read()
        assert frame is not None and frame.shape == (60, 80, 3)
    with VideoSource(VideoSourceConfig(str(path), width=80)) as src:  # keeps the aspect ratio
        assert src.frame_size == (80, 60)
    # In the half-size frame the white band starts at x = 50.
    with VideoSource(VideoSourceConfig(str(path), width=80, height=60,
                                       crop=(55, 10, 20, 40))) as src:
        assert src.output_size == (20, 40)
        frame = src.read()
    assert frame is not None and frame.shape == (40, 20, 3) and frame.mean() > 230


def test_encodings(tmp_path: Path) -> None:
    path = rect_video(tmp_path / "rect.mp4")
    crop = (44, 34, 32, 22)  # inside the blue rectangle
    frames = {}
    for encoding in ("bgr8", "rgb8", "mono8"):
        with VideoSource(VideoSourceConfig(str(path), crop=crop, encoding=encoding)) as src:
            frame = src.read()
            assert frame is not None and frame.dtype == np.uint8
            frames[encoding] = frame.copy()
    assert frames["bgr8"].shape == frames["rgb8"].shape == (22, 32, 3)
    assert frames["bgr8"][..., 0].mean() > 220 and frames["bgr8"][..., 2].mean() < 30
    assert frames["rgb8"][..., 2].mean() > 220 and frames["rgb8"][..., 0].mean() < 30
    assert frames["mono8"].shape == (22, 32)
    assert abs(frames["mono8"].mean() - 0.114 * 255) < 10  # luma of pure blue


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope" / "missing.mp4"
    with pytest.raises(SourceError, match="does not exist") as info:
        VideoSource(VideoSourceConfig(str(path)))
    assert str(path) in str(info.value)


def test_directory_is_not_a_video(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="not a file"):
        VideoSource(VideoSourceConfig(str(tmp_path)))


def test_garbage_file(tmp_path: Path) -> None:
    path = tmp_path / "x.mp4"
    path.write_bytes(b"this is not a video" * 100)
    with pytest.raises(SourceError) as info:
        VideoSource(VideoSourceConfig(str(path)))
    assert str(path) in str(info.value)


@pytest.mark.parametrize("crop", [(150, 0, 20, 20), (0, 100, 10, 30), (-1, 0, 5, 5),
                                  (0, 0, 0, 10)])
def test_crop_outside_the_frame(tmp_path: Path, crop: tuple[int, int, int, int]) -> None:
    path = ramp_video(tmp_path / "ramp.mp4", n=2)
    with pytest.raises(InputError) as info:
        VideoSource(VideoSourceConfig(str(path), crop=crop))
    message = str(info.value)
    assert f"{W}x{H}" in message
    assert all(str(v) in message for v in crop)


def test_missing_device_fails_quickly() -> None:
    start = time.monotonic()
    with pytest.raises(SourceError, match="camera device 97"):
        VideoSource(VideoSourceConfig("97"))
    assert time.monotonic() - start < 10.0


def test_read_after_close(tmp_path: Path) -> None:
    src = VideoSource(VideoSourceConfig(str(ramp_video(tmp_path / "ramp.mp4", n=3))))
    src.close()
    src.close()
    with pytest.raises(SourceError, match="closed"):
        src.read()


def test_bad_config() -> None:
    with pytest.raises(InputError, match="encoding"):
        VideoSourceConfig("0", encoding="yuv422")
    with pytest.raises(InputError, match="fps"):
        VideoSourceConfig("0", fps=-1.0)


def test_parse_source() -> None:
    assert parse_source("0") == 0 and parse_source(" 12 ") == 12
    assert parse_source("/data/a.mp4") == Path("/data/a.mp4")
    assert parse_source("-1") == Path("-1")
    with pytest.raises(InputError):
        parse_source("  ")


def test_write_video_grey_and_errors(tmp_path: Path) -> None:
    grey = [np.full((H, W), 100, np.uint8)] * 3
    assert write_video(tmp_path / "g.avi", grey, fps=5.0) == 3
    with VideoSource(VideoSourceConfig(str(tmp_path / "g.avi"), encoding="mono8")) as src:
        frames = read_all(src)
    assert len(frames) == 3 and frames[0].shape == (H, W) and abs(frames[0].mean() - 100) < 5
    with pytest.raises(InputError, match="suffix"):
        write_video(tmp_path / "g.mkv", grey, fps=5.0)
    with pytest.raises(SourceError, match="could not be opened"):
        write_video(tmp_path / "no_dir" / "g.mp4", grey, fps=5.0)
    with pytest.raises(InputError, match="frame 1"):
        write_video(tmp_path / "m.mp4", [grey[0], np.zeros((10, 10), np.uint8)], fps=5.0)
    assert isinstance(InputError("x"), MouseLifterError)


def test_pacer_fixed_schedule_without_drift() -> None:
    fake = FakeTime(oversleep=0.002)  # every sleep overshoots by 2 ms
    pacer = FramePacer(10.0, clock=fake.clock, sleep=fake.sleep)
    pacer.wait()
    assert fake.sleeps == []  # the first frame is due at once
    for n in range(1, 1001):
        fake.now += 0.03  # work done per frame
        pacer.wait()
        # Each frame comes out at t0 + n / fps plus one oversleep, never more.
        assert fake.now == pytest.approx(1000.0 + n * 0.1 + 0.002, abs=1e-6)
    assert fake.sleeps[-1] == pytest.approx(0.1 - 0.03 - 0.002, abs=1e-6)
    assert pacer.resyncs == 0


def test_pacer_catches_up_then_resynchronises() -> None:
    fake = FakeTime()
    pacer = FramePacer(10.0, clock=fake.clock, sleep=fake.sleep)
    pacer.wait()  # t0 = 1000.0
    fake.now += 0.15  # frame 1 (due 1000.1) is half a period late: no sleep, no resync
    pacer.wait()
    assert fake.sleeps == [] and pacer.resyncs == 0
    pacer.wait()  # frame 2 still due at 1000.2
    assert fake.now == pytest.approx(1000.2)
    fake.now += 0.5  # frame 3 (due 1000.3) is four periods late: restart from now
    pacer.wait()
    assert pacer.resyncs == 1 and len(fake.sleeps) == 1
    restart = fake.now
    pacer.wait()  # no burst: the next frame waits one full period
    assert fake.sleeps[-1] == pytest.approx(0.1) and fake.now == pytest.approx(restart + 0.1)


def test_pacer_zero_fps_never_sleeps() -> None:
    fake = FakeTime()
    pacer = FramePacer(0.0, clock=fake.clock, sleep=fake.sleep)
    for _ in range(100):
        pacer.wait()
        fake.now += 1.0
    assert fake.sleeps == []
    with pytest.raises(InputError):
        FramePacer(-5.0)
