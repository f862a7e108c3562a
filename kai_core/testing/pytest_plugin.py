"""pytest fixtures that run the emulated Kai backend inside your trio tests.

Installed with ``kai`` (entry point ``pytest11: kai``); needs pytest-trio.

Fixtures:

``kai_emulator``
    A running :class:`~kai_core.testing.Emulator` on a free loopback port,
    started in the test's trio run and stopped after it. Options go to
    :func:`~kai_core.testing.open_emulator`; set them per test with the
    ``kai_emulator`` marker, or for a whole module/conftest by overriding the
    ``kai_emulator_options`` fixture::

        @pytest.mark.kai_emulator(backend="assistant", token="secret")
        async def test_approval(kai_emulator): ...

        @pytest.fixture
        def kai_emulator_options():
            return {"backend": "assistant"}

``kai_client``
    A connected :class:`kai_core.client.KaiClient` pointed at ``kai_emulator``.

Example::

    from kai_core.testing import Say

    async def test_greeting(kai_emulator, kai_client):
        kai_emulator.script(lambda text: [Say("Hi there.")], trigger="greet")
        chat_id, answer = await kai_client.chat("greet me")
        assert answer == "Hi there."
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .server import Emulator

# The emulator's web stack (starlette, hypercorn) is imported when a kai
# fixture is first used, not when pytest loads this plugin: the plugin loads
# in every test run of any project that has kai installed.

__all__ = ["kai_client", "kai_emulator", "kai_emulator_options"]


def pytest_configure(config: pytest.Config) -> None:
    """Declare the ``kai_emulator`` marker (for ``--strict-markers``)."""
    config.addinivalue_line(
        "markers",
        "kai_emulator(**options): options for the kai_emulator fixture (see open_emulator)",
    )


@pytest.fixture
def kai_emulator_options() -> dict[str, Any]:
    """Keyword arguments for :func:`open_emulator`; override to change every test's default."""
    return {}


@pytest.fixture
async def kai_emulator(
    request: pytest.FixtureRequest, kai_emulator_options: dict[str, Any]
) -> AsyncIterator[Emulator]:
    """A running emulated Kai backend (options: ``kai_emulator_options``, then the marker)."""
    from .._extras import require

    require("emulator", "the kai_emulator fixture")
    from .server import open_emulator

    options = dict(kai_emulator_options)
    marker = request.node.get_closest_marker("kai_emulator")
    if marker is not None:
        options.update(marker.kwargs)
    async with open_emulator(**options) as emulator:
        yield emulator


@pytest.fixture
async def kai_client(kai_emulator: Emulator) -> AsyncIterator[Any]:
    """A connected ``KaiClient`` talking to ``kai_emulator`` (its ``base_url``, no discovery)."""
    from kai_core.client import KaiClient  # imported late: tests not using it need not load it

    async with KaiClient(
        storage_api_token=kai_emulator.token,
        storage_api_url=kai_emulator.storage_api_url,
        base_url=kai_emulator.base_url,
        backend=kai_emulator.backend,
    ) as client:
        yield client
