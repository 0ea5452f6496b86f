"""Build a launch description from ``config/graph.yaml`` (needs ``launch`` and ``launch_ros``).

The launch files are one call to :func:`graph_launch_description`, so that they start
exactly what the graph runner (:mod:`mouse_lifter_ros.runner`) starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, LogInfo, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

from launch import LaunchContext, LaunchDescription
from mouse_lifter_ros.core.graph import PACKAGE, load_graphs


def graph_launch_description(graph_name: str) -> LaunchDescription:
    """Launch arguments and nodes of the graph ``graph_name``."""
    share = Path(get_package_share_directory(PACKAGE))
    graph = load_graphs(share / "config" / "graph.yaml")[graph_name]
    declared = [
        DeclareLaunchArgument("namespace", default_value="",
                              description="ROS namespace for every node of the graph"),
        DeclareLaunchArgument("config", default_value=str(share / "config" / "params.yaml"),
                              description="Parameter file for the nodes"),
    ]
    declared += [
        DeclareLaunchArgument(arg.name, default_value=arg.default, description=arg.description)
        for arg in graph.arguments
    ]

    def nodes(context: LaunchContext) -> list[Node | LogInfo]:
        values = {a.name: LaunchConfiguration(a.name).perform(context) for a in graph.arguments}
        namespace = LaunchConfiguration("namespace").perform(context)
        config = LaunchConfiguration("config").perform(context)
        actions: list[Node | LogInfo] = [
            LogInfo(msg=f"[{graph_name}] {name} left out: it {why}")
            for name, why in graph.left_out(values).items()
        ]
        for launch in graph.resolve(values):
            # Keep typed values as they are: a string parameter stays a string ("0").
            overrides: dict[str, Any] = {
                k: ParameterValue(v, value_type=type(v)) for k, v in launch.overrides.items()
            }
            actions.append(Node(
                package=launch.node.package,
                executable=launch.node.executable,
                name=launch.node.name,
                namespace=namespace,
                parameters=[config, overrides] if overrides else [config],
                remappings=list(launch.node.remappings),
                output="screen",
                emulate_tty=True,
            ))
        return actions

    return LaunchDescription([*declared, OpaqueFunction(function=nodes)])
