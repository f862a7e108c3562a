"""EventStream against a raw HTTP/1.1 server on loopback that writes exact bytes.

The server (``raw_server.py``) plays captured SDK fixtures split at arbitrary points, cuts
connections, stalls and notices when the client hangs up, so these tests pin
the transport behaviour independently of the emulator.
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from pathlib import Path

import msgspec
import pytest
import trio
import trio.testing

from kai_core.client import KaiClient
from kai_core.events import FinishEvent, TextEvent
from kai_core.exceptions import KaiStreamError, KaiTimeoutError
from kai_core.log import EventLog, LogRecord

from .raw_server import TOKEN, Conn, Handler, Request, client_for, fixture, raw_server


def splits(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def play(pieces: list[bytes], *, end: bool = True) -> Handler:
    async def handler(conn: Conn, request: Request) -> None:
        await conn.start()
        for p in pieces:
            await conn.piece(p)
        if end:
            await conn.end()
            await conn.wait_disconnect()

    return handler


async def collect(client: KaiClient, chat_id: str = "c1") -> list[object]:
    return [e async for e in client.send_message(chat_id, "hi")]


@pytest.mark.parametrize("size", [1, 7, 64, 100_000])
async def test_fixture_played_in_any_pieces_gives_the_same_events(size: int) -> None:
    data = fixture("tables.sse")
    async with raw_server(play([data])) as server, client_for(server) as client:
        whole = await collect(client)
    async with raw_server(play(splits(data, size))) as server, client_for(server) as client:
        pieces = await collect(client)
    assert [type(e) for e in pieces] == [type(e) for e in whole]
    assert pieces == whole
    assert isinstance(whole[-1], FinishEvent)


async def test_request_body_and_headers() -> None:
    async with raw_server(play([fixture("hello.sse")])) as server, client_for(server) as client:
        events = [e async for e in client.send_message("c1", "hello", branch_id=7, hidden=True)]
    assert "".join(e.text for e in events if isinstance(e, TextEvent))
    (req,) = server.requests
    assert req.method == "POST" and req.path == "/api/chat"
    assert req.headers["x-storageapi-token"] == TOKEN
    assert req.headers["x-storageapi-url"] == "https://storage.test"
    body = msgspec.json.decode(req.body)
    assert body["id"] == "c1"
    assert body["selectedChatModel"] == "chat-model"
    assert body["selectedVisibilityType"] == "private"
    assert body["branchId"] == 7
    assert body["message"]["role"] == "user"
    assert body["message"]["parts"] == [{"type": "text", "text": "hello"}]
    assert body["message"]["metadata"] == {"hidden": True}


async def test_cut_stream_raises_after_every_event(tmp_path: Path) -> None:
    data = fixture("slow-dropped.sse")
    log = EventLog(tmp_path / "kai.db")
    got: list[object] = []
    async with raw_server(play([data], end=True)) as server, client_for(server, log=log) as client:
        with pytest.raises(KaiStreamError) as info:
            async for event in client.send_message("c1", "slow"):
                got.append(event)
    assert info.value.code == "stream:cut"
    assert info.value.events_delivered == len(got) > 0
    assert f"after {len(got)} events" in str(info.value)
    types = [e.type for e in log.events()]
    assert types[0] == "user-message"
    assert types[-1] == "stream-error"


async def test_connection_dropped_mid_body_is_a_cut() -> None:
    data = fixture("hello.sse")

    async def handler(conn: Conn, request: Request) -> None:
        await conn.start()
        await conn.piece(data[:200])
        await conn.stream.send_all(b"ff\r\nabc")  # a chunk that never completes

    async with raw_server(handler) as server, client_for(server) as client:
        with pytest.raises(KaiStreamError) as info:
            await collect(client)
    assert info.value.code == "stream:cut"


async def test_done_ends_even_if_the_server_keeps_the_body_open() -> None:
    data = fixture("hello.sse")

    async def handler(conn: Conn, request: Request) -> None:
        await conn.start()
        await conn.piece(data)
        await conn.wait_disconnect()  # never ends the chunked body

    async with raw_server(handler) as server, client_for(server) as client:
        with trio.fail_after(5):
            events = await collect(client)
        with trio.fail_after(5):
            await server.disconnected.wait()
    assert isinstance(events[-1], FinishEvent)


def stall_after(data: bytes, cut: int) -> Handler:
    async def handler(conn: Conn, request: Request) -> None:
        await conn.start()
        await conn.piece(data[:cut])
        await conn.wait_disconnect()

    return handler


@pytest.mark.filterwarnings("error")
async def test_break_closes_the_response_at_once(tmp_path: Path) -> None:
    data = fixture("tables.sse")
    log = EventLog(tmp_path / "kai.db")
    async with raw_server(stall_after(data, 600)) as server, client_for(server, log=log) as client:
        async for _event in client.send_message("c1", "list"):
            break
        with trio.fail_after(5):
            await server.disconnected.wait()
        gc.collect()
        # the pool holds no connection any more
        pool = client._http.http._transport._pool  # type: ignore[attr-defined]
        assert pool.connections == []
    await trio.testing.wait_all_tasks_blocked()
    assert [e.type for e in log.events()][-1] == "cancelled"


@pytest.mark.filterwarnings("error")
async def test_exception_in_loop_body_closes_the_response() -> None:
    data = fixture("tables.sse")
    async with raw_server(stall_after(data, 600)) as server, client_for(server) as client:
        with pytest.raises(ZeroDivisionError):
            async for _event in client.send_message("c1", "list"):
                1 / 0  # noqa: B018
        with trio.fail_after(5):
            await server.disconnected.wait()


@pytest.mark.filterwarnings("error")
async def test_cancel_while_waiting_closes_and_logs(tmp_path: Path) -> None:
    data = fixture("tables.sse")
    log = EventLog(tmp_path / "kai.db")
    got: list[object] = []
    async with raw_server(stall_after(data, 600)) as server, client_for(server, log=log) as client:
        with trio.move_on_after(0.2):
            async for event in client.send_message("c1", "list"):
                got.append(event)
        with trio.fail_after(5):
            await server.disconnected.wait()
    records = log.events()
    assert records[-1].type == "cancelled"
    assert msgspec.json.decode(records[-1].body) == {"events_delivered": len(got)}


@pytest.mark.filterwarnings("error")
async def test_async_with_block_closes_on_exit() -> None:
    data = fixture("tables.sse")
    async with raw_server(stall_after(data, 600)) as server, client_for(server) as client:
        async with client.stream_message("c1", "list") as events:
            first = await events.__anext__()
            assert first is not None
        with trio.fail_after(5):
            await server.disconnected.wait()


async def test_stream_read_timeout() -> None:
    data = fixture("tables.sse")
    async with (
        raw_server(stall_after(data, 600)) as server,
        client_for(server, stream_read_timeout=0.3) as client,
    ):
        with pytest.raises(KaiTimeoutError) as info:
            await collect(client)
    assert info.value.code == "timeout:stream_read"


async def test_event_too_large() -> None:
    big = b'data: {"type":"text-delta","id":"t","delta":"' + b"x" * 5000 + b'"}\n\n'
    async with raw_server(play([big])) as server, client_for(server, max_event_size=1000) as client:
        with pytest.raises(KaiStreamError) as info:
            await collect(client)
    assert info.value.code == "stream:too_large"


async def test_malformed_chunk_after_good_ones(tmp_path: Path) -> None:
    data = fixture("hello.sse")
    head, _, _ = data.partition(b"data: [DONE]")
    log = EventLog(tmp_path / "kai.db")
    stream = head + b"data: {not json\n\n" + b"data: [DONE]\n\n"
    got: list[object] = []
    async with raw_server(play([stream])) as server, client_for(server, log=log) as client:
        with pytest.raises(KaiStreamError) as info:
            async for event in client.send_message("c1", "hi"):
                got.append(event)
    assert got and isinstance(got[-1], FinishEvent)
    assert info.value.events_delivered == len(got)
    assert log.events()[-1].type == "stream-error"


async def test_log_holds_exact_payloads_in_order(tmp_path: Path) -> None:
    data = fixture("bucket-request.sse")
    log = EventLog(tmp_path / "kai.db")
    async with raw_server(play(splits(data, 37))) as server, client_for(server, log=log) as client:
        await collect(client)
    server_bodies = [e.body for e in log.events() if e.origin == "server"]
    expected = [
        line[6:]
        for line in data.split(b"\n")
        if line.startswith(b"data: ") and line != b"data: [DONE]"
    ]
    assert server_bodies == expected
    user = log.events()[0]
    assert user.type == "user-message"
    body = msgspec.json.decode(user.body)
    assert body["message"]["parts"] == [{"type": "text", "text": "hi"}]
    assert body["server"] == f"http://127.0.0.1:{server.port}"
    assert body["backend"] is None
    assert TOKEN.encode() not in b"".join(e.body for e in log.events())


async def test_log_append_happens_before_events_of_that_read(tmp_path: Path) -> None:
    data = fixture("hello.sse")
    log = EventLog(tmp_path / "kai.db")
    async with raw_server(play(splits(data, 50))) as server, client_for(server, log=log) as client:
        async for event in client.send_message("c1", "hi"):
            if event.chunk is not None:
                logged = [e.body for e in log.events() if e.origin == "server"]
                assert msgspec.json.encode(event.chunk) in logged or any(
                    msgspec.json.decode(b) == msgspec.to_builtins(event.chunk) for b in logged
                )


async def test_log_appends_once_per_burst_of_reads(tmp_path: Path) -> None:
    # One SSE event per HTTP chunk, far more than one socket read holds, all
    # written at once: the reads already waiting are logged in one append per
    # burst, and still no event is handed out before its record is committed.
    n = 4000
    events = [
        b'data: {"type":"start"}\n\n',
        b'data: {"type":"start-step"}\n\n',
        b'data: {"type":"text-start","id":"t"}\n\n',
        *(b'data: {"type":"text-delta","id":"t","delta":"word %d "}\n\n' % i for i in range(n)),
        b'data: {"type":"text-end","id":"t"}\n\n',
        b'data: {"type":"finish-step"}\n\n',
        b'data: {"type":"finish","finishReason":"stop"}\n\n',
        b"data: [DONE]\n\n",
    ]
    body = b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in events) + b"0\r\n\r\n"

    async def handler(conn: Conn, request: Request) -> None:
        await conn.start()
        await conn.stream.send_all(body)
        await conn.wait_disconnect()

    class CountingLog(EventLog):
        appends = 0
        server = 0

        def append(self, records: Sequence[LogRecord]) -> int:
            result = super().append(records)
            self.appends += 1
            self.server += sum(r.origin == "server" for r in records)
            return result

    log = CountingLog(tmp_path / "kai.db")
    delivered = 0
    text: list[str] = []
    async with raw_server(handler) as server, client_for(server, log=log) as client:
        async for event in client.send_message("c1", "hi"):
            if event.chunk is not None:
                delivered += 1
                assert delivered <= log.server  # its record was committed first
            if isinstance(event, TextEvent):
                text.append(event.text)
    assert log.server == len(events) - 1
    assert "".join(text) == "".join(f"word {i} " for i in range(n))
    assert log.appends < n // 2  # bursts, not one append per read
