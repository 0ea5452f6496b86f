"""Start a graph of ``config/graph.yaml`` as separate node processes, without ``launch``.

This is what ``ros2 launch mouse_lifter_ros <graph>.launch.py`` starts, for machines
that have rclpy but no ``launch`` (CI, a developer's venv): the tests and ``make demo``
use it. Each node runs the installed executable with the same ``--ros-args`` that
``launch_ros`` gives it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import IO

from mouse_lifter_ros.core.graph import (
    PACKAGE,
    NodeLaunch,
    load_graphs,
    load_nodes,
    overrides_yaml,
    ros_arguments,
)


def package_prefix() -> Path:
    """The install prefix of this package (``install/mouse_lifter_ros`` after colcon)."""
    from ament_index_python.packages import get_package_prefix

    return Path(get_package_prefix(PACKAGE))


def package_share() -> Path:
    """The package's share folder, holding ``config/`` and ``launch/``."""
    return package_prefix() / "share" / PACKAGE


class GraphRun:
    """A running graph: one process per node, output captured per node.

    Parameters
    ----------
    graph:
        Graph name in ``config/graph.yaml`` (``live``, ``replay``, ``closed_loop``).
    arguments:
        Launch arguments, as strings (``{"bag": "/data/run1", "rate": "2"}``).
    namespace:
        ROS namespace for every node.
    params_file:
        Parameter file; default: the installed ``config/params.yaml``.
    env:
        Environment of the processes; default: this process's.
    nodes:
        Instead of the graph's nodes, start these nodes of ``config/graph.yaml``'s
        ``nodes:`` (``graph`` is then only the name of the run).
    """

    def __init__(
        self,
        graph: str,
        *,
        arguments: Mapping[str, str] | None = None,
        namespace: str = "",
        params_file: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        nodes: Sequence[str] = (),
    ) -> None:
        share = package_share()
        if nodes:
            # Nodes of graph.yaml's `nodes:` on their own (not in a graph yet), as
            # `ros2 run` with the same name, parameter file and remappings would start them.
            known = load_nodes(share / "config" / "graph.yaml")
            self.launches = [NodeLaunch(known[n], {}) for n in nodes]
            #: Nodes left out because a node they need is not started, and why.
            self.left_out: dict[str, str] = {}
        else:
            spec = load_graphs(share / "config" / "graph.yaml")[graph]
            self.launches = spec.resolve(arguments or {})
            self.left_out = spec.left_out(arguments or {})
        self.params_file = str(params_file or share / "config" / "params.yaml")
        self.namespace, self.env = namespace, dict(env if env is not None else os.environ)
        self._tmp = tempfile.TemporaryDirectory(prefix=f"mouse_lifter_{graph}_")
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: dict[str, IO[bytes]] = {}
        self._read: dict[str, int] = {}

    def command(self, name: str) -> list[str]:
        """The command line of node ``name``."""
        launch = next(n for n in self.launches if n.node.name == name)
        files = [self.params_file]
        if launch.overrides:
            path = Path(self._tmp.name) / f"{name}_overrides.yaml"
            path.write_text(overrides_yaml(launch), encoding="utf-8")
            files.append(str(path))
        exe = package_prefix() / "lib" / launch.node.package / launch.node.executable
        return [sys.executable, str(exe),
                *ros_arguments(launch, namespace=self.namespace, params_files=files)]

    @property
    def sources(self) -> list[str]:
        """The nodes that are the graph's source of frames (``source: true``)."""
        return [n.node.name for n in self.launches if n.node.source]

    def start(self) -> GraphRun:
        """Start every node. Each gets SIGTERM should this process die without stopping
        them (even by SIGKILL), so that no node is left running on its own."""
        for launch in self.launches:
            name = launch.node.name
            log = open(Path(self._tmp.name) / f"{name}.log", "w+b")  # noqa: SIM115
            self._logs[name] = log
            self.processes[name] = subprocess.Popen(
                self.command(name), stdout=log, stderr=subprocess.STDOUT, env=self.env,
                preexec_fn=_terminate_with_parent)
        return self

    def output(self, name: str) -> str:
        """Everything node ``name`` printed so far."""
        log = self._logs[name]
        log.flush()
        return Path(log.name).read_text(encoding="utf-8", errors="replace")

    def new_output(self, name: str) -> str:
        """What node ``name`` printed since the last call (reads only the new bytes)."""
        log = self._logs[name]
        log.flush()
        with open(log.name, "rb") as f:
            f.seek(self._read.get(name, 0))
            data = f.read()
        self._read[name] = self._read.get(name, 0) + len(data)
        return data.decode("utf-8", errors="replace")

    def wait_any(self, timeout: float | None = None, *,
                 ignore: Collection[str] = ()) -> str | None:
        """Wait until a node not in ``ignore`` exits; return its name (None on timeout)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while deadline is None or time.monotonic() < deadline:
            for name, proc in self.processes.items():
                if name not in ignore and proc.poll() is not None:
                    return name
            time.sleep(0.05)
        return None

    def stop(self, timeout: float = 5.0) -> dict[str, int]:
        """Stop every node (SIGINT, then SIGTERM, then SIGKILL); return exit codes."""
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
            alive = [p for p in self.processes.values() if p.poll() is None]
            for proc in alive:
                proc.send_signal(sig)
            deadline = time.monotonic() + timeout
            for proc in alive:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(max(0.0, deadline - time.monotonic()))
        return {name: int(proc.returncode) for name, proc in self.processes.items()}

    def close(self) -> None:
        """Stop the nodes and remove their logs."""
        self.stop()
        for log in self._logs.values():
            log.close()
        self._tmp.cleanup()

    def __enter__(self) -> GraphRun:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


#: prctl(2) option: the signal a process gets when its parent thread dies.
_PR_SET_PDEATHSIG = 1


def _terminate_with_parent() -> None:
    """In a node process before it runs: SIGTERM when the runner dies (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
