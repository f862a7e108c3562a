"""Retries, back-off and error mapping, against the raw loopback server, on trio's autojump clock."""

from __future__ import annotations

import msgspec
import pytest
import trio
import trio.testing

from kai_core._http import RetryPolicy, parse_retry_after, scrub
from kai_core.client import KaiClient
from kai_core.exceptions import (
    KaiAuthenticationError,
    KaiBadRequestError,
    KaiConnectionError,
    KaiError,
    KaiForbiddenError,
    KaiNotFoundError,
    KaiRateLimitError,
    KaiTimeoutError,
)

from .raw_server import TOKEN, Conn, Request, client_for, free_port, raw_server

PING = b'{"timestamp":"2026-01-01T00:00:00Z"}'


def scripted(*answers: tuple[int, bytes, dict[str, str]]):  # type: ignore[no-untyped-def]
    """Answer each request with the next (status, body, headers); the last one repeats."""
    queue = list(answers)

    async def handler(conn: Conn, request: Request) -> None:
        status, body, headers = queue.pop(0) if len(queue) > 1 else queue[0]
        await conn.simple(status, body, {"content-type": "application/json", **headers})

    return handler


def err(code: str, message: str = "nope") -> bytes:
    return msgspec.json.encode({"code": code, "message": message, "cause": "detail"})


async def test_get_retried_on_503_then_succeeds(autojump_clock: trio.abc.Clock) -> None:
    handler = scripted((503, err("offline:chat"), {}), (502, b"bad gateway", {}), (200, PING, {}))
    async with raw_server(handler) as server, client_for(server) as client:
        start = trio.current_time()
        ping = await client.ping()
        waited = trio.current_time() - start
    assert ping.timestamp.startswith("2026")
    assert len(server.requests) == 3
    # two back-offs: 0.5*[0.5,1] + 1.0*[0.5,1]
    assert 0.75 <= waited <= 1.5 + 0.5


async def test_429_honours_retry_after(autojump_clock: trio.abc.Clock) -> None:
    handler = scripted((429, err("rate_limit:chat"), {"retry-after": "7"}), (200, PING, {}))
    async with raw_server(handler) as server, client_for(server) as client:
        start = trio.current_time()
        await client.ping()
        waited = trio.current_time() - start
    assert len(server.requests) == 2
    assert 7 <= waited < 8


async def test_retries_are_bounded(autojump_clock: trio.abc.Clock) -> None:
    handler = scripted((503, err("offline:chat", "down"), {}))
    async with raw_server(handler) as server, client_for(server, max_retries=2) as client:
        with pytest.raises(KaiError) as info:
            await client.get_usage()
    assert len(server.requests) == 3
    assert info.value.code == "offline:chat"


async def test_backoff_is_capped(autojump_clock: trio.abc.Clock) -> None:
    handler = scripted((504, b"", {}))
    async with (
        raw_server(handler) as server,
        client_for(server, max_retries=6, retry_backoff=1.0, max_retry_backoff=2.0) as client,
    ):
        start = trio.current_time()
        with pytest.raises(KaiError) as info:
            await client.get_history()
        waited = trio.current_time() - start
    assert info.value.code == "http:504"
    assert len(server.requests) == 7
    assert waited <= 1.0 + 5 * 2.0 + 0.5


async def test_long_retry_after_is_not_waited_out(autojump_clock: trio.abc.Clock) -> None:
    handler = scripted((429, err("rate_limit:chat"), {"retry-after": "3600"}))
    async with raw_server(handler) as server, client_for(server) as client:
        with pytest.raises(KaiRateLimitError) as info:
            await client.get_usage()
    assert info.value.retry_after == 3600
    assert len(server.requests) == 1


async def test_post_chat_is_never_retried(autojump_clock: trio.abc.Clock) -> None:
    handler = scripted((503, err("offline:chat", "busy"), {}))
    async with raw_server(handler) as server, client_for(server) as client:
        with pytest.raises(KaiError) as info:
            async for _ in client.send_message("c1", "hi"):
                pass
    assert info.value.code == "offline:chat"
    assert len(server.requests) == 1


async def test_vote_is_retried(autojump_clock: trio.abc.Clock) -> None:
    handler = scripted((502, b"", {}), (200, b"Message voted", {"content-type": "text/plain"}))
    async with raw_server(handler) as server, client_for(server) as client:
        vote = await client.upvote("c1", "m1")
    assert vote.type == "up" and vote.is_upvoted
    assert [r.method for r in server.requests] == ["PATCH", "PATCH"]
    assert msgspec.json.decode(server.requests[0].body) == {
        "chatId": "c1",
        "messageId": "m1",
        "type": "up",
    }


async def test_delete_and_suggestions_not_retried(autojump_clock: trio.abc.Clock) -> None:
    handler = scripted((503, b"", {}))
    async with raw_server(handler) as server, client_for(server) as client:
        with pytest.raises(KaiError):
            await client.delete_chat("c1")
        with pytest.raises(KaiError):
            await client.get_suggestions("dashboard", {})
    assert len(server.requests) == 2


async def test_connection_refused_retried_then_raises(autojump_clock: trio.abc.Clock) -> None:
    port = free_port()
    client = KaiClient(TOKEN, "https://storage.test", f"http://127.0.0.1:{port}", max_retries=2)
    start = trio.current_time()
    with pytest.raises(KaiConnectionError) as info:
        await client.get_chat("c1")
    await client.close()
    assert trio.current_time() - start >= 0.25 + 0.5
    assert f"127.0.0.1:{port}" in str(info.value)
    assert TOKEN not in str(info.value) and TOKEN not in repr(info.value)


@pytest.mark.parametrize(
    ("status", "body", "cls", "code"),
    [
        (400, err("bad_request:api"), KaiBadRequestError, "bad_request:api"),
        (401, err("unauthorized:chat"), KaiAuthenticationError, "unauthorized:chat"),
        (403, err("forbidden:chat"), KaiForbiddenError, "forbidden:chat"),
        (404, err("not_found:chat"), KaiNotFoundError, "not_found:chat"),
        (404, b"<html>gone</html>", KaiNotFoundError, "http:404"),
        (500, b"boom", KaiError, "http:500"),
        (418, b"", KaiError, "http:418"),
    ],
)
async def test_status_errors(status: int, body: bytes, cls: type[KaiError], code: str) -> None:
    async with raw_server(scripted((status, body, {}))) as server, client_for(server) as client:
        with pytest.raises(cls) as info:
            await client.get_chat("c1")
    assert type(info.value) is cls
    assert info.value.code == code


async def test_token_echoed_by_server_is_masked() -> None:
    body = err("unauthorized:chat", f"bad token {TOKEN}")
    async with raw_server(scripted((401, body, {}))) as server, client_for(server) as client:
        with pytest.raises(KaiAuthenticationError) as info:
            await client.get_chat("c1")
    for text in (str(info.value), repr(info.value), info.value.message, repr(client)):
        assert TOKEN not in text
    assert TOKEN not in msgspec.json.encode(info.value.response_data).decode()


async def test_request_timeout() -> None:
    async def handler(conn: Conn, request: Request) -> None:
        await conn.wait_disconnect()

    async with raw_server(handler) as server, client_for(server, timeout=0.2) as client:
        with pytest.raises(KaiTimeoutError) as info:
            await client.get_usage()
    assert info.value.code == "timeout:read"
    assert TOKEN not in str(info.value)


def test_parse_retry_after() -> None:
    assert parse_retry_after(None) is None
    assert parse_retry_after("12") == 12
    assert parse_retry_after("-3") == 0
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10
    assert parse_retry_after("nan") is None


def test_retry_policy_delay() -> None:
    import random

    policy = RetryPolicy(backoff=1, max_backoff=5)
    rng = random.Random(1)
    for attempt in range(10):
        d = policy.delay(attempt, rng)
        assert min(5, 2**attempt) / 2 <= d <= min(5, 2**attempt)
    assert policy.delay(3, rng, retry_after=9) == 9


def test_scrub() -> None:
    assert scrub(f"a {TOKEN} b {TOKEN}", TOKEN) == "a *** b ***"
    assert scrub("abc", "") == "abc"


def test_client_repr_hides_token() -> None:
    client = KaiClient(TOKEN, "https://storage.test", "http://kai.test/", backend="agent")
    assert repr(client) == "KaiClient(base_url='http://kai.test', backend='kai-agent')"
    assert TOKEN not in str(client)
