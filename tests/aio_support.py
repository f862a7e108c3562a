"""Helpers for the asyncio tests: the emulator in a trio thread of its own.

The tests themselves are plain functions that call ``asyncio.run``: the
emulator (hypercorn on trio) serves from another thread, over loopback, as a
real server would.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import trio

from kai_core.testing import Emulator, open_emulator

T = TypeVar("T")


class EmulatorThread:
    """A running emulator and a way to touch it from its own thread."""

    def __init__(self, emulator: Emulator, token: trio.lowlevel.TrioToken) -> None:
        self.emulator = emulator
        self.token = token

    def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the emulator's trio thread (its state is not thread-safe)."""
        return trio.from_thread.run_sync(fn, *args, trio_token=self.token)

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments pointing a ``KaiClient`` at this emulator."""
        emulator = self.emulator
        return {
            "storage_api_token": emulator.token,
            "storage_api_url": emulator.storage_api_url,
            "base_url": emulator.base_url,
            "backend": emulator.backend,
        }


@contextmanager
def emulator_thread(**options: Any) -> Iterator[EmulatorThread]:
    """Serve the emulator (options of ``open_emulator``) from a trio thread during the block."""
    handed: queue.Queue[EmulatorThread | BaseException] = queue.Queue()
    stop: list[trio.Event] = []

    async def serve() -> None:
        stop.append(trio.Event())
        async with open_emulator(**options) as emulator:
            handed.put(EmulatorThread(emulator, trio.lowlevel.current_trio_token()))
            await stop[0].wait()

    def main() -> None:
        try:
            trio.run(serve)
        except BaseException as exc:
            handed.put(exc)

    thread = threading.Thread(target=main, name="emulator", daemon=True)
    thread.start()
    got = handed.get(timeout=60)
    if isinstance(got, BaseException):
        raise got
    try:
        yield got
    finally:
        got.token.run_sync_soon(stop[0].set)
        thread.join(30)
