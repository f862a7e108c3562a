"""A loopback HTTP server that streams a pre-generated AI SDK answer, fast.

``POST /<mode>/<events>/api/chat`` (any body) answers with a UI message
stream of ``<events>`` chunks in the exact AI SDK framing (``data: {json}``
+ blank line, ``data: [DONE]`` at the end, the SDK's response headers,
chunked transfer encoding). ``<mode>`` is:

- ``large``: the body cut into HTTP chunks of 1-4 KB at arbitrary byte
  positions (what a buffering proxy or a fast producer gives), one
  ``send`` each;
- ``per-event``: one HTTP chunk and one ``send`` per SSE event (what a
  Node server writing each chunk as it comes gives).

A plain ``POST /api/chat`` streams the first loaded stream.

The stream is a realistic answer: mostly ``text-delta`` chunks of a few
words, every ~200 chunks a step ends with a tool call
(``tool-input-start``/``-delta``/``-available`` and a ~2 KB
``tool-output-available``), ``finish-step``, ``data-usage``, and a new step.
The bytes are generated once, deterministically, and cached
(``$KAI_BENCH_CACHE`` or ``~/.cache/kai-bench/streams``); serving is
a thread per connection doing ``sendall`` of slices of one big buffer, so
the server costs next to nothing beside the consumer (``bench_stream.py``
times a raw socket read of every stream to show it).

Run standalone::

    python bench/stream_server.py --events 100000 --port 8765
    curl -sN -X POST http://127.0.0.1:8765/large/100000/api/chat | tail -3
"""

from __future__ import annotations

import argparse
import array
import email.utils
import json
import os
import random
import re
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

MODES = ("large", "per-event")

# Bump when the generated stream changes, so stale caches are not reused.
GEN_VERSION = 1

_WORDS = (
    "the table in.c-main.orders has rows columns bucket project Keboola "
    "transformation flow job configuration output input storage snapshot "
    "I will check your data and then list what changed since yesterday "
    "revenue customers daily report pipeline extractor writer Snowflake "
    "BigQuery token branch dev production schedule orchestrator column "
    "primary key incremental load full sync, which means: **note** `SELECT` "
    "Praha účet přehled tržby — 10 250 1 200 365 42"
).split()


def _delta(rng: random.Random) -> str:
    """A few words, as an LLM streams them (sometimes a line break or a list item)."""
    text = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 4))) + " "
    r = rng.random()
    if r < 0.03:
        text += "\n\n"
    elif r < 0.05:
        text += "\n- "
    elif r < 0.07:
        text = text.rstrip() + ". "
    return text


def _tool_output(rng: random.Random, call: int) -> dict[str, object]:
    """A ~2 KB JSON tool result (a table listing)."""
    tables = []
    size = 0
    i = 0
    while size < 1900:
        bucket = rng.choice(("in.c-main", "in.c-crm", "out.c-reports", "out.c-marts"))
        name = f"{rng.choice(_WORDS[:24]).strip(',.:')}_{call}_{i}"
        table = {
            "id": f"{bucket}.{name}",
            "name": name,
            "bucket": bucket,
            "rowsCount": rng.randint(0, 5_000_000),
            "columns": [rng.choice(_WORDS[:30]).strip(",.:") for _ in range(rng.randint(2, 5))],
            "lastImportDate": f"2026-11-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:00:00+0100",
        }
        tables.append(table)
        size += len(json.dumps(table))
        i += 1
    return {"tables": tables, "count": len(tables)}


def _line(obj: dict[str, object]) -> bytes:
    # JSON.stringify's shape: compact, keys in insertion order, non-ASCII kept.
    return b"data: " + json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


def generate_events(n: int, seed: int = 7) -> Iterator[bytes]:
    """The SSE events of one answer: exactly ``n`` chunks, then ``data: [DONE]``.

    ``n`` must be at least 10.
    """
    if n < 10:
        raise ValueError("a stream needs at least 10 events")
    rng = random.Random(seed)
    tail = 4  # text-end, finish-step, data-usage, finish
    step_switch = 11  # text-end, 6 tool chunks, finish-step, data-usage, start-step, text-start
    text_id = "txt-0"
    count = 0
    step = 0

    def emit(obj: dict[str, object]) -> bytes:
        nonlocal count
        count += 1
        return _line(obj)

    yield emit({"type": "start", "messageId": "00000000-0000-4000-8000-000000000001"})
    yield emit({"type": "start-step"})
    yield emit({"type": "text-start", "id": text_id})
    in_step = 0
    while count < n - tail:
        room = n - tail - count
        if in_step >= 190 and room > step_switch:
            step += 1
            call = f"call_{step:06d}"
            tool = "list_tables"
            args = {"bucket": "in.c-main", "limit": rng.randint(5, 50)}
            args_text = json.dumps(args, separators=(",", ":"))
            third = len(args_text) // 3
            yield emit({"type": "text-end", "id": text_id})
            yield emit({"type": "tool-input-start", "toolCallId": call, "toolName": tool})
            for piece in (args_text[:third], args_text[third : 2 * third], args_text[2 * third :]):
                yield emit(
                    {"type": "tool-input-delta", "toolCallId": call, "inputTextDelta": piece}
                )
            yield emit(
                {
                    "type": "tool-input-available",
                    "toolCallId": call,
                    "toolName": tool,
                    "input": args,
                }
            )
            yield emit(
                {
                    "type": "tool-output-available",
                    "toolCallId": call,
                    "output": _tool_output(rng, step),
                }
            )
            yield emit({"type": "finish-step"})
            yield emit(
                {
                    "type": "data-usage",
                    "data": {"promptTokens": 900 + step, "completionTokens": 180},
                    "transient": True,
                }
            )
            text_id = f"aitxt-{step:024d}"
            yield emit({"type": "start-step"})
            yield emit({"type": "text-start", "id": text_id})
            in_step = 0
            continue
        yield emit({"type": "text-delta", "id": text_id, "delta": _delta(rng)})
        in_step += 1
    yield emit({"type": "text-end", "id": text_id})
    yield emit({"type": "finish-step"})
    yield emit(
        {
            "type": "data-usage",
            "data": {"promptTokens": 950, "completionTokens": 120},
            "transient": True,
        }
    )
    yield emit({"type": "finish", "finishReason": "stop"})
    assert count == n, (count, n)
    yield b"data: [DONE]\n\n"


def _frame(pieces: Iterator[bytes]) -> tuple[bytes, array.array[int]]:
    """HTTP chunked framing of ``pieces``: the body and the end offset of each send."""
    parts: list[bytes] = []
    ends = array.array("Q")
    pos = 0
    for piece in pieces:
        framed = b"%x\r\n%b\r\n" % (len(piece), piece)
        parts.append(framed)
        pos += len(framed)
        ends.append(pos)
    parts.append(b"0\r\n\r\n")
    pos += 5
    ends.append(pos)
    return b"".join(parts), ends


def _cut(body: bytes, seed: int) -> Iterator[bytes]:
    """``body`` in pieces of 1-4 KB, cut at arbitrary byte positions."""
    rng = random.Random(seed)
    pos = 0
    while pos < len(body):
        size = rng.randint(1024, 4096)
        yield body[pos : pos + size]
        pos += size


def cache_dir() -> Path:
    """Where generated streams are kept between runs."""
    env = os.environ.get("KAI_BENCH_CACHE")
    base = Path(env) if env else Path.home() / ".cache" / "kai-bench"
    return base / "streams"


class Stream:
    """One framed response body, ready to send: the bytes and where each send ends."""

    __slots__ = ("body", "ends", "events", "mode", "sse_bytes")

    def __init__(self, mode: str, events: int, body: bytes, ends: array.array[int], sse_bytes: int):
        self.mode = mode
        self.events = events
        self.body = body
        self.ends = ends
        self.sse_bytes = sse_bytes


def _paths(events: int, mode: str) -> tuple[Path, Path, Path]:
    stem = cache_dir() / f"v{GEN_VERSION}-{events}-{mode}"
    return stem.with_suffix(".body"), stem.with_suffix(".ends"), stem.with_suffix(".json")


def _write(path: Path, data: bytes) -> None:
    # A temporary name first: a concurrent or killed run never sees half a file.
    tmp = path.with_suffix(path.suffix + f".{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _generate(events: int) -> None:
    """Generate the stream once and cache it framed for every mode."""
    sse = list(generate_events(events))
    sse_bytes = sum(map(len, sse))
    cache_dir().mkdir(parents=True, exist_ok=True)
    for mode in MODES:
        if mode == "per-event":
            body, ends = _frame(iter(sse))
        else:
            body, ends = _frame(_cut(b"".join(sse), seed=events))
        body_path, ends_path, meta_path = _paths(events, mode)
        _write(body_path, body)
        _write(ends_path, ends.tobytes())
        _write(meta_path, json.dumps({"sse_bytes": sse_bytes, "sends": len(ends)}).encode())


def load_stream(events: int, mode: str) -> Stream:
    """The stream of ``events`` chunks framed for ``mode``, from the cache or generated now."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose from {MODES}")
    paths = _paths(events, mode)
    if not all(p.exists() for p in paths):
        _generate(events)
    body_path, ends_path, meta_path = paths
    ends = array.array("Q")
    ends.frombytes(ends_path.read_bytes())
    meta = json.loads(meta_path.read_text())
    return Stream(mode, events, body_path.read_bytes(), ends, meta["sse_bytes"])


def read_pieces(stream: Stream) -> list[bytes]:
    """The body bytes of each send of ``stream``, without the chunked framing."""
    out = []
    body = stream.body
    start = 0
    for end in stream.ends[:-1]:  # the last send is the terminating "0\r\n\r\n"
        header_end = body.index(b"\r\n", start)
        out.append(body[header_end + 2 : end - 2])
        start = end
    return out


_HEADERS = (
    "HTTP/1.1 200 OK\r\n"
    "cache-control: no-cache\r\n"
    "connection: keep-alive\r\n"
    "content-type: text/event-stream\r\n"
    "x-accel-buffering: no\r\n"
    "x-vercel-ai-ui-message-stream: v1\r\n"
    "date: {date}\r\n"
    "transfer-encoding: chunked\r\n"
    "\r\n"
)
_ROUTE = re.compile(rb"^/(?:(large|per-event)/(\d+)/)?api/chat$")


def _simple(status: str, text: str) -> bytes:
    body = text.encode()
    return (
        f"HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {len(body)}\r\n\r\n"
    ).encode() + body


class StreamServer:
    """Serves the loaded streams on 127.0.0.1 (a thread per connection)."""

    def __init__(self, streams: list[Stream], port: int = 0) -> None:
        if not streams:
            raise ValueError("no streams to serve")
        self.streams = {(s.mode, s.events): s for s in streams}
        self.default = streams[0]
        self.sock = socket.create_server(("127.0.0.1", port), backlog=64)
        self.port: int = self.sock.getsockname()[1]

    def serve_forever(self) -> None:
        """Accept connections until the process ends."""
        while True:
            conn, _ = self.sock.accept()
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, _, buf = buf.partition(b"\r\n\r\n")
                lines = head.split(b"\r\n")
                method, target, _ = lines[0].split(b" ", 2)
                length = 0
                for line in lines[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(buf) < length:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                buf = buf[length:]
                self._respond(conn, method, target.split(b"?", 1)[0])
        except (ConnectionError, OSError):
            pass  # the consumer went away mid-stream
        finally:
            conn.close()

    def _respond(self, conn: socket.socket, method: bytes, path: bytes) -> None:
        match = _ROUTE.match(path)
        if method != b"POST" or match is None:
            conn.sendall(_simple("404 Not Found", "POST /<mode>/<events>/api/chat\n"))
            return
        if match.group(1) is None:
            stream = self.default
        else:
            stream = self.streams.get((match.group(1).decode(), int(match.group(2))))
            if stream is None:
                loaded = ", ".join(f"/{m}/{n}" for m, n in self.streams)
                conn.sendall(_simple("404 Not Found", f"not loaded; loaded: {loaded}\n"))
                return
        date = email.utils.formatdate(usegmt=True)
        conn.sendall(_HEADERS.format(date=date).encode())
        view = memoryview(stream.body)
        send = conn.sendall
        start = 0
        for end in stream.ends:
            send(view[start:end])
            start = end


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--events", default="100000", help="comma-separated stream sizes (default 100000)"
    )
    parser.add_argument(
        "--modes", default=",".join(MODES), help=f"comma-separated, of {', '.join(MODES)}"
    )
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    args = parser.parse_args(argv)
    streams = [
        load_stream(int(n), mode) for n in args.events.split(",") for mode in args.modes.split(",")
    ]
    server = StreamServer(streams, args.port)
    # One line the benchmark waits for; the rest is for humans.
    print(f"READY http://127.0.0.1:{server.port}", flush=True)
    for s in streams:
        print(
            f"  POST http://127.0.0.1:{server.port}/{s.mode}/{s.events}/api/chat"
            f"  ({s.sse_bytes / 1e6:.1f} MB SSE, {len(s.ends)} sends)",
            file=sys.stderr,
            flush=True,
        )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
