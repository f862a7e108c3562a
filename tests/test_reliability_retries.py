"""Retries: what is safe to repeat is repeated, with capped, jittered back-off; a chat never is.

Complements ``test_client_retry.py`` (statuses, Retry-After, bounds): here the
back-off schedule is measured request by request on trio's autojump clock,
connections that die before or during an answer are retried for GETs, the
bound is configurable, and against the emulator a chat message is sent
exactly once whatever fault it meets.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing

from kai_core.exceptions import KaiError, KaiStreamError

from .raw_server import Conn, Request, client_for, raw_server
from .reliability_support import Backend, connected, requests_to

pytestmark = pytest.mark.reliability

PING = b'{"timestamp":"2026-01-01T00:00:00Z"}'


async def test_backoff_doubles_with_jitter_up_to_the_cap(autojump_clock: trio.abc.Clock) -> None:
    times: list[float] = []

    async def handler(conn: Conn, request: Request) -> None:
        times.append(trio.current_time())
        await conn.simple(503, b"busy")

    async with raw_server(handler) as server:
        options = {"max_retries": 7, "retry_backoff": 1.0, "max_retry_backoff": 8.0}
        async with client_for(server, **options) as client:
            with pytest.raises(KaiError) as info:
                await client.get_history()
    assert info.value.code == "http:503"
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert len(gaps) == 7
    for attempt, gap in enumerate(gaps):
        ceiling = min(8.0, 1.0 * 2**attempt)
        assert 0.5 * ceiling <= gap <= ceiling + 0.01, (attempt, gap)
    assert len({round(g / min(8.0, 2**i), 3) for i, g in enumerate(gaps)}) > 1  # jittered


@pytest.mark.parametrize("retries", [0, 1, 5])
async def test_the_bound_is_configurable(retries: int, autojump_clock: trio.abc.Clock) -> None:
    async def handler(conn: Conn, request: Request) -> None:
        await conn.simple(502, b"")

    async with raw_server(handler) as server, client_for(server, max_retries=retries) as client:
        with pytest.raises(KaiError):
            await client.get_usage()
        with pytest.raises(KaiError):
            await client.downvote("c1", "m1")
    assert len(server.requests) == 2 * (retries + 1)


@pytest.mark.parametrize("how", ["closed-before-answering", "body-cut-short"])
async def test_a_get_whose_connection_dies_is_retried(
    how: str, autojump_clock: trio.abc.Clock
) -> None:
    calls = 0

    async def handler(conn: Conn, request: Request) -> None:
        nonlocal calls
        calls += 1
        if calls <= 2:
            if how == "body-cut-short":
                await conn.stream.send_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{")
            return  # the connection closes
        await conn.simple(200, PING, {"content-type": "application/json"})

    async with raw_server(handler) as server, client_for(server) as client:
        ping = await client.ping()
    assert ping.timestamp.startswith("2026")
    assert calls == 3


async def test_a_chat_whose_connection_dies_is_not_resent(autojump_clock: trio.abc.Clock) -> None:
    async def handler(conn: Conn, request: Request) -> None:
        return  # read the request, answer nothing, close

    async with raw_server(handler) as server, client_for(server) as client:
        with pytest.raises(KaiError):
            async for _ in client.send_message("c1", "hello"):
                pass
        with pytest.raises(KaiError):
            await client.submit_approval("c1", "call-1", True)
    assert [r.method for r in server.requests] == ["POST", "POST"]
    assert [r.path for r in server.requests] == ["/api/chat", "/api/chat/c1/approval"]


@pytest.mark.parametrize("backend", ["agent", "assistant"])
async def test_a_chat_message_is_sent_once_whatever_happens(
    backend: Backend, autojump_clock: trio.abc.Clock
) -> None:
    async with connected(backend) as (emulator, client):
        faults = [
            lambda: emulator.faults.rate_limit(times=1, retry_after=1),
            lambda: emulator.faults.fail(times=1, status=502),
            lambda: emulator.faults.fail(times=1, status=503),
            lambda: emulator.faults.fail(times=1, status=504),
            lambda: emulator.faults.drop_connection(after=0),
            lambda: emulator.faults.drop_connection(after=5),
            lambda: emulator.faults.inject_malformed(at=3),
        ]
        for n, arm in enumerate(faults, start=1):
            arm()
            try:
                async for _ in client.send_message(client.new_chat_id(), "hello"):
                    pass
            except KaiError as exc:
                # A cut on kai-assistant is resumed (a GET), never re-sent.
                assert (
                    backend == "agent"
                    or not isinstance(exc, KaiStreamError)
                    or (exc.code == "stream:malformed_chunk")
                )
            emulator.faults.reset()
            assert requests_to(emulator, "POST", "/api/chat") == n
