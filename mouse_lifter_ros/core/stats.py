"""Running statistics of a message stream: rate, latency, gaps between stamps."""

from __future__ import annotations

import json
import math
import os
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

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


class LabelStats:
    """Count the labels of a stream (behaviour) and keep its bouts (runs of one label)."""

    def __init__(self, max_bouts: int = 64) -> None:
        self.counts: dict[str, int] = {}
        self.bouts: deque[list[str | int]] = deque(maxlen=max_bouts)
        self.changes = 0

    def add(self, label: str) -> None:
        """Record one message's label."""
        self.counts[label] = self.counts.get(label, 0) + 1
        if self.bouts and self.bouts[-1][0] == label:
            self.bouts[-1][1] = int(self.bouts[-1][1]) + 1
        else:
            if self.bouts:
                self.changes += 1
            self.bouts.append([label, 1])

    def line(self, last_bouts: int = 8) -> str:
        """E.g. ``locomotion 61, rearing 44; bouts: locomotion x61, rearing x44``."""
        counts = ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items(),
                                                         key=lambda kv: -kv[1]))
        bouts = list(self.bouts)[-last_bouts:]
        more = "..., " if self.bouts and self.changes + 1 > len(bouts) else ""
        runs = ", ".join(f"{label} x{n}" for label, n in bouts)
        return f"{counts or 'none'}; bouts in order: {more}{runs or 'none'}"


@dataclass(frozen=True)
class TriggerEvent:
    """One stimulus trigger as received: on/off, latency from the source frame's capture
    (s), and when the source frame was captured, seconds after ``origin_ns``."""

    value: bool
    latency_s: float
    at_s: float


class TriggerLog:
    """Pair a stimulus node's ``trigger`` (on/off) and ``trigger_latency`` messages.

    The node publishes both for each trigger, on two topics; they are paired in order
    of arrival. The source frame's capture time is the latency message's receive time
    less the latency, given relative to ``origin_ns`` (e.g. the first image's stamp).
    """

    def __init__(self) -> None:
        self._values: deque[bool] = deque()
        self._latencies: deque[tuple[float, int]] = deque()
        self.events: list[TriggerEvent] = []
        self.origin_ns: int | None = None

    def add_value(self, value: bool) -> list[TriggerEvent]:
        """A ``trigger`` message; returns the events it completes (0 or 1)."""
        self._values.append(bool(value))
        return self._pair()

    def add_latency(self, latency_s: float, received_ns: int) -> list[TriggerEvent]:
        """A ``trigger_latency`` message and its receive time (ns)."""
        self._latencies.append((float(latency_s), int(received_ns)))
        return self._pair()

    def _pair(self) -> list[TriggerEvent]:
        out = []
        while self._values and self._latencies:
            value = self._values.popleft()
            latency, received = self._latencies.popleft()
            origin = received if self.origin_ns is None else self.origin_ns
            at = (received - latency * _NS - origin) / _NS
            out.append(TriggerEvent(value, latency, at))
        self.events += out
        return out

    def line(self) -> str:
        """E.g. ``2 triggers (1 on, 1 off), latency p50 41.0 ms p99 52.3 ms``."""
        on = sum(e.value for e in self.events)
        lat = np.array([e.latency_s for e in self.events]) * 1e3
        text = f"{len(self.events)} triggers ({on} on, {len(self.events) - on} off)"
        if lat.size:
            p50, p99 = np.percentile(lat, [50, 99])
            text += f", latency from the frame p50 {p50:.1f} ms p99 {p99:.1f} ms"
        return text


@dataclass
class StageCounts:
    """Frames through a perception stage (the keypoint or the depth node).

    Attributes
    ----------
    frames_in, frames_out:
        Images received, results published.
    no_mouse:
        Results in which the detector found no mouse.
    skipped:
        Images that could not be used (an encoding the models do not take).
    busy_s:
        Seconds spent in the model, over all frames.
    """

    frames_in: int = 0
    frames_out: int = 0
    no_mouse: int = 0
    skipped: int = 0
    busy_s: float = 0.0

    def mean_ms(self) -> float:
        """Mean time in the model per frame it ran on, ms (NaN before the first)."""
        ran = self.frames_in - self.skipped
        return 1e3 * self.busy_s / ran if ran else math.nan

    def values(self) -> dict[str, str]:
        """The counts by name, for diagnostics."""
        return {"frames_in": str(self.frames_in), "frames_out": str(self.frames_out),
                "no_mouse": str(self.no_mouse), "skipped": str(self.skipped),
                "inference_mean_ms": f"{self.mean_ms():.1f}"}

    def line(self, results: str) -> str:
        """E.g. ``30 frames in, 30 keypoint messages out, 0 frames with no mouse found,
        0 skipped; inference mean 11.0 ms`` (``results``: what goes out)."""
        mean = self.mean_ms()
        return (f"{self.frames_in} frames in, {self.frames_out} {results} out, "
                f"{self.no_mouse} frames with no mouse found, {self.skipped} skipped; "
                f"inference mean {'-' if math.isnan(mean) else f'{mean:.1f} ms'}")


#: Share of a source's frames that each link of a graph must carry for a run to count as
#: working (``make demo``): images are best effort, so a few may be missed under load.
MIN_FLOW_FRACTION: Final = 0.95


def flow_problems(frames: int, carried: Mapping[str, int], *,
                  min_fraction: float = MIN_FLOW_FRACTION) -> list[str]:
    """The links of a graph that carried too little of a source's ``frames``.

    Parameters
    ----------
    frames:
        Frames the source published.
    carried:
        Per link (a description such as ``"poses at the monitor"``), the messages it
        carried.
    min_fraction:
        Each link must carry at least this share of ``frames``.

    Returns
    -------
    list of str
        One line per link below the share, saying what it carried; empty when all passed.
    """
    need = math.ceil(min_fraction * frames)
    return [f"{link}: {count} of {frames} frames (at least {need} expected)"
            + (": this link never carried data" if count == 0 else "")
            for link, count in carried.items() if count < need]


def write_json(path: str | os.PathLike[str], data: object) -> None:
    """Write ``data`` as JSON to ``path`` atomically (a reader sees the old file or the
    whole new one, never half of it).

    Raises
    ------
    OSError
        When the folder cannot be written.
    """
    tmp = f"{os.fspath(path)}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)
