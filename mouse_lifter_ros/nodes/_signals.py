"""How a node process takes SIGINT and SIGTERM: as a request to stop, from its first line.

The node executables install :data:`STOP` before they import anything heavy (rclpy, the
models' runtimes take seconds to import on a loaded machine), so that Ctrl-C or a launch
shutdown arriving while a node is still starting ends it cleanly with exit 0 instead of
a ``KeyboardInterrupt`` traceback or death by signal. This module imports nothing heavy.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

#: Seconds a stopped node's teardown (ROS, DDS, the interpreter) may take.
EXIT_GRACE_S = 3.0


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
    def finish(code: int, grace_s: float = EXIT_GRACE_S) -> None:
        """The node has stopped and closed what it holds; what is left is tearing down
        ROS and the interpreter. Ignore SIGINT and SIGTERM from now on (at exit Python
        puts its handlers back to the default, and a late signal of a burst would turn
        exit 0 into death by signal), and should the teardown still run after
        ``grace_s`` seconds (DDS participants have been seen to hang there, only SIGKILL
        then ended the node), exit with ``code`` anyway; stuck where even that cannot
        run, exit with 1 after printing the stack."""
        # A signal of the burst that the C handler took just before the switch reaches
        # Python's check after it, finds SIG_IGN, and CPython reports it as an
        # unraisable "Signal N ignored due to race condition": ignoring it is what we ask.
        sys.unraisablehook = late_signal_hook(sys.unraisablehook)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)

        def exit_now() -> None:
            for stream in (sys.stdout, sys.stderr):
                stream.flush()
            os._exit(code)

        timer = threading.Timer(grace_s, exit_now)
        timer.daemon = True
        timer.start()
        # That timer needs the interpreter; a teardown stuck in C++ while holding it
        # (a DDS participant's destructor) would hold the timer too. faulthandler's
        # watchdog is a C thread: 2 s later it prints where every thread is stuck and
        # exits with 1, before a launch or the graph runner would have to SIGKILL.
        faulthandler.dump_traceback_later(grace_s + 2.0, exit=True)


def late_signal_hook(previous: Callable[[Any], object]) -> Callable[[Any], object]:
    """An ``sys.unraisablehook`` that drops CPython's report of a signal that arrived while
    its handler was being set to SIG_IGN (an ``OSError`` "Signal N ignored due to race
    condition") and passes everything else to ``previous``."""

    def hook(unraisable: Any) -> None:
        exc = unraisable.exc_value
        if isinstance(exc, OSError) and "ignored due to race condition" in str(exc):
            return
        previous(unraisable)

    return hook


#: The stop request of this process (one per process: signal handlers are).
STOP = StopRequest()
