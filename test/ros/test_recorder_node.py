"""recorder_node in its own process, over DDS, stopped by SIGINT or SIGTERM mid-stream.

What "received" means here: the test publishes frames (keypoints, pose and behaviour of
one stamp) at about 200 per second and keeps publishing while it signals the node, so
frames are in flight when the node stops. The node's last log line states how many
frames it wrote (N), the last of them the last complete frame it received. The test
then checks, for each signal and each annotations format, that every file (the ``.h5``
read with ``pandas.read_hdf(path, 'df_with_missing')``) holds exactly those N frames,
that they are a contiguous run of the published frames with their exact values (reliable
QoS: nothing is lost once the node has matched the publishers), and that every frame
published at least 0.5 s before the signal is among them; frames published later may or
may not be (in flight, or incomplete at the signal: dropped and counted).
"""

from __future__ import annotations

import re
import resource
import signal
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
pytest.importorskip("geometry_msgs.msg", reason="ROS 2 messages are not installed")

from conftest import (  # noqa: E402
    Listener,
    behavior_msg,
    pose_msg,
    run_alone,
    to_time,
    write_params,
)
from mouse_lifter_ros.msg import Behavior, Keypoints2D, Pose3D  # noqa: E402

from mouse_lifter_ros.core.body import KEYPOINTS  # noqa: E402
from mouse_lifter_ros.core.pose_files import read_annotations, read_dlc_csv  # noqa: E402
from mouse_lifter_ros.nodes._ros import PUBLISH_QOS, RELIABLE_QOS  # noqa: E402
from mouse_lifter_ros.runner import GraphRun  # noqa: E402

T0 = 1_700_000_000_000_000_000
STEP = 33_000_000
K = len(KEYPOINTS)
OFFSET = np.arange(K) / 16.0


def frame_values(i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]:
    """x, y, confidence, (K, 3) positions and label of frame i (exact in float32)."""
    x, y = i + OFFSET, 2.0 * i + OFFSET
    conf = 0.5 + np.arange(K) / 64.0
    pos = np.stack([np.full(K, i / 1024.0), np.arange(K) / 64.0, np.full(K, 0.01)], axis=1)
    return x, y, conf, pos, ("rearing" if i % 3 == 0 else "locomotion")


class Publisher:
    """Publishes frame after frame from a thread; remembers when each went out.

    With the QoS of our nodes' publishers (``PUBLISH_QOS``) unless told otherwise.
    """

    def __init__(self, listener: Listener, namespace: str, qos: Any = PUBLISH_QOS,
                 count: int | None = None) -> None:
        node = listener.node
        self.kp = node.create_publisher(Keypoints2D, f"/{namespace}/keypoints", qos)
        self.pose = node.create_publisher(Pose3D, f"/{namespace}/pose", qos)
        self.beh = node.create_publisher(Behavior, f"/{namespace}/behavior", qos)
        self.count = count
        self.sent: list[float] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def matched(self) -> bool:
        return all(p.get_subscription_count() >= 1 for p in (self.kp, self.pose, self.beh))

    def _run(self) -> None:
        i = 0
        while not self.stop.is_set() and (self.count is None or i < self.count):
            x, y, conf, pos, label = frame_values(i)
            stamp = T0 + i * STEP
            kp = Keypoints2D(names=list(KEYPOINTS), x=x.tolist(), y=y.tolist(),
                             confidence=conf.tolist(), image_width=640, image_height=480)
            kp.header.stamp = to_time(stamp)
            self.kp.publish(kp)
            self.pose.publish(pose_msg(list(KEYPOINTS), pos, stamp))
            other = "locomotion" if label == "rearing" else "rearing"
            self.beh.publish(behavior_msg(stamp, {label: 0.75, other: 0.25}))
            self.sent.append(time.monotonic())
            i += 1
            time.sleep(0.005)


def _data_rows(csv: Path) -> int:
    return max(0, csv.read_bytes().count(b"\n") - 3) if csv.exists() else 0


def _stream_until(listener: Listener, run: GraphRun, pub: Publisher, csv: Path,
                  rows: int) -> None:
    """Once the recorder matches ``pub``, publish until ``csv`` holds ``rows`` rows."""
    assert listener.wait_for(pub.matched, 20), run.output("recorder")
    pub.thread.start()
    assert listener.wait_for(lambda: _data_rows(csv) >= rows, 30), run.output("recorder")


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_mid_stream_leaves_complete_files(listener: Listener, namespace: str,
                                                 tmp_path: Path, sig: signal.Signals,
                                                 fmt: str) -> None:
    out = tmp_path / "rec"
    params = write_params(tmp_path / "params.yaml", {"recorder": {
        "output_dir": str(out), "prefix": "run1", "annotations_format": fmt,
        "flush_period": 0.5}})
    pub = Publisher(listener, namespace)
    with GraphRun("recorder", nodes=["recorder"], namespace=namespace,
                  params_file=params) as run:
        _stream_until(listener, run, pub, out / "run1.csv", 150)
        signalled = time.monotonic()
        run.processes["recorder"].send_signal(sig)
        assert run.wait_any(timeout=20) == "recorder", run.output("recorder")
        pub.stop.set()
        pub.thread.join(5)
        code = run.processes["recorder"].returncode
        log = run.output("recorder")
    assert code == 0, log
    match = re.search(r"closed: (\d+) frames written", log)
    assert match, log
    n = int(match.group(1))
    dlc_csv = read_dlc_csv(out / "run1.csv")
    h5 = pd.read_hdf(out / "run1.h5", "df_with_missing")  # as DeepLabCut's are read
    table = read_annotations(out / f"run1_annotations.{fmt}")
    assert len(dlc_csv) == len(h5) == len(table) == n, (len(dlc_csv), len(h5), len(table), log)
    assert list(h5.index) == list(range(n))
    pd.testing.assert_frame_equal(h5, dlc_csv, check_dtype=False)
    # Contiguous published frames j, j+1, ..., j+n-1 with their exact values.
    first = int(h5.iloc[0, 0])
    frames = list(range(first, first + n))
    for row, i in enumerate(frames):
        x, y, conf, pos, label = frame_values(i)
        np.testing.assert_array_equal(h5.iloc[row, 0::3].to_numpy(), x.astype(np.float32))
        np.testing.assert_array_equal(h5.iloc[row, 1::3].to_numpy(), y.astype(np.float32))
        np.testing.assert_array_equal(h5.iloc[row, 2::3].to_numpy(), conf.astype(np.float32))
        assert table["Behavior"].iloc[row] == label
        assert table["Behavior probability"].iloc[row] == pytest.approx(0.75, abs=1e-6)
        for k, part in enumerate(KEYPOINTS):
            assert table[f"{part} X (m)"].iloc[row] == pos[k, 0]
            assert table[f"{part} Y (m)"].iloc[row] == pos[k, 1]
    np.testing.assert_allclose(table["Time since start (s)"], np.arange(n) * STEP / 1e9)
    assert list(table["Frame number"]) == list(range(n))
    # Everything published 0.5 s or more before the signal was received and written.
    settled = sum(1 for t in pub.sent if t <= signalled - 0.5)
    assert first + n >= settled, (first, n, settled)
    assert len(pub.sent) > first + n, (len(pub.sent), first, n)  # more were sent: in flight


def test_existing_files_stop_the_node_at_start_up(namespace: str, ros_domain: int,
                                                  tmp_path: Path) -> None:
    (tmp_path / "run1.h5").write_bytes(b"old")
    params = write_params(tmp_path / "params.yaml", {"recorder": {
        "output_dir": str(tmp_path), "prefix": "run1"}})
    with GraphRun("recorder", nodes=["recorder"], namespace=namespace,
                  params_file=params) as run:
        assert run.wait_any(timeout=20) == "recorder"
        code, log = run.processes["recorder"].returncode, run.output("recorder")
    assert code == 1, log
    assert str(tmp_path / "run1.h5") in log and "overwrite" in log and "Traceback" not in log
    assert (tmp_path / "run1.h5").read_bytes() == b"old"


def test_a_late_recorder_still_gets_the_first_frames(listener: Listener, namespace: str,
                                                     tmp_path: Path) -> None:
    # Discovery can match a recorder seconds after the pipeline's first frame. Our
    # publishers keep their last 300 messages for a transient-local reader: 40 frames sent
    # before the recorder even started are all recorded, from the first.
    out = tmp_path / "rec"
    params = write_params(tmp_path / "params.yaml", {"recorder": {
        "output_dir": str(out), "prefix": "late"}})
    pub = Publisher(listener, namespace, count=40)
    pub.thread.start()
    pub.thread.join(10)
    assert len(pub.sent) == 40
    with GraphRun("recorder", nodes=["recorder"], namespace=namespace,
                  params_file=params) as run:
        assert listener.wait_for(lambda: _data_rows(out / "late.csv") >= 40, 30), \
            run.output("recorder")
        run.processes["recorder"].send_signal(signal.SIGINT)
        assert run.wait_any(timeout=20) == "recorder", run.output("recorder")
        log = run.output("recorder")
    assert "closed: 40 frames written" in log, log
    h5 = pd.read_hdf(out / "late.h5", "df_with_missing")
    np.testing.assert_array_equal(h5.iloc[:, 0].to_numpy(),
                                  frame_values(0)[0][0] + np.arange(40))


def test_volatile_publishers_need_durability_volatile(listener: Listener, namespace: str,
                                                      tmp_path: Path) -> None:
    # A publisher that offers only volatile durability cannot match the default
    # (transient local) recorder: it says so, naming the parameter; with durability
    # volatile it records.
    params = write_params(tmp_path / "params.yaml", {"recorder": {
        "output_dir": str(tmp_path / "a"), "prefix": "v"}})
    pub = Publisher(listener, namespace, qos=RELIABLE_QOS)
    with GraphRun("recorder", nodes=["recorder"], namespace=namespace,
                  params_file=params) as run:
        # one warning per stream, each from its own QoS event: wait for the pose's
        assert listener.wait_for(lambda: "pose: 1 publisher(s) cannot match"
                                 in run.output("recorder"), 20), run.output("recorder")
        assert "durability to 'volatile'" in run.output("recorder")
        assert pub.pose.get_subscription_count() == 0
        log = run.output("recorder")
    assert "pose: 1 publisher(s) cannot match" in log, log

    out = tmp_path / "b"
    params = write_params(tmp_path / "params2.yaml", {"recorder": {
        "output_dir": str(out), "prefix": "v", "durability": "volatile"}})
    with GraphRun("recorder", nodes=["recorder"], namespace=namespace,
                  params_file=params) as run:
        _stream_until(listener, run, pub, out / "v.csv", 20)
        pub.stop.set()
        pub.thread.join(5)
        log = run.output("recorder")
    assert "cannot match" not in log, log


def test_bag_of_our_topics_is_complete_after_sigint(listener: Listener, namespace: str,
                                                    tmp_path: Path) -> None:
    # rosbag: true also writes every received message to <prefix>_bag (MCAP), finished on
    # SIGINT: it reads back with rosbags, holding at least the frames the files hold,
    # with their exact values, and the trigger.
    from rosbags.rosbag2 import Reader
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore
    from std_msgs.msg import Bool

    out = tmp_path / "rec"
    params = write_params(tmp_path / "params.yaml", {"recorder": {
        "output_dir": str(out), "prefix": "run2", "rosbag": True}})
    pub = Publisher(listener, namespace)
    trigger = listener.node.create_publisher(Bool, f"/{namespace}/trigger", PUBLISH_QOS)
    with GraphRun("recorder", nodes=["recorder"], namespace=namespace,
                  params_file=params) as run:
        assert listener.wait_for(lambda: pub.matched() and trigger.get_subscription_count(),
                                 20), run.output("recorder")
        pub.thread.start()
        trigger.publish(Bool(data=True))
        assert listener.wait_for(lambda: _data_rows(out / "run2.csv") >= 60, 30), \
            run.output("recorder")
        run.processes["recorder"].send_signal(signal.SIGINT)
        assert run.wait_any(timeout=20) == "recorder", run.output("recorder")
        pub.stop.set()
        pub.thread.join(5)
        log = run.output("recorder")
    n = int(re.search(r"closed: (\d+) frames written", log).group(1))  # type: ignore[union-attr]
    assert re.search(r"bag closed: \d+ messages", log), log
    store = get_typestore(Stores.ROS2_JAZZY)
    msg_dir = Path(__file__).resolve().parents[2] / "msg"
    for path in msg_dir.glob("*.msg"):
        store.register(get_types_from_msg(path.read_text(), f"mouse_lifter_ros/msg/{path.stem}"))
    counts: dict[str, int] = {}
    poses = {}
    with Reader(out / "run2_bag") as reader:
        for conn, _, data in reader.messages():
            topic = conn.topic.rsplit("/", 1)[1]
            counts[topic] = counts.get(topic, 0) + 1
            msg = store.deserialize_cdr(data, conn.msgtype)
            if topic == "pose":
                poses[msg.source_stamp.sec * 10**9 + msg.source_stamp.nanosec] = msg
            if topic == "trigger":
                assert msg.data is True
    assert counts["trigger"] == 1
    assert min(counts["keypoints"], counts["pose"], counts["behavior"]) >= n, (counts, n)
    for stamp, msg in list(poses.items())[:20]:
        i = (stamp - T0) // STEP
        pos = frame_values(i)[3]
        got = np.array([(q.x, q.y, q.z) for q in msg.positions])
        np.testing.assert_array_equal(got, pos)


# -- start-up checks, write failures, hard kill ---------------------------------------------


def test_a_folder_it_cannot_write_stops_the_node_at_start_up(namespace: str, ros_domain: int,
                                                            tmp_path: Path) -> None:
    (tmp_path / "hostname").write_text("x")  # as record_dir:=/etc/hostname/x
    out = tmp_path / "hostname" / "x"
    params = write_params(tmp_path / "params.yaml", {"recorder": {"output_dir": str(out)}})
    code, log = run_alone("recorder", namespace, params, timeout=20)
    assert code == 1, log
    assert f"output_dir = '{out}': cannot write there: Not a directory" in log, log
    assert "Traceback" not in log, log


def test_too_little_free_space_stops_the_node_at_start_up(namespace: str, ros_domain: int,
                                                         tmp_path: Path) -> None:
    params = write_params(tmp_path / "params.yaml", {"recorder": {
        "output_dir": str(tmp_path / "rec"), "min_free_mb": 1e12}})
    code, log = run_alone("recorder", namespace, params, timeout=20)
    assert code == 1, log
    assert "MB free, less than min_free_mb = 1e+12 MB" in log, log
    assert "Traceback" not in log and not list((tmp_path / "rec").iterdir()), log


def test_failed_writes_mid_session_do_not_stop_the_node(listener: Listener, namespace: str,
                                                       tmp_path: Path) -> None:
    # The recorder process gets a 400 kB file-size limit mid-session (RLIMIT_FSIZE: a
    # write beyond it fails for real with EFBIG): its .h5 appends then fail (their space
    # is reserved first), its annotations CSV fails at the limit and then its DeepLabCut
    # CSV. It records on, logs the failures, and SIGINT still ends it with exit 0 and
    # every file readable, with no torn row; what each file holds is the published frames'.
    out = tmp_path / "rec"
    params = write_params(tmp_path / "params.yaml", {"recorder": {
        "output_dir": str(out), "prefix": "full", "flush_period": 0.5}})
    pub = Publisher(listener, namespace)
    limit = 400_000
    with GraphRun("recorder", nodes=["recorder"], namespace=namespace,
                  params_file=params) as run:
        _stream_until(listener, run, pub, out / "full.csv", 30)
        resource.prlimit(run.processes["recorder"].pid, resource.RLIMIT_FSIZE,
                         (limit, resource.RLIM_INFINITY))
        table_full = (out / "full_annotations.csv").stat().st_size
        assert table_full < limit - 100_000, table_full  # the limit came in time
        # Stream until the DeepLabCut CSV, too, is at the limit and has failed.
        assert listener.wait_for(lambda: (out / "full.csv").stat().st_size > limit - 1200
                                 and "write failures" in run.output("recorder"), 60), \
            run.output("recorder")
        time.sleep(1.0)
        assert run.processes["recorder"].poll() is None, run.output("recorder")
        run.processes["recorder"].send_signal(signal.SIGINT)
        assert run.wait_any(timeout=20) == "recorder", run.output("recorder")
        pub.stop.set()
        pub.thread.join(5)
        code, log = run.processes["recorder"].returncode, run.output("recorder")
    assert code == 0, log
    assert "Traceback" not in log and "write failures, recording on" in log, log
    n = int(re.search(r"closed: (\d+) frames written", log).group(1))  # type: ignore[union-attr]
    dlc = read_dlc_csv(out / "full.csv")
    table = read_annotations(out / "full_annotations.csv")
    h5 = pd.read_hdf(out / "full.h5", "df_with_missing")
    for name, rows in (("full.h5", len(h5)), ("full.csv", len(dlc)),
                       ("full_annotations.csv", len(table))):
        lost = int(re.search(rf"{re.escape(name)} (\d+) rows in \d+ failed writes",  # type: ignore[union-attr]
                             log).group(1))
        assert rows + lost == n, (name, rows, lost, n, log)
    assert len(table) < len(dlc) < n and len(h5) < len(dlc), (len(h5), len(dlc), len(table))
    for name in ("full.csv", "full_annotations.csv"):
        data = (out / name).read_bytes()
        assert len(data) <= limit and data.endswith(b"\n"), name  # no torn row
    first = int(dlc.iloc[0, 0])
    for row, i in enumerate(dlc.index[:len(table)]):
        x = frame_values(first + i)[0]
        np.testing.assert_array_equal(dlc.iloc[row, 0::3].to_numpy(), x.astype(np.float32))
        assert table["Frame number"].iloc[row] == i
        np.testing.assert_array_equal(table[[f"{p} x" for p in KEYPOINTS]].iloc[row],
                                      x.astype(np.float32))
    pd.testing.assert_frame_equal(h5, dlc.loc[h5.index], check_dtype=False)


def test_sigkill_loses_at_most_the_flush_period(listener: Listener, namespace: str,
                                                tmp_path: Path) -> None:
    # A hard kill mid-stream: every file reads back, the CSVs hold every frame but the
    # one being written, the .h5 all but those of the last flush_period (0.5 s) and a
    # margin for delivery (0.5 s), each a run of the published frames with their values.
    # Killed at 570 rows or a few more: appending every 300 rows instead, the .h5 would
    # hold 300, more than a second (150-200 rows here) behind.
    out = tmp_path / "rec"
    params = write_params(tmp_path / "params.yaml", {"recorder": {
        "output_dir": str(out), "prefix": "kill", "flush_period": 0.5}})
    pub = Publisher(listener, namespace)
    with GraphRun("recorder", nodes=["recorder"], namespace=namespace,
                  params_file=params) as run:
        _stream_until(listener, run, pub, out / "kill.csv", 570)
        killed = time.monotonic()
        run.processes["recorder"].send_signal(signal.SIGKILL)
        assert run.wait_any(timeout=20) == "recorder"
        pub.stop.set()
        pub.thread.join(5)
        assert run.processes["recorder"].returncode == -signal.SIGKILL
    dlc = read_dlc_csv(out / "kill.csv")
    table = read_annotations(out / "kill_annotations.csv")
    h5 = pd.read_hdf(out / "kill.h5", "df_with_missing")
    assert abs(len(dlc) - len(table)) <= 1 and len(dlc) >= 570, (len(dlc), len(table))
    recent = sum(1 for t in pub.sent if t > killed - 1.0)
    assert len(dlc) - recent <= len(h5) <= len(dlc), (len(h5), len(dlc), recent)
    assert list(h5.index) == list(range(len(h5)))
    pd.testing.assert_frame_equal(h5, dlc.iloc[:len(h5)], check_dtype=False)
    first = int(dlc.iloc[0, 0])
    for row in range(0, len(table), 37):
        _, y, _, pos, label = frame_values(first + row)
        np.testing.assert_array_equal(dlc.iloc[row, 1::3].to_numpy(), y.astype(np.float32))
        assert table["Behavior"].iloc[row] == label
        assert table[f"{KEYPOINTS[0]} X (m)"].iloc[row] == pos[0, 0]
