"""How a node process takes SIGINT and SIGTERM: as a request to stop, from its first line.

The node executables install :data:`STOP` before they import anything heavy (rclpy, the
models' runtimes take seconds to import on a loaded machine), so that Ctrl-C or a launch
shutdown arriving while a node is still starting ends it cleanly with exit 0 instead of
a ``KeyboardInterrupt`` traceback or death by signal. This module imports nothing else.
"""

from __future__ import annotations

import signal


class StopRequest:
    """What SIGINT and SIGTERM ask for: the node to stop.

    The handler only sets a flag. Python runs a handler between two bytecodes of the main
    thread, possibly inside an earlier handler or inside code holding a lock; a handler
    that takes a lock (``threading.Event.set`` does) can then wait forever on itself, and
    only SIGKILL would end the node. Reading and writing an attribute takes no lock.
    """

    def __init__(self) -> None:
        self.requested = False
        self.signals = 0

    def handler(self, _signum: int, _frame: object) -> None:
        """The signal handler: record the request, nothing else."""
        self.requested = True
        self.signals += 1

    def install(self) -> None:
        """Make SIGINT and SIGTERM call :meth:`handler` (again: no harm)."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self.handler)

    @staticmethod
    def ignore_from_now() -> None:
        """Ignore SIGINT and SIGTERM: for a process that has stopped and only exits.
        (At exit Python puts its own handlers back to the default, which would let a
        late signal of a burst kill the process and turn exit 0 into -2.)"""
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)


#: The stop request of this process (one per process: signal handlers are).
STOP = StopRequest()
