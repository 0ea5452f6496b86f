"""The launch files against the install: everything they name exists, each graph has its
launch file, each builds the same nodes, arguments and parameters as the graph runner
(against stand-ins for ``launch`` and ``launch_ros``, and against the real ones), and,
where the launch stack is installed, each runs under `ros2 launch`: Pose3D messages flow,
and SIGINT to `ros2 launch` ends every process it started, cleanly, within 5 s."""

from __future__ import annotations

import ast
import contextlib
import importlib
import importlib.util
import os
import runpy
import shutil
import signal
import subprocess
import sys
import time
import types
from pathlib import Path
from typing import Any

import pytest
import yaml

from mouse_lifter_ros.core.graph import load_graphs
from mouse_lifter_ros.core.node_params import NODE_PARAMS
from mouse_lifter_ros.nodes._signals import EXIT_GRACE_S
from mouse_lifter_ros.runner import package_prefix, package_share

#: Why the tests that need the real launch stack skip where it is missing.
LAUNCH_MISSING = (
    "launch, launch_ros and ros2launch are not installed: they are not on the package index; "
    "`make test` installs them from ../shared/ros2-launch when that folder is beside the "
    "clone (the static checks and the stand-in test still ran)")
HAVE_LAUNCH = (importlib.util.find_spec("launch_ros") is not None
               and importlib.util.find_spec("ros2launch") is not None)
needs_launch = pytest.mark.skipif(not HAVE_LAUNCH, reason=LAUNCH_MISSING)

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


@needs_launch
@pytest.mark.parametrize("name", LAUNCH_FILES)
def test_launch_file_loads_with_the_real_launch(name: str) -> None:
    """The real ``launch`` loads the installed file (as `ros2 launch` does, with a
    LaunchContext); its arguments are the graph's, and its OpaqueFunction, run with the
    defaults, returns one launch_ros Node per node the graph runner starts."""
    from launch.actions import DeclareLaunchArgument, OpaqueFunction
    from launch.launch_description_sources import PythonLaunchDescriptionSource
    from launch.utilities import normalize_to_list_of_substitutions, perform_substitutions
    from launch_ros.actions import Node

    from launch import LaunchContext
    from mouse_lifter_ros.runner import GraphRun

    graph_name = name.removesuffix(".launch.py")
    graph = load_graphs(package_share() / "config" / "graph.yaml")[graph_name]
    context = LaunchContext()
    source = PythonLaunchDescriptionSource(str(package_share() / "launch" / name))
    description = source.get_launch_description(context)
    declared = [e for e in description.entities if isinstance(e, DeclareLaunchArgument)]
    assert [d.name for d in declared] == ["namespace", "config",
                                          *(a.name for a in graph.arguments)]
    for d in declared:
        context.launch_configurations[d.name] = perform_substitutions(context,
                                                                      d.default_value)
    (opaque,) = [e for e in description.entities if isinstance(e, OpaqueFunction)]
    nodes = [a for a in opaque.execute(context) if isinstance(a, Node)]

    def text(value: Any) -> str:
        return perform_substitutions(context, normalize_to_list_of_substitutions(value))

    run = GraphRun(graph_name)
    try:
        assert [(text(n.node_package), text(n.node_executable)) for n in nodes] == [
            (launch.node.package, launch.node.executable) for launch in run.launches]
    finally:
        run.close()


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
    for mod_name, module in _stand_ins().items():
        monkeypatch.setitem(sys.modules, mod_name, module)
    # Import launch_support afresh against the stand-ins, and drop that copy afterwards
    # so that later tests import it against the real launch where that is installed.
    monkeypatch.setitem(sys.modules, "mouse_lifter_ros.launch_support", None)
    monkeypatch.delitem(sys.modules, "mouse_lifter_ros.launch_support")
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


# --- `ros2 launch` itself ------------------------------------------------------------

#: The node executables each launch file starts with the arguments below.
LAUNCHED = {
    "live.launch.py": {"camera_node", "keypoint_node", "depth_node", "lifter_node",
                       "behavior_node", "stimulus_node", "monitor_node"},
    "replay.launch.py": {"bag_source_node", "keypoint_node", "depth_node", "lifter_node",
                         "behavior_node", "stimulus_node", "monitor_node"},
    "closed_loop.launch.py": {"camera_node", "keypoint_node", "depth_node", "lifter_node",
                              "behavior_node", "stimulus_node", "recorder_node",
                              "monitor_node"},
}
#: Seconds from SIGINT to `ros2 launch` until it and every process it started are gone.
STOP_WITHIN = 5.0


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from mouse_lifter_ros.core.democlip import write_demo_clip

    return write_demo_clip(tmp_path_factory.mktemp("clip"), seconds=2.0)


def _launch_arguments(name: str, clip: Any, out: Path) -> dict[str, str]:
    """A looping demo clip as the source (the bag, or its video as the camera)."""
    source = ({"bag": str(clip.bag)} if name == "replay.launch.py"
              else {"source": str(clip.video)})
    extra = ({"record_dir": str(out / "recordings"), "record_prefix": "session"}
             if name == "closed_loop.launch.py" else {})
    return {**source, "loop": "true", "arena": str(clip.arena), **extra}


def _default_sigint() -> None:
    """In the child before exec: SIGINT as a terminal delivers it, even where this test
    runs with SIGINT ignored (a shell's background job), which exec would keep."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _executable(proc: Any) -> str:
    try:
        cmdline = proc.cmdline()
    except Exception:  # gone already
        return "?"
    scripts = [Path(a).name for a in cmdline if "/lib/mouse_lifter_ros/" in a]
    return scripts[0] if scripts else " ".join(cmdline)


@needs_launch
@pytest.mark.parametrize("name", LAUNCH_FILES)
def test_ros2_launch_runs_and_stops_on_sigint(name: str, clip: Any, listener: Any,
                                              namespace: str, tmp_path: Path) -> None:
    """`ros2 launch mouse_lifter_ros NAME` on the demo clip: Pose3D messages arrive on
    <namespace>/pose; then SIGINT to `ros2 launch` (as Ctrl-C in its terminal) ends it and
    each node it started with exit code 0 within 5 s, and no node process is left."""
    import psutil
    from mouse_lifter_ros.msg import Pose3D
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    poses = listener.subscribe(Pose3D, f"/{namespace}/pose",
                               QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE))
    arguments = [f"{k}:={v}" for k, v in _launch_arguments(name, clip, tmp_path).items()]
    log = tmp_path / "launch.log"
    command = [shutil.which("ros2") or "ros2", "launch", "mouse_lifter_ros", name,
               f"namespace:={namespace}", *arguments]
    # launch_ros writes each node's parameters to a file it never removes: in tmp_path
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env,
                                stdin=subprocess.DEVNULL, start_new_session=True,
                                preexec_fn=_default_sigint)
    launch = psutil.Process(proc.pid)
    tree: list[Any] = []

    def output() -> str:
        return f"{' '.join(command)}\n{log.read_text(errors='replace')[-6000:]}"

    try:
        listener.wait_for(lambda: len(poses) >= 10 or proc.poll() is not None, timeout=120)
        assert proc.poll() is None, f"ros2 launch ended early ({proc.returncode}):\n{output()}"
        assert len(poses) >= 10, f"{len(poses)} Pose3D messages in 120 s:\n{output()}"
        assert all(len(msg.names) == 14 for _, msg in poses), poses[0][1]
        tree = launch.children(recursive=True)
        assert sorted(_executable(p) for p in tree) == sorted(LAUNCHED[name]), output()

        start = time.monotonic()
        proc.send_signal(signal.SIGINT)
        gone, alive = psutil.wait_procs([launch, *tree], timeout=STOP_WITHIN)
        took = time.monotonic() - start
        if alive:  # a node stuck in its teardown prints its threads' stacks a little later
            psutil.wait_procs(alive, timeout=EXIT_GRACE_S + 3.0)
        assert not alive, (f"still running {STOP_WITHIN} s after SIGINT: "
                           f"{[_executable(p) for p in alive]}\n{output()}")
        # psutil reaped `ros2 launch` (this test's child) and has its exit code; the
        # nodes are its children, and it logs how each one ended.
        codes = {p.pid: p.returncode for p in gone}
        assert codes[launch.pid] == 0, f"ros2 launch exited with {codes[launch.pid]}\n{output()}"
        text = log.read_text(errors="replace")
        for p in tree:
            assert f"process has finished cleanly [pid {p.pid}]" in text, (
                f"{_executable(p)} (pid {p.pid}) did not exit with 0:\n{output()}")
        left = [p.pid for p in psutil.process_iter(["cmdline"])
                if f"__ns:=/{namespace}" in " ".join(p.info["cmdline"] or ())]
        assert not left, f"node processes left behind: {left}"
        assert took < STOP_WITHIN
    finally:
        # Also the nodes of a launch that failed before its tree was read: none may
        # outlive the test (they would fail the next run's "left behind" check).
        strays = [p for p in psutil.process_iter(["cmdline"])
                  if f"__ns:=/{namespace}" in " ".join(p.info["cmdline"] or ())]
        for p in (launch, *tree, *strays):
            with contextlib.suppress(psutil.Error):
                p.kill()
        with contextlib.suppress(Exception):
            proc.wait(timeout=5)
