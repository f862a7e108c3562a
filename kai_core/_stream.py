"""One answer stream: an HTTP response read as SSE, decoded, logged, turned into events.

:class:`EventStream` is what :meth:`KaiClient.send_message` and its siblings
return. It is both an async iterator and an async context manager::

    async for event in client.send_message(chat_id, "hi"): ...
    async with client.send_message(chat_id, "hi") as events:
        async for event in events: ...

Per burst of network reads (a read, and the reads already waiting on the
socket after it) it decodes every complete SSE payload, appends the chunks'
exact bytes to the event log in one call, and only then hands out the events
of that burst. ``[DONE]`` ends the stream. A stream cut before it is picked up again
when the server can resume it (kai-assistant: ``GET /api/chat/{id}/stream``
replays the answer from its first chunk; the chunks already delivered are
checked and skipped, a ``resume`` record is logged); otherwise, or when the
server has nothing to resume, it raises
:class:`~kai_core.exceptions.KaiStreamError` (``stream:cut``) after every
event it brought was delivered. An answer that is no stream at all (a
``204``, another content type) is ``stream:no_answer`` / ``stream:not_event_stream``;
on a client not set up for kai-agent, a tool announced and then silent is
checked against the server's tool list (``stream:backend_mismatch``).

The log never stops an answer that is already on its way: if an append
fails mid-stream (disk full, ...), the failure is reported once through
``on_log_error``, logging stops, and the events keep coming. Only the
records written before the request leaves (the user message) make a failed
append an error: then nothing is sent.

The body is read per socket read by our own HTTP/1.1 reader
(:mod:`kai_core._h1`) when httpx's default transport brought the response,
else through httpx (custom or in-process transports, HTTP/2, compressed
bodies). httpx never sees the end of a body our reader read, so that
connection is closed with the response, never reused for another request.

The response is closed at once when the stream ends, fails, is cancelled,
is closed (``aclose``/``async with``), or is dropped half-read (a ``break``
out of ``async for``): it is a plain object, not an async generator, so
dropping it never leaves a generator for the garbage collector to finalize
(trio warns about those), and the close runs in a trio system task right away.

What is done to each read, each with its own state, lives in
:mod:`kai_core._stream_parts` and is tested there without a socket: the
token masked (:class:`~kai_core._stream_parts.masking.StreamMask`), the
bytes checked as UTF-8 (:class:`~kai_core._stream_parts.utf8.Utf8Check`), a
resumed stream checked against the chunks delivered
(:class:`~kai_core._stream_parts.resume.ResumeCheck`), the records made and
appended before the events are queued
(:class:`~kai_core._stream_parts.log_writer.LogWriter`), a burst committed in
a worker thread while the next is read
(:func:`~kai_core._stream_parts.pipeline.commit_overlapped`). This module reads,
decodes, folds and composes them, and decides when to resume, fail or close.
"""

from __future__ import annotations

import collections
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from functools import partial
from operator import attrgetter
from types import TracebackType
from typing import Any

import httpx
import trio

from ._http import close_response
from ._stream_parts.log_writer import EventLogSink, LogErrorHandler, LogWriter
from ._stream_parts.masking import StreamMask
from ._stream_parts.pipeline import Burst, commit_overlapped, may_wait_for_threads
from ._stream_parts.resume import ResumeCheck
from ._stream_parts.utf8 import Utf8Check, check_payload
from .assemble import MessageAssembler
from .chunks import (
    DECODE_ERRORS,
    Chunk,
    KnownChunk,
    ToolInputAvailableChunk,
    decode_known_chunk,
    decode_other_chunk,
)
from .events import Event
from .exceptions import (
    KaiError,
    KaiLogError,
    KaiNotFoundError,
    KaiStreamError,
    KaiTimeoutError,
    printable,
)
from .records import LogRecord
from .sse import SSEDecoder

__all__ = ["EventLogSink", "EventStream", "LogErrorHandler", "Opener", "StreamPlan"]

_DONE = b"[DONE]"
_CHUNK_TYPE = attrgetter("type")
_TOOL_SETTLED = frozenset(
    {
        "tool-approval-request",
        "tool-output-available",
        "tool-output-error",
        "tool-output-denied",
        "tool-input-error",
    }
)
# The chunk classes _track_tool looks at (a set lookup per chunk, not a method call).
_TOOL_TRACKED = frozenset(
    cls for cls in KnownChunk.__args__ if cls.type in _TOOL_SETTLED | {"tool-input-available"}
)
AGENT_WAIT_CHECK = 5.0
"""Seconds a tool announced may be followed by nothing before ``agent_waits`` is asked."""
_BURST = 256 * 1024  # bytes read in one burst at most (one log append per burst)
_FIRST_AHEAD = 16 * 1024  # a connection's second burst (its first is one read); then doubling
_BURST_SLOW = 1024 * 1024  # a burst read ahead while a slow commit runs may grow to this

Opener = Callable[[], Awaitable[httpx.Response]]
"""Sends a streaming request and returns its response (status < 400, or 204)."""


class StreamPlan:
    """Everything one streaming exchange needs, prepared just before it starts.

    :param open: sends the request and returns the response (status < 400;
        204 means "no stream"); the caller of ``open`` closes the response.
    :param assembler: folds the chunks into the assistant message.
    :param records: client records to log before the request leaves.
    :param skip: chunks at the start to fold but not to log or hand out
        (a resumed stream replaying what was already delivered).
    :param may_be_empty: a ``204`` is an empty, finished stream (a resume
        with nothing running); otherwise it is an error: a message or an
        approval always has an answer.
    """

    __slots__ = ("assembler", "may_be_empty", "open", "records", "skip")

    def __init__(
        self,
        open: Opener,
        assembler: MessageAssembler,
        records: Sequence[LogRecord] = (),
        skip: int = 0,
        *,
        may_be_empty: bool = False,
    ) -> None:
        self.open = open
        self.assembler = assembler
        self.records = records
        self.skip = skip
        self.may_be_empty = may_be_empty


def _first_leaf(exc: BaseException) -> BaseException:
    """``exc``, or the first exception inside it when it is a group."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


class _Connection:
    """The open response of a stream and what closing it involves.

    Kept apart from :class:`EventStream` so that a dropped stream can hand
    this object to a system task for closing without resurrecting itself.
    """

    __slots__ = ("closed", "own", "reads", "response")

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.reads: AsyncIterator[bytes] | None = None
        self.own = False  # the body is read by our own HTTP/1.1 reader, not httpx
        self.closed = False

    def open_reads(self) -> AsyncIterator[bytes]:
        """Start reading the body: our own reader when it can, else httpx's ``aiter_bytes``."""
        from . import _h1  # imports httpcore and h11, loaded by then anyway

        reader = _h1.body_reader(self.response)
        if reader is not None:
            self.own = True
            self.reads = reader
        else:
            self.reads = self.response.aiter_bytes()
        return self.reads

    async def aclose(self) -> None:
        """Close the response; never raises, never waits for the server."""
        if self.closed:
            return
        self.closed = True
        reads, self.reads = self.reads, None
        await close_response(self.response, None if self.own else reads)


class EventStream:
    """The events of one answer (or approval continuation, or resumed stream).

    :param prepare: called with the turn id when the stream starts; returns
        the :class:`StreamPlan` (and may do requests first, e.g. fetch the chat).
    :param chat_id: the chat the log records belong to.
    :param log: where the records go, or None.
    :param max_event_size: bound on one SSE event, see :class:`~kai_core.sse.SSEDecoder`.
    :param resume: opens the resumed stream (``GET /api/chat/{id}/stream``)
        when the connection is cut before ``[DONE]``; None: no resume.
    :param resume_attempts: resumes in a row that may bring nothing new
        before giving up (the count starts again whenever one brings a chunk).
    :param no_resume: why there is no ``resume`` (for the error message).
    :param on_log_error: told when an append fails mid-stream; logging then
        stops for this stream and the events keep coming.
    :param secret: the Storage API token: masked (``***``) wherever a server
        chunk repeats it, raw or JSON-escaped, before it is logged or decoded
        (tokens shorter than 8 characters are not real tokens and are left alone).
    :param agent_waits: for a client not set up for kai-agent: told the name of
        a tool announced (``tool-input-available``) and followed by nothing for
        :data:`AGENT_WAIT_CHECK` seconds, says whether kai-agent would hold it
        for an approval. If so, the server is kai-agent, whose stream would wait
        for an approval this client cannot send: ``stream:backend_mismatch``.

    Use it with ``async for``, or as ``async with stream as events``; call
    :meth:`aclose` to stop early. :attr:`assembler` holds the assistant
    message as built so far; :attr:`events_delivered` counts handed-out events;
    :attr:`resumes` counts the times a cut stream was resumed;
    :attr:`log_error` is the log failure, if logging stopped.
    Nothing is sent before the first ``__anext__`` or ``__aenter__``.
    """

    def __init__(
        self,
        prepare: Callable[[str], Awaitable[StreamPlan]],
        *,
        chat_id: str,
        log: EventLogSink | None,
        max_event_size: int,
        resume: Opener | None = None,
        resume_attempts: int = 2,
        no_resume: str | None = None,
        on_log_error: LogErrorHandler | None = None,
        secret: str | None = None,
        agent_waits: Callable[[str], Awaitable[bool]] | None = None,
    ) -> None:
        self.chat_id = chat_id
        self.events_delivered = 0
        self.resumes = 0
        self.assembler: MessageAssembler | None = None
        self._prepare = prepare
        # The parts (kai_core._stream_parts): each holds one idea and its state.
        self._writer = LogWriter(log, chat_id, uuid.uuid4().hex, on_log_error)
        self._mask = StreamMask.for_secret(secret)  # None: no token to mask
        self._utf8 = Utf8Check()  # a new one per connection
        self._resume_check = ResumeCheck()
        self._decoder = SSEDecoder(max_event_size)
        self._resume = resume if resume_attempts > 0 else None
        self._resume_attempts = resume_attempts
        self._resume_left = resume_attempts
        self._no_resume = no_resume or (
            "the server cannot resume it" if resume is None else "resuming is turned off"
        )
        self._queue: collections.deque[Event] = collections.deque()
        self._ahead: Burst | None = None  # read while the burst before was committed
        self._burst_limit = 0  # bytes after which a burst stops (see _gather)
        self._conn: _Connection | None = None
        self._state = "new"  # new -> opening -> open -> closed
        self._done = False
        self._skip = 0
        # How the connection ended, when a burst's events had to be handed out first.
        self._ended: StopAsyncIteration | httpx.HTTPError | None = None
        # Raised once the events decoded before it have been delivered.
        self._error: BaseException | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        # Tools announced but not yet answered, approved or asked about (call id ->
        # name, when), while the server might be kai-agent waiting on one of them.
        self._agent_waits = agent_waits
        self._announced: dict[str, tuple[str, float]] = {}

    @property
    def turn(self) -> str:
        """The exchange the stream's records belong to (a resumed stream starts a new one)."""
        return self._writer.turn

    @property
    def log_error(self) -> KaiLogError | None:
        """The log's failure, once logging stopped for this stream; else None."""
        return self._writer.error

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
            self._log_ahead()
            self._writer.log("cancelled", {"events_delivered": self.events_delivered})
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
        records = self._writer.client("cancelled", {"events_delivered": self.events_delivered})
        ahead = self._ahead
        if ahead is not None and records:
            records[:0] = ahead.records(self.chat_id)  # read ahead, never handed out
        try:
            self._token.run_sync_soon(_close_abandoned, conn, self._writer.sink, records)
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
            # Before the request leaves: a log that cannot record the
            # question stops it (KaiLogError), nothing is sent.
            self._writer.append_before_request(plan.records)
            response = await plan.open()
            if response.status_code == 204 and not plan.may_be_empty:
                await close_response(response)
                raise KaiStreamError(
                    "the server sent no answer (HTTP 204 No Content)", code="stream:no_answer"
                )
            await _check_event_stream(response)
        except BaseException as exc:
            self._state = "closed"
            if plan is not None and plan.records:
                # The request may have left: say in the log why no answer follows.
                # (A nursery on the way, e.g. trio's happy-eyeballs connect, wraps
                # a cancellation in a group: look at what is inside.)
                why = _first_leaf(exc)
                if isinstance(why, KaiLogError):
                    pass  # the log itself failed: nothing more to write there
                elif isinstance(why, KaiError):
                    self._writer.append(self._writer.stream_error(why))
                elif isinstance(why, (trio.Cancelled, KeyboardInterrupt)):
                    self._writer.log("cancelled", {"events_delivered": 0})
            raise
        self._conn = _Connection(response)
        self._state = "open"
        if response.status_code == 204:
            # Nothing to resume: an empty, finished stream.
            self._done = True
            await self._close()

    async def _read(self) -> None:
        """One burst of network reads: decode, log in one append, queue; close when over.

        With the log on, after a read the socket is polled (httpcore's
        ``network_stream`` extension, ``is_readable``): while more bytes are
        already waiting (and less than :data:`_BURST` bytes were read), the next
        read follows at once and its records join the same append. The events
        of the burst are queued only after that append: none reaches the caller
        before its record is committed. Without the extension (in-process
        transports) or without a log, a burst is one read.

        When the log can be written from a worker thread, the burst is committed
        there while the bytes already waiting are read and decoded as the next
        burst (:func:`~kai_core._stream_parts.pipeline.commit_overlapped`); that
        burst is committed, and its events queued, at the next call.
        """
        conn = self._conn
        assert conn is not None
        reads = conn.reads
        if reads is None:
            reads = conn.open_reads()
        if self._ended is not None:
            # The burst before ended the connection: its events are delivered now.
            ended, self._ended = self._ended, None
            await self._end(ended)
            return
        writer = self._writer
        network = _network_stream(conn.response) if writer.sink is not None else None
        burst = self._ahead
        first = self._burst_limit == 0  # a connection's first burst: committed at once
        if burst is None:
            burst = await self._gather(conn, reads, network)
        else:
            # Read ahead while the burst before was committed: what it found applies now.
            self._ahead = None
            self._done, self._error = burst.done, burst.error
        if (
            burst.ending is None
            and not self._done
            and self._error is None
            and network is not None
            and writer.threaded
            and not first  # its events first, without waiting for a thread and a read
            and _readable(network)  # else there is nothing to read meanwhile
            and may_wait_for_threads()
        ):
            try:
                await commit_overlapped(
                    writer, burst, partial(self._read_ahead, conn, reads, network, burst)
                )
                # A cancel that came while the commit ran: now that it returned.
                await trio.lowlevel.checkpoint_if_cancelled()
            except BaseException as exc:
                if isinstance(exc, Exception):
                    raise  # the sink failed otherwise than KaiLogError (a bug): nothing queued
                # Interrupted while the commit ran (it has returned): as a cancel.
                self._queue.extend(burst.events)
                self._log_ahead()
                writer.log("cancelled", {"events_delivered": self.events_delivered})
                await self._close()
                raise
        else:
            writer.append_burst(burst)
        self._queue.extend(burst.events)
        await self._settle(burst)
        ahead = self._ahead
        if ahead is not None and ahead.kind == "stopped":
            # Cancelled while reading ahead: its records are logged, then ``cancelled``.
            self._ahead = None
            writer.append_burst(ahead)
            self._queue.extend(ahead.events)
            await self._settle(ahead)

    async def _gather(
        self,
        conn: _Connection,
        reads: AsyncIterator[bytes],
        network: Any,
        behind: Burst | None = None,
    ) -> Burst:
        """Read and decode one burst; what ends the reading is kept in it, never raised.

        :param behind: the burst being committed meanwhile (its events are not
            queued yet); then only bytes already waiting are read.
        """
        burst = self._writer.new_burst()
        held = 0
        if behind is not None:
            held = len(behind.events)
            if not _readable(network):
                return burst
        while True:
            try:
                if self._announced:
                    data = await self._read_watching(conn, reads)
                else:
                    data = await reads.__anext__()
            except KaiStreamError as error:
                # The server is waiting for what this client cannot send.
                burst.end("mismatch", error)
                return burst
            except (StopAsyncIteration, httpx.HTTPError) as exc:
                burst.end("ended", exc)
                return burst
            except BaseException as exc:
                # Cancelled, KeyboardInterrupt, ...: the caller stopped the answer.
                burst.end("stopped", exc)
                return burst
            try:
                self._feed(data, burst, held)
            except BaseException as exc:
                burst.end("failed", exc)
                return burst
            burst.size += len(data)
            if (
                self._done
                or self._error is not None
                or network is None
                or (burst.size >= self._burst_limit and not self._slow_commit(behind, burst))
                or not _readable(network)
            ):
                # A connection's first burst is one read (its events come soon);
                # later ones may grow, doubling, up to _BURST.
                self._burst_limit = min(max(2 * self._burst_limit, _FIRST_AHEAD), _BURST)
                return burst

    def _slow_commit(self, behind: Burst | None, burst: Burst) -> bool:
        """Whether a burst read ahead may grow past the limit: the commit it waits
        for is still running (a busy disk), and it holds less than :data:`_BURST_SLOW`."""
        return behind is not None and self._writer.committing and burst.size < _BURST_SLOW

    async def _read_ahead(
        self, conn: _Connection, reads: AsyncIterator[bytes], network: Any, behind: Burst
    ) -> None:
        """Read the next burst while ``behind`` is committed; keep it for the next call."""
        ahead = await self._gather(conn, reads, network, behind)
        # Its [DONE] or malformed chunk must wait until its events are queued.
        ahead.done, ahead.error = self._done, self._error
        self._done, self._error = False, None
        if not ahead.empty:
            self._ahead = ahead

    def _log_ahead(self) -> None:
        """Log the records of a burst read ahead that will not be handed out."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            self._writer.append_burst(ahead)

    async def _settle(self, burst: Burst) -> None:
        """After a burst was logged and its events queued: act on what ended it."""
        exc = burst.ending
        if exc is None:
            if self._done or self._error is not None:
                await self._close()
            return
        kind = burst.kind
        if kind == "mismatch":
            assert isinstance(exc, KaiStreamError)
            self._fail(exc)
            await self._close()
            if not burst.events:
                self._error = None
                raise exc
        elif kind == "ended":
            assert isinstance(exc, StopAsyncIteration | httpx.HTTPError)
            if burst.events:
                # Hand out the burst's events before a resume or an error.
                self._ended = exc
                return
            await self._end(exc)
        elif kind == "stopped":
            self._writer.log("cancelled", {"events_delivered": self.events_delivered})
            await self._close()
            raise exc
        else:  # "failed": decoding raised
            await self._close()
            raise exc

    async def _end(self, exc: StopAsyncIteration | httpx.HTTPError) -> None:
        """The connection ended (or failed): close, resume or fail as the case is."""
        if isinstance(exc, StopAsyncIteration):
            assembler = self.assembler
            if not self._done and assembler is not None and assembler.finished:
                # A clean end after ``finish`` without ``[DONE]``: the answer is
                # complete (kai-client accepted it); a cut before ``finish`` is not.
                self._done = True
            if self._done:
                await self._close()
            else:
                await self._cut(None)
            return
        if isinstance(exc, httpx.TransportError) and not isinstance(exc, httpx.TimeoutException):
            await self._cut(exc)
            return
        self._fail(self._transport_error(exc))
        await self._close()
        self._raise_now(exc)

    async def _cut(self, exc: httpx.HTTPError | None) -> None:
        """The connection ended before ``[DONE]``: resume the stream, or fail."""
        conn = self._conn
        assert conn is not None
        try:
            await conn.aclose()
            resumed, why = await self._try_resume()
        except BaseException:
            self._state = "closed"
            self._writer.log("cancelled", {"events_delivered": self.events_delivered})
            raise
        if resumed:
            return
        error = self._transport_error(exc) if exc is not None else self._cut_error(None)
        error.message += f"; {why}; the chat can be reloaded with get_chat"
        self._fail(error)
        await self._close()
        if exc is not None:
            self._raise_now(exc)

    async def _try_resume(self) -> tuple[bool, str]:
        """Open the resumed stream in place of the cut one; or say why not."""
        if self._resume is None:
            return False, self._no_resume
        if self._resume_left <= 0:
            return False, (
                f"resuming it {self._resume_attempts} times in a row brought nothing new"
            )
        self._resume_left -= 1
        try:
            response = await self._resume()
        except KaiNotFoundError:
            return False, "the server has no stream to resume (404)"
        except KaiError as error:
            return False, f"resuming it failed: {error}"
        except httpx.HTTPError as error:  # not a transport failure (those are KaiErrors)
            return False, f"resuming it failed: {type(error).__name__}"
        if response.status_code == 204:
            await close_response(response)
            return False, "the server has nothing to resume (204)"
        try:
            await _check_event_stream(response)
        except KaiStreamError as error:
            return False, f"resuming it failed: {error.message}"
        # A new exchange: its own turn, a fresh decoder (the cut one may hold
        # half an event), and the chunks already delivered to check and drop.
        self._writer.turn = uuid.uuid4().hex
        self._decoder = SSEDecoder(self._decoder.max_event_size)
        self._utf8 = Utf8Check()
        if self._mask is not None:
            self._mask.reset()
        self._conn = _Connection(response)
        self._burst_limit = 0
        self._resume_check.start_replay()
        self.resumes += 1
        self._writer.log("resume", {"skipped": self._resume_check.position})
        return True, ""

    def _raise_now(self, cause: BaseException) -> None:
        error, self._error = self._error, None
        assert error is not None
        raise error from cause

    def _feed(self, data: bytes, burst: Burst, held: int = 0) -> None:
        """Decode one read into ``burst``: its chunks to be logged, its events to be queued.

        :param held: events decoded earlier and not queued yet, besides the burst's.
        """
        assembler = self.assembler
        assert assembler is not None
        replay = self._resume_check
        chunks: list[Chunk] = []  # to fold, log and hand out
        payloads: list[bytes] = []
        kept: list[bytes] = []  # the payloads of ``chunks`` (whitespace is no chunk)
        skipped: list[bytes] = []  # those of chunks delivered before a resume
        error: KaiStreamError | None = None
        try:
            payloads, done = self._payloads(data)
            # The log stores text: every chunk must be UTF-8.
            check_utf8 = self._utf8.needs_payload_check(data)
            if self._skip:
                payloads = self._fold_skipped(payloads, check_utf8, skipped)
            kept = self._decode(payloads, check_utf8, chunks)
            if done:
                self._done = True
        except KaiStreamError as exc:
            error = exc
            kept = [p for p in payloads if p.strip()]
        # Everything up to a malformed chunk is folded, logged and delivered.
        n = len(chunks)
        if n != len(kept):
            kept = kept[:n]
        events = burst.events
        assembler.feed_into(chunks, events)
        if n and self._writer.sink is not None:  # one log frame per burst, from the payloads
            burst.types.extend(map(_CHUNK_TYPE, chunks))
            burst.bodies.extend(kept)
            if self._decoder.multiline:
                burst.newline_free = False
        if error is not None:
            error.events_delivered = self.events_delivered + len(self._queue) + held + len(events)
            self._error = error
            burst.tail.extend(self._writer.stream_error(error))
        if n or skipped:
            if self._resume is None:
                replay.position += len(skipped) + n
            else:  # the payloads read, for the digest a resume checks against
                replay.advance(
                    replay.position + len(skipped) + n, skipped + kept if skipped else kept
                )
            if self.resumes:
                self._resume_left = self._resume_attempts  # progress: count anew

    def _payloads(self, data: bytes) -> tuple[list[bytes], bool]:
        """The payloads of the events one read completes, the token masked, up to
        ``[DONE]`` (and whether it came), without those a resumed stream repeats.

        :raises KaiStreamError: as :meth:`SSEDecoder.feed_bytes` and
            :meth:`ResumeCheck.drop_replayed` do.
        """
        mask = self._mask
        if mask is None:
            payloads = self._decoder.feed_bytes(data)
        else:
            payloads = mask.feed(self._decoder, data)
        replay = self._resume_check
        if replay.pending:
            payloads = replay.drop_replayed(payloads)
        if _DONE in payloads:
            # Anything after [DONE] is not part of the answer.
            return payloads[: payloads.index(_DONE)], True
        return payloads, False

    def _decode(self, payloads: list[bytes], check_utf8: bool, chunks: list[Chunk]) -> list[bytes]:
        """Decode ``payloads`` into ``chunks``; return the payloads that are chunks.

        :raises KaiStreamError: a malformed chunk (``chunks`` has those before it).
        """
        blank = False  # a payload was whitespace only (no chunk), which is rare
        add = chunks.append
        track = self._agent_waits is not None
        chunk: Chunk | None
        for payload in payloads:  # the hot loop: one pass per chunk
            if check_utf8 and not payload.isascii():
                check_payload(payload)
            try:
                chunk = decode_known_chunk(payload)
            except DECODE_ERRORS as exc:  # data-*, unknown, malformed or empty
                chunk = _decode_other(payload, exc)
                if chunk is None:
                    blank = True
                    continue
            if track and type(chunk) in _TOOL_TRACKED:
                self._track_tool(chunk)
            add(chunk)
        return [p for p in payloads if p.strip()] if blank else payloads

    def _fold_skipped(
        self, payloads: list[bytes], check_utf8: bool, skipped: list[bytes]
    ) -> list[bytes]:
        """Fold the chunks a resumed stream repeats before the new ones (already
        delivered: state only, no event, no record); return the payloads after them.

        :param skipped: gets the payloads of those chunks.
        """
        assembler = self.assembler
        assert assembler is not None
        for i, payload in enumerate(payloads):
            if not self._skip:
                return payloads[i:]
            if check_utf8 and not payload.isascii():
                check_payload(payload)
            chunk = _decode_one(payload)
            if chunk is None:
                continue
            if self._agent_waits is not None and type(chunk) in _TOOL_TRACKED:
                self._track_tool(chunk)
            skipped.append(payload)
            self._skip -= 1
            assembler.feed(chunk)
        return []

    def _track_tool(self, chunk: Chunk) -> None:
        """Note tools announced and not yet settled (see ``agent_waits``)."""
        kind = chunk.type
        if kind == "tool-input-available":
            assert isinstance(chunk, ToolInputAvailableChunk)
            self._announced[chunk.tool_call_id] = (chunk.tool_name, trio.current_time())
        elif kind in _TOOL_SETTLED and self._announced:
            self._announced.pop(getattr(chunk, "tool_call_id", ""), None)

    async def _read_watching(self, conn: _Connection, reads: AsyncIterator[bytes]) -> bytes:
        """The next read; once a tool announced has waited long enough, ask whether
        kai-agent holds it for an approval, and if so fail.

        :raises KaiStreamError: ``stream:backend_mismatch``.
        """
        # A caller slow to ask for more must not make bytes already waiting look
        # like silence: the read gets a moment, whatever the time.
        deadline = max(
            min(at for _, at in self._announced.values()) + AGENT_WAIT_CHECK,
            trio.current_time() + 1.0,
        )
        if conn.own:
            # Our reader's socket read can be cancelled and tried again.
            with trio.move_on_at(deadline):
                return await reads.__anext__()
            await self._check_announced()
            return await reads.__anext__()
        # httpx's reads cannot be resumed once cancelled: the check runs beside
        # the read, which is cancelled only when the stream fails anyway.
        mismatch: KaiStreamError | None = None

        async def watch(scope: trio.CancelScope) -> None:
            nonlocal mismatch
            await trio.sleep_until(deadline)
            try:
                await self._check_announced()
            except KaiStreamError as error:
                mismatch = error
                scope.cancel()

        ended: StopAsyncIteration | httpx.HTTPError | None = None
        data = b""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch, nursery.cancel_scope)
            try:
                data = await reads.__anext__()
            except (StopAsyncIteration, httpx.HTTPError) as exc:
                ended = exc
            nursery.cancel_scope.cancel()
        if mismatch is not None:
            raise mismatch
        if ended is not None:
            raise ended
        return data

    async def _check_announced(self) -> None:
        """Ask ``agent_waits`` about the tools announced; forget them if none waits.

        :raises KaiStreamError: ``stream:backend_mismatch``.
        """
        waits = self._agent_waits
        assert waits is not None
        for name, _ in list(self._announced.values()):
            if await waits(name):
                raise KaiStreamError(
                    f"the server announced the tool {printable(name, 100)!r} and is "
                    "waiting for its approval, as kai-agent does; this client was not "
                    "set up for kai-agent, so it cannot answer (use --service agent, "
                    "or KaiClient(backend='agent'))",
                    code="stream:backend_mismatch",
                )
        self._announced.clear()  # none waits: a slow tool is no mismatch

    def _cut_error(self, cause: str | None) -> KaiStreamError:
        n = self.events_delivered + len(self._queue)
        return KaiStreamError(
            f"the stream was cut after {n} events, before the answer was complete",
            code="stream:cut",
            cause=cause,
            events_delivered=n,
        )

    def _fail(self, error: KaiError) -> None:
        """Log a transport failure; raise it after the queued events."""
        if isinstance(error, KaiStreamError):
            error.events_delivered = self.events_delivered + len(self._queue)
        self._writer.append(self._writer.stream_error(error))
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
        return self._cut_error(cause)

    async def _close(self) -> None:
        self._state = "closed"
        conn = self._conn
        if conn is not None:
            await conn.aclose()


def _decode_one(payload: bytes) -> Chunk | None:
    """The chunk of one payload; None for whitespace only (the hot loop inlines this).

    :raises KaiStreamError: a malformed chunk.
    """
    try:
        return decode_known_chunk(payload)
    except DECODE_ERRORS as exc:
        return _decode_other(payload, exc)


def _decode_other(payload: bytes, error: Exception) -> Chunk | None:
    """A payload that is no known chunk (``error`` says why): a ``data-*`` or unknown
    one, or None when it is only whitespace (an empty event: stripped only here, it
    is rare).

    :raises KaiStreamError: a malformed chunk.
    """
    try:
        return decode_other_chunk(payload, error)
    except KaiStreamError:
        if payload.strip():
            raise
        return None


def _network_stream(response: httpx.Response) -> Any:
    """The response's httpcore network stream, if it can say whether bytes are waiting."""
    network = response.extensions.get("network_stream")
    if network is None or not callable(getattr(network, "get_extra_info", None)):
        return None
    try:
        network.get_extra_info("is_readable")
    except Exception:
        return None
    return network


def _readable(network: Any) -> bool:
    """Whether more bytes are waiting on the socket (a read would not block)."""
    try:
        return bool(network.get_extra_info("is_readable"))
    except Exception:
        return False


async def _check_event_stream(response: httpx.Response) -> None:
    """Refuse (and close) a response that says it is something else than an event stream.

    A missing ``content-type`` is let through; a 204 has no body to check.

    :raises KaiStreamError: ``stream:not_event_stream``.
    """
    kind = response.headers.get("content-type")
    if kind is None or response.status_code == 204:
        return
    media = kind.split(";", 1)[0].strip().lower()
    if media == "text/event-stream":
        return
    await close_response(response)
    shown = printable(media, 80)
    raise KaiStreamError(
        f"the server answered {response.status_code} with {shown or 'an empty type'}, "
        "not an event stream "
        f"(is {response.url.scheme}://{response.url.host} the Kai API?)",
        code="stream:not_event_stream",
    )


def _close_abandoned(conn: _Connection, log: EventLogSink | None, records: list[LogRecord]) -> None:
    """Runs on the trio thread (``run_sync_soon``): close a dropped stream's response."""

    async def close() -> None:
        try:
            if log is not None and records:
                log.append(records)
        except Exception:  # nobody is left to tell; the response must still close
            pass
        await conn.aclose()

    try:
        trio.lowlevel.spawn_system_task(close, name="kai: close abandoned stream")
    except RuntimeError:
        pass  # the run is ending; trio closes what is left
