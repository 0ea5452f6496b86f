"""The core runs without ROS: importing it loads no rclpy, rcl* or launch module."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import mouse_lifter_ros.core as core

ROOT = Path(__file__).resolve().parents[2]
CORE_DIR = Path(core.__file__).resolve().parent

PROBE = """
import importlib, json, pkgutil, sys
import mouse_lifter_ros.core as core
names = sorted(m.name for m in pkgutil.walk_packages(core.__path__, "mouse_lifter_ros.core.")
               if not m.ispkg)
for name in names:
    importlib.import_module(name)
ros = sorted(m for m in sys.modules
             if m.split(".")[0].startswith(("rcl", "launch")))
print(json.dumps({"core": names, "file": core.__file__, "ros": ros}))
"""


def test_importing_the_core_loads_no_ros_module() -> None:
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert Path(found["file"]).resolve().parent == CORE_DIR  # this checkout's core
    expected = {"mouse_lifter_ros.core." + ".".join(p.relative_to(CORE_DIR).with_suffix("").parts)
                for p in CORE_DIR.rglob("*.py") if p.stem != "__init__"}
    assert set(found["core"]) == expected
    assert {"mouse_lifter_ros.core.bag", "mouse_lifter_ros.core.synth.render"} <= expected
    assert found["ros"] == [], f"importing the core loaded {found['ros']}"


def test_no_core_source_imports_rclpy() -> None:
    pattern = re.compile(r"^\s*(import\s+rclpy|from\s+rclpy)\b", re.MULTILINE)
    src = ROOT / "mouse_lifter_ros" / "core"
    files = sorted(src.rglob("*.py"))
    names = {str(p.relative_to(src)) for p in files}
    assert {"bag.py", "synth/__init__.py", "synth/render.py"} <= names  # subpackages too
    offenders = [str(p.relative_to(src)) for p in files
                 if pattern.search(p.read_text(encoding="utf-8"))]
    assert offenders == []
