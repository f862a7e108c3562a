"""One stream consumer, run in a fresh process by ``bench_stream.py``.

``python bench/consumers.py KIND URL`` posts to ``URL`` (a base URL; the
consumer appends ``/api/chat``), reads the whole answer the way ``KIND``
does, and prints one JSON line: items handed out, bytes, wall seconds and
process CPU seconds from creating the HTTP client to the last event
(imports and opening the event log excluded), and the resident set size
before that. Peak RSS is taken by the parent from the
kernel (``wait4``), so it covers the whole process.

Only the standard library is imported at the top: the ``kai-client`` kind
runs under the Python of kai-client's own venv, the others under ours.

Kinds:

- ``kai-client``: kai-client 0.12 ``KaiClient.send_message`` under asyncio.
- ``kai``: our ``KaiClient.send_message``, no event log.
- ``kai-aio``: our ``kai_core.aio.KaiClient.send_message`` under asyncio, no
  event log (the trio client in its worker thread, events handed to asyncio).
- ``kai-log``: the same with the durable log on (a fresh SQLite file).
- ``kai-otel``: ``kai-log`` with telemetry on: the log wrapped for the
  observer hook, the OpenTelemetry plugin fed every record, its spans queued
  for the real OTLP/HTTP exporter (sent after the measurement: the endpoint
  is a closed port, the flush at close is not measured).
- ``kai-nokeep``: the same as ``kai`` but dropping the assembled message's
  content as it goes, so peak RSS shows what the stream itself costs.
- ``kai-log-nokeep``: ``kai-log`` dropping the message the same way: what
  the stream and the durable log cost in memory.
- ``httpx-raw``: reference, httpx ``aiter_raw`` under trio, bytes counted.
- ``httpx-sse``: reference, httpx-sse + one msgspec JSON decoder under trio.
- ``kai-decode``: diagnostic, httpx ``aiter_bytes`` + our ``SSEDecoder`` +
  ``decode_chunk`` (no assembly, no events): the floor our client builds on.
- ``httpx-batch-log``: prototype, httpx ``aiter_bytes`` + our decoder,
  ``decode_chunk``, ``MessageAssembler`` and the durable log, committed once
  per burst of reads (the socket polled for waiting bytes), not per HTTP chunk.
- ``httpx-batch-frames``: prototype, the same with one SQLite row per commit
  (a JSON array of the exact chunks) instead of one row per chunk.
- ``h1-assemble``: diagnostic, no httpx: a trio socket, a minimal HTTP/1.1
  chunked-body reader (per socket read, not per HTTP chunk), our
  ``SSEDecoder``, ``decode_chunk`` and ``MessageAssembler``: what the client
  could do with its own body reader.
- ``h1-log``: diagnostic, ``h1-assemble`` plus the durable log, one
  ``EventLog.append`` per socket read (not per HTTP chunk).
- ``h1-frames``: prototype, ``h1-log`` storing one SQLite row per socket
  read (see ``httpx-batch-frames``).
- ``socket``: diagnostic, a raw socket read of the response (no HTTP
  parsing beyond the end marker): how fast the server can go.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

TOKEN = "bench-token-not-a-secret"
STORAGE_URL = "http://127.0.0.1:9"  # never contacted: base_url is given


def _rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Meter:
    """Wall and process CPU time of the read, and the items and bytes it saw."""

    def __init__(self) -> None:
        self.items = 0
        self.nbytes = 0
        self.wall = 0.0
        self.cpu = 0.0
        self.rss_before = 0
        self.first: float | None = None
        self.extra: dict[str, Any] = {}

    def start(self) -> None:
        self.rss_before = _rss_kib()
        self._w = time.perf_counter()
        self._c = time.process_time()

    def first_event(self) -> None:
        """The first event arrived: its latency counts from :meth:`start`."""
        if self.first is None:
            self.first = time.perf_counter() - self._w

    def stop(self) -> None:
        self.wall = time.perf_counter() - self._w
        self.cpu = time.process_time() - self._c

    def result(self) -> dict[str, Any]:
        return {
            "items": self.items,
            "bytes": self.nbytes,
            "wall": self.wall,
            "cpu": self.cpu,
            "rss_before_kib": self.rss_before,
            **({"first": self.first} if self.first is not None else {}),
            **self.extra,
        }


# -- kai-client (asyncio) ---------------------------------------------------------------


def _run_asyncio_client(client_class: Any, url: str, m: Meter) -> None:
    """``send_message`` of an asyncio client: kai-client's, or ours (the same signature)."""
    import asyncio

    async def main() -> None:
        m.start()
        async with client_class(
            storage_api_token=TOKEN, storage_api_url=STORAGE_URL, base_url=url
        ) as client:
            chat_id = client.new_chat_id()
            n = 0
            async for _event in client.send_message(chat_id, "benchmark"):
                if not n:
                    m.first_event()
                n += 1
            m.stop()
            m.items = n

    asyncio.run(main())


def run_kai_client(url: str, m: Meter) -> None:
    from kai_client import KaiClient

    _run_asyncio_client(KaiClient, url, m)


def run_kai_aio(url: str, m: Meter) -> None:
    from kai_core.aio import KaiClient

    _run_asyncio_client(KaiClient, url, m)


# -- ours (trio) ------------------------------------------------------------------------


def _run_kai(url: str, m: Meter, *, log: bool, keep: bool, otel: bool = False) -> None:
    import trio

    from kai_core.client import KaiClient

    _import_what_kai_client_imports()

    async def main() -> None:
        event_log: Any = None
        tmp = None
        telemetry = None
        if log:
            from kai_core.log import EventLog

            tmp = tempfile.TemporaryDirectory(prefix="kai-bench-log-")
            event_log = EventLog(os.path.join(tmp.name, "log.db"))
        if otel:
            from kai_core.observe import ObservedLog
            from kai_core.plugins import Plugins
            from kai_plugins.telemetry import register_telemetry

            os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://127.0.0.1:9"
            plugins = Plugins(load_entry_points=False)
            telemetry = register_telemetry(plugins, flush_timeout=0.0)
            event_log = ObservedLog(event_log, plugins)
        try:
            m.start()
            async with KaiClient(TOKEN, STORAGE_URL, base_url=url, log=event_log) as client:
                chat_id = client.new_chat_id()
                stream = client.send_message(chat_id, "benchmark")
                n = 0
                if keep:
                    async for _event in stream:
                        if not n:
                            m.first_event()
                        n += 1
                else:
                    n = await _drain_forgetting(stream, m)
                m.stop()
                m.items = n
                assembler = getattr(stream, "assembler", None)
                if assembler is not None and keep:
                    m.extra["text_chars"] = len(assembler.text)
        finally:
            if telemetry is not None:
                telemetry.close()
            if event_log is not None:
                close = getattr(event_log, "close", None)
                if close is not None:
                    close()
            if tmp is not None:
                tmp.cleanup()

    trio.run(main)


def _import_what_kai_client_imports() -> None:
    """Import before the clock starts what ``import kai_client`` imports at once
    and our client only when it is first used (httpx, and with it httpcore and
    h11, which our body reader uses): imports stay outside the measurement on
    both sides, as this module's docstring says. Start-up, imports included, is
    ``bench_startup.py``'s figure."""
    import httpx  # noqa: F401

    from kai_core import _h1  # noqa: F401


async def _drain_forgetting(stream: Any, m: Meter) -> int:
    """Read every event but keep none of the message: the parts are emptied as they fill.

    The client keeps the assistant message it assembles (the caller may want
    it at the end); emptying its parts now and then leaves only what the
    stream machinery itself holds, which must not grow with the stream.
    """
    n = 0
    async for _event in stream:
        if not n:
            m.first_event()
        n += 1
        if n & 0x3FFF == 0:
            assembler = stream.assembler
            if assembler is not None:
                _forget(assembler)
    return n


def _forget(assembler: Any) -> None:
    # A diagnostic, not an API: the assembler offers no "keep nothing" mode
    # (yet), so empty the containers it keeps the finished parts in. Open text
    # parts stay reachable through ``_active_text``; tool calls are dropped
    # only once they have their output.
    parts = getattr(assembler, "_parts", None)
    if isinstance(parts, list) and len(parts) > 1:
        del parts[:-1]
    pieces = getattr(assembler, "_text_pieces", None)
    if isinstance(pieces, list):
        pieces.clear()
    tool_parts = getattr(assembler, "_tool_parts", None)
    if isinstance(tool_parts, dict):
        done = [k for k, v in tool_parts.items() if v.get("state") == "output-available"]
        for key in done:
            del tool_parts[key]
            for name in ("_tool_calls", "_tool_input_text"):
                table = getattr(assembler, name, None)
                if isinstance(table, dict):
                    table.pop(key, None)


# -- references (trio) ----------------------------------------------------------------


def _request_body() -> dict[str, Any]:
    return {
        "id": "00000000-0000-4000-8000-00000000beef",
        "message": {
            "id": "00000000-0000-4000-8000-00000000cafe",
            "role": "user",
            "parts": [{"type": "text", "text": "benchmark"}],
        },
        "selectedChatModel": "chat-model",
        "selectedVisibilityType": "private",
    }


def _headers() -> dict[str, str]:
    return {"x-storageapi-token": TOKEN, "x-storageapi-url": STORAGE_URL}


def run_httpx_raw(url: str, m: Meter) -> None:
    import httpx
    import trio

    async def main() -> None:
        m.start()
        async with httpx.AsyncClient(timeout=600) as client:
            nbytes = 0
            async with client.stream(
                "POST", url + "/api/chat", json=_request_body(), headers=_headers()
            ) as response:
                async for data in response.aiter_raw():
                    nbytes += len(data)
            m.stop()
            m.nbytes = nbytes

    trio.run(main)


def run_httpx_sse(url: str, m: Meter) -> None:
    import httpx
    import msgspec
    import trio
    from httpx_sse import aconnect_sse

    decode = msgspec.json.Decoder().decode

    async def main() -> None:
        m.start()
        async with httpx.AsyncClient(timeout=600) as client:
            n = 0
            async with aconnect_sse(
                client, "POST", url + "/api/chat", json=_request_body(), headers=_headers()
            ) as source:
                async for sse in source.aiter_sse():
                    if sse.data == "[DONE]":
                        break
                    decode(sse.data)
                    n += 1
            m.stop()
            m.items = n

    trio.run(main)


def run_kai_decode(url: str, m: Meter) -> None:
    import httpx
    import trio

    from kai_core.chunks import decode_chunk
    from kai_core.sse import SSEDecoder

    async def main() -> None:
        m.start()
        async with httpx.AsyncClient(timeout=600) as client:
            n = 0
            decoder = SSEDecoder()
            async with client.stream(
                "POST", url + "/api/chat", json=_request_body(), headers=_headers()
            ) as response:
                async for data in response.aiter_bytes():
                    for payload in decoder.feed_bytes(data):
                        if payload == b"[DONE]":
                            break
                        decode_chunk(payload)
                        n += 1
            m.stop()
            m.items = n

    trio.run(main)


class _FrameLog:
    """What-if for the log: one row per commit holding the batch's chunks as a JSON array.

    ``[chunk,chunk,...]`` of the exact payload bytes (``msgspec.Raw`` gives
    them back byte for byte), WAL, ``synchronous=FULL``, ``BEGIN IMMEDIATE``:
    the same durability as :class:`kai_core.log.EventLog`, one row instead of
    one per chunk.
    """

    def __init__(self, path: str) -> None:
        import sqlite3

        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.execute(
            "CREATE TABLE frames (seq INTEGER PRIMARY KEY, chat_id TEXT NOT NULL, "
            "turn TEXT NOT NULL, ts REAL NOT NULL, origin TEXT NOT NULL, "
            "count INTEGER NOT NULL, body BLOB NOT NULL)"
        )
        self.conn.execute("CREATE INDEX frames_chat ON frames (chat_id, seq)")

    def append(self, records: list[Any]) -> None:
        first = records[0]
        body = b"[" + b",".join(r.body for r in records) + b"]"
        self.conn.execute("BEGIN IMMEDIATE")
        self.conn.execute(
            "INSERT INTO frames (chat_id, turn, ts, origin, count, body) VALUES (?,?,?,?,?,?)",
            (first.chat_id, first.turn, time.time(), "server", len(records), body),
        )
        self.conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()


def run_httpx_batch_log(url: str, m: Meter, frames: bool = False) -> None:
    """Prototype: our pipeline on httpx with the log committed per *burst*, not per HTTP chunk.

    After each ``aiter_bytes`` item the socket is polled (httpcore's public
    ``network_stream`` extension, ``get_extra_info("is_readable")``): while
    more bytes are already waiting, the next item is read at once (it cannot
    block for long) and its records join the same transaction; when nothing
    is waiting (or 256 KiB piled up, or the stream ended) the batch is
    committed, and only then would its events be handed out. No event is
    ever handed out before its records are committed.
    """
    import uuid

    import httpx
    import trio

    from kai_core.assemble import MessageAssembler
    from kai_core.chunks import decode_chunk
    from kai_core.log import EventLog, LogRecord
    from kai_core.sse import SSEDecoder

    tmp = tempfile.TemporaryDirectory(prefix="kai-bench-log-")
    path = os.path.join(tmp.name, "log.db")
    event_log: Any = _FrameLog(path) if frames else EventLog(path)
    chat_id = str(uuid.uuid4())
    turn = uuid.uuid4().hex

    async def main() -> None:
        m.start()
        commits = 0
        async with httpx.AsyncClient(timeout=600) as client:
            n = 0
            decoder = SSEDecoder()
            assembler = MessageAssembler()
            async with client.stream(
                "POST", url + "/api/chat", json=_request_body(), headers=_headers()
            ) as response:
                network = response.extensions.get("network_stream")
                reads = response.aiter_bytes()
                done = False
                while not done:
                    records: list[Any] = []
                    events: list[Any] = []
                    size = 0
                    while True:
                        try:
                            data = await reads.__anext__()
                        except StopAsyncIteration:
                            done = True
                            break
                        size += len(data)
                        for payload in decoder.feed_bytes(data):
                            if payload == b"[DONE]":
                                done = True
                                break
                            chunk = decode_chunk(payload)
                            records.append(
                                LogRecord(
                                    chat_id=chat_id,
                                    turn=turn,
                                    origin="server",
                                    type=chunk.type,
                                    body=payload,
                                )
                            )
                            events.extend(assembler.feed(chunk))
                        if done or size >= 256 * 1024:
                            break
                        if network is None or not network.get_extra_info("is_readable"):
                            break
                    if records:
                        event_log.append(records)
                        commits += 1
                    n += len(events)  # handed out only now, after the commit
        m.stop()
        m.items = n
        m.extra["commits"] = commits

    try:
        trio.run(main)
    finally:
        event_log.close()
        tmp.cleanup()


def _dechunk(buf: bytearray) -> tuple[bytes, bool]:
    """Take every complete chunk of a chunked body off ``buf``: their payload, and "ended"."""
    out = []
    pos = 0
    end = len(buf)
    done = False
    while True:
        line_end = buf.find(b"\r\n", pos)
        if line_end < 0:
            break
        size = int(buf[pos:line_end].split(b";", 1)[0], 16)
        if size == 0:
            done = True
            pos = end
            break
        start = line_end + 2
        if start + size + 2 > end:
            break
        out.append(bytes(buf[start : start + size]))
        pos = start + size + 2
    del buf[:pos]
    return b"".join(out), done


def _run_h1(url: str, m: Meter, *, log: bool, frames: bool = False) -> None:
    import uuid

    import trio

    from kai_core.assemble import MessageAssembler
    from kai_core.chunks import decode_chunk
    from kai_core.sse import SSEDecoder

    parts = urlsplit(url)
    body = json.dumps(_request_body()).encode()
    request = (
        f"POST {parts.path}/api/chat HTTP/1.1\r\nhost: {parts.netloc}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
    ).encode() + body
    event_log = None
    tmp = None
    if log:
        from kai_core.log import EventLog, LogRecord

        tmp = tempfile.TemporaryDirectory(prefix="kai-bench-log-")
        path = os.path.join(tmp.name, "log.db")
        event_log = _FrameLog(path) if frames else EventLog(path)
    chat_id = str(uuid.uuid4())
    turn = uuid.uuid4().hex

    async def main() -> None:
        m.start()
        stream = await trio.open_tcp_stream(parts.hostname, parts.port)
        await stream.send_all(request)
        buf = bytearray()
        while b"\r\n\r\n" not in buf:
            buf += await stream.receive_some(65536)
        head_end = buf.index(b"\r\n\r\n")
        assert buf.startswith(b"HTTP/1.1 200") and b"chunked" in buf[:head_end].lower()
        del buf[: head_end + 4]
        decoder = SSEDecoder()
        assembler = MessageAssembler()
        n = 0
        done = False
        while not done:
            data, ended = _dechunk(buf)
            records = []
            events = []
            for payload in decoder.feed_bytes(data):
                if payload == b"[DONE]":
                    done = True
                    break
                chunk = decode_chunk(payload)
                if event_log is not None:
                    records.append(
                        LogRecord(
                            chat_id=chat_id,
                            turn=turn,
                            origin="server",
                            type=chunk.type,
                            body=payload,
                        )
                    )
                events.extend(assembler.feed(chunk))
            if records:
                # One commit per socket read, before the read's events are handed out.
                event_log.append(records)  # type: ignore[union-attr]
            n += len(events)
            if ended or done:
                break
            more = await stream.receive_some(65536)
            if not more:
                break
            buf += more
        await stream.aclose()
        m.stop()
        m.items = n

    try:
        trio.run(main)
    finally:
        if event_log is not None:
            event_log.close()
        if tmp is not None:
            tmp.cleanup()


def run_socket(url: str, m: Meter) -> None:
    import socket

    parts = urlsplit(url)
    body = json.dumps(_request_body()).encode()
    request = (
        f"POST {parts.path}/api/chat HTTP/1.1\r\nhost: {parts.netloc}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
    ).encode() + body
    sock = socket.create_connection((parts.hostname, parts.port))
    buf = bytearray(1 << 18)
    view = memoryview(buf)
    m.start()
    sock.sendall(request)
    nbytes = 0
    tail = b""
    while True:
        k = sock.recv_into(buf)
        if not k:
            break
        nbytes += k
        # The last chunk of a chunked body ends with "0\r\n\r\n" (the SSE
        # payload always ends with "\n\n\r\n" before it, so this is unambiguous).
        tail = (tail + bytes(view[max(0, k - 16) : k]))[-16:]
        if tail.endswith(b"\n\r\n0\r\n\r\n"):
            break
    m.stop()
    sock.close()
    m.nbytes = nbytes


KINDS: dict[str, Callable[[str, Meter], None]] = {
    "kai-client": run_kai_client,
    "kai": lambda url, m: _run_kai(url, m, log=False, keep=True),
    "kai-aio": run_kai_aio,
    "kai-log": lambda url, m: _run_kai(url, m, log=True, keep=True),
    "kai-otel": lambda url, m: _run_kai(url, m, log=True, keep=True, otel=True),
    "kai-nokeep": lambda url, m: _run_kai(url, m, log=False, keep=False),
    "kai-log-nokeep": lambda url, m: _run_kai(url, m, log=True, keep=False),
    "httpx-raw": run_httpx_raw,
    "httpx-sse": run_httpx_sse,
    "kai-decode": run_kai_decode,
    "httpx-batch-log": run_httpx_batch_log,
    "httpx-batch-frames": lambda url, m: run_httpx_batch_log(url, m, frames=True),
    "h1-assemble": lambda url, m: _run_h1(url, m, log=False),
    "h1-log": lambda url, m: _run_h1(url, m, log=True),
    "h1-frames": lambda url, m: _run_h1(url, m, log=True, frames=True),
    "socket": run_socket,
}


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in KINDS:
        print(f"usage: consumers.py {{{','.join(KINDS)}}} BASE_URL", file=sys.stderr)
        return 2
    kind, url = argv
    meter = Meter()
    KINDS[kind](url.rstrip("/"), meter)
    print(json.dumps(meter.result()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
