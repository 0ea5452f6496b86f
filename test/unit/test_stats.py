"""Tests of mouse_lifter_ros.core.stats (stream rate, latency, order)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from mouse_lifter_ros.core.stats import (
    LabelStats,
    StreamStats,
    TriggerLog,
    flow_problems,
    write_json,
)

MS = 1_000_000
T0 = 1_700_000_000 * 1_000_000_000


def test_empty_and_single() -> None:
    stats = StreamStats()
    s = stats.summary()
    assert s.count == 0 and s.out_of_order == 0
    assert math.isnan(s.rate_hz) and math.isnan(s.latency_p50_ms)
    assert "0 frames" in s.line()  # a line can be written before anything arrived
    stats.add(T0, T0 + 3 * MS)
    s = stats.summary()
    assert s.count == 1 and math.isnan(s.rate_hz)
    assert s.latency_p50_ms == pytest.approx(3.0) and s.latency_p99_ms == pytest.approx(3.0)


def test_rate_from_even_receive_times() -> None:
    stats = StreamStats()
    for i in range(31):  # 30 intervals of 40 ms: 25 Hz
        stats.add(T0 + i * 40 * MS, T0 + i * 40 * MS + 2 * MS)
    s = stats.summary()
    assert s.count == 31
    assert s.rate_hz == pytest.approx(25.0)


def test_rate_uses_the_window_and_count_the_whole_stream() -> None:
    stats = StreamStats(window=10)
    t = T0
    for _ in range(20):  # 1 Hz at first...
        t += 1000 * MS
        stats.add(t, t)
    for _ in range(20):  # ...then 50 Hz
        t += 20 * MS
        stats.add(t, t)
    s = stats.summary()
    assert s.count == 40
    assert s.rate_hz == pytest.approx(50.0)


def test_latency_percentiles() -> None:
    stats = StreamStats()
    latencies_ms = list(range(101))  # 0, 1, ..., 100 ms, received in shuffled order
    order = [(i * 37) % 101 for i in range(101)]
    assert sorted(order) == latencies_ms
    for k, lat in enumerate(order):
        stamp = T0 + k * 33 * MS
        stats.add(stamp, stamp + lat * MS)
    s = stats.summary()
    assert s.latency_p50_ms == pytest.approx(50.0)
    assert s.latency_p99_ms == pytest.approx(99.0)
    assert s.out_of_order == 0  # the stamps themselves were in order


def test_latency_window_forgets_old_messages() -> None:
    stats = StreamStats(window=5)
    for k in range(10):
        stamp = T0 + k * 10 * MS
        stats.add(stamp, stamp + (500 if k < 5 else 1) * MS)
    s = stats.summary()
    assert s.latency_p50_ms == pytest.approx(1.0) and s.latency_p99_ms == pytest.approx(1.0)


def test_out_of_order_counting() -> None:
    stats = StreamStats()
    stamps_ms = [0, 10, 20, 15, 30, 30, 40, 5, 50]
    # 15 < 20, 30 == 30 and 5 < 40 are not later than the message before them
    for k, stamp in enumerate(stamps_ms):
        stats.add(T0 + stamp * MS, T0 + 100 * MS + k * MS)
    assert stats.summary().out_of_order == 3


def test_summary_line() -> None:
    stats = StreamStats()
    for i in range(4):
        stats.add(T0 + i * 100 * MS, T0 + i * 100 * MS + 7 * MS, size=(320, 240),
                  encoding="mono8")
    stats.add(T0 + 400 * MS, T0 + 407 * MS, size=(640, 480), encoding="bgr8")
    s = stats.summary()
    assert s.last_size == (640, 480) and s.last_encoding == "bgr8"
    line = s.line()
    assert "640x480 bgr8" in line
    assert "5 frames" in line
    assert "10.0 Hz" in line
    assert "p50 7.0 ms" in line
    assert "0 out of order" in line


def test_label_stats_counts_and_bouts() -> None:
    labels = LabelStats(max_bouts=3)
    assert labels.line() == "none; bouts in order: none"
    for label in ["walk"] * 3 + ["rear"] * 2 + ["walk"]:
        labels.add(label)
    assert labels.counts == {"walk": 4, "rear": 2} and labels.changes == 2
    assert labels.line() == "walk 4, rear 2; bouts in order: walk x3, rear x2, walk x1"
    labels.add("groom")  # a fourth bout: the oldest is forgotten, and the line says so
    assert labels.line().endswith("bouts in order: ..., rear x2, walk x1, groom x1")


def test_trigger_log_pairs_values_and_latencies_in_order() -> None:
    log = TriggerLog()
    log.origin_ns = T0
    assert log.add_latency(0.020, T0 + 2_000 * MS) == []  # its Bool comes second
    [on] = log.add_value(True)
    assert on.value is True and on.latency_s == 0.020
    assert on.at_s == pytest.approx(1.980)  # the source frame: 20 ms before it arrived
    assert log.add_value(False) == []
    [off] = log.add_latency(0.030, T0 + 3_000 * MS)
    assert off.value is False and off.at_s == pytest.approx(2.970)
    assert log.line() == ("2 triggers (1 on, 1 off), latency from the frame p50 25.0 ms "
                          "p99 29.9 ms")
    assert TriggerLog().line() == "0 triggers (0 on, 0 off)"


def test_flow_problems_name_each_link_that_carried_too_little() -> None:
    carried = {"images": 174, "keypoints": 166, "poses": 165, "behaviour": 0}
    problems = flow_problems(174, carried)  # 95 %: at least 166 of 174
    assert problems == [
        "poses: 165 of 174 frames (at least 166 expected)",
        "behaviour: 0 of 174 frames (at least 166 expected): this link never carried data"]
    assert flow_problems(174, {"images": 174}) == []
    assert flow_problems(10, {"a": 5}, min_fraction=0.5) == []


def test_write_json_replaces_the_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "totals.json"
    write_json(path, {"a": 1})
    write_json(path, {"b": [1, 2]})
    assert json.loads(path.read_text()) == {"b": [1, 2]}
    assert [p.name for p in tmp_path.iterdir()] == ["totals.json"]
    with pytest.raises(OSError):
        write_json(tmp_path / "no" / "such" / "dir.json", {})
