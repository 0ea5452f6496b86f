"""Start-up handshake of a graph: each node says when its links are up; the source waits.

A node that was given ``expect_publishers`` (how many publishers each of its
subscriptions must match, from config/graph.yaml) checks its subscriptions' matched
publishers every 0.1 s; once each has its count it publishes its name, once, on
``graph_ready`` (reliable, transient local: a source that starts later still gets it).
A source given ``wait_for_nodes`` reads ``graph_ready`` and waits for every one of them.
What is matched is the subscriptions' own view of their publishers, not merely that the
endpoints exist somewhere in the graph: a link seen by a third node can still be
unmatched between its two ends for a second or more on a loaded machine.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String

from mouse_lifter_ros.core.graph import EXPECT_PUBLISHERS, parse_topic_counts

READY_TOPIC = "graph_ready"
#: One message per node, kept for readers that come later.
READY_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                       reliability=ReliabilityPolicy.RELIABLE,
                       durability=DurabilityPolicy.TRANSIENT_LOCAL)
#: Readers: every node's message, however many nodes there are.
_READER_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100,
                         reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)


def announce_when_ready(node: Node) -> None:
    """Publish ``node``'s name on ``graph_ready`` once its subscriptions have matched the
    publishers its ``expect_publishers`` parameter names (nothing when it has none)."""
    if not node.has_parameter(EXPECT_PUBLISHERS):
        return
    expect = {node.resolve_topic_name(t): n for t, n in parse_topic_counts(
        node.get_parameter(EXPECT_PUBLISHERS).value).items()}
    if not expect:
        return
    pub = node.create_publisher(String, READY_TOPIC, READY_QOS)

    def check() -> None:
        matched = {s.topic_name: s.get_publisher_count() for s in node.subscriptions}
        if all(matched.get(t, 0) >= n for t, n in expect.items()):
            pub.publish(String(data=node.get_fully_qualified_name()))
            node.get_logger().info("links up: " + ", ".join(
                f"{t} {matched[t]} publisher(s)" for t in expect) + f"; said so on "
                f"{pub.topic_name}")
            timer.cancel()

    timer = node.create_timer(0.1, check)


class ReadyNodes:
    """The source's side: which of the graph's nodes have said they are ready."""

    def __init__(self, node: Node) -> None:
        self._lock = threading.Lock()
        self._ready: set[str] = set()
        self._sub = node.create_subscription(String, READY_TOPIC, self._on_ready, _READER_QOS)
        self._namespace = node.get_namespace().rstrip("/")

    def _on_ready(self, msg: String) -> None:
        with self._lock:
            self._ready.add(msg.data)

    def missing(self, names: Sequence[str]) -> list[str]:
        """The fully qualified names of ``names`` (node names in this namespace) not
        ready yet."""
        wanted = [f"{self._namespace}/{n}" for n in names]
        with self._lock:
            return [w for w in wanted if w not in self._ready]
