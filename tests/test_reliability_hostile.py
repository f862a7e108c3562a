"""A hostile or misconfigured server: whatever it sends ends in a KaiError, named clearly.

Real loopback sockets (a raw server writes exact bytes, so framing can be
broken in ways no HTTP library would produce), the real client with its own
HTTP/1.1 body reader, a real event log. The promise checked: every server
input ends in events or a :class:`~kai_core.exceptions.KaiError` (never
``OverflowError``, ``RecursionError``, ``httpx.ResponseNotRead``, ...), the
log says why the answer stopped (a ``stream-error`` record), and the
message names what the server did (no answer, a redirect and its host, a
content type that is not an event stream).
"""

from __future__ import annotations

import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path

import msgspec
import pytest
import trio
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from kai_core.client import KaiClient
from kai_core.discovery import InsecureURLWarning, KaiBackend, discover
from kai_core.events import Event, FinishEvent
from kai_core.exceptions import KaiError, KaiStreamError
from kai_core.log import EventLog
from kai_core.testing import open_emulator

from .raw_server import TOKEN, Conn, Request, client_for, fixture, raw_server
from .reliability_support import (
    KAI,
    client_records,
    frame_payloads,
    kai_env,
    normalised,
    requests_to,
    server_payloads,
)

pytestmark = pytest.mark.reliability

HELLO = fixture("hello.sse")
SSE_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"


def sends(raw: bytes) -> Callable[[Conn, Request], Awaitable[None]]:
    """A handler that writes ``raw`` (status line, headers, body) and hangs up."""

    async def handler(conn: Conn, request: Request) -> None:
        await conn.stream.send_all(raw)
        await conn.stream.aclose()

    return handler


async def outcome_of(
    raw: bytes, log: EventLog | None = None, **options: object
) -> tuple[list[Event], KaiError | None]:
    """The events and the error of one message answered with ``raw``."""
    events: list[Event] = []
    async with raw_server(sends(raw)) as server, client_for(server, log=log, **options) as client:
        try:
            with trio.fail_after(20):
                async for event in client.send_message("c1", "hi"):
                    events.append(event)
        except KaiError as exc:
            return events, exc
    return events, None


def last_stream_error(log: EventLog) -> dict[str, str]:
    errors = client_records(log, "c1", "stream-error")
    assert errors, "the log does not say why the answer stopped"
    return errors[-1]  # type: ignore[no-any-return]


# -- item 9: nothing but KaiError -----------------------------------------------------


async def test_a_chunk_size_of_20_hex_digits_is_a_cut(tmp_path: Path) -> None:
    # h11 reads sizes of up to 20 hex digits; such a size is past what a slice can
    # take (OverflowError before). It is a body that never completes: a cut.
    good = b"%x\r\n%s\r\n" % (len(HELLO[:60]), HELLO[:60])
    raw = SSE_HEAD + b"transfer-encoding: chunked\r\n\r\n" + good + b"F" * 20 + b"\r\nabc"
    log = EventLog(tmp_path / "kai.db")
    events, error = await outcome_of(raw, log, resume_attempts=0)
    assert isinstance(error, KaiStreamError) and error.code == "stream:cut"
    assert "incomplete chunked read" in str(error)
    assert error.events_delivered == len(events)
    assert last_stream_error(log)["code"] == "stream:cut"


@pytest.mark.parametrize("where", ["input", "unknown", "data", "extra"])
async def test_json_nested_100k_deep_is_a_malformed_chunk(where: str, tmp_path: Path) -> None:
    nested = b"[" * 100_000 + b"]" * 100_000
    chunk = {
        "input": b'{"type":"tool-input-available","toolCallId":"c","toolName":"x","input":%s}',
        "unknown": b'{"type":"brand-new","x":%s}',
        "data": b'{"type":"data-x","data":%s}',
        "extra": b'{"type":"text-delta","id":"t","delta":"x","extra":%s}',
    }[where] % nested
    body = b'data: {"type":"start"}\n\ndata: ' + chunk + b"\n\ndata: [DONE]\n\n"
    raw = SSE_HEAD + b"content-length: %d\r\n\r\n" % len(body) + body
    log = EventLog(tmp_path / "kai.db")
    events, error = await outcome_of(raw, log)
    assert isinstance(error, KaiStreamError) and error.code == "stream:malformed_chunk"
    assert len(events) == error.events_delivered  # the "start" before it
    assert last_stream_error(log)["code"] == "stream:malformed_chunk"
    assert len(server_payloads(log, "c1")) == 1


_ERROR_BODY = b'{"code":"offline:chat","message":"the model is down"}'


@pytest.mark.parametrize("status", [400, 401, 403, 404, 429, 500, 503])
@pytest.mark.parametrize("framing", ["cut", "bad-chunking"])
async def test_an_error_status_with_a_broken_body_is_its_error(
    status: int, framing: str, tmp_path: Path
) -> None:
    # Before: httpx.ResponseNotRead, in 14 of 14 of these.
    head = b"HTTP/1.1 %d X\r\ncontent-type: application/json\r\n" % status
    if framing == "cut":
        raw = head + b"content-length: 500\r\n\r\n" + _ERROR_BODY
    else:
        raw = head + b"transfer-encoding: chunked\r\n\r\n%x\r\n%s\r\nzz\r\n" % (
            len(_ERROR_BODY),
            _ERROR_BODY,
        )
    log = EventLog(tmp_path / "kai.db")
    events, error = await outcome_of(raw, log)
    assert error is not None and not events
    # What arrived of the body is read: its code and message are the error's.
    assert error.code == "offline:chat" and error.message == "the model is down"
    assert last_stream_error(log)["code"] == "offline:chat"


async def test_an_error_body_nested_too_deep_is_shown_as_text() -> None:
    body = b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    raw = b"HTTP/1.1 500 X\r\ncontent-length: %d\r\n\r\n" % len(body) + body
    events, error = await outcome_of(raw)
    assert error is not None and error.code == "http:500"
    assert len(error.message) < 300


async def test_an_endless_error_body_is_read_up_to_a_bound() -> None:
    async def handler(conn: Conn, request: Request) -> None:
        await conn.start(500, {"content-type": "text/plain"})
        while True:  # never ends: 64 KiB of it make the message
            await conn.piece(b"x" * 4096)

    async with raw_server(handler) as server, client_for(server) as client:
        with trio.fail_after(20), pytest.raises(KaiError) as info:
            await client.send_message("c1", "hi").__anext__()
    assert info.value.code == "http:500"


async def test_votes_that_are_not_json_are_a_kai_error() -> None:
    for body in (b"<html>oops</html>", b"5", b"[" * 100_000):
        raw = b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(body) + body
        async with raw_server(sends(raw)) as server, client_for(server) as client:
            with trio.fail_after(10), pytest.raises(KaiError) as info:
                await client.get_votes("c1")
        assert info.value.code == "response:invalid", body[:10]


# A hostile answer: a status line, headers and a body built from pieces that
# broke the client before (and plain valid ones), then the connection closes.
_STATUS = st.sampled_from([200, 200, 200, 204, 301, 302, 307, 400, 404, 429, 500, 503])
_TYPE = st.sampled_from(
    [b"text/event-stream", b"text/event-stream; charset=utf-8", b"text/html", b"", None]
)
_PIECE = st.sampled_from(
    [
        HELLO[:80],
        HELLO[80:],
        HELLO,
        b'data: {"type":"text-delta","id":"t","delta":"' + b"[" * 3000 + b'"}\n\n',
        b"data: " + b"[" * 2000 + b"]" * 2000 + b"\n\n",
        b'data: {"type":"data-x","data":' + b"[" * 5000 + b"]" * 5000 + b"}\n\n",
        b'data: {"type":"text-delta","id":"t","delta":"\xff"}\n\n',
        b"data: [DONE]\n\n",
        b'{"code":"offline:chat","message":"down"}',
        b"<html><title>Login</title></html>",
        b"\r\n",
        b"",
    ]
)


@st.composite
def hostile_answers(draw: st.DrawFn) -> bytes:
    status = draw(_STATUS)
    head = b"HTTP/1.1 %d X\r\n" % status
    kind = draw(_TYPE)
    if kind is not None:
        head += b"content-type: " + kind + b"\r\n"
    if 300 <= status < 400:
        head += draw(st.sampled_from([b"location: https://login.example/x\r\n", b""]))
    head += draw(st.sampled_from([b"", b"", b"content-encoding: gzip\r\n"]))
    body = b"".join(draw(st.lists(_PIECE, max_size=4)))
    framing = draw(st.sampled_from(["chunked", "length", "short", "close", "none"]))
    if framing == "chunked":
        sizes = draw(st.sampled_from([b"%x", b"F" * 20, b"%x;ext=1", b"-1", b"%X  "]))
        size = sizes % len(body) if b"%" in sizes else sizes
        ending = draw(st.sampled_from([b"\r\n0\r\n\r\n", b"\r\n", b"", b"xx\r\n"]))
        return head + b"transfer-encoding: chunked\r\n\r\n" + size + b"\r\n" + body + ending
    if framing in ("length", "short"):
        extra = 0 if framing == "length" else draw(st.integers(1, 10**6))
        return head + b"content-length: %d\r\n\r\n" % (len(body) + extra) + body
    if framing == "close":
        return head + b"\r\n" + body
    return head + b"content-length: 0\r\n\r\n"


def _only_kai_errors(raw: bytes, path: Path) -> None:
    async def main() -> None:
        log = EventLog(path)
        try:
            events, error = await outcome_of(raw, log)
            if error is not None:
                assert last_stream_error(log)["code"] == error.code
                if isinstance(error, KaiStreamError):
                    assert error.events_delivered == len(events)
            else:
                # Only a finished answer is a success: [DONE], or a clean end after finish.
                assert b"data: [DONE]" in raw or isinstance(events[-1], FinishEvent)
        finally:
            log.close()

    trio.run(main)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(raw=hostile_answers())
@example(raw=SSE_HEAD + b"transfer-encoding: chunked\r\n\r\n" + b"F" * 20 + b"\r\nabc")
@example(raw=b"HTTP/1.1 500 X\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n")
@example(raw=b"HTTP/1.1 204 X\r\n\r\n")
def test_hostile_answers_end_in_events_or_a_kai_error(raw: bytes, tmp_path: Path) -> None:
    path = tmp_path / f"kai-{hash(raw) & 0xFFFFFFFF:x}.db"
    try:
        _only_kai_errors(raw, path)
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


def _plain_requests_only_raise_kai_errors(raw: bytes) -> None:
    async def main() -> None:
        async with raw_server(sends(raw)) as server, client_for(server, max_retries=0) as client:
            for call in (
                client.ping,
                lambda: client.get_chat("c1"),
                client.get_history,
                lambda: client.get_votes("c1"),
                lambda: client.vote("c1", "m1", "up"),
                lambda: client.submit_approval("c1", "t1", True),
            ):
                try:
                    with trio.fail_after(20):
                        await call()
                except KaiError:
                    pass

    trio.run(main)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=hostile_answers())
@example(raw=b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: 4\r\n\r\nnope")
@example(raw=b'HTTP/1.1 500 X\r\ncontent-length: 31\r\n\r\n{"code":"a:b","message":[[1]]}')
def test_plain_requests_on_hostile_answers_raise_only_kai_errors(raw: bytes) -> None:
    # Before: httpx.DecodingError for a body that is not the gzip it says it is.
    _plain_requests_only_raise_kai_errors(raw)


# -- item 10: no answer is an error -----------------------------------------------------


async def test_a_204_to_a_message_is_an_error(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "kai.db")
    events, error = await outcome_of(b"HTTP/1.1 204 No Content\r\n\r\n", log)
    assert isinstance(error, KaiStreamError) and error.code == "stream:no_answer"
    assert "the server sent no answer" in str(error) and not events
    assert last_stream_error(log)["code"] == "stream:no_answer"


async def test_a_204_to_a_resume_is_still_an_empty_stream() -> None:
    async with raw_server(sends(b"HTTP/1.1 204 No Content\r\n\r\n")) as server:
        async with client_for(server, backend="assistant") as client:
            stream = client.resume_stream("c1")
            assert [e async for e in stream] == [] and stream.finished


async def _run_kai(port: int, home: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = kai_env(home)
    command = [str(KAI), "--base-url", f"http://127.0.0.1:{port}", "--token", TOKEN]
    command += ["--url", "https://storage.test", "--no-log", *args]
    with trio.fail_after(60):
        return await trio.run_process(
            command, env=env, capture_stdout=True, capture_stderr=True, check=False
        )


@pytest.mark.e2e
async def test_kai_chat_exits_8_when_the_server_sends_no_answer(tmp_path: Path) -> None:
    async with raw_server(sends(b"HTTP/1.1 204 No Content\r\n\r\n")) as server:
        done = await _run_kai(server.port, tmp_path, "chat", "-m", "hi")
    assert done.returncode == 8, done.stderr
    assert b"the server sent no answer" in done.stderr


# -- item 16: clearer diagnoses ----------------------------------------------------------


async def test_a_redirect_names_its_target_host(tmp_path: Path) -> None:
    raw = b"HTTP/1.1 302 Found\r\nlocation: https://login.example.com/sso?next=x\r\n"
    raw += b"content-length: 0\r\n\r\n"
    log = EventLog(tmp_path / "kai.db")
    events, error = await outcome_of(raw, log)
    assert error is not None and error.code == "http:302"
    assert "redirected to https://login.example.com (HTTP 302)" in str(error)
    assert "cut after" not in str(error)
    assert last_stream_error(log)["code"] == "http:302"
    # A plain request is told the same, and the redirect is not followed.
    async with raw_server(sends(raw)) as server, client_for(server) as client:
        with trio.fail_after(10), pytest.raises(KaiError) as info:
            await client.get_chat("c1")
        assert "GET" in str(info.value) and "login.example.com" in str(info.value)
        assert len(server.requests) == 1


async def test_an_html_page_is_named_by_its_content_type(tmp_path: Path) -> None:
    body = b"<html><title>Sign in</title></html>"
    raw = b"HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\n"
    raw += b"content-length: %d\r\n\r\n" % len(body) + body
    log = EventLog(tmp_path / "kai.db")
    events, error = await outcome_of(raw, log)
    assert isinstance(error, KaiStreamError) and error.code == "stream:not_event_stream"
    assert "answered 200 with text/html, not an event stream" in str(error)
    assert last_stream_error(log)["code"] == "stream:not_event_stream"


# -- item 15: resume when the backend is not named --------------------------------------


async def test_a_cut_stream_is_resumed_when_the_backend_is_not_named(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "kai.db")
    async with open_emulator(backend="assistant", token=TOKEN) as emulator:
        client = KaiClient(TOKEN, emulator.storage_api_url, emulator.base_url, log=log)
        async with client:
            assert client.backend is None
            uncut = [e async for e in client.send_message(client.new_chat_id(), "list my tables")]
            emulator.faults.drop_connection(after=4)
            chat_id = client.new_chat_id()
            with trio.fail_after(30):
                async with client.send_message(chat_id, "list my tables") as stream:
                    events = [e async for e in stream]
                    assert stream.resumes == 1 and stream.finished
    assert normalised(events) == normalised(uncut)  # nothing lost, nothing twice
    assert server_payloads(log, chat_id) == frame_payloads(emulator, chat_id)
    assert client_records(log, chat_id, "resume") == [{"skipped": 4}]
    assert requests_to(emulator, "POST", "/api/chat") == 2


async def test_a_backend_not_named_without_resume_says_there_is_nothing(tmp_path: Path) -> None:
    # kai-agent has no resume endpoint: 404, one request, the usual cut error.
    log = EventLog(tmp_path / "kai.db")
    async with open_emulator(backend="agent", token=TOKEN) as emulator:
        client = KaiClient(TOKEN, emulator.storage_api_url, emulator.base_url, log=log)
        async with client:
            emulator.faults.drop_connection(after=3)
            chat_id = client.new_chat_id()
            with trio.fail_after(30), pytest.raises(KaiStreamError) as info:
                await _drain(client.send_message(chat_id, "hello"))
    assert info.value.code == "stream:cut"
    assert "no stream to resume (404)" in str(info.value)
    assert requests_to(emulator, "GET", f"/api/chat/{chat_id}/stream") == 1
    assert len(server_payloads(log, chat_id)) == 3


async def _drain(stream: object) -> list[Event]:
    return [event async for event in stream]  # type: ignore[attr-defined]


# -- item 16: a service URL in plain http -----------------------------------------------


def storage_listing(url: str) -> Callable[[Conn, Request], Awaitable[None]]:
    """A Storage API whose index lists kai-agent at ``url``."""
    body = msgspec.json.encode({"services": [{"id": "kai-agent", "url": url}]})

    async def handler(conn: Conn, request: Request) -> None:
        await conn.simple(200, body, {"content-type": "application/json"})
        await conn.stream.aclose()

    return handler


async def test_discovery_warns_about_plain_http_to_another_host() -> None:
    async with raw_server(storage_listing("http://kai.example.com/")) as server:
        storage = f"http://127.0.0.1:{server.port}"
        with pytest.warns(InsecureURLWarning, match="plain http on another machine"):
            found = await discover(TOKEN, storage, "agent")
        assert found == ("http://kai.example.com", KaiBackend.AGENT)
        with pytest.raises(KaiError) as info:
            await discover(TOKEN, storage, "agent", require_https=True)
        assert info.value.code == "config:insecure_url"
        assert "kai.example.com" in str(info.value) and TOKEN not in str(info.value)


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/", "http://localhost:3000", "http://[::1]/"])
async def test_plain_http_to_this_machine_is_fine(url: str) -> None:
    async with raw_server(storage_listing(url)) as server:
        found = await discover(TOKEN, f"http://127.0.0.1:{server.port}", require_https=True)
    assert found[0] == url.rstrip("/")


@pytest.mark.parametrize("url", ["javascript:alert(1)", "ftp://kai.example.com", "http://", "kai"])
async def test_a_service_url_that_is_not_http_is_refused(url: str) -> None:
    async with raw_server(storage_listing(url)) as server:
        with pytest.raises(KaiError) as info:
            await discover(TOKEN, f"http://127.0.0.1:{server.port}")
    assert info.value.code == "discovery:bad_url"


def test_the_client_refuses_plain_http_when_https_is_required() -> None:
    with pytest.raises(KaiError) as info:
        KaiClient(TOKEN, "https://s.example.com", "http://kai.example.com", require_https=True)
    assert info.value.code == "config:insecure_url"
    with pytest.raises(KaiError):
        KaiClient(TOKEN, "http://s.example.com", "https://kai.example.com", require_https=True)
    KaiClient(TOKEN, "https://s.example.com", "http://127.0.0.1:3000", require_https=True)
    KaiClient(TOKEN, "https://s.example.com", "http://kai.example.com")  # not required: allowed


@pytest.mark.e2e
async def test_kai_warns_once_and_refuses_with_require_https(tmp_path: Path) -> None:
    async with raw_server(storage_listing("http://kai.invalid")) as server:
        base = [str(KAI), "--token", TOKEN, "--url", f"http://127.0.0.1:{server.port}", "--no-log"]
        env = kai_env(tmp_path)
        with trio.fail_after(60):
            warned = await trio.run_process(
                [*base, "ping"], env=env, capture_stdout=True, capture_stderr=True, check=False
            )
            refused = await trio.run_process(
                [*base, "--require-https", "ping"],
                env=env,
                capture_stdout=True,
                capture_stderr=True,
                check=False,
            )
            by_env = await trio.run_process(
                [*base, "ping"],
                env={**env, "KAI_REQUIRE_HTTPS": "1"},
                capture_stdout=True,
                capture_stderr=True,
                check=False,
            )
    lines = warned.stderr.decode().splitlines()
    assert lines[0].startswith("kai: warning: the kai-agent service"), lines
    assert "plain http on another machine (kai.invalid)" in lines[0]
    assert warned.returncode == 6  # then it could not be reached: kai.invalid does not resolve
    for done in (refused, by_env):
        assert done.returncode == 3, done.stderr
        stderr = done.stderr.decode()
        assert "https is required" in stderr and len(stderr.strip().splitlines()) == 1
        assert "Traceback" not in stderr and TOKEN not in stderr
