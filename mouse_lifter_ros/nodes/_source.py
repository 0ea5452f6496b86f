"""The thread of a source node (a capture, a replay) and how it starts and stops."""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from rclpy.node import Node
from rclpy.publisher import Publisher
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

from mouse_lifter_ros.core.errors import MouseLifterError
from mouse_lifter_ros.core.flow import FlowGate, WhenBusy
from mouse_lifter_ros.core.graph import FLOW_TOPICS, WAIT_FOR_NODES, parse_flow_topics
from mouse_lifter_ros.nodes._diagnostics import publish_stage
from mouse_lifter_ros.nodes._ready import ReadyNodes
from mouse_lifter_ros.nodes._ros import stamp_ns

#: Seconds a source waits after its subscribers appeared, for them to match it in turn.
DISCOVERY_SETTLE_S = 0.3
#: Seconds between the log lines of a source still waiting for subscribers.
WAIT_REPORT_S = 5.0
#: Seconds a source that ends waits for its last /diagnostics report to be received.
FINAL_REPORT_S = 0.5
#: The per-frame outputs the source counts: best effort takes both reliable and best-effort
#: publishers; a few deep, so that a burst is not lost to the source's own callbacks.
_RETURN_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                         reliability=ReliabilityPolicy.BEST_EFFORT)


class SourceNode(Node):
    """A node whose source (a capture, a replay) runs in a thread of its own.

    Subclasses implement :meth:`produce` (read and publish until the source ends or
    ``done`` is set) and :meth:`release`. The thread first waits until ``publisher`` has
    ``wait_for_subscribers`` subscribers and every node of ``wait_for_nodes`` has said its
    links are up (:mod:`._ready`), at most ``wait_timeout`` seconds. A core error ends it
    with one log line and exit code 1, and so does any other exception (a crash must not
    look like the end of the source); either way ``done`` is set, which ends :func:`run`.

    With ``flow_topics``, :meth:`reserve` says whether to send a frame now
    (:class:`~mouse_lifter_ros.core.flow.FlowGate`: at most ``max_in_flight`` frames out;
    ``when_busy`` skip, after holding the frame until shortly before the next one, or
    wait while they are).
    """

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.done = threading.Event()
        self.exit_code = 0
        self._thread: threading.Thread | None = None
        self.gate: FlowGate | None = None
        self.when_busy: WhenBusy = "skip"
        self._final_report: Callable[[float], bool] | None = None

    def reserve(self, next_frame_s: float = 0.0) -> bool:
        """Flow control: True to send the frame at hand now (then call :meth:`sent` with
        its stamp); False to skip it (stages still busy shortly before the next frame is
        due, ``next_frame_s`` seconds from now, and ``when_busy`` skip; or stopping)."""
        return self.gate is None or self.gate.reserve(self.when_busy, self.done.is_set,
                                                      next_frame_s=next_frame_s)

    def frame_stamp_ns(self, offered_ns: int) -> int:
        """The stamp of a frame offered at ``offered_ns`` that :meth:`reserve` let out: a
        frame held for a free slot keeps the time it was offered, as a camera's capture
        stamp would; one a lossless source waited for (``when_busy`` wait) goes out as
        new, stamped now."""
        return self.get_clock().now().nanoseconds if self.when_busy == "wait" else offered_ns

    def sent(self, stamp_ns: int) -> None:
        """Flow control: the frame :meth:`reserve` allowed went out with this stamp."""
        if self.gate is not None:
            self.gate.sent(stamp_ns)

    def _watch_returns(self, params: Mapping[str, Any]) -> None:
        """Count each frame's per-frame outputs back in (flow control)."""
        outputs = parse_flow_topics(params[FLOW_TOPICS])
        if not outputs:
            return
        self.gate = gate = FlowGate(len(outputs), max_in_flight=params["max_in_flight"])
        self._final_report = publish_stage(self, "source", lambda: (
            (c := gate.counts()).expired == 0, c.line(), c.values()))
        for index, (topic, msgtype) in enumerate(outputs):
            package, _, name = msgtype.partition("/msg/")
            msg_class = getattr(importlib.import_module(f"{package}.msg"), name)
            self.create_subscription(
                msg_class, topic, lambda msg, i=index: self._returned(msg, i), _RETURN_QOS)
        self.get_logger().info(
            f"flow control: at most {self.gate.max_in_flight} frame(s) out until "
            + ", ".join(self.resolve_topic_name(t) for t, _ in outputs)
            + f" gave them back; when busy: {self.when_busy}")

    def _returned(self, msg: Any, output: int) -> None:
        assert self.gate is not None
        self.gate.returned(stamp_ns(msg.header.stamp), output)

    def start_source(self, publisher: Publisher[Any], params: Mapping[str, Any],
                     *, wait: bool = True) -> None:
        """Start the source thread; ``params`` are the node's validated parameters
        (``wait_for_subscribers``, ``wait_for_nodes``, ``wait_timeout``, ``flow_topics``,
        ``max_in_flight``, ``when_busy``); ``wait=False`` skips the subscriber count on
        ``publisher`` (a device delivers anyway)."""
        self.when_busy = params.get("when_busy", "skip")
        self._watch_returns(params)
        subscribers = params["wait_for_subscribers"] if wait else 0
        nodes = params[WAIT_FOR_NODES].split()
        ready = ReadyNodes(self) if nodes else None

        def missing() -> list[str]:
            have = publisher.get_subscription_count()
            lack = ([f"{publisher.topic_name}: {have} of {subscribers} subscribers"]
                    if have < subscribers else [])
            return lack + ([f"{n} not ready" for n in ready.missing(nodes)] if ready else [])

        self._thread = threading.Thread(
            target=self._work, args=(missing if subscribers or nodes else None,
                                     float(params["wait_timeout"])),
            name="source", daemon=True)
        self._thread.start()

    def _work(self, missing: Callable[[], list[str]] | None, timeout: float) -> None:
        try:
            if missing is not None and not self._wait_for(missing, timeout):
                return
            self.produce()
        except MouseLifterError as exc:
            self.get_logger().error(str(exc))
            self.exit_code = 1
        except Exception as exc:  # a crash, not the end of the source: say so, exit 1
            self.get_logger().fatal(f"the source failed: {type(exc).__name__}: {exc}")
            self.exit_code = 1
        finally:
            self.done.set()

    def _wait_for(self, missing: Callable[[], list[str]], timeout: float) -> bool:
        """Wait until nothing is ``missing()``, or ``timeout`` s; False when the node was
        stopped meanwhile."""
        start = last_report = time.monotonic()
        while lack := missing():
            now = time.monotonic()
            if now - start >= timeout:
                self.get_logger().warning(
                    f"starting after {timeout:g} s (wait_timeout) although: "
                    + "; ".join(lack) + "; frames published before they come are lost to them")
                return True
            if now - last_report >= WAIT_REPORT_S:
                self.get_logger().info("waiting: " + "; ".join(lack))
                last_report = now
            if self.done.wait(0.05):
                return False
        self.get_logger().info(
            f"the graph is up after {time.monotonic() - start:.1f} s: starting")
        # Discovery is two-way: the subscribers' nodes may match their publishers a moment
        # after this node saw them, and samples sent before that are lost to them.
        return not self.done.wait(DISCOVERY_SETTLE_S)

    def produce(self) -> None:
        """Read from the source and publish until it ends or ``done`` is set."""
        raise NotImplementedError

    def release(self) -> None:
        """Close the source."""

    def close(self) -> None:
        """Stop the source thread, release the source, log the flow counts."""
        self.done.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        self.release()
        if self.gate is not None:
            # the source ends before the graph: its totals, not its last periodic report
            if self._final_report is not None:
                self._final_report(FINAL_REPORT_S)
            self.get_logger().info(f"flow: {self.gate.counts().line()}")

