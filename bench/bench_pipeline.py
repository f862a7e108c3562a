"""Where the time of one event goes: the client's stages in one process, no network.

Feeds the benchmark stream (the same bytes, cut the same way as
``stream_server.py`` sends them) through growing prefixes of our pipeline
and prints process CPU and wall µs per event for each, best of ``--rounds``:

- ``split``: :class:`kai_core.sse.SSEDecoder` ``feed_bytes`` per read;
- ``+ decode``: and :func:`kai_core.chunks.decode_chunk` per payload;
- ``+ assemble``: and :class:`kai_core.assemble.MessageAssembler` ``feed``;
- ``client``: the whole ``KaiClient.send_message`` under trio, with an
  in-memory httpx transport handing out the reads (httpx's response layers
  included, sockets and HTTP/1.1 parsing not);
- ``client + log``: the same with the event log, ``synchronous`` full and normal;
- ``httpx-sse + msgspec``: the reference decoder on the same in-memory response.

    uv run python bench/bench_pipeline.py --events 1000000 --mode large
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
import msgspec
import trio
from _common import fmt_num, machine, table
from stream_server import MODES, load_stream, read_pieces

from kai_core.assemble import MessageAssembler
from kai_core.chunks import decode_chunk
from kai_core.sse import SSEDecoder

_DONE = b"[DONE]"
_HEADERS = {
    "content-type": "text/event-stream",
    "x-vercel-ai-ui-message-stream": "v1",
}


def stage_split(pieces: list[bytes]) -> int:
    decoder = SSEDecoder()
    n = 0
    for data in pieces:
        n += len(decoder.feed_bytes(data))
    return n


def stage_decode(pieces: list[bytes]) -> int:
    decoder = SSEDecoder()
    n = 0
    for data in pieces:
        for payload in decoder.feed_bytes(data):
            if payload != _DONE:
                decode_chunk(payload)
                n += 1
    return n


def stage_assemble(pieces: list[bytes]) -> int:
    decoder = SSEDecoder()
    assembler = MessageAssembler()
    n = 0
    for data in pieces:
        for payload in decoder.feed_bytes(data):
            if payload != _DONE:
                n += len(assembler.feed(decode_chunk(payload)))
    return n


class _Body(httpx.AsyncByteStream):
    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = pieces

    async def __aiter__(self) -> Any:
        for piece in self.pieces:
            yield piece


class _Transport(httpx.AsyncBaseTransport):
    """Answers every request with the pieces, from memory."""

    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = pieces

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        return httpx.Response(200, headers=_HEADERS, stream=_Body(self.pieces))


def _client_stage(synchronous: str | None) -> Callable[[list[bytes]], int]:
    def run(pieces: list[bytes]) -> int:
        from kai_core.client import KaiClient

        async def main() -> int:
            log = None
            with tempfile.TemporaryDirectory(prefix="kai-bench-") as tmp:
                if synchronous is not None:
                    from kai_core.log import EventLog

                    log = EventLog(os.path.join(tmp, "log.db"), synchronous=synchronous)  # type: ignore[arg-type]
                try:
                    async with KaiClient(
                        "token",
                        "http://127.0.0.1:9",
                        "http://bench",
                        log=log,
                        transport=_Transport(pieces),
                    ) as client:
                        n = 0
                        async for _ in client.send_message(client.new_chat_id(), "hi"):
                            n += 1
                        return n
                finally:
                    if log is not None:
                        log.close()

        return trio.run(main)

    return run


def stage_httpx_sse(pieces: list[bytes]) -> int:
    from httpx_sse import EventSource

    decode = msgspec.json.Decoder().decode

    async def main() -> int:
        n = 0
        async with httpx.AsyncClient(transport=_Transport(pieces)) as client:
            async with client.stream("POST", "http://bench/api/chat") as response:
                async for sse in EventSource(response).aiter_sse():
                    if sse.data == "[DONE]":
                        break
                    decode(sse.data)
                    n += 1
        return n

    return trio.run(main)


STAGES: dict[str, Callable[[list[bytes]], int]] = {
    "split": stage_split,
    "+ decode": stage_decode,
    "+ assemble": stage_assemble,
    "client": _client_stage(None),
    "client + log (synchronous=normal)": _client_stage("normal"),
    "client + log (synchronous=full)": _client_stage("full"),
    "httpx-sse + msgspec": stage_httpx_sse,
}


def measure(fn: Callable[[list[bytes]], int], pieces: list[bytes]) -> tuple[float, float, int]:
    """CPU seconds, wall seconds, and items out of one run of a stage."""
    gc.collect()
    c0 = time.process_time()
    w0 = time.perf_counter()
    n = fn(pieces)
    return time.process_time() - c0, time.perf_counter() - w0, n


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--mode", choices=MODES, default="large")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--stages", default=",".join(STAGES), help="comma-separated stage names")
    args = p.parse_args(argv)
    stream = load_stream(args.events, args.mode)
    pieces = read_pieces(stream)
    del stream
    info = machine()
    print(
        f"# Pipeline stages — {fmt_num(args.events)} events, {args.mode} writes "
        f"({fmt_num(len(pieces))} reads); {info['nproc']} CPUs, Python {info['python']}\n"
    )
    rows = []
    for name in args.stages.split(","):
        best_cpu = best_wall = float("inf")
        items = 0
        for _ in range(args.rounds):
            cpu, wall, items = measure(STAGES[name], pieces)
            best_cpu = min(best_cpu, cpu)
            best_wall = min(best_wall, wall)
        rows.append(
            [
                name,
                f"{best_cpu * 1e6 / args.events:.2f}",
                f"{best_wall * 1e6 / args.events:.2f}",
                fmt_num(args.events / best_wall),
                fmt_num(items),
            ]
        )
        print(f"  {name}: {rows[-1][2]} µs/event", file=sys.stderr, flush=True)
    headers = ["stage", "CPU µs/event", "wall µs/event", "events/s (wall)", "items out"]
    print(table(headers, rows))
    print(f"\n(best of {args.rounds}; the log stages wait for fsync: compare their wall time)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
