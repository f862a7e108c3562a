"""A real headless Chromium for the tests, driven over the DevTools protocol.

:func:`open_page` starts Debian's ``chromium`` (``/usr/bin/chromium``) with a
fresh profile and no background networking, connects to its DevTools
websocket (trio + wsproto, both already installed with hypercorn) and hands
out a :class:`Page`: send a command, wait for an event, take a screenshot.
:func:`decode_png` reads the screenshots back into pixels (Chromium writes
8-bit RGB or RGBA, not interlaced), so a test can check what was drawn.

Without chromium the tests that need it skip, except when
``KAI_REQUIRE_BROWSER=1`` (CI sets it): then they fail, so a missing browser
cannot hide a failure.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import struct
import subprocess
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)

__all__ = ["Page", "Pixels", "chromium_or_skip", "decode_png", "open_page"]

FLAGS = (
    "--headless",
    "--no-sandbox",  # root in a container
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--hide-scrollbars",
    "--remote-debugging-port=0",
)
LISTENING = b"DevTools listening on "


def chromium_or_skip() -> str:
    """The chromium binary; skips the test without one, fails instead in CI."""
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if os.access(path, os.X_OK):
        return path
    reason = "chromium is not installed (apt-get install chromium)"
    if os.environ.get("KAI_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason}, and KAI_REQUIRE_BROWSER=1 requires it")
    pytest.skip(f"{reason}; set KAI_REQUIRE_BROWSER=1 to fail instead")


class _Socket:
    """One websocket connection (client side) on a trio stream."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.pending: list[str] = []
        self.partial = ""

    async def handshake(self, host: str, target: str) -> None:
        await self.stream.send_all(self.ws.send(Request(host=host, target=target)))
        while True:
            for event in await self._events():
                if isinstance(event, AcceptConnection):
                    return
                if isinstance(event, RejectConnection):
                    raise AssertionError(f"DevTools refused the websocket: {event.status_code}")

    async def _events(self) -> list[Any]:
        data = await self.stream.receive_some(65536)
        if not data:
            raise AssertionError("chromium closed the DevTools connection")
        self.ws.receive_data(data)
        return list(self.ws.events())

    async def send(self, text: str) -> None:
        await self.stream.send_all(self.ws.send(TextMessage(data=text)))

    async def receive(self) -> str:
        while not self.pending:
            for event in await self._events():
                if isinstance(event, TextMessage):
                    self.partial += event.data
                    if event.message_finished:
                        self.pending.append(self.partial)
                        self.partial = ""
                elif isinstance(event, Ping):
                    await self.stream.send_all(self.ws.send(event.response()))
                elif isinstance(event, CloseConnection):
                    raise AssertionError("chromium closed the DevTools connection")
        return self.pending.pop(0)


@dataclass
class Page:
    """One tab, attached over a flat DevTools session."""

    socket: _Socket
    session: str = ""
    events: list[dict[str, Any]] = field(default_factory=list)
    last_id: int = 0

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Run a DevTools command; its result (events that arrive meanwhile are kept)."""
        self.last_id += 1
        message: dict[str, Any] = {"id": self.last_id, "method": method, "params": params}
        if self.session:
            message["sessionId"] = self.session
        await self.socket.send(json.dumps(message))
        while True:
            reply = json.loads(await self.socket.receive())
            if reply.get("id") == self.last_id:
                if "error" in reply:
                    raise AssertionError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result
            self.events.append(reply)

    async def wait_for(self, method: str) -> dict[str, Any]:
        """The first event ``method`` not yet waited for (reads until it comes)."""
        while True:
            for index, event in enumerate(self.events):
                if event.get("method") == method:
                    del self.events[index]
                    params: dict[str, Any] = event.get("params", {})
                    return params
            self.events.append(json.loads(await self.socket.receive()))

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (run by DevTools, not by the page)."""
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def capture(self, x: float, y: float, width: float, height: float) -> bytes:
        """A PNG of a rectangle of the page (CSS pixels, scale 1), scrolled or not."""
        shot = await self.send(
            "Page.captureScreenshot",
            format="png",
            captureBeyondViewport=True,
            clip={"x": x, "y": y, "width": width, "height": height, "scale": 1},
        )
        return base64.b64decode(shot["data"])

    async def screenshot(self, path: Path) -> None:
        """Save a PNG of the whole page at ``path``."""
        width = await self.evaluate("document.documentElement.scrollWidth")
        height = await self.evaluate("document.documentElement.scrollHeight")
        shot = await self.capture(0, 0, width, height)
        await trio.Path(path).write_bytes(shot)

    async def pixels(self, box: dict[str, float]) -> Pixels:
        """The pixels drawn in ``box`` (``x``, ``y``, ``width``, ``height``)."""
        return decode_png(await self.capture(box["x"], box["y"], box["width"], box["height"]))


@asynccontextmanager
async def open_page(profile: Path, *, width: int = 900, height: int = 1000) -> AsyncIterator[Page]:
    """A blank tab in a fresh headless chromium (closed, with the browser, after)."""
    binary = chromium_or_skip()
    argv = [binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"]
    async with trio.open_nursery() as nursery:
        process = await trio.lowlevel.open_process(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        assert process.stderr is not None
        stderr = process.stderr
        try:
            url = await _devtools_url(stderr)
            # Chromium keeps writing to stderr; it must not block on a full pipe.
            nursery.start_soon(_drain, stderr)
            parts = urlsplit(url)
            assert parts.hostname is not None and parts.port is not None
            stream = await trio.open_tcp_stream(parts.hostname, parts.port)
            socket = _Socket(stream)
            await socket.handshake(parts.netloc, parts.path)
            page = Page(socket)
            target = await page.send("Target.createTarget", url="about:blank")
            attached = await page.send(
                "Target.attachToTarget", targetId=target["targetId"], flatten=True
            )
            page.session = attached["sessionId"]
            await page.send(
                "Emulation.setDeviceMetricsOverride",
                width=width,
                height=height,
                deviceScaleFactor=1,
                mobile=False,
            )
            yield page
            await stream.aclose()
        finally:
            process.terminate()
            with trio.move_on_after(10):
                await process.wait()
            process.kill()
            await process.wait()
            nursery.cancel_scope.cancel()


async def _devtools_url(stderr: trio.abc.ReceiveStream) -> str:
    buffer = b""
    while LISTENING not in buffer or not buffer.split(LISTENING, 1)[1].count(b"\n"):
        data = await stderr.receive_some(4096)
        if not data:
            raise AssertionError(f"chromium exited before DevTools listened:\n{buffer.decode()}")
        buffer += data
    return buffer.split(LISTENING, 1)[1].split(b"\n", 1)[0].decode().strip()


async def _drain(stream: trio.abc.ReceiveStream) -> None:
    while await stream.receive_some(65536):
        pass


@dataclass(frozen=True)
class Pixels:
    """An RGB image: ``rows[y][x]`` is ``(r, g, b)``."""

    width: int
    height: int
    rows: list[list[tuple[int, int, int]]]

    def all(self) -> list[tuple[int, int, int]]:
        """Every pixel, row by row."""
        return [p for row in self.rows for p in row]


def decode_png(data: bytes) -> Pixels:
    """Decode an 8-bit, non-interlaced RGB or RGBA PNG (alpha dropped)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
    channels = 4 if colour == 6 else 3
    stride = width * channels
    raw = zlib.decompress(idat)
    previous = bytearray(stride)
    rows = []
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                predictor = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                line[i] = (line[i] + predictor) & 0xFF
        rows.append(
            [tuple(line[x : x + 3]) for x in range(0, stride, channels)]  # type: ignore[misc]
        )
        previous = line
    return Pixels(width, height, rows)
