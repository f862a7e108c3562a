"""The two tiers of the test suite: fast tests, and ``e2e`` tests that start processes.

``uv run pytest -m "not e2e"`` is the fast tier: everything in one Python
process (the emulator, raw servers and clients in the test's trio run). A
test that starts a process (the real ``kai`` or ``kai-shell``, ``kai serve``,
a browser, a virtualenv install, mypy) is marked ``e2e``. ``conftest.py``
enforces the marker twice:

* at collection, a test not marked ``e2e`` that asks for one of
  :data:`PROCESS_FIXTURES` stops the run (:func:`unmarked_process_users`);
* while a test not marked ``e2e`` runs (its setup, call and teardown), starting
  a process fails it (:func:`refuse_processes`), whatever starts it:
  ``subprocess``, ``trio.run_process``, pexpect, ``os.fork``, ``os.system``.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

__all__ = ["PROCESS_FIXTURES", "E2E", "refuse_processes", "unmarked_process_users"]

E2E = "e2e"

PROCESS_FIXTURES: dict[str, str] = {
    "kai": "runs the real kai CLI (cli_common.Kai)",
    "terminal": "runs kai on a pseudo-terminal (pty_support.Terminal)",
    "children": "kai-shell processes on a pseudo-terminal (pty_support.spawn)",
    "lean_venv": "a virtualenv with kai installed (test_packaging)",
    "installed": "pip-installs the example plugin (test_plugins_example)",
    "on_path": "the example plugin installed (test_plugins_example)",
    "mypy_output": "runs mypy (test_typing)",
}
"""Fixtures that start a process, and what they start."""


def unmarked_process_users(items: Iterable[pytest.Item]) -> list[str]:
    """One line per test not marked ``e2e`` that uses a fixture of :data:`PROCESS_FIXTURES`."""
    wrong = []
    for item in items:
        if item.get_closest_marker(E2E) is not None:
            continue
        used = sorted(set(getattr(item, "fixturenames", ())) & PROCESS_FIXTURES.keys())
        if used:
            why = "; ".join(f"{name}: {PROCESS_FIXTURES[name]}" for name in used)
            wrong.append(f"{item.nodeid} ({why})")
    return wrong


# Every way a test here could start a process ends in one of these.
# (subprocess.Popen covers trio.run_process/open_process and asyncio; pexpect
# forks through pty.fork, i.e. os.forkpty or os.fork.)
_SPAWNERS: list[tuple[Any, str]] = [
    (subprocess.Popen, "_execute_child"),
    (os, "fork"),
    (os, "forkpty"),
    (os, "posix_spawn"),
    (os, "posix_spawnp"),
    (os, "system"),
]


@contextmanager
def refuse_processes(nodeid: str) -> Iterator[list[str]]:
    """While inside, starting a process raises ``pytest.fail``; yields what was tried.

    The caller fails the test when the list is not empty afterwards, in case
    the code under test swallowed the failure.
    """
    tried: list[str] = []

    def refuse(name: str) -> Callable[..., Any]:
        def refused(*args: Any, **kwargs: Any) -> Any:
            tried.append(name)
            pytest.fail(
                f"{nodeid} starts a process ({name}) but is not marked e2e: "
                "mark it (pytestmark = pytest.mark.e2e) or keep it in one process",
                pytrace=True,
            )

        return refused

    saved = [
        (owner, attr, getattr(owner, attr)) for owner, attr in _SPAWNERS if hasattr(owner, attr)
    ]
    for owner, attr, _ in saved:
        name = f"{getattr(owner, '__name__', owner)}.{attr}"
        setattr(owner, attr, refuse(name))
    try:
        yield tried
    finally:
        for owner, attr, original in saved:
            setattr(owner, attr, original)
