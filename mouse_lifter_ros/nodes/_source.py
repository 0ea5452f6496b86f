"""The thread of a source node (a capture, a replay) and how it starts and stops."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from rclpy.node import Node
from rclpy.publisher import Publisher

from mouse_lifter_ros.core.errors import MouseLifterError
from mouse_lifter_ros.core.graph import WAIT_FOR_TOPICS, parse_topic_counts

#: Seconds a source waits after its subscribers appeared, for them to match it in turn.
DISCOVERY_SETTLE_S = 0.3
#: Seconds between the log lines of a source still waiting for subscribers.
WAIT_REPORT_S = 5.0


class SourceNode(Node):
    """A node whose source (a capture, a replay) runs in a thread of its own.

    Subclasses implement :meth:`produce` (read and publish until the source ends or
    ``done`` is set) and :meth:`release`. The thread first waits until ``publisher`` has
    ``wait_for_subscribers`` subscribers and each topic of ``wait_for_topics`` its count
    (the rest of the graph is up), at most ``wait_timeout`` seconds. A core error ends it
    with one log line and exit code 1, and so does any other exception (a crash must not
    look like the end of the source); either way ``done`` is set, which ends :func:`run`.
    """

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.done = threading.Event()
        self.exit_code = 0
        self._thread: threading.Thread | None = None

    def start_source(self, publisher: Publisher, params: Mapping[str, Any],
                     *, wait: bool = True) -> None:
        """Start the source thread; ``params`` are the node's validated parameters
        (``wait_for_subscribers``, ``wait_for_topics``, ``wait_timeout``); ``wait=False``
        skips the subscriber count on ``publisher`` (a device delivers anyway)."""
        needs = {publisher.topic_name: params["wait_for_subscribers"]} if wait else {}
        for topic, count in parse_topic_counts(params[WAIT_FOR_TOPICS]).items():
            name = self.resolve_topic_name(topic)
            needs[name] = max(needs.get(name, 0), count)
        self._thread = threading.Thread(
            target=self._work, args=({t: n for t, n in needs.items() if n > 0},
                                     float(params["wait_timeout"])),
            name="source", daemon=True)
        self._thread.start()

    def _work(self, needs: dict[str, int], timeout: float) -> None:
        try:
            if needs and not self._wait_for(needs, timeout):
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

    def _missing(self, needs: Mapping[str, int]) -> dict[str, tuple[int, int]]:
        """Topics with fewer subscribers than needed: ``{topic: (have, need)}``."""
        have = {t: self.count_subscribers(t) for t in needs}
        return {t: (have[t], n) for t, n in needs.items() if have[t] < n}

    def _wait_for(self, needs: Mapping[str, int], timeout: float) -> bool:
        """Wait until every topic has its subscribers, or ``timeout`` s; False when the
        node was stopped meanwhile."""
        start = last_report = time.monotonic()
        while missing := self._missing(needs):
            now = time.monotonic()
            if now - start >= timeout:
                self.get_logger().warning(
                    f"starting after {timeout:g} s (wait_timeout) without all subscribers: "
                    + _describe(missing) + "; frames published before they come are lost "
                    "to them")
                return True
            if now - last_report >= WAIT_REPORT_S:
                self.get_logger().info("waiting for subscribers: " + _describe(missing))
                last_report = now
            if self.done.wait(0.05):
                return False
        self.get_logger().info(f"every subscriber is there after {time.monotonic() - start:.1f}"
                               f" s: {', '.join(f'{t} {n}' for t, n in needs.items())}")
        # Discovery is two-way: the subscribers' nodes may match their publishers a moment
        # after this node saw them, and samples sent before that are lost to them.
        return not self.done.wait(DISCOVERY_SETTLE_S)

    def produce(self) -> None:
        """Read from the source and publish until it ends or ``done`` is set."""
        raise NotImplementedError

    def release(self) -> None:
        """Close the source."""

    def close(self) -> None:
        """Stop the source thread, then release the source."""
        self.done.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        self.release()


def _describe(missing: Mapping[str, tuple[int, int]]) -> str:
    return ", ".join(f"{t} {have} of {need}" for t, (have, need) in missing.items())
