"""``mouse-lifter run``: start a graph of config/graph.yaml as node processes."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Final

from mouse_lifter_ros.cli.arguments import Subparsers
from mouse_lifter_ros.core.errors import MouseLifterError

if TYPE_CHECKING:
    from mouse_lifter_ros.runner import GraphRun

#: Seconds a graph with a recorder runs on after its source ended. Under start-up load Fast
#: DDS can match a reader up to one participant announcement period (3 s) late; the
#: recorder's transient-local subscriptions then still receive every frame, but only
#: while the publishing nodes are alive.
RECORDER_DRAIN_S: Final = 3.5


def register(sub: Subparsers) -> None:
    p = sub.add_parser("run", help="start a graph of config/graph.yaml as node processes "
                       "(what `ros2 launch` starts); stops when a node exits or on Ctrl-C")
    p.add_argument("graph", help="live, replay or closed_loop")
    p.add_argument("arguments", nargs="*", help="launch arguments, name:=value")
    p.add_argument("--namespace", default="")
    p.add_argument("--config", default=None, help="parameter file (default: the installed one)")
    p.set_defaults(func=run)


def run(ns: argparse.Namespace) -> int:
    return run_graph(ns.graph, parse_assignments(ns.arguments), namespace=ns.namespace,
                     config=ns.config)


def parse_assignments(items: Sequence[str]) -> dict[str, str]:
    """Launch arguments ``name:=value`` -> {name: value}."""
    out = {}
    for item in items:
        name, sep, value = item.partition(":=")
        if not sep:
            raise MouseLifterError(f"launch argument {item!r} must be written name:=value")
        out[name] = value
    return out


def run_graph(graph: str, arguments: dict[str, str], *, namespace: str,
              config: str | None) -> int:
    """Run a graph, echoing each node's output, until its source ends, every node has
    exited, or Ctrl-C / SIGTERM; then stop every node. Another node that exits (a
    recorder refusing to overwrite) is reported and the rest of the graph runs on, as
    under ``ros2 launch``. The exit code is the worst of the nodes'."""
    from mouse_lifter_ros.runner import GraphRun

    with GraphRun(graph, arguments=arguments, namespace=namespace,
                  params_file=config) as graph_run, _sigterm_as_interrupt():
        for name, why in graph_run.left_out.items():
            print(f"[run] {name} left out: it {why}")
        try:
            _wait_for_source(graph_run)
        except KeyboardInterrupt:
            print("[run] interrupted: stopping the graph")
        with _signals_ignored():  # a second Ctrl-C must not cut the nodes' clean stop short
            codes = graph_run.stop()
            _echo(graph_run)
    return max((abs(c) for c in codes.values() if c not in (0, -2)), default=0)


def _wait_for_source(graph_run: GraphRun) -> None:
    """Echo until a source ends (then let the recorder drain) or every node has exited."""
    exited: list[str] = []
    while len(exited) < len(graph_run.processes):
        ended = graph_run.wait_any(timeout=0.2, ignore=exited)
        _echo(graph_run)
        if ended is None:
            continue
        exited.append(ended)
        code = graph_run.processes[ended].returncode
        if ended not in graph_run.sources and len(exited) < len(graph_run.processes):
            print(f"[run] {ended} exited with {code}; the rest of the graph runs on")
            continue
        recorder = graph_run.processes.get("recorder")
        drain = (RECORDER_DRAIN_S if code == 0 and recorder is not None
                 and recorder.poll() is None else 0.0)
        print(f"[run] {ended} exited with {code}; "
              + (f"the recorder gets {drain:g} s to receive the rest, then " if drain
                 else "") + "stopping the graph")
        deadline = time.monotonic() + drain
        while time.monotonic() < deadline:
            time.sleep(0.2)
            _echo(graph_run)
        return


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (a service manager, ``kill``) stops the graph as Ctrl-C does."""
    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _signals_ignored() -> Iterator[None]:
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _echo(graph_run: GraphRun) -> None:
    for name in graph_run.processes:
        for line in graph_run.new_output(name).splitlines():
            print(f"[{name}] {line}")
    sys.stdout.flush()
