"""Timeouts: connect, per-read on streams, and the caller's own deadline all end cleanly.

"Cleanly" means: the right exception (or ``Cancelled`` for the caller's own
deadline), the response closed, the client usable again, and the log
consistent: it passes ``integrity_check``, holds every event that was
yielded, and says why the answer stopped (``stream-error`` or
``cancelled``). Server stalls use the emulator's ``Pause`` or a raw server
that goes silent; most tests run on trio's autojump clock, so nothing here
really waits.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import trio
import trio.testing

from kai_core.client import KaiClient
from kai_core.events import Event, FinishEvent
from kai_core.exceptions import KaiTimeoutError
from kai_core.log import EventLog
from kai_core.testing import Pause, Say, Step

from .raw_server import Conn, Request, client_for, fixture, raw_server
from .reliability_support import (
    client_records,
    connected,
    integrity_ok,
    normalised,
    requests_to,
    server_payloads,
)

pytestmark = pytest.mark.reliability


def _stalling(text: str) -> list[Step]:
    # Three words, a long silence, three more: the silence is where the read times out.
    return [Step([Say("one two three "), Pause(120.0), Say("four five six")])]


@contextmanager
def _full_backlog() -> Iterator[int]:
    """A port whose listener never accepts and whose backlog is full: connects hang."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):
            s = socket.socket()
            s.setblocking(False)
            try:
                s.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            fillers.append(s)
        yield port
    finally:
        for s in fillers:
            s.close()
        listener.close()


async def test_connect_timeout_on_a_request_and_on_a_stream(
    autojump_clock: trio.abc.Clock, tmp_path: Path
) -> None:
    log = EventLog(tmp_path / "kai.db")
    with _full_backlog() as port:
        client = KaiClient(
            "t", "https://s", f"http://127.0.0.1:{port}", connect_timeout=5.0, log=log
        )
        async with client:
            start = trio.current_time()
            with pytest.raises(KaiTimeoutError) as info:
                await client.get_history()
            assert info.value.code == "timeout:connect"
            # Retried (a GET): four tries of 5 s plus the back-off, no more.
            assert 20.0 <= trio.current_time() - start < 60.0
            with pytest.raises(KaiTimeoutError) as info:
                async for _ in client.send_message("c1", "hello"):
                    pass
            assert info.value.code == "timeout:connect"
    kinds = [e.type for e in log.events("c1")]
    assert kinds == ["user-message", "stream-error"]
    assert client_records(log, "c1", "stream-error")[0]["code"] == "timeout:connect"
    integrity_ok(tmp_path / "kai.db")


async def test_a_silent_stream_times_out_with_every_yielded_event_logged(
    autojump_clock: trio.abc.Clock, tmp_path: Path
) -> None:
    log = EventLog(tmp_path / "kai.db")
    async with connected("assistant", log=log, stream_read_timeout=30.0) as (emulator, client):
        emulator.script(_stalling, trigger="stall")
        chat_id = client.new_chat_id()
        got: list[Event] = []
        start = trio.current_time()
        with pytest.raises(KaiTimeoutError) as info:
            async for event in client.send_message(chat_id, "stall"):
                got.append(event)
        assert 30.0 <= trio.current_time() - start < 40.0
        assert info.value.code == "timeout:stream_read"
        assert got, "the events before the silence were delivered"
        assert normalised(log.replay_events(chat_id)) == normalised(got)
        (error,) = client_records(log, chat_id, "stream-error")
        assert error["code"] == "timeout:stream_read"
        # A timeout is not a cut: no resume was tried, nothing was sent twice.
        assert requests_to(emulator, "GET", f"/api/chat/{chat_id}/stream") == 0
        assert requests_to(emulator, "POST", "/api/chat") == 1
        # The client still works.
        _, text = await client.chat("hello")
        assert text
    integrity_ok(tmp_path / "kai.db")


async def test_keep_alive_comments_keep_a_slow_stream_open(
    autojump_clock: trio.abc.Clock, tmp_path: Path
) -> None:
    # The read timeout sits above the server's keep-alive period: a model that
    # thinks for two minutes is not mistaken for a dead server.
    async with connected("assistant", stream_read_timeout=30.0) as (emulator, client):
        emulator.faults.keepalive = 10.0
        emulator.script(_stalling, trigger="stall")
        events = [e async for e in client.send_message(client.new_chat_id(), "stall")]
        assert isinstance(events[-1], FinishEvent)


@pytest.mark.parametrize("deadline", [0.5, 61.0, 125.0])
async def test_the_callers_deadline_ends_the_stream_cleanly(
    deadline: float, autojump_clock: trio.abc.Clock, tmp_path: Path
) -> None:
    log = EventLog(tmp_path / "kai.db")
    async with connected("assistant", log=log, stream_read_timeout=None) as (emulator, client):
        emulator.script(_stalling, trigger="stall")
        emulator.faults.chunk_delay = 1.0
        chat_id = client.new_chat_id()
        got: list[Event] = []
        with trio.move_on_after(deadline) as scope:
            async for event in client.send_message(chat_id, "stall"):
                got.append(event)
        assert scope.cancelled_caught
        cancelled = client_records(log, chat_id, "cancelled")
        assert cancelled == [{"events_delivered": len(got)}]
        # Every yielded event is in the log (the log may hold more: a read's
        # chunks are logged before its events are handed out).
        replayed = normalised(log.replay_events(chat_id))
        assert replayed[: len(got)] == normalised(got)
        assert len(server_payloads(log, chat_id)) >= len(got)
        # The connection was released; the client still works.
        emulator.faults.chunk_delay = 0.0
        _, text = await client.chat("hello")
        assert text
    integrity_ok(tmp_path / "kai.db")


async def test_the_callers_deadline_during_a_resume(
    autojump_clock: trio.abc.Clock, tmp_path: Path
) -> None:
    # The stream is cut, the resume request never gets an answer: the caller's
    # deadline ends it, and the log says so.
    frames = fixture("hello.sse")
    calls = 0

    async def handler(conn: Conn, request: Request) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            await conn.start()
            await conn.piece(frames[:300])
            return  # cut
        await trio.sleep_forever()

    log = EventLog(tmp_path / "kai.db")
    async with raw_server(handler) as server:
        async with client_for(server, backend="assistant", log=log) as client:
            got: list[Event] = []
            with trio.move_on_after(100.0) as scope:
                async for event in client.send_message("c1", "hello"):
                    got.append(event)
            assert scope.cancelled_caught
            assert got
    assert client_records(log, "c1", "cancelled") == [{"events_delivered": len(got)}]
    assert [r.method for r in server.requests] == ["POST", "GET"]
    integrity_ok(tmp_path / "kai.db")


async def test_a_server_that_never_answers_a_request_times_out(
    autojump_clock: trio.abc.Clock,
) -> None:
    async def handler(conn: Conn, request: Request) -> None:
        await trio.sleep_forever()

    async with raw_server(handler) as server:
        async with client_for(server, timeout=20.0, max_retries=0) as client:
            with pytest.raises(KaiTimeoutError) as info:
                await client.get_history()
            assert info.value.code == "timeout:read"
        async with client_for(server, stream_read_timeout=20.0) as client:
            with pytest.raises(KaiTimeoutError):
                async for _ in client.send_message("c1", "hello"):
                    pass
