"""Flow control at the source: send a frame only when the perception stages can take it.

The keypoint and depth stages each keep only the newest image (a late frame is worthless
in a closed loop). Offered more frames than they can process, each would drop frames on
its own, their outputs would rarely share a stamp, and the lifter could pair almost
nothing. Instead the source keeps count of the frames in flight: a frame is in flight
from when the source publishes it until every per-frame output (the keypoints and the
depth stage's camera info, one message each per frame, stamped with the frame's stamp)
has come back. While ``max_in_flight`` frames are out, a live source holds the frame at
hand until a slot frees or its next frame is nearly due (:data:`HOLD_SHARE`), and skips it
(counted) only then; a replay may wait for the stages instead (a lossless replay).

Holding matters when frames come a little faster than the stages work: skipping at once,
the stages would idle from the moment they are free until the next frame arrives (at 180
fps offered, a frame needing 6 ms would be served every second frame, 90 poses/s); held,
the frame goes out the moment they are free, a little late (its stamp keeps the time it
was captured, so the latency it shows includes the hold).

A frame whose outputs do not all come back within ``timeout_s`` (a stage skipped an
undecodable image, or a best-effort sample was lost) stops counting as in flight, so
the source never stalls; such frames are counted as ``expired``.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

from mouse_lifter_ros.core.errors import InputError

#: What a source does with a frame while the stages are busy.
WhenBusy = Literal["skip", "wait"]
WHEN_BUSY: Final = ("skip", "wait")
#: Seconds after which a frame still missing an output stops counting as in flight.
FLOW_TIMEOUT_S: Final = 0.5
#: Share of the time until its next frame that a skipping source holds a frame for a
#: free slot (under 1: the next frame, when it comes, replaces it).
HOLD_SHARE: Final = 0.9


@dataclass(frozen=True)
class FlowCounts:
    """What a source offered and what became of it (frames).

    offered = sent + skipped; ``completed`` of the sent frames came back whole,
    ``expired`` did not within the timeout; ``waited_s`` is the time the source spent
    waiting for the stages (a waiting replay, or a frame held for a free slot), seconds.
    """

    offered: int
    sent: int
    skipped: int
    completed: int
    expired: int
    waited_s: float

    def values(self) -> dict[str, str]:
        """The counts by name, for diagnostics."""
        return {"offered": str(self.offered), "sent": str(self.sent),
                "skipped": str(self.skipped), "completed": str(self.completed),
                "expired": str(self.expired), "waited_s": f"{self.waited_s:.1f}"}

    def line(self) -> str:
        """E.g. ``300 frames offered, 298 sent, 2 skipped (stages busy), 298 done``."""
        return (f"{self.offered} frames offered, {self.sent} sent, {self.skipped} skipped "
                f"(stages busy), {self.completed} came back from every stage, "
                f"{self.expired} did not within {FLOW_TIMEOUT_S:g} s; waited "
                f"{self.waited_s:.1f} s for the stages")


class FlowGate:
    """Frames in flight between a source and its per-frame outputs (module docstring).

    Thread-safe: the source thread calls :meth:`reserve` before a frame and :meth:`sent`
    with its stamp once it is out; the executor's callbacks call :meth:`returned`.

    Parameters
    ----------
    outputs:
        How many per-frame output streams a frame must come back on (>= 1).
    max_in_flight:
        Frames out at most (>= 1).
    timeout_s:
        Seconds before a frame missing an output stops counting (> 0).
    clock:
        Monotonic clock, seconds.
    """

    def __init__(self, outputs: int, *, max_in_flight: int = 1,
                 timeout_s: float = FLOW_TIMEOUT_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        problems = [f"{name} = {value!r}: must be {rule}" for name, value, ok, rule in (
            ("outputs", outputs, outputs >= 1, ">= 1"),
            ("max_in_flight", max_in_flight, max_in_flight >= 1, ">= 1"),
            ("timeout_s", timeout_s, timeout_s > 0, "> 0")) if not ok]
        if problems:
            raise InputError("flow gate: " + "; ".join(problems))
        self.outputs, self.max_in_flight, self.timeout_s = outputs, max_in_flight, timeout_s
        self._clock = clock
        self._cond = threading.Condition()
        self._flight: dict[int, tuple[float, set[int]]] = {}  # stamp -> (sent at, outputs)
        self._sent = self._skipped = self._completed = self._expired = self._reserved = 0
        self._waited = 0.0

    def _expire(self, now: float) -> None:
        old = [s for s, (t, _) in self._flight.items() if now - t >= self.timeout_s]
        for stamp in old:
            del self._flight[stamp]
        self._expired += len(old)

    def reserve(self, when_busy: WhenBusy,
                stopped: Callable[[], bool] = lambda: False, *,
                next_frame_s: float = 0.0) -> bool:
        """Offer a frame: True when the source should send it now (a slot is then held
        for it until :meth:`sent` gives its stamp). With the stages busy, ``"wait"`` waits
        for a slot however long it takes, and ``"skip"`` at most :data:`HOLD_SHARE` of
        ``next_frame_s`` (seconds until the source's next frame; 0 skips at once), then
        skips the frame: False. False too when ``stopped()`` became true meanwhile."""
        with self._cond:
            start = self._clock()
            self._expire(start)
            limit = math.inf if when_busy == "wait" else start + HOLD_SHARE * next_frame_s
            while self._out() >= self.max_in_flight:
                now = self._clock()
                if now >= limit or stopped():
                    self._waited += now - start
                    self._skipped += when_busy == "skip"
                    return False
                oldest = min((t for t, _ in self._flight.values()), default=now)
                self._cond.wait(max(0.0, min(0.05, oldest + self.timeout_s - now,
                                             limit - now)))
                self._expire(self._clock())
            self._waited += self._clock() - start
            self._reserved += 1
            return True

    def sent(self, stamp_ns: int) -> None:
        """The frame of the last :meth:`reserve` went out stamped ``stamp_ns``."""
        with self._cond:
            self._reserved = max(0, self._reserved - 1)
            self._flight[stamp_ns] = (self._clock(), set())
            self._sent += 1

    def _out(self) -> int:
        return len(self._flight) + self._reserved

    def returned(self, stamp_ns: int, output: int) -> None:
        """Output ``output`` (0 .. outputs - 1) of the frame stamped ``stamp_ns`` came
        back; a stamp not in flight (expired, or another source's) is ignored."""
        with self._cond:
            entry = self._flight.get(stamp_ns)
            if entry is None:
                return
            entry[1].add(output)
            if len(entry[1]) >= self.outputs:
                del self._flight[stamp_ns]
                self._completed += 1
                self._cond.notify_all()

    def counts(self) -> FlowCounts:
        """The counts so far."""
        with self._cond:
            return FlowCounts(self._sent + self._skipped, self._sent, self._skipped,
                              self._completed, self._expired, self._waited)
