"""Frames from a camera device or a video file, read with OpenCV (no ROS).

:class:`VideoSource` is the capture side of ``camera_node``: it opens the source,
resizes (files), crops and converts every frame to the output encoding. Pacing is
left to the caller, which may use :class:`FramePacer`. :func:`write_video` writes
test and demo videos.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import cast

import cv2
import numpy as np
import numpy.typing as npt

from mouse_lifter_ros.core.errors import InputError, SourceError
from mouse_lifter_ros.core.limits import FPS_RANGE, MAX_FRAME_SIDE

Frame = npt.NDArray[np.uint8]
ENCODINGS = ("bgr8", "rgb8", "mono8")
#: cvtColor code by (channels of the captured frame, output encoding); None = as it is.
_CONVERSIONS: dict[tuple[int, str], int | None] = {
    (3, "bgr8"): None, (3, "rgb8"): cv2.COLOR_BGR2RGB, (3, "mono8"): cv2.COLOR_BGR2GRAY,
    (1, "bgr8"): cv2.COLOR_GRAY2BGR, (1, "rgb8"): cv2.COLOR_GRAY2RGB, (1, "mono8"): None,
    (4, "bgr8"): cv2.COLOR_BGRA2BGR, (4, "rgb8"): cv2.COLOR_BGRA2RGB,
    (4, "mono8"): cv2.COLOR_BGRA2GRAY,
}
_FOURCCS = {".mp4": "mp4v", ".avi": "MJPG"}


@dataclass(frozen=True)
class VideoSourceConfig:
    """What to open and how to shape its frames.

    ``source`` is a device index (``"0"``, ``"1"``, ...) or a video file path. ``fps``
    is the delivered rate in Hz (0: the file's own rate / the device default).
    ``width``/``height`` in pixels (0: native; one of them 0: keep the aspect ratio)
    are asked of a device driver, and applied to file frames with ``cv2.INTER_AREA``.
    ``crop`` is ``(x, y, width, height)`` in pixels of the resized frame (all zeros:
    no crop). ``loop`` restarts a file at its end. ``encoding`` is the output format.
    """

    source: str
    fps: float = 0.0
    width: int = 0
    height: int = 0
    crop: tuple[int, int, int, int] = (0, 0, 0, 0)
    loop: bool = False
    encoding: str = "bgr8"

    def __post_init__(self) -> None:
        problems = []
        low, high = FPS_RANGE
        if not (self.fps == 0 or (math.isfinite(self.fps) and low <= self.fps <= high)):
            problems.append(f"fps must be 0 or >= {low:g} and <= {high:g}, got {self.fps}")
        if not (0 <= self.width <= MAX_FRAME_SIDE and 0 <= self.height <= MAX_FRAME_SIDE):
            problems.append(f"width and height must be >= 0 and <= {MAX_FRAME_SIDE}, got "
                            f"{self.width}x{self.height}")
        if self.encoding not in ENCODINGS:
            problems.append(f"encoding must be one of {ENCODINGS}, got {self.encoding!r}")
        if problems:
            raise InputError(f"video source {self.source!r}: " + "; ".join(problems))


def parse_source(source: str) -> int | Path:
    """Return the device index of ``"0"``, ``"1"``, ... or else the file :class:`Path`."""
    text = source.strip()
    if not text:
        raise InputError("video source is empty: give a device index or a video file path")
    return int(text) if text.isascii() and text.isdigit() else Path(text)


class VideoSource:
    """An open camera device or video file delivering converted, cropped frames.

    Frames returned by :meth:`read` may share memory with the capture buffers, which
    are reused: a frame is valid until the next :meth:`read` (copy it to keep it).
    Opening reads one frame, which checks that the source delivers and gives its real
    size; a file's first frame is then returned by the first :meth:`read`.

    Attributes
    ----------
    frame_size, output_size : tuple of int
        ``(width, height)`` in pixels after the resize, before / after the crop.
    fps : float
        Delivered rate in Hz: ``config.fps`` if > 0, else the reported rate, else 30.
    frame_count : int or None
        Frames in a file, as its container reports them; None for a device.
    frames_read, loops : int
        Frames returned so far; times a looping file was rewound.
    description : str
        ``"video file '<path>'"`` or ``"camera device <n>"``, as errors name it.
    """

    def __init__(self, config: VideoSourceConfig) -> None:
        self.config = config
        self._target = parse_source(config.source)
        self._buf: Frame | None = None
        self._resized: Frame | None = None
        self._converted: Frame | None = None
        self._ended = False
        self.frames_read = 0
        self.loops = 0
        if isinstance(self._target, Path):
            self.description = f"video file '{self._target}'"
            if not self._target.is_file():
                what = "is not a file" if self._target.exists() else "does not exist"
                raise SourceError(f"{self.description} {what}")
        else:
            self.description = f"camera device {self._target}"
        self._cap: cv2.VideoCapture | None = self._open()
        try:
            self._setup()
        except BaseException:
            self.close()
            raise

    def _open(self) -> cv2.VideoCapture:
        cap = cv2.VideoCapture(str(self._target) if self.is_file else self._target)
        if not cap.isOpened():
            cap.release()
            if self.is_file:
                raise SourceError(f"{self.description} could not be opened (is it a video "
                                  "in a format OpenCV can decode?)")
            raise SourceError(f"{self.description} could not be opened (is it connected, "
                              "and not used by another program?)")
        return cap

    def _setup(self) -> None:
        cfg, cap = self.config, self._capture()
        if not self.is_file:
            for prop, value in ((cv2.CAP_PROP_FRAME_WIDTH, cfg.width),
                                (cv2.CAP_PROP_FRAME_HEIGHT, cfg.height),
                                (cv2.CAP_PROP_FPS, cfg.fps)):
                if value > 0:
                    cap.set(prop, value)
        first = self._grab()
        if first is None:
            raise SourceError(f"{self.description} delivered no frame"
                              + (" (no decodable video stream?)" if self.is_file else ""))
        self._pending = self.is_file  # a file's first frame is delivered; a device's dropped
        native_h, native_w = first.shape[:2]
        w, h = native_w, native_h
        if self.is_file and (cfg.width or cfg.height):
            w = cfg.width or max(1, round(native_w * cfg.height / native_h))
            h = cfg.height or max(1, round(native_h * cfg.width / native_w))
        self.frame_size = (w, h)
        reported = cap.get(cv2.CAP_PROP_FPS)
        self.fps = cfg.fps or (reported if math.isfinite(reported) and reported > 0 else 30.0)
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if self.is_file else 0
        self.frame_count: int | None = count if count > 0 else None
        x, y, cw, ch = cfg.crop
        if cfg.crop == (0, 0, 0, 0):
            self._crop = (slice(None), slice(None))
            self.output_size = self.frame_size
        elif min(x, y) < 0 or min(cw, ch) <= 0 or x + cw > w or y + ch > h:
            raise InputError(f"{self.description}: crop x={x}, y={y}, width={cw}, height={ch} "
                             f"does not fit in the {w}x{h} frame")
        else:
            self._crop = (slice(y, y + ch), slice(x, x + cw))
            self.output_size = (cw, ch)

    @property
    def is_file(self) -> bool:
        """True for a video file, False for a camera device."""
        return isinstance(self._target, Path)

    def _capture(self) -> cv2.VideoCapture:
        if self._cap is None:
            raise SourceError(f"{self.description} is closed")
        return self._cap

    def _grab(self) -> Frame | None:
        ok, frame = self._capture().read(image=self._buf)
        if not ok or frame is None:
            return None
        self._buf = cast(Frame, frame)
        return self._buf

    def _rewind(self) -> Frame:
        if not self._capture().set(cv2.CAP_PROP_POS_FRAMES, 0):
            self._capture().release()  # not seekable: open it again
            self._cap = self._open()
        frame = self._grab()
        if frame is None:
            raise SourceError(f"{self.description} yields no frame even after rewinding")
        self.loops += 1
        return frame

    def read(self) -> Frame | None:
        """Return the next frame, or None once a file has ended (and ``loop`` is off).

        Returns
        -------
        numpy.ndarray or None
            uint8, shape ``(H, W, 3)`` for bgr8/rgb8 or ``(H, W)`` for mono8, where
            ``(W, H)`` is :attr:`output_size`. Often a view into a reused buffer: valid
            until the next call only.
        """
        self._capture()  # raises once closed
        if self._ended:
            return None
        if self._pending:
            self._pending, frame = False, self._buf
        else:
            frame = self._grab()
        if frame is None:
            if not self.is_file:
                raise SourceError(f"{self.description} stopped delivering frames")
            if not self.config.loop:
                self._ended = True
                return None
            frame = self._rewind()
        if (frame.shape[1], frame.shape[0]) != self.frame_size:
            if not self.is_file:
                raise SourceError(f"{self.description} changed its frame size to "
                                  f"{frame.shape[1]}x{frame.shape[0]}")
            frame = self._resized = cast(Frame, cv2.resize(
                frame, self.frame_size, dst=self._resized, interpolation=cv2.INTER_AREA))
        frame = frame[self._crop]
        code = _CONVERSIONS[(1 if frame.ndim == 2 else frame.shape[2], self.config.encoding)]
        if code is not None:
            frame = self._converted = cast(Frame, cv2.cvtColor(frame, code,
                                                               dst=self._converted))
        self.frames_read += 1
        return frame

    def seek(self, frame: int) -> None:
        """Make frame ``frame`` (0-based) of a file the one the next :meth:`read` returns.

        OpenCV seeks to the key frame before it and decodes forward, placing frames by the
        container's timestamps: :attr:`position_ms` after the read says which frame came.
        Past the end, :meth:`read` returns None. Raises :class:`SourceError` for a camera
        device or a file that cannot seek, :class:`InputError` for ``frame < 0``.
        """
        if not self.is_file:
            raise SourceError(f"{self.description} cannot seek")
        if frame < 0:
            raise InputError(f"{self.description}: cannot seek to frame {frame} (< 0)")
        if not self._capture().set(cv2.CAP_PROP_POS_FRAMES, frame):
            raise SourceError(f"{self.description} cannot seek to frame {frame}")
        self._pending = self._ended = False

    @property
    def position_ms(self) -> float:
        """The container's timestamp of the frame :meth:`read` returned last, ms."""
        return float(self._capture().get(cv2.CAP_PROP_POS_MSEC))

    def close(self) -> None:
        """Release the capture; further reads raise :class:`SourceError`."""
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class FramePacer:
    """Sleep until each frame is due on the fixed schedule ``t0 + n / fps`` (seconds).

    The first :meth:`wait` sets ``t0`` and returns at once. A caller less than one
    period late catches up without sleeping; more than one period late, the schedule
    restarts from now (counted in :attr:`resyncs`) instead of bursting. ``fps=0``: never
    sleep.
    """

    def __init__(self, fps: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not (math.isfinite(fps) and fps >= 0):
            raise InputError(f"frame rate must be >= 0 Hz, got {fps}")
        self.fps = fps
        self.period = 1.0 / fps if fps > 0 else 0.0
        self._clock, self._sleep = clock, sleep
        self._t0: float | None = None
        self._n = 0
        self.resyncs = 0

    def wait(self) -> None:
        """Sleep until the next frame is due (or return at once, see the class doc)."""
        if self.period == 0.0:
            return
        now = self._clock()
        if self._t0 is None:
            self._t0, self._n = now, 0
            return
        self._n += 1
        due = self._t0 + self._n * self.period
        if now - due > self.period:
            self._t0, self._n = now, 0
            self.resyncs += 1
        elif due > now:
            self._sleep(due - now)


def write_video(path: str | Path, frames: Iterable[npt.NDArray[np.uint8]], fps: float) -> int:
    """Write uint8 frames, BGR ``(H, W, 3)`` or grey ``(H, W)``, to an .mp4 or .avi file.

    The size is taken from the first frame; ``fps`` is in Hz. Returns the number of
    frames written. Raises :class:`InputError` for bad frames or arguments and
    :class:`SourceError` when OpenCV cannot open a writer for ``path``.
    """
    path = Path(path)
    fourcc = _FOURCCS.get(path.suffix.lower())
    if fourcc is None:
        raise InputError(f"video file '{path}': suffix must be one of {sorted(_FOURCCS)}")
    if not (math.isfinite(fps) and fps > 0):
        raise InputError(f"video file '{path}': fps must be > 0, got {fps}")
    writer: cv2.VideoWriter | None = None
    count = 0
    try:
        for frame in frames:
            if frame.dtype != np.uint8 or frame.ndim not in (2, 3) or (
                    frame.ndim == 3 and frame.shape[2] not in (1, 3)):
                raise InputError(f"video file '{path}': frame {count} must be uint8 (H, W) or "
                                 f"(H, W, 3), got {frame.dtype} {frame.shape}")
            if frame.ndim == 2 or frame.shape[2] == 1:
                frame = cast(Frame, cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
            size = (frame.shape[1], frame.shape[0])
            if writer is None:
                first = size
                writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*fourcc), fps, size)
                if not writer.isOpened():
                    raise SourceError(f"video file '{path}' could not be opened for writing")
            elif size != first:
                raise InputError(f"video file '{path}': frame {count} is {size[0]}x{size[1]}, "
                                 f"the first was {first[0]}x{first[1]}")
            writer.write(frame)
            count += 1
    finally:
        if writer is not None:
            writer.release()
    if count == 0:
        raise InputError(f"video file '{path}': no frames to write")
    return count
