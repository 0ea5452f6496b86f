"""core.process: a process lowers the CPU priority of all its threads, later ones too."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not Path("/proc/self/task").is_dir(),
                                reason="needs Linux /proc")

SCRIPT = """
import json, os, threading
from mouse_lifter_ros.core.process import lower_priority
stop = threading.Event()
before = threading.Thread(target=stop.wait); before.start()
why = lower_priority(3)
after = threading.Thread(target=stop.wait); after.start()
nice = {t: os.getpriority(os.PRIO_PROCESS, int(t)) for t in os.listdir("/proc/self/task")}
stop.set()
print(json.dumps({"why": why, "nice": nice, "zero": lower_priority(0)}))
"""


def test_every_thread_runs_lower_and_new_threads_inherit_it() -> None:
    base = subprocess.run([sys.executable, "-c", "import os; print(os.getpriority("
                           "os.PRIO_PROCESS, 0))"], capture_output=True, text=True, check=True)
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                         check=True)
    got = json.loads(out.stdout)
    assert got["why"] is None and got["zero"] is None, got
    # the main thread, a thread started before and one started after: all 3 steps lower
    assert len(got["nice"]) >= 3
    assert set(got["nice"].values()) == {min(19, int(base.stdout) + 3)}, got
