"""One answer stream: an HTTP response read as SSE, decoded, logged, turned into events.

:class:`EventStream` is what :meth:`KaiClient.send_message` and its siblings
return. It is both an async iterator and an async context manager::

    async for event in client.send_message(chat_id, "hi"): ...
    async with client.send_message(chat_id, "hi") as events:
        async for event in events: ...

Per network read it decodes every complete SSE payload, appends the chunks'
exact bytes to the event log in one call, and only then hands out the events
of that read. ``[DONE]`` ends the stream; a stream that ends without it
raises :class:`~kai_core.exceptions.KaiStreamError` (``stream:cut``) after
every event it brought was delivered.

The response is closed at once when the stream ends, fails, is cancelled,
is closed (``aclose``/``async with``), or is dropped half-read (a ``break``
out of ``async for``): it is a plain object, not an async generator, so
dropping it never leaves a generator for the garbage collector to finalize
(trio warns about those), and the close runs in a trio system task right away.
"""

from __future__ import annotations

import collections
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any, Literal, Protocol

import httpx
import msgspec
import trio

from .assemble import MessageAssembler
from .chunks import decode_chunk
from .events import Event
from .exceptions import KaiError, KaiStreamError, KaiTimeoutError
from .log import LogRecord
from .sse import SSEDecoder

__all__ = ["EventLogSink", "EventStream", "StreamPlan"]

_DONE = b"[DONE]"
_json = msgspec.json.Encoder()


class EventLogSink(Protocol):
    """What the client needs of an event log: :class:`kai_core.log.EventLog` has it."""

    def append(self, records: Sequence[LogRecord]) -> object:
        """Write ``records`` durably, in one transaction."""


class StreamPlan:
    """Everything one streaming exchange needs, prepared just before it starts.

    :param open: sends the request and returns the response (status < 400;
        204 means "no stream"); the caller of ``open`` closes the response.
    :param assembler: folds the chunks into the assistant message.
    :param records: client records to log before the request leaves.
    :param skip: chunks at the start to fold but not to log or hand out
        (a resumed stream replaying what was already delivered).
    """

    __slots__ = ("assembler", "open", "records", "skip")

    def __init__(
        self,
        open: Callable[[], Awaitable[httpx.Response]],
        assembler: MessageAssembler,
        records: Sequence[LogRecord] = (),
        skip: int = 0,
    ) -> None:
        self.open = open
        self.assembler = assembler
        self.records = records
        self.skip = skip


class _Connection:
    """The open response of a stream and what closing it involves.

    Kept apart from :class:`EventStream` so that a dropped stream can hand
    this object to a system task for closing without resurrecting itself.
    """

    __slots__ = ("closed", "reads", "response")

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.reads: AsyncIterator[bytes] | None = None
        self.closed = False

    async def aclose(self) -> None:
        """Close the response; never raises, never waits for the server."""
        if self.closed:
            return
        self.closed = True
        with trio.CancelScope(shield=True):
            reads, self.reads = self.reads, None
            if reads is not None:
                # httpx reads through a chain of async generators; abandoning it
                # half-way leaves httpcore's innermost one for the garbage
                # collector (a ResourceWarning under trio). Resuming it under a
                # cancelled scope runs the chain to its end instead: buffered
                # bytes come out, the next real read raises Cancelled inside it.
                with trio.CancelScope() as drain:
                    drain.cancel()
                    try:
                        for _ in range(10_000):
                            await reads.__anext__()
                    except BaseException:  # noqa: B036 - Cancelled, StopAsyncIteration, errors
                        pass
            try:
                await self.response.aclose()
            except Exception:  # noqa: S110 - closing a broken connection may fail; nothing to do
                pass


class EventStream:
    """The events of one answer (or approval continuation, or resumed stream).

    :param prepare: called with the turn id when the stream starts; returns
        the :class:`StreamPlan` (and may do requests first, e.g. fetch the chat).
    :param chat_id: the chat the log records belong to.
    :param log: where the records go, or None.
    :param max_event_size: bound on one SSE event, see :class:`~kai_core.sse.SSEDecoder`.

    Use it with ``async for``, or as ``async with stream as events``; call
    :meth:`aclose` to stop early. :attr:`assembler` holds the assistant
    message as built so far; :attr:`events_delivered` counts handed-out events.
    Nothing is sent before the first ``__anext__`` or ``__aenter__``.
    """

    def __init__(
        self,
        prepare: Callable[[str], Awaitable[StreamPlan]],
        *,
        chat_id: str,
        log: EventLogSink | None,
        max_event_size: int,
    ) -> None:
        self.chat_id = chat_id
        self.turn = uuid.uuid4().hex
        self.events_delivered = 0
        self.assembler: MessageAssembler | None = None
        self._prepare = prepare
        self._log = log
        self._decoder = SSEDecoder(max_event_size)
        self._queue: collections.deque[Event] = collections.deque()
        self._conn: _Connection | None = None
        self._state = "new"  # new -> opening -> open -> closed
        self._done = False
        self._skip = 0
        # Raised once the events decoded before it have been delivered.
        self._error: BaseException | None = None
        self._token: trio.lowlevel.TrioToken | None = None

    def __repr__(self) -> str:
        return (
            f"<EventStream chat_id={self.chat_id!r} state={self._state} "
            f"events_delivered={self.events_delivered}>"
        )

    # -- protocol ------------------------------------------------------------------

    def __aiter__(self) -> EventStream:
        return self

    async def __aenter__(self) -> EventStream:
        await self._ensure_open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def __anext__(self) -> Event:
        while True:
            if self._queue:
                self.events_delivered += 1
                return self._queue.popleft()
            if self._error is not None:
                error, self._error = self._error, None
                raise error
            if self._state == "new":
                await self._ensure_open()
            elif self._state == "open":
                await self._read()
            else:
                raise StopAsyncIteration

    async def aclose(self) -> None:
        """Stop reading and close the response (logs ``cancelled`` if it was unfinished)."""
        if self._state == "open":
            self._log_client("cancelled", {"events_delivered": self.events_delivered})
            await self._close()
        self._state = "closed"
        self._queue.clear()

    @property
    def finished(self) -> bool:
        """True once ``[DONE]`` arrived: the server completed the answer."""
        return self._done

    def __del__(self) -> None:
        # Dropped half-read (``break`` out of ``async for``): close the response
        # right away in a system task; the log learns the answer was abandoned.
        conn = self._conn
        if conn is None or conn.closed or self._state != "open" or self._token is None:
            return
        self._state = "closed"
        records = self._records("cancelled", {"events_delivered": self.events_delivered})
        try:
            self._token.run_sync_soon(_close_abandoned, conn, self._log, records)
        except trio.RunFinishedError:
            pass

    # -- internals -----------------------------------------------------------------

    async def _ensure_open(self) -> None:
        if self._state != "new":
            return
        self._state = "opening"
        self._token = trio.lowlevel.current_trio_token()
        plan = None
        try:
            plan = await self._prepare(self.turn)
            self.assembler = plan.assembler
            self._skip = plan.skip
            if plan.records and self._log is not None:
                self._log.append(plan.records)
            response = await plan.open()
        except BaseException as exc:
            self._state = "closed"
            if plan is not None and plan.records:
                # The request may have left: say in the log why no answer follows.
                if isinstance(exc, KaiError):
                    self._log_records([self._error_record(exc)])
                elif isinstance(exc, (trio.Cancelled, KeyboardInterrupt)):
                    self._log_client("cancelled", {"events_delivered": 0})
            raise
        self._conn = _Connection(response)
        self._state = "open"
        if response.status_code == 204:
            # Nothing to resume: an empty, finished stream.
            self._done = True
            await self._close()

    async def _read(self) -> None:
        """One network read: decode, log, queue; close as soon as the stream is over."""
        conn = self._conn
        assert conn is not None
        if conn.reads is None:
            conn.reads = conn.response.aiter_bytes()
        try:
            data = await conn.reads.__anext__()
        except StopAsyncIteration:
            if not self._done:
                self._fail(
                    KaiStreamError(
                        f"the stream was cut after {self.events_delivered} events, "
                        "before the answer was complete",
                        code="stream:cut",
                        events_delivered=self.events_delivered,
                    )
                )
            await self._close()
            return
        except httpx.HTTPError as exc:
            self._fail(self._transport_error(exc))
            await self._close()
            assert self._error is not None
            error, self._error = self._error, None
            raise error from exc
        except BaseException:
            # Cancelled, KeyboardInterrupt, ...: the caller stopped the answer.
            self._log_client("cancelled", {"events_delivered": self.events_delivered})
            await self._close()
            raise
        try:
            self._feed(data)
        except BaseException:
            await self._close()
            raise
        if self._done or self._error is not None:
            await self._close()

    def _feed(self, data: bytes) -> None:
        """Decode one read: log its chunks in one append, then queue its events."""
        assembler = self.assembler
        assert assembler is not None
        records: list[LogRecord] = []
        events: list[Event] = []
        try:
            for payload in self._decoder.feed_bytes(data):
                if payload == _DONE:
                    self._done = True
                    break  # anything after [DONE] is not part of the answer
                if not payload.strip():
                    continue
                chunk = decode_chunk(payload)
                if self._skip:
                    # Already delivered before the resume: rebuild state only.
                    self._skip -= 1
                    assembler.feed(chunk)
                    continue
                if self._log is not None:
                    records.append(self._record("server", chunk.type, payload))
                events.extend(assembler.feed(chunk))
        except KaiStreamError as exc:
            exc.events_delivered = self.events_delivered + len(self._queue) + len(events)
            self._error = exc
            if self._log is not None:
                records.append(self._error_record(exc))
        if records and self._log is not None:
            self._log.append(records)
        self._queue.extend(events)

    def _fail(self, error: KaiError) -> None:
        """Log a transport failure; raise it after the queued events."""
        if isinstance(error, KaiStreamError):
            error.events_delivered = self.events_delivered + len(self._queue)
        self._log_records([self._error_record(error)] if self._log is not None else [])
        self._error = error

    def _transport_error(self, exc: httpx.HTTPError) -> KaiError:
        n = self.events_delivered + len(self._queue)
        cause = str(exc) or type(exc).__name__
        if isinstance(exc, httpx.TimeoutException):
            return KaiTimeoutError(
                f"the stream went silent for longer than its read timeout after {n} events",
                code="timeout:stream_read",
                cause=cause,
            )
        return KaiStreamError(
            f"the stream was cut after {n} events, before the answer was complete",
            code="stream:cut",
            cause=cause,
            events_delivered=n,
        )

    async def _close(self) -> None:
        self._state = "closed"
        conn = self._conn
        if conn is not None:
            await conn.aclose()

    # -- log records ---------------------------------------------------------------

    def _record(self, origin: Literal["server", "client"], type_: str, body: bytes) -> LogRecord:
        return LogRecord(chat_id=self.chat_id, turn=self.turn, origin=origin, type=type_, body=body)

    def _records(self, type_: str, body: dict[str, Any]) -> list[LogRecord]:
        if self._log is None:
            return []
        return [self._record("client", type_, _json.encode(body))]

    def _error_record(self, error: KaiError) -> LogRecord:
        body = {"code": error.code, "message": error.message}
        return self._record("client", "stream-error", _json.encode(body))

    def _log_client(self, type_: str, body: dict[str, Any]) -> None:
        self._log_records(self._records(type_, body))

    def _log_records(self, records: list[LogRecord]) -> None:
        if records and self._log is not None:
            self._log.append(records)


def _close_abandoned(conn: _Connection, log: EventLogSink | None, records: list[LogRecord]) -> None:
    """Runs on the trio thread (``run_sync_soon``): close a dropped stream's response."""

    async def close() -> None:
        try:
            if log is not None and records:
                log.append(records)
        except Exception:  # noqa: S110 - nobody is left to tell; the response must still close
            pass
        await conn.aclose()

    try:
        trio.lowlevel.spawn_system_task(close, name="kai: close abandoned stream")
    except RuntimeError:
        pass  # the run is ending; trio closes what is left
