"""Running statistics of a message stream: rate, latency, gaps between stamps."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

_NS = 1e9


@dataclass(frozen=True)
class StreamSummary:
    """What flowed on a stream.

    Attributes
    ----------
    count:
        Messages received.
    rate_hz:
        Mean receive rate over the window, messages per second (NaN with < 2 messages).
    latency_p50_ms, latency_p99_ms:
        Receive time minus header stamp over the window, milliseconds.
    out_of_order:
        Messages whose stamp was not later than the previous one's (whole stream).
    last_size, last_encoding:
        ``(width, height)`` in pixels and the encoding of the newest image.
    """

    count: int
    rate_hz: float
    latency_p50_ms: float
    latency_p99_ms: float
    out_of_order: int
    last_size: tuple[int, int]
    last_encoding: str

    def line(self) -> str:
        """One log line, e.g. ``30 frames, 29.9 Hz, 640x480 bgr8, latency p50 1.2 ms``."""
        w, h = self.last_size
        return (
            f"{self.count} frames, {self.rate_hz:.1f} Hz, {w}x{h} {self.last_encoding}, "
            f"latency p50 {self.latency_p50_ms:.1f} ms p99 {self.latency_p99_ms:.1f} ms, "
            f"{self.out_of_order} out of order"
        )


class StreamStats:
    """Collect per-message stamps over a sliding window of ``window`` messages."""

    def __init__(self, window: int = 300) -> None:
        self.count = 0
        self.out_of_order = 0
        self._received: deque[int] = deque(maxlen=window)
        self._latency: deque[int] = deque(maxlen=window)
        self._last_stamp: int | None = None
        self._size = (0, 0)
        self._encoding = ""

    def add(
        self, stamp_ns: int, received_ns: int, size: tuple[int, int] = (0, 0), encoding: str = ""
    ) -> None:
        """Record one message: its header stamp and receive time (ns), image size, encoding."""
        self.count += 1
        if self._last_stamp is not None and stamp_ns <= self._last_stamp:
            self.out_of_order += 1
        self._last_stamp = stamp_ns
        self._received.append(received_ns)
        self._latency.append(received_ns - stamp_ns)
        self._size, self._encoding = size, encoding

    def summary(self) -> StreamSummary:
        """The statistics so far (rate and latency over the window)."""
        rate = float("nan")
        if len(self._received) >= 2:
            span = (self._received[-1] - self._received[0]) / _NS
            rate = (len(self._received) - 1) / span if span > 0 else float("inf")
        lat = np.asarray(self._latency, dtype=np.float64) / 1e6
        p50, p99 = (np.percentile(lat, [50, 99]) if lat.size else (float("nan"),) * 2)
        return StreamSummary(
            self.count, rate, float(p50), float(p99), self.out_of_order, self._size,
            self._encoding,
        )
