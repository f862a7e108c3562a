""":class:`LoopThread`: drive asyncio code from plain code (Streamlit's script thread, a REPL).

Plain code cannot ``await``; ``asyncio.run`` gives each call a new loop, so a
client (which belongs to one loop) could not outlive the call, and it refuses
to run where a loop already runs (a notebook). A :class:`LoopThread` is one
asyncio loop running in a daemon thread: its :meth:`~LoopThread.run` and
:meth:`~LoopThread.iterate` block the calling thread until the loop answers,
and the client and the streams opened on it live as long as it does (e.g. a
stream waiting for an approval between two runs of a Streamlit script).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Coroutine, Iterator
from types import TracebackType
from typing import Any, TypeVar

__all__ = ["LoopThread"]

T = TypeVar("T")


class LoopThread:
    """An asyncio event loop in a thread of its own, for code that cannot ``await``.

    ::

        loop = LoopThread()
        client = loop.run(open_client())          # created on loop's thread
        for event in loop.iterate(client.send_message(chat_id, "Hi")):
            print(event)
        loop.run(client.close())
        loop.close()

    Calls from several threads are fine (each waits for its own result).
    """

    def __init__(self, name: str = "kai-aio-loop") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, main: Coroutine[Any, Any, T]) -> T:
        """Run ``main`` on the loop and return its result (or raise its exception)."""
        return asyncio.run_coroutine_threadsafe(main, self.loop).result()

    def iterate(self, items: AsyncIterator[T]) -> Iterator[T]:
        """The items of ``items``, each awaited on the loop.

        Stopping early leaves ``items`` open (close it with ``run(items.aclose())``):
        a stream can then be read on later.
        """
        while True:
            try:
                yield self.run(_next(items))
            except StopAsyncIteration:
                return

    def close(self) -> None:
        """Stop the loop and end its thread (close the clients on it first)."""
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()

    def __enter__(self) -> LoopThread:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


async def _next(items: AsyncIterator[T]) -> T:
    step: Awaitable[T] = items.__anext__()
    return await step
