"""Tests of mouse_lifter_ros.core.graph on the real config/graph.yaml and broken copies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mouse_lifter_ros.core.errors import ParameterError
from mouse_lifter_ros.core.graph import (
    EXPECT_PUBLISHERS,
    FLOW_TOPICS,
    WAIT_FOR_NODES,
    GraphSpec,
    NodeLaunch,
    format_flow_topics,
    format_topic_counts,
    load_graphs,
    overrides_yaml,
    parse_flow_topics,
    parse_topic_counts,
    parse_value,
    ros_arguments,
)
from mouse_lifter_ros.core.node_params import NODE_PARAMS
from mouse_lifter_ros.core.params import validate

ROOT = Path(__file__).resolve().parents[2]
GRAPH_YAML = ROOT / "config" / "graph.yaml"


@pytest.fixture(scope="module")
def graphs() -> dict[str, GraphSpec]:
    return load_graphs(GRAPH_YAML)


def by_name(launches: list[NodeLaunch]) -> dict[str, NodeLaunch]:
    return {launch.node.name: launch for launch in launches}


def from_arguments(launch: NodeLaunch) -> dict[str, Any]:
    """A node's overrides less the start-up handshake and flow control, which the graph
    itself fills in."""
    return {k: v for k, v in launch.overrides.items()
            if k not in (EXPECT_PUBLISHERS, WAIT_FOR_NODES, FLOW_TOPICS)}


def test_live_replay_and_closed_loop_graphs(graphs: dict[str, GraphSpec]) -> None:
    assert {"live", "replay", "closed_loop"} <= set(graphs)
    assert "camera" in {n.name for n in graphs["live"].nodes}
    assert "bag_source" in {n.name for n in graphs["replay"].nodes}
    assert "camera" in {n.name for n in graphs["closed_loop"].nodes}
    for name in ("live", "replay", "closed_loop"):
        assert {"behavior", "stimulus", "recorder", "lifter"} <= {
            n.name for n in graphs[name].nodes}, name
    for graph in graphs.values():
        assert graph.description
        assert graph.nodes
        for node in graph.nodes:
            assert node.executable, node.name
            assert node.executable in NODE_PARAMS, node.executable


def test_keypoint_node_reads_the_source_images(graphs: dict[str, GraphSpec]) -> None:
    """live and replay: the source's image topic feeds the keypoint node and the monitor."""
    for name, source in (("live", "camera"), ("replay", "bag_source"),
                         ("closed_loop", "camera")):
        nodes = {n.name: n for n in graphs[name].nodes}
        image = dict(nodes[source].remappings)["image_raw"]
        assert nodes["keypoint"].executable == "keypoint_node"
        assert dict(nodes["keypoint"].remappings) == {"image": image}
        assert dict(nodes["monitor"].remappings)["image"] == image


def test_arguments_match_node_parameters(graphs: dict[str, GraphSpec]) -> None:
    """Each argument sets a real parameter of its node, with the parameter's type."""
    for graph in graphs.values():
        exe = {n.name: n.executable for n in graph.nodes}
        for arg in graph.arguments:
            assert arg.description, arg.name
            if arg.switch:
                assert set(arg.switch) <= set(exe)
                continue
            assert arg.node and set(arg.node) <= set(exe) and arg.parameter
            for node in arg.node:
                node_specs = {s.name: s for s in NODE_PARAMS[exe[node]]}
                assert arg.parameter in node_specs, f"{graph.name}: {arg.name}"
                assert arg.type == node_specs[arg.parameter].type.__name__, arg.name


def _off_by_default(graph: GraphSpec) -> set[str]:
    return {n for a in graph.arguments if a.switch and a.default == "false" for n in a.switch}


def test_resolve_defaults(graphs: dict[str, GraphSpec]) -> None:
    for graph in graphs.values():
        launches = graph.resolve({})
        off = _off_by_default(graph)
        assert [launch.node for launch in launches] == [n for n in graph.nodes
                                                        if n.name not in off]
        # No overrides but the start-up handshake and flow control.
        assert all(from_arguments(launch) == {} for launch in launches), graph.name
        assert graph.left_out({}) == {}, graph.name


def test_every_node_learns_its_publishers_and_the_source_whom_to_wait_for(
        graphs: dict[str, GraphSpec]) -> None:
    replay = by_name(graphs["replay"].resolve({"record": "true"}))
    expect = {name: parse_topic_counts(launch.overrides.get(EXPECT_PUBLISHERS, ""))
              for name, launch in replay.items()}
    assert expect["keypoint"] == expect["depth"] == {"camera/image_raw": 1}
    assert expect["lifter"] == {"keypoints": 1, "depth/image": 1, "depth/camera_info": 1}
    assert expect["monitor"] == {"camera/image_raw": 1, "camera/camera_info": 1,
                                 "keypoints": 1, "pose": 1, "behavior": 1, "trigger": 1,
                                 "trigger_latency": 1}
    assert expect["recorder"] == {"keypoints": 1, "pose": 1, "behavior": 1}
    assert expect["bag_source"] == {}  # subscribes to nothing
    # Every started node but the source and the recorder (which reads the publishers'
    # history however late it joins) is waited for.
    assert replay["bag_source"].overrides[WAIT_FOR_NODES].split() == [
        "keypoint", "depth", "lifter", "behavior", "stimulus", "monitor"]
    assert not replay["recorder"].node.waited_for
    # Nodes left out are neither waited for nor expected to publish: 2D only, no monitor.
    live = by_name(graphs["live"].resolve({"lift": "false", "monitor": "false"}))
    assert live["camera"].overrides[WAIT_FOR_NODES] == "keypoint"
    assert live["camera"].node.source and not live["keypoint"].node.source
    assert WAIT_FOR_NODES not in live["keypoint"].overrides
    no_stimulus = by_name(graphs["replay"].resolve({"stimulus": "false"}))
    assert "trigger" not in parse_topic_counts(
        no_stimulus["monitor"].overrides[EXPECT_PUBLISHERS])


def test_topic_counts_round_trip_and_errors() -> None:
    counts = {"camera/image_raw": 3, "/abs/pose": 1, "~/private": 2}
    assert parse_topic_counts(format_topic_counts(counts)) == counts
    assert parse_topic_counts("") == {}
    with pytest.raises(ValueError) as exc:
        parse_topic_counts("pose:0 keypoints 9bad:1 ok:2")
    assert "'pose:0'" in str(exc.value) and "'keypoints'" in str(exc.value)
    assert "'9bad:1'" in str(exc.value) and "ok:2" not in str(exc.value)


def test_the_source_counts_the_frames_of_the_started_perception_nodes(
        graphs: dict[str, GraphSpec]) -> None:
    replay = by_name(graphs["replay"].resolve({}))
    assert parse_flow_topics(replay["bag_source"].overrides[FLOW_TOPICS]) == [
        ("keypoints", "mouse_lifter_ros/msg/Keypoints2D"),
        ("depth/camera_info", "sensor_msgs/msg/CameraInfo")]
    two_d = by_name(graphs["live"].resolve({"lift": "false"}))  # no depth node
    assert parse_flow_topics(two_d["camera"].overrides[FLOW_TOPICS]) == [
        ("keypoints", "mouse_lifter_ros/msg/Keypoints2D")]
    pairs = [("keypoints", "pkg/msg/Kp"), ("/abs/t", "sensor_msgs/msg/CameraInfo")]
    assert parse_flow_topics(format_flow_topics(pairs)) == pairs
    with pytest.raises(ValueError) as exc:
        parse_flow_topics("keypoints depth:sensor_msgs/CameraInfo ok:a/msg/B")
    assert "'keypoints'" in str(exc.value) and "'depth:sensor_msgs/CameraInfo'" in str(
        exc.value) and "ok:a" not in str(exc.value)


def test_switch_defaults_for_a_lab(graphs: dict[str, GraphSpec]) -> None:
    """Behaviour and stimulus on everywhere; the recorder only where asked for, and in
    the closed-loop session, whose point is a recording."""
    for name in ("live", "replay"):
        assert _off_by_default(graphs[name]) == {"recorder"}, name
    assert _off_by_default(graphs["closed_loop"]) == set()
    assert "record" in {a.name for a in graphs["closed_loop"].arguments}
    assert "lift" not in {a.name for a in graphs["closed_loop"].arguments}  # it is 3D


def test_monitor_switch(graphs: dict[str, GraphSpec]) -> None:
    for graph in graphs.values():
        names = set(by_name(graph.resolve({"monitor": "false"})))
        assert "monitor" not in names
        assert names == {n.name for n in graph.nodes} - {"monitor"} - _off_by_default(graph)
        assert "monitor" in by_name(graph.resolve({"monitor": "true"}))


def test_downstream_switches_and_their_arguments(graphs: dict[str, GraphSpec]) -> None:
    live = graphs["live"]
    names = set(by_name(live.resolve({"behavior": "false", "stimulus": "false"})))
    assert names == {"camera", "keypoint", "depth", "lifter", "monitor"}
    launches = by_name(live.resolve({
        "record": "true", "record_dir": "/data/rec", "record_prefix": "m1_day2",
        "rule": "builtin:region", "min_frames": "5", "min_probability": "0.8",
        "trigger_behavior": "grooming", "behavior_dims": "3"}))
    assert from_arguments(launches["recorder"]) == {"output_dir": "/data/rec", "prefix": "m1_day2"}
    assert from_arguments(launches["stimulus"]) == {"rule": "builtin:region", "min_frames": 5,
                                              "min_probability": 0.8, "behavior": "grooming"}
    assert from_arguments(launches["behavior"]) == {"dims": 3}
    for node in ("recorder", "stimulus", "behavior"):
        validate(NODE_PARAMS[f"{node}_node"], launches[node].overrides)


def test_lift_false_leaves_out_what_needs_poses(graphs: dict[str, GraphSpec]) -> None:
    for name in ("live", "replay"):
        graph = graphs[name]
        values = {"lift": "false", "record": "true"}
        names = set(by_name(graph.resolve(values)))
        assert names == {n.name for n in graph.nodes} - {
            "depth", "lifter", "behavior", "stimulus", "recorder"}
        why = graph.left_out(values)
        assert set(why) == {"behavior", "stimulus", "recorder"}
        assert why["behavior"] == "needs lifter, which lift:=false leaves out"
        assert "lifter, which lift:=false leaves out" in why["recorder"]
        assert "behavior, which is left out" in why["recorder"]
    # the recorder needs the behaviour node too
    why = graphs["live"].left_out({"record": "true", "behavior": "false"})
    assert why == {"recorder": "needs behavior, which behavior:=false leaves out"}
    # switched off, a node is not "left out for a need"
    assert graphs["live"].left_out({"behavior": "false"}) == {}


def test_float_argument(graphs: dict[str, GraphSpec]) -> None:
    launches = by_name(graphs["replay"].resolve({"rate": "2"}))
    value = launches["bag_source"].overrides["rate"]
    assert value == 2.0 and type(value) is float
    assert from_arguments(launches["monitor"]) == {}


def test_several_arguments(graphs: dict[str, GraphSpec]) -> None:
    launches = by_name(graphs["replay"].resolve(
        {"bag": "/data/b", "start_offset": "1.5", "loop": "true"}))
    assert from_arguments(launches["bag_source"]) == {"bag": "/data/b", "start_offset": 1.5,
                                                "loop": True}
    # What the arguments give the node, its specs accept.
    validate(NODE_PARAMS["bag_source_node"], launches["bag_source"].overrides)


def test_bad_bool_names_the_argument(graphs: dict[str, GraphSpec]) -> None:
    with pytest.raises(ParameterError) as exc:
        graphs["replay"].resolve({"loop": "maybe"})
    assert "loop" in str(exc.value) and "'maybe'" in str(exc.value)


def test_unknown_argument_is_named(graphs: dict[str, GraphSpec]) -> None:
    with pytest.raises(ParameterError) as exc:
        graphs["live"].resolve({"frame_rate": "30"})
    text = str(exc.value)
    assert "frame_rate" in text and "fps" in text  # and the known ones are listed


def test_all_problems_at_once(graphs: dict[str, GraphSpec]) -> None:
    with pytest.raises(ParameterError) as exc:
        graphs["replay"].resolve({"rate": "fast", "loop": "maybe", "speed": "2"})
    text = str(exc.value)
    assert all(name in text for name in ("rate", "loop", "speed")), text


def test_source_stays_a_string(graphs: dict[str, GraphSpec]) -> None:
    launches = by_name(graphs["live"].resolve({"source": "0"}))
    value = launches["camera"].overrides["source"]
    assert value == "0" and type(value) is str


def test_empty_argument_keeps_the_params_file(graphs: dict[str, GraphSpec]) -> None:
    launches = by_name(graphs["replay"].resolve({"rate": "", "bag": ""}))
    assert from_arguments(launches["bag_source"]) == {}


@pytest.mark.parametrize(
    ("text", "type_name", "expected"),
    [("0", "str", "0"), ("true", "str", "true"), ("3", "int", 3), ("3", "float", 3.0),
     ("0.5", "float", 0.5), ("true", "bool", True), ("false", "bool", False)],
)
def test_parse_value(text: str, type_name: str, expected: Any) -> None:
    value = parse_value(text, type_name)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    ("text", "type_name"),
    [("true", "int"), ("2.5", "int"), ("abc", "float"), ("true", "float"), ("1", "bool"),
     ("maybe", "bool"), ("", "int")],
)
def test_parse_value_rejects(text: str, type_name: str) -> None:
    with pytest.raises(ValueError, match=type_name):
        parse_value(text, type_name)


def flag_values(args: list[str], flag: str) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args[:-1]) if a == flag]


def test_ros_arguments(graphs: dict[str, GraphSpec]) -> None:
    launches = by_name(graphs["replay"].resolve({}))
    bag_source = launches["bag_source"]
    args = ros_arguments(bag_source, namespace="ns", params_files=["/a/params.yaml", "/tmp/o.yaml"])
    assert args[0] == "--ros-args"
    remaps = flag_values(args, "-r")
    assert "__node:=bag_source" in remaps
    assert "__ns:=/ns" in remaps
    assert flag_values(args, "--params-file") == ["/a/params.yaml", "/tmp/o.yaml"]
    assert bag_source.node.remappings
    for src, dst in bag_source.node.remappings:
        assert f"{src}:={dst}" in remaps
    assert "image_raw:=camera/image_raw" in remaps

    assert "__ns:=/ns" in ros_arguments(bag_source, namespace="/ns/", params_files=[])
    plain = ros_arguments(bag_source, namespace="", params_files=[])
    assert not any(a.startswith("__ns:=") for a in plain)
    assert "--params-file" not in plain


def test_overrides_yaml_round_trip(graphs: dict[str, GraphSpec]) -> None:
    launches = by_name(graphs["live"].resolve(
        {"source": "0", "fps": "15", "loop": "true", "calibration": "/c.yaml"}))
    doc = yaml.safe_load(overrides_yaml(launches["camera"]))
    wait = launches["camera"].overrides[WAIT_FOR_NODES]
    flow = launches["camera"].overrides[FLOW_TOPICS]
    assert doc == {"/**/camera": {"ros__parameters": {
        "source": "0", "fps": 15.0, "loop": True, "calibration_file": "/c.yaml",
        WAIT_FOR_NODES: wait, FLOW_TOPICS: flow}}}
    params = doc["/**/camera"]["ros__parameters"]
    assert type(params["source"]) is str
    assert type(params["fps"]) is float
    assert type(params["loop"]) is bool
    validate(NODE_PARAMS["camera_node"], params)

    monitor = yaml.safe_load(overrides_yaml(launches["monitor"]))
    assert monitor == {"/**/monitor": {"ros__parameters": {
        EXPECT_PUBLISHERS: launches["monitor"].overrides[EXPECT_PUBLISHERS]}}}


def test_broken_graph_lists_every_problem(tmp_path: Path) -> None:
    raw = yaml.safe_load(GRAPH_YAML.read_text(encoding="utf-8"))
    raw["graphs"]["live"]["nodes"].append("ghost")
    raw["graphs"]["replay"]["arguments"]["fps"] = {
        "node": "camera", "parameter": "fps", "type": "float", "description": "x"}
    path = tmp_path / "graph.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(ParameterError) as exc:
        load_graphs(path)
    text = str(exc.value)
    assert str(path) in text
    [ghost] = [line for line in text.splitlines() if "'ghost'" in line]
    assert "live" in ghost and "unknown node" in ghost
    [fps] = [line for line in text.splitlines() if "fps" in line]
    assert "replay" in fps and "'camera'" in fps


def test_needs_outside_the_graph_is_a_problem(tmp_path: Path) -> None:
    raw = yaml.safe_load(GRAPH_YAML.read_text(encoding="utf-8"))
    raw["graphs"]["live"]["nodes"].remove("behavior")
    raw["graphs"]["live"]["arguments"] = {}
    path = tmp_path / "graph.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(ParameterError) as exc:
        load_graphs(path)
    assert "graph live: node 'recorder' needs 'behavior', not in the graph" in str(exc.value)


def test_broken_argument_shapes(tmp_path: Path) -> None:
    raw = {
        "nodes": {"a": {"executable": "camera_node"}},
        "graphs": {"g": {"nodes": ["a"], "arguments": {
            "both": {"node": "a", "parameter": "fps", "switch": ["a"]},
            "neither": {"description": "nothing"},
            "typed": {"node": "a", "parameter": "fps", "type": "double"},
            # a misspelt "parameter" key must not leave an argument that does nothing
            "noparam": {"node": "a", "paramter": "fps", "type": "float"},
        }}},
    }
    path = tmp_path / "graph.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(ParameterError) as exc:
        load_graphs(path)
    text = str(exc.value)
    for name in ("both", "neither", "'double'", "noparam"):
        assert name in text, text
