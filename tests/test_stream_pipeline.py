"""Commits overlapping reads (issue 16): a burst is committed in a worker thread
while the next one is read, and still no event is handed out before its own
burst's commit has returned.

The sink here blocks its commit on a gate the test holds (a
``threading.Event``), so the tests can look at the stream while a commit is
in flight: nothing of that burst reaches the caller, a cancel waits for the
commit, a failing commit stops logging and not the answer.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import pytest
import trio

from kai_core._stream_parts.log_writer import LogWriter
from kai_core._stream_parts.pipeline import Burst, chunk_sink, may_wait_for_threads
from kai_core.events import Event, TextEvent
from kai_core.exceptions import KaiLogError
from kai_core.log import EventLog, LogRecord
from kai_core.observe import ObservedLog
from kai_core.plugins import Plugins

from .raw_server import Conn, Request, client_for, raw_server

N = 6000  # text deltas: far more than one read, so there are bursts to overlap


def _body(n: int = N) -> bytes:
    events = [
        b'data: {"type":"start"}\n\n',
        b'data: {"type":"start-step"}\n\n',
        b'data: {"type":"text-start","id":"t"}\n\n',
        *(b'data: {"type":"text-delta","id":"t","delta":"w%d "}\n\n' % i for i in range(n)),
        b'data: {"type":"text-end","id":"t"}\n\n',
        b'data: {"type":"finish-step"}\n\n',
        b'data: {"type":"finish","finishReason":"stop"}\n\n',
        b"data: [DONE]\n\n",
    ]
    return b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in events) + b"0\r\n\r\n"


async def _all_at_once(conn: Conn, request: Request) -> None:
    """The whole answer written at once: the socket always has bytes waiting."""
    await conn.start()
    await conn.stream.send_all(_body())
    await conn.wait_disconnect()


class GatedSink:
    """A log whose commits of chunks in a worker thread can be held (``gate``),
    and that remembers every call in order, with the thread it came from.

    (A connection's first burst is committed on the trio thread: never held.)
    """

    def __init__(self, fail_at: int | None = None) -> None:
        self.main = threading.get_ident()
        self.calls: list[tuple[str, list[str], int]] = []
        self.committed = 0  # server chunks whose commit has returned
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.chunk_calls = 0
        self.fail_at = fail_at
        self._lock = threading.Lock()

    def append(self, records: Sequence[LogRecord]) -> object:
        with self._lock:
            self.calls.append(("append", [r.type for r in records], threading.get_ident()))
            self.committed += sum(r.origin == "server" for r in records)
        return None

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
        assert utf8_checked  # the stream checked the payloads
        assert newline_free == all(b"\n" not in b for b in bodies)  # its decoder knows
        if threading.get_ident() != self.main:
            self.entered.set()
            assert self.gate.wait(30)
        with self._lock:
            self.chunk_calls += 1
            if self.fail_at is not None and self.chunk_calls >= self.fail_at:
                raise KaiLogError("disk full", code="log:io")
            kinds = [*types, *(r.type for r in then)]
            self.calls.append(("chunks", kinds, threading.get_ident()))
            self.committed += len(types)
        return None


async def _wait_for(flag: threading.Event) -> None:
    assert await trio.to_thread.run_sync(flag.wait, 10)


async def test_no_event_is_handed_out_before_its_burst_is_committed() -> None:
    sink = GatedSink()
    delivered: list[Event] = []
    seen_at_delivery: list[int] = []
    async with raw_server(_all_at_once) as server, client_for(server, log=sink) as client:
        stream = client.send_message("c1", "hi")

        async def consume() -> None:
            async for event in stream:
                if event.chunk is not None:
                    delivered.append(event)
                    seen_at_delivery.append(sink.committed)

        sink.gate.clear()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(consume)
            await _wait_for(sink.entered)  # a commit of chunks is in flight, held
            await trio.sleep(0.3)  # time enough to read, decode and queue, were it allowed
            held = len(delivered)
            # Only the first burst's events (committed at once, on the trio thread).
            assert held <= sink.committed < N
            await trio.sleep(0.2)
            assert len(delivered) == held  # nothing of the held burst
            sink.gate.set()
    assert stream.finished and len(delivered) == N + 6
    # Every chunk event came after the commit that holds its chunk had returned.
    assert all(i < committed for i, committed in enumerate(seen_at_delivery))
    # The chunks were committed from a worker thread, in bursts, in order.
    main = threading.get_ident()
    chunk_calls = [c for c in sink.calls if c[0] == "chunks"]
    assert chunk_calls and any(thread != main for _, _, thread in chunk_calls)
    assert 1 < len(chunk_calls) < N // 10
    logged = [kind for _, kinds, _ in chunk_calls for kind in kinds]
    assert logged == ["start", "start-step", "text-start", *["text-delta"] * N] + [
        "text-end",
        "finish-step",
        "finish",
    ]
    assert "".join(e.text for e in delivered if isinstance(e, TextEvent)) == "".join(
        f"w{i} " for i in range(N)
    )


async def test_a_cancel_while_a_commit_runs_waits_for_it_then_logs_cancelled() -> None:
    sink = GatedSink()
    delivered: list[Event] = []
    finished = trio.Event()
    async with raw_server(_all_at_once) as server, client_for(server, log=sink) as client:
        stream = client.send_message("c1", "hi")

        async def consume(scope: trio.CancelScope) -> None:
            with scope:
                async for event in stream:
                    delivered.append(event)
            finished.set()

        sink.gate.clear()
        scope = trio.CancelScope()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(consume, scope)
            await _wait_for(sink.entered)
            committed_at_gate = sink.committed  # the first burst, committed at once
            scope.cancel()
            await trio.sleep(0.3)
            # The commit cannot be stopped: the cancel waits for it to return.
            assert not finished.is_set()
            calls_before = len(sink.calls)
            sink.gate.set()
            with trio.fail_after(10):
                await finished.wait()
    # None of the held burst was handed out.
    assert len([e for e in delivered if e.chunk is not None]) <= committed_at_gate < N
    # The held burst's chunks (and any burst read ahead) were logged, then `cancelled`.
    kinds = [c[1] for c in sink.calls[calls_before:]]
    assert kinds[-1] == ["cancelled"]
    assert sink.calls[-1][2] == threading.get_ident()  # written on the trio thread, last
    assert all(k and k[0] in ("start", "text-delta") for k in kinds[:-1])
    chunks_logged = sum(len(k) for k in kinds[:-1])
    assert chunks_logged >= 1 and sink.committed == committed_at_gate + chunks_logged


async def test_a_commit_failing_mid_stream_stops_logging_not_the_answer() -> None:
    sink = GatedSink(fail_at=2)
    failures: list[tuple[KaiLogError, int]] = []
    texts: list[str] = []
    async with (
        raw_server(_all_at_once) as server,
        client_for(
            server,
            log=sink,
            on_log_error=lambda e: failures.append((e, threading.get_ident())),
        ) as client,
    ):
        stream = client.send_message("c1", "hi")
        async for event in stream:
            if isinstance(event, TextEvent):
                texts.append(event.text)
    assert stream.finished
    assert "".join(texts) == "".join(f"w{i} " for i in range(N))  # every event still came
    # Reported once, on the trio thread; logging stopped there.
    [(error, thread)] = failures
    assert error.code == "log:io" and thread == threading.get_ident()
    assert stream.log_error is error
    assert sink.chunk_calls == 2  # no commit after the failed one


async def test_sinks_that_see_every_append_are_not_given_chunks(tmp_path: Path) -> None:
    class Counting(EventLog):
        def append(self, records: Sequence[LogRecord]) -> int:
            return super().append(records)

    log = EventLog(tmp_path / "a.db")
    counting = Counting(tmp_path / "b.db")
    try:
        assert chunk_sink(log) is log
        assert chunk_sink(counting) is None  # it overrides append: it wants every record
        # A wrapper that forwards attributes: observers must see every record.
        assert chunk_sink(ObservedLog(log, Plugins(load_entry_points=False))) is None
        assert chunk_sink(object()) is None
        assert LogWriter(log, "c", "t").threaded
        assert not LogWriter(counting, "c", "t").threaded
        assert not LogWriter(None, "c", "t").threaded
    finally:
        log.close()
        counting.close()


def test_a_burst_without_append_chunks_goes_through_append() -> None:
    appended: list[list[LogRecord]] = []

    class Plain:
        def append(self, records: Sequence[LogRecord]) -> object:
            appended.append(list(records))
            return None

    writer = LogWriter(Plain(), "chat", "turn-1")
    burst = writer.new_burst()
    burst.types += ["start", "text-delta"]
    burst.bodies += [b'{"type":"start"}', b'{"type":"text-delta","id":"t","delta":"x"}']
    burst.tail.extend(writer.client("stream-error", {"code": "x", "message": "y"}))
    writer.append_burst(burst)
    [records] = appended
    assert [(r.origin, r.type, r.turn) for r in records] == [
        ("server", "start", "turn-1"),
        ("server", "text-delta", "turn-1"),
        ("client", "stream-error", "turn-1"),
    ]
    assert records[1].body == burst.bodies[1]
    writer.append_burst(Burst("turn-1"))  # nothing to log: no call
    assert len(appended) == 1


async def test_commits_stay_on_the_trio_thread_under_an_autojump_clock(
    autojump_clock: trio.abc.Clock,
) -> None:
    # The clock cannot see a thread working: waiting for one would let it jump ahead.
    assert not may_wait_for_threads()


async def test_commits_may_use_a_thread_under_the_real_clock() -> None:
    assert may_wait_for_threads()


@pytest.mark.parametrize("synchronous", ["full", "normal"])
async def test_a_real_log_gets_every_chunk_once_in_order(tmp_path: Path, synchronous: str) -> None:
    log = EventLog(tmp_path / "kai.db", synchronous=synchronous)  # type: ignore[arg-type]
    async with raw_server(_all_at_once) as server, client_for(server, log=log) as client:
        stream = client.send_message("c1", "hi")
        n = 0
        async for _event in stream:
            n += 1
    stored = [e for e in log.events("c1") if e.origin == "server"]
    assert len(stored) == N + 6 == n
    assert [e.seq for e in stored] == list(range(stored[0].seq, stored[0].seq + N + 6))
    assert stored[3].body == b'{"type":"text-delta","id":"t","delta":"w0 "}'
    log.close()
