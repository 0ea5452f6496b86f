"""Fixtures for tests that run real nodes over real DDS.

Every test session takes a ROS domain id of its own (held by a lock file, so two runs
on one machine never hear each other) and keeps discovery on this machine. Node
processes are started by the graph runner, the same way `ros2 launch` starts them.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

try:
    import mouse_lifter_ros.msg  # noqa: F401  (generated: only in the colcon install)
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

    from mouse_lifter_ros.runner import package_prefix

    package_prefix()
    SKIP_REASON = ""
except Exception as exc:
    SKIP_REASON = (f"ROS 2 or the built package is not available ({exc}); "
                   "`make test` installs, builds and sources everything")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip every test in this folder, with the reason, where ROS is not there."""
    if SKIP_REASON:
        here = Path(__file__).parent
        for item in items:
            if here in Path(item.fspath).parents:
                item.add_marker(pytest.mark.skip(reason=SKIP_REASON))


def _take_domain_id() -> tuple[int, Any]:
    """Lock a domain id in 120..200 that no other test run on this machine holds."""
    lock_dir = Path(os.environ.get("TMPDIR", "/tmp"))
    start = 120 + os.getpid() % 80
    for offset in range(80):
        domain = 120 + (start - 120 + offset) % 80
        handle = open(lock_dir / f"mouse_lifter_ros_domain_{domain}.lock", "w")  # noqa: SIM115
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return domain, handle
        except OSError:
            handle.close()
    raise RuntimeError("no free ROS domain id in 120..200")


@pytest.fixture(scope="session")
def ros_domain() -> Iterator[int]:
    """This session's ROS domain id; also set in os.environ for the node processes."""
    domain, handle = _take_domain_id()
    os.environ["ROS_DOMAIN_ID"] = str(domain)
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    yield domain
    handle.close()


class Listener:
    """A real rclpy node in this process that records what arrives on topics."""

    def __init__(self, domain: int) -> None:
        self.context = rclpy.context.Context()
        rclpy.init(context=self.context, domain_id=domain)
        self.node = Node("test_listener", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._lock = threading.Lock()
        self.received: dict[str, list[tuple[int, Any]]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while not self._stop.is_set() and self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:
                return

    def subscribe(self, msg_type: type, topic: str, qos: QoSProfile) -> list[tuple[int, Any]]:
        """Record (receive time in ns, message) of every message on ``topic``.

        A reliable ``qos`` is taken with history keep-all here: with keep-last, a message
        that arrives while this process is starved on a loaded machine can displace an
        unread one from the reader's queue, and a test that counts messages would blame
        the nodes (CI: 173 poses against 172 behaviours). Matching ignores history.
        """
        if qos.reliability == ReliabilityPolicy.RELIABLE:
            qos = QoSProfile(history=HistoryPolicy.KEEP_ALL, reliability=qos.reliability,
                             durability=qos.durability)
        store: list[tuple[int, Any]] = []
        self.received[topic] = store

        def callback(msg: Any) -> None:
            with self._lock:
                store.append((time.time_ns(), msg))

        self.node.create_subscription(msg_type, topic, callback, qos)
        return store

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Poll ``predicate`` until it holds or ``timeout`` seconds pass."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.02)
        return predicate()

    def close(self) -> None:
        """Stop the spin thread before anything it waits on is destroyed: shutting the
        context down under a running ``spin_once`` crashed the test process (Jazzy)."""
        self._stop.set()
        self._thread.join(timeout=10)
        if self._thread.is_alive():
            raise RuntimeError("the listener's spin thread did not stop within 10 s")
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


@pytest.fixture
def listener(ros_domain: int) -> Iterator[Listener]:
    """A subscriber node on this session's domain."""
    node = Listener(ros_domain)
    yield node
    node.close()


@pytest.fixture
def namespace(request: pytest.FixtureRequest) -> str:
    """A namespace of this test's own, so tests never share topics."""
    words = re.findall(r"[A-Za-z0-9]+", request.node.name)
    digest = hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:8]
    return "_".join(["t", *words[:4], digest])


def run_alone(node: str, namespace: str, params: Path, *, timeout: float) -> tuple[int, str]:
    """Start ``node`` of config/graph.yaml on its own with ``params`` and wait for it to
    end (start-up errors): its exit code and log."""
    from mouse_lifter_ros.runner import GraphRun

    with GraphRun(node, nodes=[node], namespace=namespace, params_file=params) as run:
        assert run.wait_any(timeout=timeout) == node, run.output(node)
        return run.processes[node].returncode, run.output(node)


def failed_exits(codes: dict[str, int | None], logs: dict[str, str], *,
                 tail: int = 3000) -> str:
    """The exit codes, and the end of the log of each node that did not exit 0 (where a
    teardown stuck in DDS prints its threads' stacks), for an assertion message that
    pytest does not cut short."""
    return f"exit codes {codes}" + "".join(
        f"\n--- {name} (exit {code}), last {tail} characters of its log:\n"
        f"{logs.get(name, '')[-tail:]}" for name, code in codes.items() if code != 0)


def write_params(path: Path, sections: dict[str, dict[str, Any]]) -> Path:
    """A ROS parameter file: the shipped config/params.yaml with ``sections`` merged in."""
    import yaml

    from mouse_lifter_ros.runner import package_share

    doc = yaml.safe_load((package_share() / "config" / "params.yaml").read_text())
    for node, values in sections.items():
        doc[f"/**/{node}"]["ros__parameters"].update(values)
    path.write_text(yaml.safe_dump(doc))
    return path


# --- synthetic messages for the nodes downstream of the lifter -------------------------


def to_time(ns: int) -> Any:
    """A builtin_interfaces/Time of ``ns`` nanoseconds."""
    from builtin_interfaces.msg import Time

    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def pose_msg(names: list[str], positions: Any, stamp_ns: int, *, frame_id: str = "arena",
             header_stamp_ns: int | None = None) -> Any:
    """A Pose3D with every keypoint valid; ``source_stamp`` = ``stamp_ns``."""
    from geometry_msgs.msg import Point
    from mouse_lifter_ros.msg import Pose3D

    msg = Pose3D(names=list(names),
                 positions=[Point(x=float(p[0]), y=float(p[1]), z=float(p[2]))
                            for p in positions],
                 confidence=[1.0] * len(names), valid=[True] * len(names))
    msg.source_stamp = to_time(stamp_ns)
    msg.header.stamp = to_time(stamp_ns if header_stamp_ns is None else header_stamp_ns)
    msg.header.frame_id = frame_id
    return msg


def behavior_msg(stamp_ns: int, probabilities: dict[str, float]) -> Any:
    """A Behavior whose label is the most probable of ``probabilities``."""
    from mouse_lifter_ros.msg import Behavior

    msg = Behavior(label=max(probabilities, key=lambda k: probabilities[k]),
                   class_names=list(probabilities),
                   probabilities=[float(v) for v in probabilities.values()])
    msg.header.stamp = to_time(stamp_ns)
    msg.header.frame_id = "arena"
    return msg


def mouse_keypoints(pitch: float) -> Any:
    """(14, 3) keypoints (core.body.KEYPOINTS order) of a mouse pitched ``pitch`` rad up:
    a straight spine of five 2 cm segments from the tail base, paws on the floor (1.1 rad
    reads as rearing, 0 as a mouse on all fours)."""
    import math

    import numpy as np

    from mouse_lifter_ros.core.body import KEYPOINTS

    k = {name: i for i, name in enumerate(KEYPOINTS)}
    u = np.array([math.cos(pitch), 0.0, math.sin(pitch)])
    kp = np.zeros((14, 3))
    for i, name in enumerate(("tail_base", "lumbar_spine", "spine_center", "neck", "head",
                              "nose")):
        kp[k[name]] = np.array([0.0, 0.0, 0.012]) + 0.02 * i * u
    kp[k["left_ear"]] = kp[k["head"]] + [-0.005, 0.008, 0.004]
    kp[k["right_ear"]] = kp[k["head"]] + [-0.005, -0.008, 0.004]
    kp[k["tail_mid"]], kp[k["tail_tip"]] = [-0.04, 0.0, 0.002], [-0.08, 0.0, 0.002]
    kp[k["left_forepaw"]], kp[k["right_forepaw"]] = [0.05, 0.012, 0.002], [0.05, -0.012, 0.002]
    kp[k["left_hindpaw"]], kp[k["right_hindpaw"]] = [0.01, 0.015, 0.002], [0.01, -0.015, 0.002]
    return kp


def demo_truth(truth_csv: Path) -> tuple[Any, Any]:
    """A demo clip's ground truth (its ``demo_truth.csv``): per frame (frames, 14, 3)
    arena positions (m) and (frames, 14) visibility."""
    import csv

    import numpy as np

    from mouse_lifter_ros.core.body import KEYPOINTS

    with truth_csv.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    xyz = np.array([[[float(r[f"{k}_{a}_m"]) for a in "xyz"] for k in KEYPOINTS]
                    for r in rows])
    vis = np.array([[r[f"{k}_visible"] == "1" for k in KEYPOINTS] for r in rows])
    return xyz, vis


def wait_matched(listener: Listener, publisher: Any, outputs: list[str],
                 timeout: float = 20.0) -> None:
    """Wait until ``publisher`` has a subscriber and each topic in ``outputs`` a publisher."""
    ok = listener.wait_for(
        lambda: publisher.get_subscription_count() >= 1
        and all(listener.node.count_publishers(t) >= 1 for t in outputs), timeout)
    assert ok, "the node under test never matched the test's topics"


def prime(listener: Listener, publish: Callable[[int], None], received: list[Any],
          timeout: float = 20.0) -> int:
    """Publish ``publish(k)`` (k = 0, 1, ...) every 20 ms until something is ``received``.

    A reliable writer may match its reader before the reader has matched it, and then
    the first messages are lost. A round trip through the node under test proves the
    path is up; the tests then start their real streams (with stamps that reset the
    node's state) and ignore what priming produced. Returns how many messages priming
    published: the node's own count of what it handled lies between what came back and
    that number (either hop may lose the first ones).
    """
    deadline = time.monotonic() + timeout
    k = 0
    while not received and time.monotonic() < deadline:
        publish(k)
        k += 1
        time.sleep(0.02)
    assert received, "nothing came back from the node under test"
    return k
