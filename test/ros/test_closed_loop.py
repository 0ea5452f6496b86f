"""The whole pipeline over DDS: demo bag -> 3D pose -> behaviour -> stimulus -> recorder.

The replay graph with every node (behaviour, stimulus and recorder switched on) plays
the demo clip at its recorded rate, with its recorded stamps, so that each message
names the frame it comes from. Checks:

- triggers: the stimulus node's on/off triggers are exactly what its rule (the shipped
  parameters: rearing above 0.6 for 3 frames) gives on the behaviour messages that
  arrived here, and the stimulus is on only during the clip's rearing bout (ground
  truth, ``demo_truth.csv``), give or take :data:`LAG_FRAMES` at its edges;
- latency: from a frame's arrival (its image, at this test's subscriber) to its trigger's
  arrival, and to its behaviour message's arrival (every frame); printed as p50/p99;
- recording: every frame whose behaviour arrived is in the recorder's files, which
  read back complete (the ``.h5`` with ``pandas.read_hdf(path, 'df_with_missing')``).

Tolerance at the edges: the engine's truth label turns to rearing early in the
crossfade into a rear (at 15 % of it) and back late (at 85 %), so the body is still
low for a few frames after the label says rearing, and still high at its end; the
classifier reads a 0.5 s window of poses (15 frames at 30 fps), and the rule waits for 3
frames. A trigger within one window (:data:`LAG_FRAMES` = 15 frames) of the label's
edges is on time; one earlier than the bout, or later than the window after it, fails.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

pd = pytest.importorskip("pandas")
msgs = pytest.importorskip("sensor_msgs.msg", reason="sensor_msgs (ROS 2) is not installed")

from conftest import (  # noqa: E402
    Listener,
    failed_exits,
    prime,
    to_time,
    wait_matched,
    write_params,
)
from mouse_lifter_ros.msg import Behavior, Keypoints2D, Pose3D  # noqa: E402
from std_msgs.msg import Bool, Float64  # noqa: E402

from mouse_lifter_ros.core.democlip import (  # noqa: E402
    DemoClip,
    demo_frames,
    truth_bouts,
    write_demo_clip,
)
from mouse_lifter_ros.core.node_params import STIMULUS_PARAMS  # noqa: E402
from mouse_lifter_ros.core.params import validate  # noqa: E402
from mouse_lifter_ros.core.pose_files import (  # noqa: E402
    BEHAVIOR_COLUMN,
    TIME_COLUMN,
    read_annotations,
    read_dlc_csv,
)
from mouse_lifter_ros.core.stimulus.interface import BehaviorFrame  # noqa: E402
from mouse_lifter_ros.core.stimulus.loader import rule_from_params  # noqa: E402
from mouse_lifter_ros.core.stimulus.runner import replay  # noqa: E402
from mouse_lifter_ros.nodes._ros import (  # noqa: E402
    LATEST_FRAME_QOS,
    RELIABLE_QOS,
    stamp_ns,
    to_image_msg,
)
from mouse_lifter_ros.runner import GraphRun, package_share  # noqa: E402

FPS = 30.0
START_NS = 1_700_000_000_000_000_000  # write_image_bag's first stamp
#: Frames a trigger may come after the rearing label's first frame or last frame + 1.
LAG_FRAMES = 15


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> DemoClip:
    return write_demo_clip(tmp_path_factory.mktemp("clip"), fps=FPS)  # 5.8 s, 174 frames


def _frame(stamp: int) -> int:
    return round((stamp - START_NS) * FPS / 1e9)


def _shipped_rule() -> Any:
    doc = yaml.safe_load((package_share() / "config" / "params.yaml").read_text())
    return rule_from_params(validate(STIMULUS_PARAMS, doc["/**/stimulus"]["ros__parameters"]))


def _on_intervals(triggers: list[tuple[int, bool]], end: int) -> list[tuple[int, int]]:
    """[on frame, off frame) of (frame, value) triggers; an unfinished one ends at ``end``."""
    out, on = [], None
    for frame, value in triggers:
        if value and on is None:
            on = frame
        elif not value and on is not None:
            out.append((on, frame))
            on = None
    return out + ([(on, end)] if on is not None else [])


def _p50_p99(values_ms: list[float]) -> str:
    if not values_ms:
        return "none"
    p50, p99 = np.percentile(values_ms, [50, 99])
    return f"p50 {p50:.1f} ms p99 {p99:.1f} ms (n={len(values_ms)})"


def test_full_graph_triggers_on_rearing_only(listener: Listener, namespace: str,
                                             tmp_path: Path, clip: DemoClip) -> None:
    ns = f"/{namespace}"
    behaviors = listener.subscribe(Behavior, f"{ns}/behavior", RELIABLE_QOS)
    poses = listener.subscribe(Pose3D, f"{ns}/pose", RELIABLE_QOS)
    triggers = listener.subscribe(Bool, f"{ns}/trigger", RELIABLE_QOS)
    latencies = listener.subscribe(Float64, f"{ns}/trigger_latency", RELIABLE_QOS)
    # Recorded stamps (frame identity); real time. The bag starts once the keypoint and
    # depth nodes and (last) this test listen to the images.
    params = write_params(tmp_path / "p.yaml", {"bag_source": {
        "restamp": False, "wait_for_subscribers": 3, "rate": 1.0}})
    out = tmp_path / "rec"
    first = next(iter(demo_frames(fps=FPS)))
    with GraphRun("replay", arguments={
            "bag": str(clip.bag), "arena": str(clip.arena), "monitor": "false",
            "record": "true", "record_dir": str(out), "record_prefix": "run"},
            namespace=namespace, params_file=params) as run:
        assert set(run.processes) == {"bag_source", "keypoint", "depth", "lifter", "behavior",
                                      "stimulus", "recorder"}
        pub = listener.node.create_publisher(msgs.Image, f"{ns}/camera/image_raw",
                                             LATEST_FRAME_QOS)
        wait_matched(listener, pub, [f"{ns}/behavior", f"{ns}/trigger"], timeout=60)
        # Every consumer has subscribed (this test's subscriptions count too) ...
        counts = {f"{ns}/keypoints": 2, f"{ns}/pose": 4, f"{ns}/behavior": 3}
        assert listener.wait_for(lambda: all(
            listener.node.count_subscribers(t) >= n for t, n in counts.items()), 60), \
            {t: listener.node.count_subscribers(t) for t in counts}
        # ... and a round trip image -> keypoints + depth -> pose -> behaviour works
        # (the clip's first frame, stamps of 1970: the classifier resets at the jump).
        prime(listener, lambda i: pub.publish(to_image_msg(first, "mono8", to_time(i + 1),
                                                           "cam")), behaviors, timeout=60)
        listener.wait_for(lambda: False, 1.0)
        primed_triggers = len(triggers)
        images = listener.subscribe(msgs.Image, f"{ns}/camera/image_raw", LATEST_FRAME_QOS)
        assert run.wait_any(timeout=90) == "bag_source", run.output("lifter")
        last = START_NS + round((clip.frames - 1) * 1e9 / FPS)
        listener.wait_for(lambda: bool(behaviors) and stamp_ns(
            behaviors[-1][1].header.stamp) >= last, 15)
        listener.wait_for(lambda: len(latencies) == len(triggers), 5)
        codes = run.stop(timeout=15)
        logs = {n: run.output(n) for n in run.processes}
    assert set(codes.values()) == {0}, failed_exits(codes, logs)
    assert "Traceback" not in "".join(logs.values())

    # Frames: nearly all of them made it through (best effort images, real time).
    got = [(t, m) for t, m in behaviors if stamp_ns(m.header.stamp) >= START_NS]
    frames = [_frame(stamp_ns(m.header.stamp)) for _, m in got]
    assert frames == sorted(set(frames)), frames
    assert len(frames) >= 0.9 * clip.frames, (len(frames), logs["lifter"])
    assert len([m for _, m in poses if stamp_ns(m.source_stamp) >= START_NS]) == len(frames)

    # Triggers: what the shipped rule gives on the behaviour that arrived, in order.
    assert primed_triggers == 0, "a trigger fired while priming"
    rule_frames = [BehaviorFrame(stamp_ns(m.header.stamp), m.label, tuple(m.class_names),
                                 list(m.probabilities)) for _, m in behaviors]
    expected = [t for t in replay(_shipped_rule(), rule_frames) if t.stamp_ns >= START_NS]
    values = [m.data for _, m in triggers]
    assert values == [t.value for t in expected], (values, expected, logs["stimulus"])
    fired = [(_frame(t.stamp_ns), t.value) for t in expected]
    # ... on only during the rearing bout, within one classifier window of its edges.
    [(first_rear, last_rear)] = [(a, b) for c, a, b, _, _ in truth_bouts(clip.truth)
                                 if c == "rearing"]
    on = _on_intervals(fired, clip.frames)
    print(f"\ntruth: rearing frames {first_rear}-{last_rear}; stimulus on (frames "
          f"[on, off)): {on}; labels: " + "".join(m.label[0] for _, m in got))
    assert on, f"no trigger during rearing frames {first_rear}-{last_rear}"
    assert on[0][0] <= first_rear + LAG_FRAMES, (on, first_rear)
    for start, stop in on:
        assert first_rear <= start and stop <= last_rear + 1 + LAG_FRAMES, (on, first_rear,
                                                                            last_rear)

    # Latency: frame arrival (its image here) -> trigger arrival, and -> behaviour arrival.
    image_at = {stamp_ns(m.header.stamp): t for t, m in images}
    to_trigger = [(t_trig - image_at[trig.stamp_ns]) / 1e6
                  for (t_trig, _), trig in zip(triggers, expected, strict=True)
                  if trig.stamp_ns in image_at]
    to_behavior = [(t - image_at[stamp_ns(m.header.stamp)]) / 1e6 for t, m in got
                   if stamp_ns(m.header.stamp) in image_at]
    node_latency = [1e3 * m.data for _, m in latencies]
    assert len(node_latency) == len(values)
    print(f"frame -> trigger latency, at this test's subscriber: {_p50_p99(to_trigger)}; "
          f"frame -> behaviour (every frame): {_p50_p99(to_behavior)}")
    assert len(to_behavior) >= 0.8 * len(got)  # best effort images: a few may be missed
    m = re.search(r"(\d+) triggers \((\d+) on, (\d+) off\)", logs["stimulus"])
    assert m and int(m.group(1)) == len(values), logs["stimulus"]

    # Recording: every frame of the bag, read back complete; the .h5 as DeepLabCut's.
    h5 = pd.read_hdf(out / "run.h5", "df_with_missing")
    dlc = read_dlc_csv(out / "run.csv")
    table = read_annotations(out / "run_annotations.csv")
    assert len(h5) == len(dlc) == len(table), (len(h5), len(dlc), len(table))
    pd.testing.assert_frame_equal(h5, dlc, check_dtype=False)
    # Times count from the first recorded row. Primed frames (1970 stamps) come first when
    # the recorder heard them, which depends on discovery: the bag's rows follow the last
    # jump of decades, or are all the rows when no primed frame was recorded.
    times = table[TIME_COLUMN].to_numpy()
    jumps = np.flatnonzero(np.diff(times) > 1e6)
    bag_rows = np.arange(len(table)) > (jumps[-1] if len(jumps) else -1)
    assert int(bag_rows.sum()) == len(got), (int(bag_rows.sum()), len(got), logs["recorder"])
    assert list(table[BEHAVIOR_COLUMN][bag_rows]) == [m.label for _, m in got]
    np.testing.assert_allclose(np.diff(table[TIME_COLUMN][bag_rows]),
                               np.diff(frames) / FPS, atol=1e-6)
    assert f"closed: {len(table)} frames written" in logs["recorder"], logs["recorder"]


def test_lift_false_leaves_the_3d_consumers_out() -> None:
    run = GraphRun("replay", arguments={"bag": "/data/b", "lift": "false", "record": "true"})
    try:
        assert [n.node.name for n in run.launches] == ["bag_source", "keypoint", "monitor"]
        assert set(run.left_out) == {"behavior", "stimulus", "recorder"}
        assert "lift:=false" in run.left_out["behavior"], run.left_out
    finally:
        run.close()


def test_closed_loop_graph_on_a_video_file(listener: Listener, namespace: str,
                                           tmp_path: Path, clip: DemoClip) -> None:
    """closed_loop.launch.py's graph, with the demo clip's video as its camera."""
    ns = f"/{namespace}"
    triggers = listener.subscribe(Bool, f"{ns}/trigger", RELIABLE_QOS)
    keypoints = listener.subscribe(Keypoints2D, f"{ns}/keypoints", RELIABLE_QOS)
    # Grey frames at half the file's rate: decoding, converting and publishing colour
    # frames at 30 fps besides eight nodes is more than a 2-core test machine keeps up with.
    params = write_params(tmp_path / "p.yaml", {"camera": {
        "wait_for_subscribers": 3, "encoding": "mono8", "fps": 15.0}})
    out = tmp_path / "rec"
    with GraphRun("closed_loop", arguments={
            "source": str(clip.video), "arena": str(clip.arena), "record_dir": str(out),
            "record_prefix": "session1"}, namespace=namespace, params_file=params) as run:
        assert set(run.processes) == {"camera", "keypoint", "depth", "lifter", "behavior",
                                      "stimulus", "recorder", "monitor"}
        assert run.wait_any(timeout=90) == "camera", run.output("camera")
        listener.wait_for(lambda: len(keypoints) >= clip.frames - 5, 10)
        time.sleep(1.0)
        codes = run.stop(timeout=15)
        logs = {n: run.output(n) for n in run.processes}
    assert set(codes.values()) == {0}, failed_exits(codes, logs)
    assert "Traceback" not in "".join(logs.values())
    rows = len(read_annotations(out / "session1_annotations.csv"))
    # Frames are dropped where the machine is busy (latest-frame QoS): most, not all, arrive.
    assert rows >= clip.frames // 3, (rows, logs["recorder"], logs["lifter"], logs["monitor"])
    assert len(pd.read_hdf(out / "session1.h5", "df_with_missing")) == rows
    # The monitor saw the behaviour labels and the triggers (if any fired).
    assert re.search(r"total: /\S+/behavior labels: \w+ \d+", logs["monitor"]), \
        logs["monitor"]
    assert f"total: {ns}/trigger: {len(triggers)} triggers" in logs["monitor"], \
        logs["monitor"]
