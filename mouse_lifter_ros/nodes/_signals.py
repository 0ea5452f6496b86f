"""How a node process takes SIGINT and SIGTERM: as a request to stop, from its first line.

The node executables install :data:`STOP` before they import anything heavy (rclpy, the
models' runtimes take seconds to import on a loaded machine), so that Ctrl-C or a launch
shutdown arriving while a node is still starting ends it cleanly with exit 0 instead of
a ``KeyboardInterrupt`` traceback or death by signal. This module imports nothing heavy.
"""

from __future__ import annotations

import ctypes
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
        then ended the node), exit with ``code`` anyway; stuck in C code that holds the
        interpreter, print every thread's stack, then exit with ``code`` (with 1 where the
        C library has no POSIX timers)."""
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
        # (rclpy's node destructor in Fast DDS, seen in CI under Jazzy and Kilted) holds
        # the timer too. Two C-level watchdogs then take over: faulthandler's prints
        # where every thread is stuck, and half a second later a POSIX timer exits with
        # ``code`` (the node's work is closed and flushed by then); where no such timer
        # can be made, faulthandler itself exits with 1.
        exits = exit_timer(code, grace_s + 1.0)
        faulthandler.dump_traceback_later(grace_s + 0.5, exit=not exits)


class _SigEvent(ctypes.Structure):
    """glibc's ``struct sigevent`` (64 bytes) with the ``SIGEV_THREAD`` members."""

    _fields_ = [("sigev_value", ctypes.c_void_p), ("sigev_signo", ctypes.c_int),
                ("sigev_notify", ctypes.c_int), ("function", ctypes.c_void_p),
                ("attribute", ctypes.c_void_p), ("_pad", ctypes.c_int * 8)]


class _TimeSpec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _ITimerSpec(ctypes.Structure):
    _fields_ = [("it_interval", _TimeSpec), ("it_value", _TimeSpec)]


_SIGEV_THREAD = 2
_CLOCK_MONOTONIC = 1


def exit_timer(code: int, delay_s: float) -> bool:
    """Make the process exit with ``code`` after ``delay_s`` seconds without needing the
    interpreter: a POSIX timer whose notification thread (made by the C library) calls
    ``_exit(code)``. Return whether it is armed: only on glibc Linux, else False.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        create, settime, exit_fn = libc.timer_create, libc.timer_settime, libc._exit
    except (OSError, AttributeError):
        return False
    # _exit(int) takes the notification's ``union sigval`` argument: both are passed
    # in the first integer register (x86-64 and AArch64 calling conventions).
    event = _SigEvent(sigev_value=code, sigev_notify=_SIGEV_THREAD,
                      function=ctypes.cast(exit_fn, ctypes.c_void_p).value)
    timer_id = ctypes.c_void_p()
    if create(_CLOCK_MONOTONIC, ctypes.byref(event), ctypes.byref(timer_id)) != 0:
        return False
    whole = int(delay_s)
    spec = _ITimerSpec(it_value=_TimeSpec(whole, int((delay_s - whole) * 1e9)))
    return bool(settime(timer_id, 0, ctypes.byref(spec), None) == 0)


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
