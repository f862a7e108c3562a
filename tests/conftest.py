"""Shared fixtures: the captured SDK fixtures, and the fixtures that start processes.

``kai`` runs the real ``kai`` CLI, ``terminal`` runs it on a pseudo-terminal,
``children`` holds ``kai-shell`` processes on one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

from .cli_common import Kai, kai_fixture
from .pty_support import Terminal

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
