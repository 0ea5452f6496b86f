"""Node modules only convert messages, call the core and publish.

Image math, models and file formats live in the core: a node module that imports
OpenCV, a bag or YAML library, or grows long, has taken on the core's work.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

NODES = Path(__file__).resolve().parents[2] / "mouse_lifter_ros" / "nodes"
FORBIDDEN = {"cv2", "rosbags", "yaml", "onnxruntime", "torch", "scipy", "h5py", "pandas"}


@pytest.mark.parametrize("path", sorted(NODES.glob("*.py")), ids=lambda p: p.name)
def test_node_module_is_plumbing(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    } | {
        node.module.split(".")[0]
        for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    assert not imported & FORBIDDEN, f"{path.name} imports {imported & FORBIDDEN}"
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= 200, f"{path.name} has {lines} lines: move logic into the core"
