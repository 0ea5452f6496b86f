"""Running a stimulus rule off the caller's thread: :class:`StimulusRunner` and :func:`replay`.

The runner's worker thread calls the rule; the caller (a ROS callback) only enqueues
into a bounded queue whose oldest frame is dropped (and counted) when full. Latencies
are nanoseconds on the stamps' clock; the summary gives them in milliseconds.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from mouse_lifter_ros.core.errors import ParameterError
from mouse_lifter_ros.core.stats import StreamStats
from mouse_lifter_ros.core.stimulus.interface import (
    BehaviorFrame,
    Frame,
    PoseFrame,
    Rule,
    Trigger,
    interface_problem,
)


@dataclass(frozen=True)
class StimulusSummary:
    """What a :class:`StimulusRunner` has done.

    Attributes
    ----------
    frames:
        Frames submitted.
    processed:
        Frames the rule was called on.
    dropped:
        Frames dropped from a full queue (the oldest go first).
    errors:
        Exceptions raised by the rule, or by the trigger callback (threaded mode).
    triggers, on, off:
        Triggers fired, and of those how many turned the stimulus on / off.
    latency_p50_ms, latency_p99_ms:
        Trigger time minus the source frame's stamp over the last ``window`` triggers.
    """

    frames: int
    processed: int
    dropped: int
    errors: int
    triggers: int
    on: int
    off: int
    latency_p50_ms: float
    latency_p99_ms: float

    def line(self) -> str:
        """One log line."""
        return (f"{self.frames} frames ({self.processed} processed, {self.dropped} dropped, "
                f"{self.errors} errors), {self.triggers} triggers ({self.on} on, "
                f"{self.off} off), latency p50 {self.latency_p50_ms:.1f} ms "
                f"p99 {self.latency_p99_ms:.1f} ms")


TriggerCallback = Callable[[Trigger, int], None]


@dataclass
class _Counts:
    frames: int = 0
    processed: int = 0
    dropped: int = 0
    errors: int = 0
    on: int = 0
    off: int = 0
    last_error: str = ""
    latency: StreamStats = field(default_factory=StreamStats)


class StimulusRunner:
    """Run a rule off the caller's thread; hand each trigger and its latency to a callback.

    ``submit_pose`` / ``submit_behavior`` only enqueue (a short lock, never a wait for
    the rule): a full queue drops its oldest frame and counts it. A worker thread calls
    the rule in order and, for each trigger, ``on_trigger(trigger, latency_ns)`` with
    ``latency_ns = clock() - trigger.stamp_ns``. In threaded mode an exception from the
    rule or the callback is counted and passed to ``on_error`` (the worker goes on); with
    ``threaded=False`` everything runs in the caller's thread and exceptions propagate
    (offline analysis, tests).

    Parameters
    ----------
    rule:
        The rule; only the worker calls it.
    on_trigger:
        Called with each trigger and its latency in ns (the node publishes both).
    queue_size:
        Frames held while the rule is busy (>= 1).
    threaded:
        False: run the rule in ``submit_*`` itself.
    clock:
        Now in ns on the stamps' clock (the node passes its ROS clock; default wall time).
    on_error:
        Called with each exception caught in threaded mode.
    window:
        Triggers over which the latency percentiles are taken.
    """

    def __init__(self, rule: Rule, on_trigger: TriggerCallback, *, queue_size: int = 4,
                 threaded: bool = True, clock: Callable[[], int] = time.time_ns,
                 on_error: Callable[[BaseException], None] | None = None,
                 window: int = 300) -> None:
        if problem := interface_problem(rule):
            raise ParameterError(f"StimulusRunner: {type(rule).__name__} does not implement "
                                 f"the Rule interface: {problem}")
        if isinstance(queue_size, bool) or not isinstance(queue_size, int) or queue_size < 1:
            raise ParameterError(f"StimulusRunner: invalid parameters:\n"
                                 f"  queue_size = {queue_size!r}: must be an integer >= 1")
        self.rule = rule
        self.on_trigger = on_trigger
        self.on_error = on_error
        self.clock = clock
        self.queue_size = queue_size
        self.threaded = threaded
        self._counts = _Counts(latency=StreamStats(window))
        self._queue: deque[tuple[Callable[[Any], Trigger | None], Any]] = deque()
        self._cond = threading.Condition()
        self._busy = False
        self._closed = False
        self._thread: threading.Thread | None = None
        if threaded:
            self._thread = threading.Thread(target=self._work, name="stimulus-rule",
                                            daemon=True)
            self._thread.start()

    # -- the caller's side

    def submit_pose(self, frame: PoseFrame) -> None:
        """Hand a pose to the rule (enqueued in threaded mode)."""
        self._submit(self.rule.on_pose, frame)

    def submit_behavior(self, frame: BehaviorFrame) -> None:
        """Hand a behaviour estimate to the rule (enqueued in threaded mode)."""
        self._submit(self.rule.on_behavior, frame)

    def submit(self, frame: Frame) -> None:
        """:meth:`submit_pose` or :meth:`submit_behavior`, by the frame's type."""
        if isinstance(frame, PoseFrame):
            self.submit_pose(frame)
        else:
            self.submit_behavior(frame)

    def reset(self) -> None:
        """Discard queued frames and reset the rule (in the worker, after its current frame)."""
        with self._cond:
            self._check_open()
            self._queue.clear()
            self._queue.append((lambda _: self._reset_rule(), None))
            self._cond.notify_all()
        if not self.threaded:
            self._drain()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued frame is processed; False if ``timeout`` s passed first."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and not self._busy, timeout)

    def summary(self) -> StimulusSummary:
        """Counts and latency percentiles so far (safe from any thread)."""
        with self._cond:
            c = self._counts
            latency = c.latency.summary()
            return StimulusSummary(c.frames, c.processed, c.dropped, c.errors, c.on + c.off,
                                   c.on, c.off, latency.latency_p50_ms, latency.latency_p99_ms)

    @property
    def last_error(self) -> str:
        """The newest exception caught in threaded mode, as ``Type: message`` ('' if none)."""
        with self._cond:
            return self._counts.last_error

    def close(self, timeout: float | None = 5.0) -> None:
        """Stop the worker after its current frame and join it; queued frames are dropped.

        Call :meth:`flush` first to process them. Idempotent; ``submit_*`` after close
        raises ``RuntimeError``.
        """
        with self._cond:
            self._closed = True
            self._queue.clear()
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> StimulusRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("StimulusRunner is closed")

    def _submit(self, method: Callable[[Any], Trigger | None], frame: Frame) -> None:
        with self._cond:
            self._check_open()
            self._counts.frames += 1
            if len(self._queue) >= self.queue_size:
                self._queue.popleft()
                self._counts.dropped += 1
            self._queue.append((method, frame))
            self._cond.notify_all()
        if not self.threaded:
            self._drain()

    def _reset_rule(self) -> None:
        self.rule.reset()

    def _count_error(self, exc: Exception) -> None:
        with self._cond:
            self._counts.errors += 1
            self._counts.last_error = f"{type(exc).__name__}: {exc}"

    def _drain(self) -> None:
        """Synchronous mode: process what is queued now, letting exceptions through."""
        while True:
            with self._cond:
                if not self._queue:
                    return
                method, frame = self._queue.popleft()
            try:
                self._process(method, frame)
            except Exception as exc:
                self._count_error(exc)
                raise

    def _work(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._queue or self._closed)
                if self._closed:
                    return
                method, frame = self._queue.popleft()
                self._busy = True
            try:
                self._process(method, frame)
            except Exception as exc:
                self._count_error(exc)
                if self.on_error is not None:
                    # A failing error handler must not stop the worker.
                    with contextlib.suppress(Exception):
                        self.on_error(exc)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _process(self, method: Callable[[Any], Trigger | None], frame: Frame | None) -> None:
        if frame is not None:
            with self._cond:
                self._counts.processed += 1
        trigger = method(frame)
        if trigger is None:
            return
        if not isinstance(trigger, Trigger):
            raise TypeError(f"{type(self.rule).__name__} returned {trigger!r}, "
                            "not a Trigger or None")
        now = self.clock()
        latency = now - trigger.stamp_ns
        with self._cond:
            self._counts.latency.add(trigger.stamp_ns, now)
            if trigger.value:
                self._counts.on += 1
            else:
                self._counts.off += 1
        self.on_trigger(trigger, latency)


def replay(rule: Rule, frames: Iterable[Frame]) -> list[Trigger]:
    """Offline: run ``rule`` over ``frames`` (poses and behaviour, in order); its triggers."""
    out: list[Trigger] = []
    with StimulusRunner(rule, lambda t, _: out.append(t), threaded=False) as runner:
        for frame in frames:
            runner.submit(frame)
    return out
