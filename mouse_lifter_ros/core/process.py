"""What a process may set about itself: its threads' CPU scheduling priority."""

from __future__ import annotations

import os


def lower_priority(niceness: int) -> str | None:
    """Lower the CPU scheduling priority of every thread of this process by ``niceness``
    (nice values, capped at 19; threads started later, such as ONNX Runtime's, inherit
    it from the thread that starts them). Lowering needs no privilege.

    Returns None, or why it could not be done (no ``/proc``: not Linux; not permitted).
    """
    if niceness <= 0:
        return None
    try:
        for tid in (int(t) for t in os.listdir("/proc/self/task")):
            now = os.getpriority(os.PRIO_PROCESS, tid)
            os.setpriority(os.PRIO_PROCESS, tid, min(19, now + niceness))
    except (OSError, AttributeError) as exc:
        return f"niceness {niceness} not applied: {exc}"
    return None
