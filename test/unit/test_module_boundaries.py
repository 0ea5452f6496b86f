"""No module of the package reaches into another's private (underscore) names: what one
module uses of another is that module's documented API. Private modules of a package
(``nodes/_ros.py``) are used by their own package only."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "mouse_lifter_ros"


def _module(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_no_private_names_cross_modules() -> None:
    modules = {_module(p): p for p in PACKAGE.rglob("*.py")}
    found = []
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        aliases: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                    "mouse_lifter_ros"):
                mod = node.module or ""
                own_package = name.rsplit(".", 1)[0]
                for a in node.names:
                    if _private(a.name):
                        found.append(f"{name}: from {mod} import {a.name}")
                    if f"{mod}.{a.name}" in modules:
                        aliases[a.asname or a.name] = f"{mod}.{a.name}"
                private_module = any(_private(p) for p in mod.split("."))
                if private_module and not mod.startswith(own_package + "."):
                    found.append(f"{name}: imports the private module {mod}")
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in aliases and _private(node.attr)):
                found.append(f"{name}:{node.lineno}: {node.value.id}.{node.attr}")
    assert not found, "\n".join(found)
