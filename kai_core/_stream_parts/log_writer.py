"""Writing a stream's records to the event log, the log first.

Two rules of the log (see ``docs/event-log.md``) meet here:

- Durability: no event reaches the caller before its record is in the log.
  The records of a burst of reads are appended in one call, and only then
  are the burst's events queued (:meth:`LogWriter.commit`, and for a
  :class:`~.pipeline.Burst` :meth:`LogWriter.append_burst` or, in a worker
  thread while the next burst is read, :meth:`LogWriter.write_in_thread`).
- A failing log never stops an answer already on its way: an append that
  fails mid-stream is reported once (``on_error``), logging stops for the
  stream, and the events keep coming (:meth:`LogWriter.append`). Only the
  records written before the request leaves make a failure an error
  (:meth:`LogWriter.append_before_request`): then nothing is sent.

:class:`LogWriter` also makes the records: a server chunk's exact payload,
and the client's own facts (``cancelled``, ``resume``, ``stream-error``) as
JSON, all under the stream's chat id and current turn. With no log, it makes
no client records, and a server record is never asked for.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Sequence
from typing import Any, Protocol, cast

import msgspec
import trio

from ..events import Event
from ..exceptions import KaiError, KaiLogError
from ..records import LogRecord
from .pipeline import Burst, ChunkSink, chunk_sink

__all__ = ["EventLogSink", "LogErrorHandler", "LogWriter"]

_json = msgspec.json.Encoder()


class _NoWait:
    """A limiter for ``trio.to_thread.run_sync`` that never waits.

    A stream has at most one commit in flight by construction (the next one
    starts after it returned), so there is nothing to limit; and unlike a
    :class:`trio.CapacityLimiter`, acquiring it is no checkpoint, so the job
    reaches a worker thread before the calling task first waits.
    """

    async def acquire_on_behalf_of(self, borrower: object) -> None:
        return None

    def release_on_behalf_of(self, borrower: object) -> None:
        return None


_ONE_AT_A_TIME = cast("trio.CapacityLimiter", _NoWait())

LogErrorHandler = Callable[[KaiLogError], None]
"""Told (once per stream) that the log failed mid-stream and is no longer written."""


class EventLogSink(Protocol):
    """What the client needs of an event log: :class:`kai_core.log.EventLog` has it."""

    def append(self, records: Sequence[LogRecord]) -> object:
        """Write ``records`` durably, in one transaction."""


class LogWriter:
    """The records of one stream, and their appends to ``sink``.

    :param sink: the log, or None (then nothing is written).
    :param chat_id: the chat the records belong to.
    :param turn: the exchange they belong to (a resumed stream starts a new one:
        assign :attr:`turn`).
    :param on_error: told when an append fails mid-stream.

    :attr:`sink` turns None when an append failed; :attr:`error` is that failure.
    :attr:`threaded` says whether a burst may be committed in a worker thread
    (the sink has ``append_chunks``, see :func:`~.pipeline.chunk_sink`).
    """

    __slots__ = (
        "_chunks",
        "_on_error",
        "chat_id",
        "committing",
        "error",
        "sink",
        "turn",
    )

    def __init__(
        self,
        sink: EventLogSink | None,
        chat_id: str,
        turn: str,
        on_error: LogErrorHandler | None = None,
    ) -> None:
        self.sink = sink
        self.chat_id = chat_id
        self.turn = turn
        self.error: KaiLogError | None = None
        self._on_error = on_error
        self._chunks: ChunkSink | None = chunk_sink(sink)
        # A commit is in flight: set on the trio thread, cleared by the worker
        # thread as soon as SQLite returned (before the trio thread hears of it).
        self.committing = False

    @property
    def threaded(self) -> bool:
        """Whether :meth:`write_in_thread` may be used (logging on, a thread-safe sink)."""
        return self.sink is not None and self._chunks is not None

    def new_burst(self) -> Burst:
        """An empty burst of the current turn."""
        return Burst(self.turn)

    # -- records -------------------------------------------------------------------

    def server(self, type_: str, payload: bytes) -> LogRecord:
        """The record of a server chunk: its wire type and exact payload (hot path)."""
        return LogRecord(
            chat_id=self.chat_id, turn=self.turn, origin="server", type=type_, body=payload
        )

    def client(self, type_: str, body: dict[str, Any]) -> list[LogRecord]:
        """The record of a client fact, ``body`` as JSON; none when nothing is logged."""
        if self.sink is None:
            return []
        return [self._client(type_, _json.encode(body))]

    def stream_error(self, error: KaiError) -> list[LogRecord]:
        """The ``stream-error`` record of ``error``; none when nothing is logged."""
        if self.sink is None:
            return []
        body = {"code": error.code, "message": error.message}
        return [self._client("stream-error", _json.encode(body))]

    def _client(self, type_: str, body: bytes) -> LogRecord:
        return LogRecord(
            chat_id=self.chat_id, turn=self.turn, origin="client", type=type_, body=body
        )

    # -- appends -------------------------------------------------------------------

    def append_before_request(self, records: Sequence[LogRecord]) -> None:
        """Append the records of the question, before the request leaves.

        :raises KaiLogError: the log cannot record the question: nothing is to be sent.
        """
        if records and self.sink is not None:
            self.sink.append(records)

    def append(self, records: Sequence[LogRecord]) -> None:
        """Append once the request has left: a failure stops logging, not the answer."""
        sink = self.sink
        if sink is None or not records:
            return
        try:
            sink.append(records)
        except KaiLogError as error:
            self._stop(error)

    def _stop(self, error: KaiLogError) -> None:
        """The log failed mid-stream: stop logging, tell ``on_error`` (once)."""
        self.sink = None
        self._chunks = None
        self.error = error
        if self._on_error is not None:
            self._on_error(error)

    def log(self, type_: str, body: dict[str, Any]) -> None:
        """Append the record of a client fact (see :meth:`client`, :meth:`append`)."""
        self.append(self.client(type_, body))

    def commit(
        self, records: Sequence[LogRecord], events: list[Event], queue: collections.deque[Event]
    ) -> None:
        """Append a burst's records in one call, then queue its events: the log first."""
        self.append(records)
        queue.extend(events)

    # -- bursts --------------------------------------------------------------------

    def _write(self, burst: Burst) -> None:
        """Append a burst's records, in one call; any thread when the sink has ``append_chunks``."""
        chunks = self._chunks
        if chunks is not None:
            # The stream checked every payload as UTF-8 (Utf8Check): not decoded again;
            # and its decoder knows whether one has a newline: not searched again.
            chunks.append_chunks(
                self.chat_id,
                burst.turn,
                burst.types,
                burst.bodies,
                burst.tail,
                utf8_checked=True,
                newline_free=burst.newline_free,
            )
        elif self.sink is not None:
            self.sink.append(burst.records(self.chat_id))

    def append_burst(self, burst: Burst) -> None:
        """Append a burst's records on this thread: a failure stops logging, not the answer."""
        if self.sink is None or not (burst.bodies or burst.tail):
            return
        try:
            self._write(burst)
        except KaiLogError as error:
            self._stop(error)

    async def write_in_thread(self, burst: Burst) -> None:
        """:meth:`append_burst` in a worker thread (see :attr:`threaded`), at most one at a time.

        Not cancellable once started: run it shielded (the thread cannot be
        stopped). A failure is handled here, on the trio thread.
        """
        if not self.threaded or not (burst.bodies or burst.tail):
            return
        self.committing = True
        try:
            await trio.to_thread.run_sync(self._write_in_worker, burst, limiter=_ONE_AT_A_TIME)
        except KaiLogError as error:
            self._stop(error)
        finally:
            self.committing = False

    def _write_in_worker(self, burst: Burst) -> None:
        try:
            self._write(burst)
        finally:
            self.committing = False  # seen by the reading at once, not when trio is told
