"""No import cycles between the modules of kai_core, kai_plugins and kai_shell.

The graph is built from the source with :mod:`ast`, not by importing: every
``import`` and ``from ... import`` counts, at module level, inside functions
(lazy imports) and under ``if TYPE_CHECKING:`` alike. A cycle that only a
lazy or a type-checking import closes still ties two modules together for a
reader, a type checker and the next refactoring. ``from pkg import name``
is an edge to the submodule ``pkg.name`` when there is one, else to the
package ``pkg`` itself. Importing a submodule also runs its package's
``__init__``; that implicit edge is not counted (a package re-exporting its
submodules is no cycle).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("kai_core", "kai_plugins", "kai_shell")

ALLOWED_CYCLES: dict[frozenset[str], str] = {}
"""Cycles that must stay, each with its reason. None today."""


def modules(root: Path = ROOT) -> dict[str, tuple[Path, bool]]:
    """Dotted module name → (source file, is a package)."""
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts.pop()
            found[".".join(parts)] = (path, is_package)
    return found


def _imported(node: ast.AST, package: str) -> Iterable[str]:
    """The dotted names one import statement reaches (``pkg.name`` for each name)."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
            start = ".".join([*base, node.module] if node.module else base)
        else:
            start = node.module or ""
        for alias in node.names:
            yield f"{start}.{alias.name}"


def import_graph(found: Mapping[str, tuple[Path, bool]]) -> dict[str, set[str]]:
    """Module → the modules of these packages it imports (anywhere in its source)."""

    def known(name: str) -> str | None:
        while name and name not in found:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {name: set() for name in found}
    for name, (path, is_package) in found.items():
        package = name if is_package else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            for target in _imported(node, package):
                module = known(target)
                if module is not None and module != name:
                    graph[name].add(module)
    return graph


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _describe(component: list[str], graph: Mapping[str, set[str]]) -> str:
    members = set(component)
    edges = [f"  {a} -> {b}" for a in component for b in sorted(graph[a] & members)]
    return "\n".join([", ".join(component), *edges])


def test_no_import_cycles_between_modules() -> None:
    graph = import_graph(modules())
    unexpected = [c for c in cycles(graph) if frozenset(c) not in ALLOWED_CYCLES]
    assert not unexpected, "import cycles:\n" + "\n\n".join(_describe(c, graph) for c in unexpected)


def test_every_allowed_cycle_still_exists() -> None:
    # An exception nobody needs any more is removed from the list.
    present = {frozenset(c) for c in cycles(import_graph(modules()))}
    assert set(ALLOWED_CYCLES) <= present


def test_the_graph_sees_lazy_type_checking_and_relative_imports() -> None:
    graph = import_graph(modules())
    assert "kai_shell.shell.builtins" in graph["kai_shell.repl"]  # relative, module level
    assert "kai_shell.shell.context" in graph["kai_shell.shell.builtins"]  # TYPE_CHECKING
    assert "kai_core.records" in graph["kai_core.session"]  # inside a function
    assert "kai_core.session" in graph["kai_core.aio._session"]  # ``from .. import session``
    assert "kai_plugins.renderers.plain" in graph["kai_shell.repl"]  # absolute, in a method


@pytest.mark.parametrize(
    ("sources", "expected"),
    [
        ({"a": "from . import b", "b": "x = 1"}, []),
        (
            {
                "a": "from .b import f",
                "b": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import g",
            },
            [["kai_core.a", "kai_core.b"]],
        ),
        (
            {
                "a": "import kai_core.b",
                "b": "def f():\n    from .c import h",
                "c": "from . import a",
            },
            [["kai_core.a", "kai_core.b", "kai_core.c"]],
        ),
    ],
)
def test_cycles_are_found_however_they_are_imported(
    tmp_path: Path, sources: dict[str, str], expected: list[list[str]]
) -> None:
    for package in PACKAGES:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    for name, text in sources.items():
        (tmp_path / "kai_core" / f"{name}.py").write_text(text + "\n")
    assert cycles(import_graph(modules(tmp_path))) == expected
