"""kai_core.aio: the kai client for asyncio code (asyncio.run, FastAPI, Jupyter, Streamlit).

The same client as :mod:`kai_core` (same constructor, methods, events,
exceptions and event log), awaitable under asyncio::

    import asyncio
    from kai_core.aio import KaiClient

    async def main():
        async with KaiClient(token, url, base_url=...) as client:
            async for event in client.send_message(client.new_chat_id(), "Hello!"):
                if event.type == "text":
                    print(event.text, end="")

    asyncio.run(main())

The trio client runs in a thread of its own per client; see
``docs/asyncio.md`` for the design and its costs. Every other public name of
:mod:`kai_core` (events, exceptions, ``EventLog``, ``SSEStreamParser``, ...)
is importable from here too, so code written for kai-client runs with its
import changed from ``kai_client`` to ``kai_core.aio``. ``import kai_core``
never imports this module (nor asyncio).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

import kai_core

# The asyncio versions; every other name comes from kai_core itself.
_OWN: dict[str, str] = {
    "KaiClient": "_client",
    "EventStream": "_stream",
    "Session": "_session",
    "LoopThread": "_sync",
}

__all__ = sorted(set(kai_core.__all__) | set(_OWN))


def __getattr__(name: str) -> Any:
    module = _OWN.get(name)
    if module is not None:
        value = getattr(importlib.import_module(f"kai_core.aio.{module}"), name)
    elif name in kai_core.__all__:
        value = getattr(kai_core, name)
    else:
        raise AttributeError(f"module 'kai_core.aio' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:
    from kai_core import *  # noqa: F403

    from ._client import KaiClient as KaiClient
    from ._session import Session as Session
    from ._stream import EventStream as EventStream
    from ._sync import LoopThread as LoopThread
