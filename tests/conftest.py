"""Shared fixtures: the captured SDK fixtures, the process-running fixtures, the tiers.

``kai``, ``terminal`` and ``children`` start processes, so the tests using
them are marked ``e2e``; ``tiers.py`` says how that is enforced (the hooks at
the end of this file).
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from pathlib import Path

import pexpect
import pytest

from .cli_common import Kai, kai_fixture
from .pty_support import Terminal
from .tiers import refuse_processes, unmarked_process_users

# Installed third-party kai plugins must never load inside the test suite.
os.environ.setdefault("KAI_LOAD_PLUGINS", "")

FIXTURES = Path(__file__).resolve().parent.parent.parent / "shared" / "fixtures"
if not FIXTURES.is_dir():  # CI lays shared/ beside the clone
    FIXTURES = Path(os.environ.get("KAI_FIXTURES", "/work/shared/fixtures"))


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """The folder of SSE bytes captured from the real AI SDK."""
    return FIXTURES


def fixture_payloads(name: str) -> list[str]:
    """The ``data:`` payloads of a fixture file, ``[DONE]`` excluded."""
    text = (FIXTURES / name).read_text()
    return [
        line[6:] for line in text.splitlines() if line.startswith("data: ") and line[6:] != "[DONE]"
    ]


# -- fixtures that start processes (tests using them are marked e2e) -------------------------


@pytest.fixture
def kai(tmp_path: Path) -> Iterator[Kai]:
    """Runs the real ``kai`` CLI (``cli_common.Kai``); no token in any file it left behind."""
    yield from kai_fixture(tmp_path)


@pytest.fixture
def terminal(kai: Kai) -> Iterator[Terminal]:
    """``kai`` on a pseudo-terminal; the transcripts checked, the processes killed at the end."""
    with Terminal.checked(kai) as term:
        yield term


@pytest.fixture
def children() -> Iterator[list[pexpect.spawn]]:
    """Spawned ``kai-shell`` processes (append them), killed if a test fails half-way."""
    spawned: list[pexpect.spawn] = []
    yield spawned
    for child in spawned:
        if child.isalive():
            child.terminate(force=True)


# -- the tiers: fast, and e2e (tiers.py) ------------------------------------------------------


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Stop the run when a test not marked e2e uses a fixture that starts a process."""
    wrong = unmarked_process_users(items)
    if wrong:
        raise pytest.UsageError(
            "tests using a process-starting fixture must be marked e2e:\n  " + "\n  ".join(wrong)
        )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    return (yield from _fast_tier_phase(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    return (yield from _fast_tier_phase(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    return (yield from _fast_tier_phase(item))


def _fast_tier_phase(item: pytest.Item) -> Generator[None, None, None]:
    """Run one phase of a test; if it is not marked e2e, it may not start a process."""
    if item.get_closest_marker("e2e") is not None:
        return (yield)
    with refuse_processes(item.nodeid) as tried:
        result = yield
    if tried:
        pytest.fail(f"{item.nodeid} tried to start a process ({', '.join(tried)}); mark it e2e")
    return result
