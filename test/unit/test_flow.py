"""Tests of mouse_lifter_ros.core.flow: the source's frames in flight (no ROS)."""

from __future__ import annotations

import threading
import time

import pytest

from mouse_lifter_ros.core.errors import InputError
from mouse_lifter_ros.core.flow import FLOW_TIMEOUT_S, HOLD_SHARE, FlowGate


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_skip_while_a_frame_is_out_until_every_output_came_back() -> None:
    gate = FlowGate(2, max_in_flight=1, clock=Clock())
    assert gate.reserve("skip")
    gate.sent(10)
    assert not gate.reserve("skip")  # frame 10 is out
    gate.returned(10, 0)  # keypoints back, depth not yet
    assert not gate.reserve("skip")
    gate.returned(99, 1)  # another frame's output: ignored
    gate.returned(10, 0)  # the same output twice counts once
    assert not gate.reserve("skip")
    gate.returned(10, 1)
    assert gate.reserve("skip")
    gate.sent(11)
    c = gate.counts()
    assert (c.offered, c.sent, c.skipped, c.completed, c.expired) == (5, 2, 3, 1, 0)
    assert "5 frames offered, 2 sent, 3 skipped" in c.line()


def test_two_in_flight() -> None:
    gate = FlowGate(1, max_in_flight=2, clock=Clock())
    for stamp in (1, 2):
        assert gate.reserve("skip")
        gate.sent(stamp)
    assert not gate.reserve("skip")
    gate.returned(1, 0)
    assert gate.reserve("skip")


def test_a_reserved_slot_counts_before_its_stamp_is_known() -> None:
    gate = FlowGate(1, clock=Clock())
    assert gate.reserve("skip")
    assert not gate.reserve("skip")


def test_a_frame_that_never_comes_back_expires() -> None:
    clock = Clock()
    gate = FlowGate(1, clock=clock)
    assert gate.reserve("skip")
    gate.sent(5)
    clock.now += FLOW_TIMEOUT_S * 0.9
    assert not gate.reserve("skip")
    clock.now += FLOW_TIMEOUT_S * 0.2
    assert gate.reserve("skip")
    assert gate.counts().expired == 1
    gate.returned(5, 0)  # too late: ignored
    assert gate.counts().completed == 0


def _one_out(back_after_s: float) -> tuple[FlowGate, threading.Timer]:
    """A gate (one output, one frame at most) with frame 7 out, and the timer that gives
    its output back ``back_after_s`` from now."""
    gate = FlowGate(1)
    assert gate.reserve("skip")
    gate.sent(7)
    timer = threading.Timer(back_after_s, gate.returned, args=(7, 0))
    timer.start()
    return gate, timer


def test_wait_holds_the_frame_until_the_stages_are_free() -> None:
    gate, timer = _one_out(0.2)
    start = time.monotonic()
    assert gate.reserve("wait")
    assert time.monotonic() - start >= 0.15
    c = gate.counts()
    assert c.skipped == 0 and c.completed == 1 and c.waited_s >= 0.15
    timer.join()


def test_skip_holds_the_frame_for_a_slot_that_frees_before_the_next_frame() -> None:
    """Frames a little faster than the stages: the frame at hand goes out late, the
    moment the stages are free, instead of being skipped and leaving them idle."""
    gate, timer = _one_out(0.1)
    start = time.monotonic()
    assert gate.reserve("skip", next_frame_s=1.0)
    held = time.monotonic() - start
    assert 0.08 <= held < 0.5 * HOLD_SHARE, held
    c = gate.counts()
    assert (c.sent, c.skipped, c.completed) == (1, 0, 1) and c.waited_s >= 0.08
    timer.join()


def test_skip_gives_up_the_frame_shortly_before_the_next_is_due() -> None:
    gate = FlowGate(1)
    assert gate.reserve("skip")
    gate.sent(7)
    start = time.monotonic()
    assert not gate.reserve("skip", next_frame_s=0.2)
    held = time.monotonic() - start
    assert 0.9 * HOLD_SHARE * 0.2 <= held < 0.2, held
    assert gate.counts().skipped == 1


def test_wait_ends_when_the_source_stops() -> None:
    gate = FlowGate(1)
    assert gate.reserve("wait")
    gate.sent(7)
    stop = threading.Event()
    threading.Timer(0.1, stop.set).start()
    assert not gate.reserve("wait", stop.is_set)


def test_bad_arguments_are_listed_together() -> None:
    with pytest.raises(InputError) as exc:
        FlowGate(0, max_in_flight=0, timeout_s=0.0)
    text = str(exc.value)
    assert "outputs = 0" in text and "max_in_flight = 0" in text and "timeout_s = 0.0" in text
