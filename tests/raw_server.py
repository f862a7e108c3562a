"""A raw HTTP/1.1 server on loopback that writes exact bytes, and a client for it.

The transport tests (``test_client_stream``, ``test_client_retry``,
``test_h1_reader``, the reliability modules) script each response piece by
piece with :class:`Conn`: captured SDK fixtures split at arbitrary points,
cut connections, stalls, a client hanging up.
"""

from __future__ import annotations

import functools
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import msgspec
import trio

from kai_core.client import KaiClient

from .conftest import FIXTURES

__all__ = [
    "TOKEN",
    "Conn",
    "Handler",
    "RawServer",
    "Request",
    "client_for",
    "fixture",
    "free_port",
    "raw_server",
]

TOKEN = "sapi-secret-token-1234567890"


class Request(msgspec.Struct):
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Handler = Callable[["Conn", Request], Awaitable[None]]


class Conn:
    """One accepted connection: write a chunked response piece by piece."""

    def __init__(self, stream: trio.SocketStream, server: RawServer) -> None:
        self.stream = stream
        self.server = server

    async def start(self, status: int = 200, headers: dict[str, str] | None = None) -> None:
        lines = [f"HTTP/1.1 {status} X"]
        base = {"content-type": "text/event-stream", "transfer-encoding": "chunked"}
        for k, v in {**base, **(headers or {})}.items():
            lines.append(f"{k}: {v}")
        await self.stream.send_all(("\r\n".join(lines) + "\r\n\r\n").encode())

    async def piece(self, data: bytes) -> None:
        if data:
            await self.stream.send_all(b"%x\r\n%s\r\n" % (len(data), data))

    async def end(self) -> None:
        await self.stream.send_all(b"0\r\n\r\n")

    async def simple(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        lines = [f"HTTP/1.1 {status} X", f"content-length: {len(body)}"]
        for k, v in (headers or {}).items():
            lines.append(f"{k}: {v}")
        await self.stream.send_all(("\r\n".join(lines) + "\r\n\r\n").encode() + body)

    async def wait_disconnect(self) -> None:
        """Return once the client has closed the connection."""
        while True:
            try:
                data = await self.stream.receive_some(65536)
            except trio.BrokenResourceError:
                break
            if not data:
                break
        self.server.disconnects += 1
        self.server.disconnected.set()


class RawServer:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[Request] = []
        self.disconnects = 0
        self.disconnected = trio.Event()
        self.port = 0

    async def serve(self, stream: trio.SocketStream) -> None:
        try:
            buf = b""
            while b"\r\n\r\n" not in buf:
                data = await stream.receive_some(65536)
                if not data:
                    return
                buf += data
            head, _, rest = buf.partition(b"\r\n\r\n")
            first, *header_lines = head.decode().split("\r\n")
            method, path, _ = first.split(" ", 2)
            headers = {}
            for line in header_lines:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
            length = int(headers.get("content-length", "0"))
            while len(rest) < length:
                rest += await stream.receive_some(65536)
            request = Request(method, path, headers, rest)
            self.requests.append(request)
            await self.handler(Conn(stream, self), request)
        except trio.BrokenResourceError:
            self.disconnects += 1
            self.disconnected.set()
        finally:
            await stream.aclose()


@asynccontextmanager
async def raw_server(handler: Handler) -> AsyncIterator[RawServer]:
    server = RawServer(handler)
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(trio.serve_tcp, server.serve, 0, host="127.0.0.1")
        )
        server.port = listeners[0].socket.getsockname()[1]
        yield server
        nursery.cancel_scope.cancel()


def client_for(server: RawServer, **options: object) -> KaiClient:
    return KaiClient(
        TOKEN,
        "https://storage.test",
        f"http://127.0.0.1:{server.port}",
        **options,  # type: ignore[arg-type]
    )


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def free_port() -> int:
    """A loopback port where nothing listens (bound, read and released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
