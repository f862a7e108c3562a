"""Shared test helpers: paths to the captured SDK fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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
