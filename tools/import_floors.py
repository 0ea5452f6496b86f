"""The import graph's floors: which project modules the runtime stands on.

    python3 tools/import_floors.py [--root DIR] [--entry MODULE ...] [--each]

Reads the sources (no import is executed, so neither ROS nor torch is needed) and
follows every ``import`` / ``from ... import`` of a ``mouse_lifter_ros`` module from the
runtime entry points: every module under ``mouse_lifter_ros/nodes`` and the core's
``analysis``, ``pipeline``, ``lifter``, ``keypoints`` and ``depth``. It prints the
project modules they import transitively, grouped by package, twice:

- *eager*: imports at module level (what importing an entry point loads; imports under
  ``if TYPE_CHECKING:`` are left out);
- *lazy*: what the imports inside functions add on top (loaded when such a function
  first runs), followed transitively.

``--each`` adds, per entry point, the ``core.synth`` and ``training`` modules it reaches.
``--root`` reads another checkout (e.g. an older commit's ``git archive``).
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path

PACKAGE = "mouse_lifter_ros"
DEFAULT_ENTRIES = ("core.analysis", "core.pipeline", "core.lifter", "core.keypoints",
                   "core.depth")


def module_file(root: Path, module: str) -> Path | None:
    """The source of ``module`` (dotted, ``mouse_lifter_ros...``) in the package at ``root``."""
    rel = module.removeprefix(PACKAGE).lstrip(".")
    base = root.joinpath(*rel.split(".")) if rel else root
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if (rel and path.is_file()) or (path.name == "__init__.py" and path.is_file()):
            return path
    return None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.Module, module: str, is_package: bool
             ) -> Iterator[tuple[str, bool]]:
    """(imported dotted name, eager?) for every import statement of ``tree``."""

    def walk(nodes: Iterable[ast.stmt], eager: bool) -> Iterator[tuple[str, bool]]:
        for node in nodes:
            if isinstance(node, ast.If) and _is_type_checking(node.test):
                yield from walk(node.orelse, eager)
                continue
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield alias.name, eager
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    parts = module.split(".")
                    keep = len(parts) - node.level + (1 if is_package else 0)
                    base = ".".join(parts[:keep] + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                yield base, eager
                for alias in node.names:  # `from pkg import module`
                    yield f"{base}.{alias.name}", eager
            inner = eager and not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            for field in ("body", "orelse", "finalbody"):
                children = getattr(node, field, None)
                if isinstance(children, list):
                    yield from walk([c for c in children if isinstance(c, ast.stmt)], inner)
            for handler in getattr(node, "handlers", None) or []:
                yield from walk(handler.body, inner)

    yield from walk(tree.body, True)


class Graph:
    """The project's modules and their imports, read from ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.edges: dict[str, list[tuple[str, bool]]] = {}

    def deps(self, module: str) -> list[tuple[str, bool]]:
        """(project module, eager?) imported by ``module`` (parents of a submodule too:
        importing ``a.b.c`` runs ``a/__init__`` and ``a/b/__init__``)."""
        if module not in self.edges:
            path = module_file(self.root, module)
            out: list[tuple[str, bool]] = []
            if path is not None:
                tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
                for name, eager in _imports(tree, module, path.name == "__init__.py"):
                    if name == PACKAGE or name.startswith(PACKAGE + "."):
                        parts = name.split(".")
                        for i in range(2, len(parts) + 1):
                            sub = ".".join(parts[:i])
                            if self.exists(sub):
                                out.append((sub, eager))
            self.edges[module] = out
        return self.edges[module]

    def exists(self, module: str) -> bool:
        return module_file(self.root, module) is not None

    def reach(self, starts: Iterable[str], *, lazy: bool) -> set[str]:
        """Modules reached from ``starts`` over eager edges (and lazy ones if asked)."""
        seen: set[str] = set()
        todo = list(starts)
        while todo:
            mod = todo.pop()
            if mod in seen:
                continue
            seen.add(mod)
            todo += [d for d, eager in self.deps(mod) if eager or lazy]
        return seen


def grouped(modules: Iterable[str]) -> dict[str, list[str]]:
    """Modules by package (``core``, ``core.synth``, ``nodes``, ...), short names."""
    groups: dict[str, list[str]] = defaultdict(list)
    for mod in modules:
        rel = mod.removeprefix(PACKAGE + ".")
        pkg, _, name = rel.rpartition(".")
        groups[pkg or "(top)"].append(name)
    return {k: sorted(v) for k, v in sorted(groups.items())}


def show(title: str, modules: set[str]) -> None:
    print(f"{title}: {len(modules)} modules")
    for pkg, names in grouped(modules).items():
        print(f"  {pkg:14s} ({len(names):2d}) {' '.join(names)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1],
                        help="checkout to read (default: this one)")
    parser.add_argument("--entry", nargs="*", default=None,
                        help="entry modules relative to the package (default: the runtime)")
    parser.add_argument("--each", action="store_true",
                        help="per entry point, the core.synth and training modules it reaches")
    ns = parser.parse_args()
    pkg_root = ns.root / PACKAGE
    if ns.entry is None:
        nodes = sorted(p.stem for p in (pkg_root / "nodes").glob("*.py")
                       if p.stem != "__init__")
        rels = [f"nodes.{n}" for n in nodes] + list(DEFAULT_ENTRIES)
    else:
        rels = list(ns.entry)
    graph = Graph(pkg_root)
    entries = [f"{PACKAGE}.{r}" for r in rels if graph.exists(f"{PACKAGE}.{r}")]
    missing = sorted(set(rels) - {e.removeprefix(PACKAGE + ".") for e in entries})
    print(f"entry points ({len(entries)}): "
          + " ".join(e.removeprefix(PACKAGE + ".") for e in entries))
    if missing:
        print(f"not found: {' '.join(missing)}")
    eager = graph.reach(entries, lazy=False) - set(entries)
    everything = graph.reach(entries, lazy=True) - set(entries)
    show("eager floors (module-level imports, transitively)", eager)
    show("lazy additions (imports inside functions, transitively)", everything - eager)
    if ns.each:
        print("per entry point, core.synth / training reached (eager | with lazy):")
        for e in entries:
            def low(mods: set[str]) -> str:
                hit = sorted(m.removeprefix(PACKAGE + ".") for m in mods
                             if m.startswith((f"{PACKAGE}.core.synth", f"{PACKAGE}.training")))
                return " ".join(hit) or "-"
            print(f"  {e.removeprefix(PACKAGE + '.'):28s} {low(graph.reach([e], lazy=False))}"
                  f" | {low(graph.reach([e], lazy=True))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
