"""Bursts, and committing one while the next is read.

A stream reads the answer in *bursts* (a read and the reads already waiting
after it), appends each burst's records to the log in one transaction, and
only then hands out the burst's events (the durability rule, see
``docs/event-log.md``). The commit mostly waits for the disk (SQLite
releases the GIL while it writes and fsyncs), so :func:`commit_overlapped`
runs it in a worker thread and meanwhile reads and decodes the next burst on
the trio thread:

- a burst's events are queued only after *its* commit returned;
- at most one commit is in flight, and at most one burst is read ahead
  (only bytes already waiting on the socket: the events of a committed
  burst never wait for the network);
- the commit runs inside a nursery owned by the call, shielded: a
  cancellation while it runs waits for it to return (a thread cannot be
  interrupted, and what was read must be in the log before ``cancelled``),
  then goes on as usual;
- a failing append stops logging for the stream, reported once, as before.

:class:`Burst` holds what one burst brought: its server chunks as the
types and payloads one log frame is built from (no record object per
chunk), the client records after them, its events, and what ended it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import trio

from ..events import Event
from ..records import LogRecord

__all__ = [
    "Burst",
    "ChunkSink",
    "Committer",
    "chunk_sink",
    "commit_overlapped",
    "may_wait_for_threads",
]

_INF = float("inf")


class Committer(Protocol):
    """What :func:`commit_overlapped` needs of the stream's log writer
    (:class:`~.log_writer.LogWriter` has it)."""

    async def write_in_thread(self, burst: Burst) -> None:
        """Commit ``burst`` in a worker thread; a log failure is handled inside."""


class ChunkSink(Protocol):
    """A log that takes a burst of chunks as they were read, from any thread.

    :meth:`kai_core.log.EventLog.append_chunks` is one. A sink whose class has
    no ``append_chunks`` gets records through ``append``, on the trio thread.
    """

    def append_chunks(
        self,
        chat_id: str,
        turn: str,
        types: list[str],
        bodies: list[bytes],
        then: Sequence[LogRecord] = (),
        *,
        utf8_checked: bool = False,
        newline_free: bool = False,
    ) -> object:
        """Write the chunks, then ``then``, durably in one transaction; thread-safe."""


def chunk_sink(sink: object) -> ChunkSink | None:
    """``sink`` when its class has ``append_chunks``, else None.

    Looked up on the class, not the object: a wrapper that forwards unknown
    attributes (:class:`kai_core.observe.ObservedLog`, which shows every record
    to observers) must keep getting ``append``. So must a subclass that
    overrides ``append`` without overriding ``append_chunks`` beside it (it
    wants to see every append).
    """
    mro = type(sink).__mro__
    chunks = next((c for c in mro if "append_chunks" in vars(c)), None)
    append = next((c for c in mro if "append" in vars(c)), None)
    if chunks is None or not callable(vars(chunks)["append_chunks"]):
        return None
    if append is not None and append is not chunks and issubclass(append, chunks):
        return None  # ``append`` overridden below ``append_chunks``
    return sink  # type: ignore[return-value]


class Burst:
    """What one burst of reads brought.

    :attr:`types` and :attr:`bodies`: its server chunks (wire type, exact
    payload), logged as one frame (:attr:`newline_free`: no body has a
    newline, as the SSE decoder knows); :attr:`tail`: client records logged after
    them (a ``stream-error``); :attr:`events`: what the caller gets once they
    are committed; :attr:`size`: bytes read. :attr:`ending` is what stopped
    the reading (None: the burst was complete), :attr:`kind` says which:
    ``"mismatch"`` (the server waits for what this client cannot send),
    ``"ended"`` (the body ended or failed), ``"stopped"`` (cancelled or
    interrupted) or ``"failed"`` (decoding raised). :attr:`done` and
    :attr:`error` keep what decoding a burst read ahead found (``[DONE]``, a
    malformed chunk) until the burst is taken up.
    """

    __slots__ = (
        "bodies",
        "done",
        "ending",
        "error",
        "events",
        "kind",
        "newline_free",
        "size",
        "tail",
        "turn",
        "types",
    )

    def __init__(self, turn: str) -> None:
        self.turn = turn
        self.types: list[str] = []
        self.bodies: list[bytes] = []
        self.tail: list[LogRecord] = []
        self.events: list[Event] = []
        self.size = 0
        self.newline_free = True  # no payload has a newline (see SSEDecoder.multiline)
        self.kind = ""
        self.ending: BaseException | None = None
        self.done = False
        self.error: BaseException | None = None

    def end(self, kind: str, ending: BaseException) -> None:
        """What stopped the reading (see the class)."""
        self.kind = kind
        self.ending = ending

    @property
    def empty(self) -> bool:
        """Nothing to log, hand out or settle."""
        return not (self.bodies or self.tail or self.events) and self.ending is None

    def records(self, chat_id: str) -> list[LogRecord]:
        """Its records, for a sink that takes only ``append``."""
        turn = self.turn
        out = [
            LogRecord(chat_id=chat_id, turn=turn, origin="server", type=kind, body=body)
            for kind, body in zip(self.types, self.bodies, strict=True)
        ]
        out += self.tail
        return out


def may_wait_for_threads() -> bool:
    """False under a clock that jumps ahead when every task waits (trio's
    ``MockClock`` with an ``autojump_threshold``, in tests): it cannot see a
    worker thread working, so waiting for a commit there would skip time
    (timeouts firing early). Commits then stay on the trio thread."""
    threshold = getattr(trio.lowlevel.current_clock(), "autojump_threshold", _INF)
    return bool(threshold == _INF)


async def commit_overlapped(
    writer: Committer, burst: Burst, read_ahead: Callable[[], Awaitable[None]]
) -> None:
    """Append ``burst`` in a worker thread while ``read_ahead`` runs on the trio thread.

    Returns once both are over: the burst is then committed (or logging
    stopped, reported through the writer), never before. ``read_ahead``
    should not raise (a stream keeps what ended its reading in the burst it
    reads); if it does, its exception is raised once the commit returned.

    :raises Exception: what the sink raised other than ``KaiLogError`` (a bug).
    """
    failures: list[BaseException] = []

    async def ahead() -> None:
        try:
            await read_ahead()
        except BaseException as exc:  # raised below, not as a group
            failures.append(exc)

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ahead)
            # Shielded: a commit started is waited for (it cannot be stopped, and
            # the records read must be in the log before a ``cancelled`` record).
            with trio.CancelScope(shield=True):
                try:
                    await writer.write_in_thread(burst)
                except BaseException as exc:
                    failures.append(exc)
    except BaseExceptionGroup as group:
        # A KeyboardInterrupt delivered while the nursery waited for the reading.
        raise group.exceptions[0] from None
    if failures:
        raise failures[0]
