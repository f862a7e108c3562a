"""Writing a stream's records to the event log, the log first.

Two rules of the log (see ``docs/event-log.md``) meet here:

- Durability: no event reaches the caller before its record is in the log.
  The records of a burst of reads are appended in one call, and only then
  are the burst's events queued (:meth:`LogWriter.commit`).
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
from typing import Any, Protocol

import msgspec

from ..events import Event
from ..exceptions import KaiError, KaiLogError
from ..records import LogRecord

__all__ = ["EventLogSink", "LogErrorHandler", "LogWriter"]

_json = msgspec.json.Encoder()

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
    """

    __slots__ = ("_on_error", "chat_id", "error", "sink", "turn")

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
            self.sink = None
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
