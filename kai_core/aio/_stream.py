"""The asyncio face of a stream read by trio: :class:`EventStream`.

A task of the client's trio thread reads the trio stream (the client's
:class:`kai_core.EventStream`, or a session's answer) and hands its events
through a :class:`~kai_core.aio._portal.Pipe`; every event it hands over was
logged first, by the trio stream, before it left the trio thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import TracebackType
from typing import TYPE_CHECKING

import trio

from ._portal import ClosedError, LoopGone, Pipe, Portal, settled

if TYPE_CHECKING:
    from .._stream import EventStream as TrioEventStream
    from ..assemble import MessageAssembler
    from ..events import Event
    from ..exceptions import KaiLogError

__all__ = ["EventStream"]


class _Signal:
    """What the trio side says besides events: opened, ended, failed."""

    __slots__ = ("error", "name")

    def __init__(self, name: str, error: BaseException | None = None) -> None:
        self.name = name
        self.error = error


_OPENED = _Signal("opened")
_END = _Signal("end")


class _Reader:
    """The trio task that reads one stream into a pipe (all its methods run in trio)."""

    def __init__(self, source: AsyncIterator[Event], pipe: Pipe[Event], opens: bool) -> None:
        self.source = source
        self.pipe = pipe
        self.opens = opens
        self.scope = trio.CancelScope()

    async def run(self, ended: asyncio.Future[None], portal: Portal) -> None:
        source, pipe = self.source, self.pipe
        try:
            with self.scope:
                if self.opens:
                    await source.__aenter__()  # type: ignore[attr-defined]
                    pipe.end(_OPENED)
                put = pipe.put
                async for event in source:
                    if put(event):
                        await pipe.room()
                pipe.end(_END)
        except trio.Cancelled:
            pipe.end(_Signal("failed", ClosedError("the client was closed during this stream")))
            raise
        except LoopGone:
            pass
        except BaseException as exc:
            pipe.end(_Signal("failed", exc))
        finally:
            with trio.CancelScope(shield=True):
                await source.aclose()  # type: ignore[attr-defined]
            portal.notify(_done, ended)

    def stop(self, delivered: int) -> None:
        """The consumer stopped after ``delivered`` events: close (and log ``cancelled``)."""
        if hasattr(self.source, "events_delivered"):
            # What the log's ``cancelled`` record counts: events the caller saw.
            self.source.events_delivered = delivered
        self.scope.cancel()


def _done(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class EventStream:
    """The events of one answer, under asyncio: ``async for`` it, or hold it with ``async with``.

    The same lazy, single-use stream as :class:`kai_core.EventStream`: nothing
    is sent before the first ``__anext__`` or ``__aenter__``; leaving the
    ``async with`` block, :meth:`aclose`, ``break`` (the stream dropped) or
    cancelling the consuming task closes the response and logs
    ``cancelled`` if the answer was unfinished. After a cancellation the
    ``CancelledError`` reaches the caller only once the response is closed.
    Errors are the trio stream's, raised after the events before them.
    """

    def __init__(self, portal: Portal, source: AsyncIterator[Event]) -> None:
        self._portal = portal
        self._source = source
        self._pipe: Pipe[Event] | None = None
        self._reader: _Reader | None = None
        self._ended: asyncio.Future[None] | None = None
        self._state = "new"  # new -> open -> closed
        self.events_delivered = 0
        """Events handed to the caller so far."""

    def __repr__(self) -> str:
        return f"<kai_core.aio.EventStream state={self._state} events_delivered={self.events_delivered}>"

    # -- what the trio stream knows ------------------------------------------------

    def _trio(self) -> TrioEventStream | None:
        from .._stream import EventStream as TrioEventStream

        source = self._source
        return source if isinstance(source, TrioEventStream) else None

    @property
    def chat_id(self) -> str | None:
        """The chat this stream belongs to."""
        stream = self._trio()
        return stream.chat_id if stream is not None else None

    @property
    def assembler(self) -> MessageAssembler | None:
        """The assistant message as built so far (read it once the stream has ended)."""
        stream = self._trio()
        return stream.assembler if stream is not None else None

    @property
    def finished(self) -> bool:
        """True once ``[DONE]`` arrived: the server completed the answer."""
        stream = self._trio()
        return stream.finished if stream is not None else False

    @property
    def resumes(self) -> int:
        """Times a cut stream was resumed."""
        stream = self._trio()
        return stream.resumes if stream is not None else 0

    @property
    def log_error(self) -> KaiLogError | None:
        """The log failure, if logging stopped during this stream."""
        stream = self._trio()
        return stream.log_error if stream is not None else None

    # -- protocol ------------------------------------------------------------------

    def __aiter__(self) -> EventStream:
        return self

    async def __aenter__(self) -> EventStream:
        if self._state == "new":
            pipe = await self._start(opens=True)
            try:
                await pipe.wait()
            except asyncio.CancelledError:
                await self._stop()
                raise
            first = pipe.items.popleft()
            if first is not _OPENED:
                self._state = "closed"
                assert isinstance(first, _Signal) and first.error is not None
                raise first.error
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def __anext__(self) -> Event:
        pipe = self._pipe
        if pipe is None:
            if self._state != "new":
                raise StopAsyncIteration
            pipe = await self._start(opens=False)
        items = pipe.items
        while True:
            if items:
                item = items.popleft()
                if pipe.paused:
                    pipe.took()
                if item.__class__ is _Signal:
                    self._signal(item)
                    continue
                self.events_delivered += 1
                return item  # type: ignore[no-any-return]
            if self._state != "open":
                raise StopAsyncIteration
            try:
                await pipe.wait()
            except asyncio.CancelledError:
                await self._stop()
                raise

    async def aclose(self) -> None:
        """Stop reading and close the response (logs ``cancelled`` if it was unfinished)."""
        if self._state == "open":
            await self._stop()
        self._state = "closed"

    def __del__(self) -> None:
        # Dropped half-read (``break`` out of ``async for``): the trio side closes
        # the response right away and logs ``cancelled``.
        reader, ended = self._reader, self._ended
        if reader is not None and ended is not None and not ended.done():
            self._portal.run_soon(reader.stop, self.events_delivered)

    # -- internals -----------------------------------------------------------------

    async def _start(self, *, opens: bool) -> Pipe[Event]:
        portal = self._portal
        loop = portal.bind()
        portal.start()
        self._state = "open"
        pipe = self._pipe = Pipe(portal, loop)
        reader = self._reader = _Reader(self._source, pipe, opens)
        ended = self._ended = loop.create_future()
        portal.submit(lambda: reader.run(ended, portal))
        return pipe

    def _signal(self, item: _Signal) -> None:
        if item is _OPENED:
            return
        self._state = "closed"
        if item.error is not None:
            raise item.error
        raise StopAsyncIteration

    async def _stop(self) -> None:
        """Close the trio side and wait until it has (the response closed, the log told)."""
        self._state = "closed"
        reader, ended = self._reader, self._ended
        if reader is None or ended is None:
            return
        if not ended.done():
            self._portal.run_soon(reader.stop, self.events_delivered)
            await settled(ended)
        if self._pipe is not None:
            self._pipe.items.clear()
