"""Our own HTTP/1.1 body reader under the client, over real loopback sockets.

The fast path must be taken with httpx's default transport (a test here
fails if an httpx/httpcore upgrade breaks the way to h11's buffered bytes,
instead of the client silently falling back to the slower httpx path); other
transports and compressed bodies fall back to httpx; framing errors, resets
and timeouts end the stream as they did through httpx; and a streamed
answer's connection is closed, not pooled, without leaks.
"""

from __future__ import annotations

import functools
import gc
import gzip
import shutil
import socket
import ssl
import struct
from pathlib import Path

import httpx
import pytest
import trio

from kai_core._h1 import body_reader
from kai_core._http import RetryPolicy, Transport, shared_ssl_context, ssl_context_for
from kai_core._stream import EventStream
from kai_core.client import KaiClient
from kai_core.events import Event, FinishEvent, TextEvent
from kai_core.exceptions import KaiConnectionError, KaiStreamError
from kai_core.testing import Emulator

from .emulator_support import chat_body, http, parse_frames
from .raw_server import TOKEN, Conn, RawServer, Request, client_for, fixture, raw_server

HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"


def own_reader(stream: EventStream) -> bool:
    """Whether the stream's body was read by our reader (not httpx's)."""
    conn = stream._conn
    assert conn is not None
    return conn.own


async def read_all(stream: EventStream) -> list[Event]:
    with trio.fail_after(10):
        return [e async for e in stream]


def chunked(data: bytes, size: int) -> bytes:
    pieces = [data[i : i + size] for i in range(0, len(data), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


def whole_response(head: bytes, body: bytes, *, close: bool = False) -> object:
    async def handler(conn: Conn, request: Request) -> None:
        await conn.stream.send_all(head + b"\r\n" + body)
        if not close:
            await conn.wait_disconnect()

    return handler


async def answer_from(handler: object) -> tuple[list[Event], bool]:
    """The events of one answer served by ``handler``, and whether our reader read it."""
    async with raw_server(handler) as server, client_for(server) as client:
        stream = client.send_message("c1", "hi")
        return await read_all(stream), own_reader(stream)


async def expected_events() -> list[Event]:
    """The events of hello.sse, read through the httpx path (a custom transport)."""
    data = fixture("hello.sse")

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=data)

    transport = httpx.MockTransport(answer)
    async with KaiClient(TOKEN, "https://s", "http://kai.test", transport=transport) as client:
        stream = client.send_message("c1", "hi")
        events = await read_all(stream)
        assert not own_reader(stream)
    assert isinstance(events[-1], FinishEvent)
    return events


# -- the fast path is taken ---------------------------------------------------------


async def test_the_default_transport_takes_the_fast_path(kai_emulator: Emulator) -> None:
    # If this fails after an upgrade of httpx or httpcore, _h1._h11_state no longer
    # finds h11's buffered bytes: every answer is read through httpx again (slower).
    async with http(kai_emulator) as client:
        with trio.fail_after(10):
            async with client.stream("POST", "/api/chat", json=chat_body("hello")) as response:
                reader = body_reader(response)
                assert reader is not None
                raw = b"".join([data async for data in reader])
    assert parse_frames(raw)[-1] == "[DONE]"


async def test_the_client_reads_answers_itself(
    kai_emulator: Emulator, kai_client: KaiClient
) -> None:
    stream = kai_client.send_message(kai_client.new_chat_id(), "hello")
    events = await read_all(stream)
    assert own_reader(stream)
    assert isinstance(events[-1], FinishEvent) and stream.finished


async def test_bytes_that_came_with_the_headers_are_not_lost() -> None:
    # Head and whole body in one write: h11 holds the body when httpx returns.
    body = chunked(fixture("hello.sse"), 40)
    events, own = await answer_from(whole_response(HEAD + b"transfer-encoding: chunked\r\n", body))
    assert own
    assert events == await expected_events()


async def test_content_length_body() -> None:
    data = fixture("hello.sse")
    head = HEAD + b"content-length: %d\r\n" % len(data)
    events, own = await answer_from(whole_response(head, data))
    assert own
    assert events == await expected_events()


async def test_close_delimited_body() -> None:
    data = fixture("hello.sse")
    events, own = await answer_from(whole_response(HEAD, data, close=True))
    assert own
    assert events == await expected_events()


async def test_a_short_content_length_body_is_a_cut() -> None:
    data = fixture("hello.sse")
    head = HEAD + b"content-length: %d\r\n" % (len(data) + 100)
    async with (
        raw_server(whole_response(head, data[:-20], close=True)) as server,
        client_for(server) as client,
    ):
        with pytest.raises(KaiStreamError) as info:
            await read_all(client.send_message("c1", "hi"))
    assert info.value.code == "stream:cut"
    assert "expected" in (info.value.cause or "")


@pytest.fixture
async def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (made by openssl)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs the openssl command to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    await trio.run_process(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        capture_stdout=True,
        capture_stderr=True,
    )
    return cert, key


async def _serve_tls(nursery: trio.Nursery, cert: Path, key: Path, data: bytes) -> int:
    """Serve ``data`` as an SSE answer over TLS on a free port; return the port."""
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)

    async def handler(conn: Conn, request: Request) -> None:
        await conn.start()
        for i in range(0, len(data), 25):
            await conn.piece(data[i : i + 25])
        await conn.end()

    server = RawServer(handler)

    async def serve(stream: trio.SSLStream[trio.SocketStream]) -> None:
        await server.serve(stream)  # type: ignore[arg-type]

    listeners = await nursery.start(
        functools.partial(trio.serve_ssl_over_tcp, serve, 0, server_context, host="127.0.0.1")
    )
    port: int = listeners[0].transport_listener.socket.getsockname()[1]
    return port


@pytest.mark.e2e
async def test_tls_answers_are_read_by_our_reader(
    certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = certificate
    # The process's shared TLS context is already built without the certificate;
    # setting SSL_CERT_FILE afterwards must still take effect, as it does in httpx.
    default_context = shared_ssl_context()
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # httpx trusts it (trust_env)
    assert shared_ssl_context() is not default_context
    assert shared_ssl_context() is shared_ssl_context()  # the CA bundle loads once
    async with trio.open_nursery() as nursery:
        port = await _serve_tls(nursery, cert, key, fixture("hello.sse"))
        async with KaiClient(TOKEN, "https://s", f"https://127.0.0.1:{port}") as client:
            stream = client.send_message("c1", "hi")
            events = await read_all(stream)
            assert own_reader(stream)
        nursery.cancel_scope.cancel()
    assert events == await expected_events()


@pytest.mark.e2e
async def test_a_plain_http_client_loads_no_ca_and_verifies_https_against_none(
    certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A client of an http:// server skips the CA bundle (its start-up's biggest
    # cost); an https request through it, which none of its own is, must then
    # fail the certificate check, not go unverified: even for a certificate the
    # process trusts.
    cert, key = certificate
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    context = ssl_context_for("http://127.0.0.1:3000")
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.get_ca_certs() == []
    assert ssl_context_for("https://kai.example") is shared_ssl_context()
    async with trio.open_nursery() as nursery:
        port = await _serve_tls(nursery, cert, key, fixture("hello.sse"))
        transport = Transport(
            "http://127.0.0.1:9",
            TOKEN,
            "https://s",
            timeout=10,
            stream_timeout=10,
            stream_read_timeout=10,
            connect_timeout=10,
            retry=RetryPolicy(backoff=30.0),
        )
        request = transport.build("GET", f"https://127.0.0.1:{port}/api/chat/c1")
        with pytest.raises(KaiConnectionError) as caught, trio.fail_after(10):
            # A refused certificate is final: no retry waits 30 s for it.
            await transport.send(request, retry=True)
        await transport.aclose()
        nursery.cancel_scope.cancel()
    error = caught.value
    assert error.code == "connection:tls"
    assert error.message.endswith("failed: self-signed certificate")
    assert "CERTIFICATE_VERIFY_FAILED" in (error.cause or "")


# -- fallbacks ----------------------------------------------------------------------


async def test_a_compressed_body_is_read_by_httpx() -> None:
    body = chunked(gzip.compress(fixture("hello.sse")), 50)
    head = HEAD + b"content-encoding: gzip\r\ntransfer-encoding: chunked\r\n"
    events, own = await answer_from(whole_response(head, body))
    assert not own
    assert events == await expected_events()


async def test_responses_not_from_the_default_transport_are_read_by_httpx() -> None:
    # expected_events() itself checks a MockTransport answer is read by httpx.
    assert await expected_events()
    assert body_reader(httpx.Response(200, content=b"data: x\n\n")) is None
    http2 = httpx.Response(200, content=b"data: x\n\n", extensions={"http_version": b"HTTP/2"})
    assert body_reader(http2) is None


# -- failures end the stream as through httpx ----------------------------------------


async def test_a_malformed_chunk_size_is_a_cut_after_the_events_before_it() -> None:
    data = fixture("hello.sse")
    head, _, _ = data.partition(b"data: [DONE]")
    body = chunked(head, 30)[: -len(b"0\r\n\r\n")] + b"zz\r\nhello\r\n0\r\n\r\n"
    handler = whole_response(HEAD + b"transfer-encoding: chunked\r\n", body)
    got: list[Event] = []
    async with raw_server(handler) as server, client_for(server) as client:
        with pytest.raises(KaiStreamError) as info:
            async for event in client.send_message("c1", "hi"):
                got.append(event)
    assert info.value.code == "stream:cut"
    assert "illegal chunk header" in (info.value.cause or "")
    # Every event before the bad chunk was delivered, as httpx/h11 would.
    assert got == (await expected_events())[: len(got)] and isinstance(got[-1], FinishEvent)
    assert info.value.events_delivered == len(got)


async def test_a_reset_connection_is_a_cut() -> None:
    data = fixture("tables.sse")

    async def handler(conn: Conn, request: Request) -> None:
        await conn.start()
        await conn.piece(data[:300])
        # An RST instead of a FIN: the client's read fails (httpx.ReadError).
        conn.stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.stream.socket.close()

    async with raw_server(handler) as server, client_for(server) as client:
        with pytest.raises(KaiStreamError) as info:
            await read_all(client.send_message("c1", "hi"))
    assert info.value.code == "stream:cut"


# -- the connection -------------------------------------------------------------------


@pytest.mark.filterwarnings("error")
async def test_the_connection_is_closed_not_pooled_and_the_client_goes_on() -> None:
    data = fixture("hello.sse")

    async def handler(conn: Conn, request: Request) -> None:
        await conn.start()
        await conn.piece(data)
        await conn.end()
        await conn.wait_disconnect()

    async with raw_server(handler) as server, client_for(server) as client:
        for n in (1, 2):
            stream = client.send_message(f"c{n}", "hi")
            events = await read_all(stream)
            assert own_reader(stream) and isinstance(events[-1], FinishEvent)
            with trio.fail_after(5):
                while server.disconnects < n:
                    await server.disconnected.wait()
                    server.disconnected = trio.Event()
            gc.collect()
            pool = client._http.http._transport._pool  # type: ignore[attr-defined]
            assert pool.connections == []
        assert len(server.requests) == 2
    texts = [e.text for e in events if isinstance(e, TextEvent)]
    assert texts
