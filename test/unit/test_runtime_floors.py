"""The runtime stands on the core's own floors: importing a node or a runtime stage of the
core loads neither the synthetic data engine (``mouse_lifter_ros.core.synth``) nor
PyTorch. The body model (``core/body.py``) and the camera (``core/camera.py``) are the
runtime's; the engine and training build on them, never the other way round.

``tools/import_floors.py`` prints the project modules each entry point stands on."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

import mouse_lifter_ros

PACKAGE_DIR = Path(mouse_lifter_ros.__file__).resolve().parent
#: The runtime stages of the core (the nodes are added from their folder).
CORE_ENTRIES = ("analysis", "pipeline", "lifter", "keypoints", "depth", "behavior")

PROBE = """
import importlib, json, sys
modules = json.loads(sys.argv[1])
for name in modules:
    importlib.import_module(name)
low = sorted(m for m in sys.modules
             if m.startswith("mouse_lifter_ros.core.synth") or m.split(".")[0] == "torch")
print(json.dumps({"low": low, "package": importlib.import_module("mouse_lifter_ros").__file__}))
"""


def node_modules() -> list[str]:
    nodes = sorted(p.stem for p in (PACKAGE_DIR / "nodes").glob("*.py") if p.stem != "__init__")
    return [f"mouse_lifter_ros.nodes.{n}" for n in nodes]


def probe(modules: list[str], cwd: Path) -> dict[str, object]:
    """Import ``modules`` in a fresh interpreter started in ``cwd`` (not the checkout's
    root, whose package has no built messages); what it loaded below the runtime."""
    result = subprocess.run([sys.executable, "-c", PROBE, json.dumps(modules)], cwd=cwd,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    found: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    assert Path(str(found["package"])).resolve().parent == PACKAGE_DIR  # this checkout
    return found


def test_the_core_runtime_imports_neither_synth_nor_torch(tmp_path: Path) -> None:
    modules = [f"mouse_lifter_ros.core.{m}" for m in CORE_ENTRIES]
    assert probe(modules, tmp_path)["low"] == []


def test_the_nodes_import_neither_synth_nor_torch(tmp_path: Path) -> None:
    if importlib.util.find_spec("rclpy") is None \
            or importlib.util.find_spec("mouse_lifter_ros.msg") is None:
        pytest.skip("rclpy or the built messages are missing (run under tools/ros-env.sh)")
    modules = node_modules()
    assert "mouse_lifter_ros.nodes.lifter_node" in modules and len(modules) >= 10
    assert probe(modules, tmp_path)["low"] == []

