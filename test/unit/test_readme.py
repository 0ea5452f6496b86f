"""The README's tables say what the code does: every parameter, default and argument."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mouse_lifter_ros.core.graph import load_graphs
from mouse_lifter_ros.core.specs import NODE_PARAMS

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("executable", sorted(NODE_PARAMS))
def test_every_parameter_is_documented_with_its_default(executable: str) -> None:
    section = README.split(f"**{executable}**", 1)[1].split("\n\n", 2)[1]
    for spec in NODE_PARAMS[executable]:
        default = str(spec.default).lower() if isinstance(spec.default, bool) else json.dumps(
            spec.default)
        row = f"| `{spec.name}` | `{default}` | {spec.allowed or '-'} | {spec.description} |"
        assert row in section, f"README row out of date for {executable}.{spec.name}:\n{row}"


def test_every_launch_argument_is_documented() -> None:
    graphs = load_graphs(ROOT / "config" / "graph.yaml")
    for name, graph in graphs.items():
        line = next(row for row in README.splitlines() if row.startswith(f"| `{name}.launch.py`"))
        for arg in graph.arguments:
            assert f"`{arg.name}`" in line, f"{name}.launch.py argument {arg.name} undocumented"
