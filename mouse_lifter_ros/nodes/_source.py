"""The thread of a source node (a capture, a replay) and how it starts and stops."""

from __future__ import annotations

import threading

from rclpy.node import Node
from rclpy.publisher import Publisher

from mouse_lifter_ros.core.errors import MouseLifterError

#: Seconds a source waits after its subscribers appeared, for them to match it in turn.
DISCOVERY_SETTLE_S = 0.3


class SourceNode(Node):
    """A node whose source (a capture, a replay) runs in a thread of its own.

    Subclasses implement :meth:`produce` (read and publish until the source ends or
    ``done`` is set) and :meth:`release`. The thread first waits for
    ``wait_for_subscribers`` subscribers on ``publisher``; a core error ends it with one
    log line and exit code 1; either way ``done`` is set, which ends :func:`run`.
    """

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.done = threading.Event()
        self.exit_code = 0
        self._thread: threading.Thread | None = None

    def start_source(self, publisher: Publisher, wait_for_subscribers: int) -> None:
        """Start the source thread."""
        self._thread = threading.Thread(
            target=self._work, args=(publisher, wait_for_subscribers), name="source",
            daemon=True)
        self._thread.start()

    def _work(self, publisher: Publisher, wait_for_subscribers: int) -> None:
        try:
            if wait_for_subscribers > 0:
                while publisher.get_subscription_count() < wait_for_subscribers:
                    if self.done.wait(0.05):
                        return
                # Discovery is two-way: the subscriber may match us a moment after we
                # matched it, and best-effort samples sent before that are lost.
                if self.done.wait(DISCOVERY_SETTLE_S):
                    return
            self.produce()
        except MouseLifterError as exc:
            self.get_logger().error(str(exc))
            self.exit_code = 1
        finally:
            self.done.set()

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
