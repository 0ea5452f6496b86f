"""The node graph, described once in ``config/graph.yaml``.

``launch/*.launch.py`` (through :mod:`mouse_lifter_ros.launch_support`) and the graph
runner used by the tests and ``make demo`` (:mod:`mouse_lifter_ros.runner`) both turn
a :class:`GraphSpec` into processes, so that what the tests start is what
``ros2 launch`` starts: the same executables, node names, parameter files, overrides
and remappings.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mouse_lifter_ros.core.errors import ParameterError

PACKAGE = "mouse_lifter_ros"
_TYPES: dict[str, type] = {"str": str, "int": int, "float": float, "bool": bool}


@dataclass(frozen=True)
class NodeSpec:
    """One node: its name, executable, topic remappings (relative names), the nodes
    whose output it needs (``needs``: a graph that leaves one of them out leaves this
    node out too), the topics it subscribes to and publishes for other nodes
    (``subscribes``, ``publishes``: names in the graph, after remapping), whether it is a
    graph's ``source`` of frames, whether the source waits for it to be ready before the
    first frame (``waited_for``), and the topics
    on which it publishes one message per source frame, stamped with the frame's stamp
    (``per_frame``: ``(topic, type)``, e.g. ``("keypoints",
    "mouse_lifter_ros/msg/Keypoints2D")``; the source's flow control counts on them)."""

    name: str
    executable: str
    remappings: tuple[tuple[str, str], ...] = ()
    package: str = PACKAGE
    needs: tuple[str, ...] = ()
    subscribes: tuple[str, ...] = ()
    publishes: tuple[str, ...] = ()
    source: bool = False
    waited_for: bool = True
    per_frame: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class LaunchArgument:
    """A launch argument of a graph.

    Either it overrides ``parameter`` of the nodes in ``node`` (one or more, e.g. the
    arena file of the depth and lifter nodes; an empty value keeps the value from the
    parameter file), or it is a boolean ``switch`` that starts or leaves out the named
    nodes.
    """

    name: str
    description: str
    default: str = ""
    type: str = "str"
    node: tuple[str, ...] = ()
    parameter: str | None = None
    switch: tuple[str, ...] = ()


@dataclass(frozen=True)
class NodeLaunch:
    """A node to start, with the parameter overrides that launch arguments gave it."""

    node: NodeSpec
    overrides: dict[str, Any]


@dataclass(frozen=True)
class GraphSpec:
    """A named graph: its nodes and launch arguments."""

    name: str
    description: str
    nodes: tuple[NodeSpec, ...]
    arguments: tuple[LaunchArgument, ...]

    def resolve(self, values: Mapping[str, str]) -> list[NodeLaunch]:
        """Apply launch argument values (strings, as on a command line) to the graph.

        A switch set to false leaves its nodes out, and with them every node that
        ``needs`` one of them (:meth:`left_out` says which and why).

        Raises
        ------
        ParameterError
            For unknown arguments or values that do not parse as the argument's type,
            listing every problem.
        """
        return self._plan(values)[0]

    def left_out(self, values: Mapping[str, str]) -> dict[str, str]:
        """Nodes left out only because a node they need is not started, with the reason
        (e.g. ``{"behavior": "needs lifter, which lift:=false leaves out"}``).

        Raises
        ------
        ParameterError
            As :meth:`resolve`.
        """
        return self._plan(values)[1]

    def _plan(self, values: Mapping[str, str]) -> tuple[list[NodeLaunch], dict[str, str]]:
        known = {a.name: a for a in self.arguments}
        problems = [
            f"  {k}: unknown launch argument of graph '{self.name}' "
            f"(known: {', '.join(sorted(known)) or 'none'})"
            for k in values
            if k not in known
        ]
        overrides: dict[str, dict[str, Any]] = {n.name: {} for n in self.nodes}
        left_out: dict[str, str] = {}  # node -> the switch that left it out
        for arg in self.arguments:
            text = values.get(arg.name, arg.default)
            if text == "" and not arg.switch:
                continue
            try:
                value = parse_value(text, arg.type)
            except ValueError as exc:
                problems.append(f"  {arg.name} = {text!r}: {exc}")
                continue
            if arg.switch:
                if not value:
                    left_out.update(dict.fromkeys(arg.switch, f"{arg.name}:=false"))
            elif arg.parameter is not None:
                for node in arg.node:
                    if node in overrides:
                        overrides[node][arg.parameter] = value
        if problems:
            raise ParameterError(f"graph '{self.name}': invalid launch arguments:\n"
                                 + "\n".join(problems))
        needing: dict[str, str] = {}
        changed = True
        while changed:  # until no started node needs one that is left out
            changed = False
            for n in self.nodes:
                missing = [m for m in n.needs if m in left_out or m in needing]
                if n.name in left_out or n.name in needing or not missing:
                    continue
                why = [f"{m}, which {left_out[m]} leaves out" if m in left_out
                       else f"{m}, which is left out" for m in missing]
                needing[n.name] = "needs " + "; and ".join(why)
                changed = True
        started = [n for n in self.nodes if n.name not in left_out and n.name not in needing]
        publishers = publisher_counts(started)
        wait = " ".join(n.name for n in started if n.waited_for and not n.source)
        flow = format_flow_topics([t for n in started for t in n.per_frame])
        for n in started:
            expect = {t: publishers[t] for t in n.subscribes if t in publishers}
            if expect:
                overrides[n.name].setdefault(EXPECT_PUBLISHERS, format_topic_counts(expect))
            if n.source:
                overrides[n.name].setdefault(WAIT_FOR_NODES, wait)
                overrides[n.name].setdefault(FLOW_TOPICS, flow)
        return [NodeLaunch(n, overrides[n.name]) for n in started], needing


#: The parameters that :meth:`GraphSpec.resolve` fills in: every node's publishers to
#: match before it is ready, and the source's nodes to wait for and outputs to count.
EXPECT_PUBLISHERS = "expect_publishers"
WAIT_FOR_NODES = "wait_for_nodes"
FLOW_TOPICS = "flow_topics"


def format_flow_topics(topics: Sequence[tuple[str, str]]) -> str:
    """``[("keypoints", "pkg/msg/T")]`` -> ``"keypoints:pkg/msg/T"`` (see
    :func:`parse_flow_topics`)."""
    return " ".join(f"{topic}:{msgtype}" for topic, msgtype in topics)


def parse_flow_topics(text: str) -> list[tuple[str, str]]:
    """``"keypoints:pkg/msg/T depth/camera_info:sensor_msgs/msg/CameraInfo"`` -> the
    ``(topic, type)`` pairs; ``""`` -> ``[]``.

    Raises
    ------
    ValueError
        Naming every item that is not ``topic:package/msg/Type``.
    """
    pairs: list[tuple[str, str]] = []
    bad: list[str] = []
    for item in text.split():
        topic, sep, msgtype = item.partition(":")
        if not sep or not _TOPIC.fullmatch(topic) or not _MSGTYPE.fullmatch(msgtype):
            bad.append(repr(item))
        else:
            pairs.append((topic, msgtype))
    if bad:
        raise ValueError(f"{', '.join(bad)}: each item must be topic:package/msg/Type")
    return pairs


def publisher_counts(nodes: Sequence[NodeSpec]) -> dict[str, int]:
    """How many of ``nodes`` publish each topic (graph names), in first-seen order."""
    counts: dict[str, int] = {}
    for node in nodes:
        for topic in node.publishes:
            counts[topic] = counts.get(topic, 0) + 1
    return counts


def format_topic_counts(counts: Mapping[str, int]) -> str:
    """``{"keypoints": 3, "pose": 4}`` -> ``"keypoints:3 pose:4"`` (see
    :func:`parse_topic_counts`)."""
    return " ".join(f"{topic}:{count}" for topic, count in counts.items())


def parse_topic_counts(text: str) -> dict[str, int]:
    """``"keypoints:3 pose:4"`` -> ``{"keypoints": 3, "pose": 4}``; ``""`` -> ``{}``.

    Raises
    ------
    ValueError
        Naming every item that is not ``topic:count`` with a topic name and a count >= 1.
    """
    counts: dict[str, int] = {}
    bad: list[str] = []
    for item in text.split():
        topic, sep, count = item.rpartition(":")
        if not sep or not _TOPIC.fullmatch(topic) or not count.isdigit() or int(count) < 1:
            bad.append(repr(item))
        else:
            counts[topic] = int(count)
    if bad:
        raise ValueError(f"{', '.join(bad)}: each item must be topic:count, a ROS topic name "
                         "and a whole number >= 1")
    return counts


_TOPIC = re.compile(r"~?/?[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*")
_MSGTYPE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*/msg/[A-Za-z][A-Za-z0-9]*")


def parse_value(text: str, type_name: str) -> Any:
    """Parse a command-line string as ``type_name`` (str, int, float or bool)."""
    if type_name == "str":
        return text
    value = yaml.safe_load(text) if text else None
    want = _TYPES[type_name]
    if want is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, want) or (want is int and isinstance(value, bool)):
        raise ValueError(f"must be a {type_name}")
    return value


def load_graphs(path: str | os.PathLike[str]) -> dict[str, GraphSpec]:
    """Read every graph of a ``graph.yaml``, checking that all names it uses exist."""
    path = Path(path)
    raw = _read(path)
    problems: list[str] = []
    nodes = _nodes(raw)
    graphs: dict[str, GraphSpec] = {}
    for gname, g in (raw.get("graphs") or {}).items():
        members = [str(n) for n in g.get("nodes", [])]
        problems += [f"  graph {gname}: unknown node {n!r}" for n in members if n not in nodes]
        problems += [f"  graph {gname}: node {n!r} needs {m!r}, not in the graph"
                     for n in members if n in nodes for m in nodes[n].needs if m not in members]
        args = []
        for aname, a in (g.get("arguments") or {}).items():
            arg = LaunchArgument(
                name=aname,
                description=str(a.get("description", "")),
                default=_as_text(a.get("default", "")),
                type=str(a.get("type", "bool" if "switch" in a else "str")),
                node=_names(a.get("node")),
                parameter=a.get("parameter"),
                switch=tuple(a.get("switch") or ()),
            )
            if arg.type not in _TYPES:
                problems.append(f"  graph {gname}: argument {aname}: unknown type {arg.type!r}")
            targets = list(arg.switch) + list(arg.node)
            if (not targets or bool(arg.node) == bool(arg.switch)
                    or (arg.node and not arg.parameter)):
                problems.append(
                    f"  graph {gname}: argument {aname} needs either node+parameter or switch"
                )
            problems += [
                f"  graph {gname}: argument {aname} names node {t!r}, not in the graph"
                for t in targets
                if t not in members
            ]
            args.append(arg)
        graphs[gname] = GraphSpec(
            name=gname,
            description=str(g.get("description", "")),
            nodes=tuple(nodes[n] for n in members if n in nodes),
            arguments=tuple(args),
        )
    if problems:
        raise ParameterError(f"{path}: invalid graph description:\n" + "\n".join(problems))
    return graphs


def load_nodes(path: str | os.PathLike[str]) -> dict[str, NodeSpec]:
    """Every node of a ``graph.yaml``'s ``nodes:``, in a graph or not (yet), by name."""
    return _nodes(_read(Path(path)))


def _read(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as f:
        raw: dict[str, Any] = yaml.safe_load(f) or {}
    return raw


def _nodes(raw: dict[str, Any]) -> dict[str, NodeSpec]:
    return {
        name: NodeSpec(
            name=name,
            executable=str(spec["executable"]),
            remappings=tuple((str(k), str(v)) for k, v in (spec.get("remappings") or {}).items()),
            needs=_names(spec.get("needs")),
            subscribes=_names(spec.get("subscribes")),
            publishes=_names(spec.get("publishes")),
            source=bool(spec.get("source", False)),
            waited_for=bool(spec.get("waited_for", True)),
            per_frame=tuple((str(k), str(v))
                            for k, v in (spec.get("per_frame") or {}).items()),
        )
        for name, spec in (raw.get("nodes") or {}).items()
    }


def _names(value: Any) -> tuple[str, ...]:
    """A node name or a list of them, as a tuple."""
    if value is None:
        return ()
    return (str(value),) if isinstance(value, str) else tuple(str(v) for v in value)


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def overrides_yaml(launch: NodeLaunch) -> str:
    """A ROS parameter file holding a node's launch-argument overrides.

    This is what ``launch_ros`` writes for a ``Node(parameters=[{...}])`` dictionary:
    the graph runner passes it as a second ``--params-file`` after the config file.
    """
    doc = {f"/**/{launch.node.name}": {"ros__parameters": launch.overrides}}
    return yaml.safe_dump(doc, default_flow_style=False)


def ros_arguments(
    launch: NodeLaunch, *, namespace: str, params_files: list[str]
) -> list[str]:
    """The ``--ros-args`` a ``launch_ros`` ``Node`` action passes for this node."""
    args = ["--ros-args", "-r", f"__node:={launch.node.name}"]
    if namespace:
        args += ["-r", f"__ns:={'/' + namespace.strip('/')}"]
    for params in params_files:
        args += ["--params-file", params]
    for src, dst in launch.node.remappings:
        args += ["-r", f"{src}:={dst}"]
    return args
