"""The launch files against the install: everything they name exists, each graph has its
launch file, and (with stand-ins for ``launch`` and ``launch_ros`` where those are not
installed) each builds the same nodes, arguments and parameters as the graph runner."""

from __future__ import annotations

import ast
import importlib
import os
import runpy
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import yaml

from mouse_lifter_ros.core.graph import load_graphs
from mouse_lifter_ros.core.specs import NODE_PARAMS
from mouse_lifter_ros.runner import package_prefix, package_share

LAUNCH_FILES = tuple(sorted(p.name for p in (Path(__file__).resolve().parents[2]
                                             / "launch").glob("*.launch.py")))


def _graph_names(launch_file: Path) -> list[str]:
    """Graph names passed to graph_launch_description() in a launch file."""
    tree = ast.parse(launch_file.read_text())
    return [
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "graph_launch_description"
        and node.args and isinstance(node.args[0], ast.Constant)
    ]


@pytest.mark.parametrize("name", LAUNCH_FILES)
def test_launch_file_names_only_installed_things(name: str) -> None:
    share = package_share()
    launch_file = share / "launch" / name
    assert launch_file.is_file(), f"{name} is not installed"
    graphs = load_graphs(share / "config" / "graph.yaml")
    names = _graph_names(launch_file)
    assert names and all(g in graphs for g in names), names
    params = yaml.safe_load((share / "config" / "params.yaml").read_text())
    for graph in (graphs[g] for g in names):
        for node in graph.nodes:
            exe = package_prefix() / "lib" / node.package / node.executable
            assert exe.is_file() and os.access(exe, os.X_OK), f"{exe} missing or not executable"
            module = importlib.import_module(f"mouse_lifter_ros.nodes.{node.executable}")
            assert callable(module.main)
            assert f"/**/{node.name}" in params, f"params.yaml has no section for {node.name}"
        for arg in graph.arguments:
            for target in arg.node if arg.parameter else ():
                node = next(n for n in graph.nodes if n.name == target)
                known = {s.name for s in NODE_PARAMS[node.executable]}
                assert arg.parameter in known, f"{name}: {arg.name} sets unknown {arg.parameter}"


def test_package_urls_in_config_exist() -> None:
    share = package_share()
    for path in (share / "config").rglob("*.yaml"):
        for word in path.read_text().split():
            if word.startswith("package://mouse_lifter_ros/"):
                target = share / word.removeprefix("package://mouse_lifter_ros/").strip("\"'")
                assert target.exists(), f"{path.name} names {word}, which is not installed"


@pytest.mark.parametrize("name", LAUNCH_FILES)
def test_launch_file_loads_where_launch_is_installed(name: str) -> None:
    pytest.importorskip("launch_ros", reason="launch_ros is not installed (no ROS 2 apt "
                        "install here); the static checks above still ran")
    from launch.launch_description_sources import PythonLaunchDescriptionSource

    source = PythonLaunchDescriptionSource(str(package_share() / "launch" / name))
    description = source.get_launch_description(None)  # type: ignore[arg-type]
    assert description.entities


def test_every_graph_has_its_launch_file() -> None:
    graphs = load_graphs(package_share() / "config" / "graph.yaml")
    assert set(LAUNCH_FILES) == {f"{g}.launch.py" for g in graphs}
    for name in LAUNCH_FILES:
        names = _graph_names(package_share() / "launch" / name)
        assert names == [name.removesuffix(".launch.py")], (name, names)


class _Action:
    """Stands in for a launch action: keeps its keyword arguments."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs = args, kwargs


class _LaunchConfiguration:
    def __init__(self, name: str) -> None:
        self.name = name

    def perform(self, context: Any) -> str:
        return str(context.launch_configurations[self.name])


def _stand_ins() -> dict[str, types.ModuleType]:
    """Just enough of ``launch`` and ``launch_ros`` for launch_support.py to run."""
    mods = {n: types.ModuleType(n) for n in (
        "launch", "launch.actions", "launch.substitutions", "launch_ros",
        "launch_ros.actions", "launch_ros.parameter_descriptions")}
    launch = mods["launch"]
    launch.LaunchContext = type("LaunchContext", (), {})  # type: ignore[attr-defined]
    launch.LaunchDescription = type("LaunchDescription", (_Action,), {})  # type: ignore
    for name in ("DeclareLaunchArgument", "LogInfo", "OpaqueFunction"):
        setattr(mods["launch.actions"], name, type(name, (_Action,), {}))
    mods["launch.substitutions"].LaunchConfiguration = _LaunchConfiguration  # type: ignore
    mods["launch_ros.actions"].Node = type("Node", (_Action,), {})  # type: ignore
    mods["launch_ros.parameter_descriptions"].ParameterValue = type(  # type: ignore
        "ParameterValue", (_Action,), {})
    launch.actions = mods["launch.actions"]  # type: ignore[attr-defined]
    launch.substitutions = mods["launch.substitutions"]  # type: ignore[attr-defined]
    mods["launch_ros"].actions = mods["launch_ros.actions"]  # type: ignore[attr-defined]
    return mods


@pytest.mark.parametrize("name", LAUNCH_FILES)
def test_launch_file_builds_what_the_runner_starts(name: str, monkeypatch: pytest.MonkeyPatch
                                                   ) -> None:
    """Run the launch file against stand-ins of launch/launch_ros: its declared arguments
    and, for the defaults and for a set of values, its Node actions (executables, names,
    remappings, parameter overrides) and log lines match the graph runner's."""
    if importlib.util.find_spec("launch_ros") is not None:
        pytest.skip("launch_ros is installed: the test below loads the real thing")
    for mod_name, module in _stand_ins().items():
        monkeypatch.setitem(sys.modules, mod_name, module)
    monkeypatch.delitem(sys.modules, "mouse_lifter_ros.launch_support", raising=False)
    from mouse_lifter_ros.runner import GraphRun

    graph_name = name.removesuffix(".launch.py")
    graph = load_graphs(package_share() / "config" / "graph.yaml")[graph_name]
    module = runpy.run_path(str(package_share() / "launch" / name))
    description = module["generate_launch_description"]()
    *declared, opaque = description.args[0]
    assert [d.args[0] for d in declared] == ["namespace", "config",
                                             *(a.name for a in graph.arguments)]
    defaults = {d.args[0]: d.kwargs["default_value"] for d in declared}
    assert defaults["config"] == str(package_share() / "config" / "params.yaml")
    values = {a.name: "" for a in graph.arguments if not a.switch}
    values |= {"bag": "/data/b", "rate": "2", "source": "0", "record_prefix": "m1",
               "min_frames": "5", "lift": "false"}
    for given in ({}, {k: v for k, v in values.items() if k in defaults}):
        context = types.SimpleNamespace(launch_configurations={**defaults, **given,
                                                               "namespace": "rig1"})
        actions = opaque.kwargs["function"](context)
        logs = [a.kwargs["msg"] for a in actions if type(a).__name__ == "LogInfo"]
        nodes = [a.kwargs for a in actions if type(a).__name__ == "Node"]
        arguments = {k: v for k, v in given.items()}
        run = GraphRun(graph_name, arguments=arguments, namespace="rig1")
        try:
            assert [n["name"] for n in nodes] == [n.node.name for n in run.launches]
            assert logs == [f"[{graph_name}] {n} left out: it {why}"
                            for n, why in run.left_out.items()]
            for node, launch in zip(nodes, run.launches, strict=True):
                assert node["executable"] == launch.node.executable
                assert node["namespace"] == "rig1"
                assert node["remappings"] == list(launch.node.remappings)
                assert node["parameters"][0] == defaults["config"]
                overrides = node["parameters"][1] if len(node["parameters"]) > 1 else {}
                assert {k: v.args[0] for k, v in overrides.items()} == launch.overrides
                assert all(v.kwargs["value_type"] is type(v.args[0])
                           for v in overrides.values())
        finally:
            run.close()
