"""Test doubles shared by the unit tests."""

from __future__ import annotations


class FakeTime:
    """A monotonic clock that moves only when slept on (plus an optional oversleep)."""

    def __init__(self, start: float = 1000.0, oversleep: float = 0.0) -> None:
        self.start = self.now = start
        self.oversleep = oversleep
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.sleeps.append(seconds)
        self.now += seconds + self.oversleep
