"""Static check of the launch files against the install: everything they name exists."""

from __future__ import annotations

import ast
import importlib
import os
from pathlib import Path

import pytest
import yaml

from mouse_lifter_ros.core.graph import load_graphs
from mouse_lifter_ros.core.specs import NODE_PARAMS
from mouse_lifter_ros.runner import package_prefix, package_share

LAUNCH_FILES = ("live.launch.py", "replay.launch.py")


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
