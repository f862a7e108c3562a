"""The suite's own rules: tiers (``tiers.py``) and test modules that stand alone."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio

from .tiers import PROCESS_FIXTURES, refuse_processes, unmarked_process_users

TESTS = Path(__file__).resolve().parent


def _imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, dotted name) of every ``from``-import in a file, relative ones as ``.name``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            found.append((node.lineno, "." * node.level + (node.module or "")))
            if node.level and not node.module:  # from . import test_x
                found += [(node.lineno, "." + alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
    return found


def test_no_test_module_imports_another() -> None:
    wrong = [
        f"{path.name}:{line}: {name}"
        for path in sorted(TESTS.glob("test_*.py"))
        for line, name in _imported_modules(path)
        if name.rpartition(".")[2].startswith("test_")
    ]
    assert wrong == [], "shared code belongs in conftest.py or a helper module:\n" + "\n".join(
        wrong
    )


def test_every_process_fixture_exists() -> None:
    defined = set()
    for path in TESTS.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and any(
                "fixture" in ast.unparse(d) for d in node.decorator_list
            ):
                defined.add(node.name)
    assert set(PROCESS_FIXTURES) <= defined


class _Item:
    def __init__(self, nodeid: str, fixturenames: list[str], *, e2e: bool) -> None:
        self.nodeid = nodeid
        self.fixturenames = fixturenames
        self._e2e = e2e

    def get_closest_marker(self, name: str) -> object | None:
        return object() if name == "e2e" and self._e2e else None


def test_a_process_fixture_without_the_e2e_mark_is_named() -> None:
    items: list[Any] = [
        _Item("t.py::fast", ["tmp_path", "kai_emulator"], e2e=False),
        _Item("t.py::marked", ["kai", "tmp_path"], e2e=True),
        _Item("t.py::unmarked", ["terminal", "kai", "tmp_path"], e2e=False),
    ]
    (line,) = unmarked_process_users(items)
    assert line.startswith("t.py::unmarked (kai: ") and "terminal: " in line


def test_starting_a_process_outside_e2e_fails() -> None:
    # This test is not marked e2e, so conftest's guard is on already; this one nests.
    with refuse_processes("here") as tried:
        with pytest.raises(pytest.fail.Exception, match="here starts a process"):
            subprocess.run([sys.executable, "-c", "pass"], check=False)
        with pytest.raises(pytest.fail.Exception):
            os.system("true")
        with pytest.raises(pytest.fail.Exception):
            trio.run(trio.run_process, [sys.executable, "-c", "pass"])
    assert tried == ["Popen._execute_child", "os.system", "Popen._execute_child"]


@pytest.mark.e2e
def test_an_e2e_test_may_start_processes() -> None:
    done = subprocess.run([sys.executable, "-c", "print('ok')"], capture_output=True, text=True)
    assert done.stdout == "ok\n"
