"""Start-up stays cheap (issue 16): what ``import kai_core.client`` and
``kai --version`` load, checked in fresh interpreters.

Timings are the benchmark's job (``bench/bench_startup.py``); these tests pin
the imports that made the difference, so that a new eager import fails here
instead of slowing every program that only imports the client.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.e2e  # fresh interpreters and the real console scripts

HEAVY = ("httpx", "trio", "hypercorn", "h2", "sqlite3", "starlette", "click", "prompt_toolkit")
"""Packages (top-level names) ``import kai_core.client`` must not load."""


def loaded_after(code: str) -> set[str]:
    """The top-level packages in ``sys.modules`` after a fresh interpreter runs ``code``."""
    probe = (
        code
        + "\nimport json, sys\nprint(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_importing_the_client_loads_no_network_stack_or_database() -> None:
    loaded = loaded_after("import kai_core.client")
    assert sorted(loaded & set(HEAVY)) == []


def test_the_client_module_still_offers_event_stream() -> None:
    # EventStream comes on first use (PEP 562), the same class as the stream's.
    from kai_core import client
    from kai_core._stream import EventStream

    assert client.EventStream is EventStream
    with pytest.raises(AttributeError):
        _ = client.NoSuchName  # type: ignore[attr-defined]


def test_making_a_client_loads_its_transport_then() -> None:
    # The deferred imports come in with the first client, and it works as before.
    loaded = loaded_after(
        "from kai_core.client import KaiClient\n"
        "c = KaiClient('token-123456789', 'https://connection.keboola.com', 'https://kai.example')\n"
        "assert repr(c) == \"KaiClient(base_url='https://kai.example', backend=None)\", repr(c)\n"
    )
    assert {"httpx", "trio"} <= loaded
    assert sorted(loaded & {"hypercorn", "h2", "starlette", "sqlite3"}) == []
