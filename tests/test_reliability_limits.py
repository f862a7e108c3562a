"""Size and rate limits: floods, a huge tool output, lines without end.

A raw HTTP server on loopback writes the bytes (see ``test_client_stream``).
The client must take 10,000 small events sent within a second (how fast
it decodes is measured by ``bench/bench_stream.py``, not asserted here), a 50 MB tool
output when the bound allows it, and otherwise stop with
``KaiStreamError(code="stream:too_large")`` once one event passes
``max_event_size`` (default 16 MiB) without buffering more than that: memory
stays bounded whatever the server sends.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import msgspec
import pytest
import trio
import trio.testing

from kai_core.events import FinishEvent, TextEvent, ToolCallEvent
from kai_core.exceptions import KaiStreamError
from kai_core.log import EventLog
from kai_core.sse import DEFAULT_MAX_EVENT_SIZE

from .raw_server import Conn, Request, client_for, raw_server
from .reliability_support import client_records, integrity_ok, server_payloads

pytestmark = pytest.mark.reliability

MiB = 1024 * 1024


def sse(*payloads: bytes) -> bytes:
    return b"".join(b"data: " + p + b"\n\n" for p in payloads)


HEAD = sse(
    b'{"type":"start","messageId":"m1"}',
    b'{"type":"start-step"}',
)
TAIL = sse(b'{"type":"finish-step"}', b'{"type":"finish","finishReason":"stop"}', b"[DONE]")


@contextmanager
def peak_memory() -> Iterator[list[int]]:
    """Python's peak allocation (bytes) inside the block, in ``result[0]``."""
    result = [0]
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        yield result
    finally:
        result[0] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()


async def test_ten_thousand_small_events_a_second(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    # On the mock clock the server's second passes whenever every task waits: the
    # events arrive in its 20 bursts, and no machine is too slow for the test.
    n, bursts = 10_000, 20

    def delta(i: int) -> bytes:
        return b'{"type":"text-delta","id":"t","delta":"w%d "}' % i

    async def handler(conn: Conn, request: Request) -> None:
        await conn.start()
        await conn.piece(HEAD + sse(b'{"type":"text-start","id":"t"}'))
        per = n // bursts
        for b in range(bursts):  # 10,000 events spread over one second
            await conn.piece(sse(*(delta(b * per + i) for i in range(per))))
            await trio.sleep(1.0 / bursts)
        await conn.piece(sse(b'{"type":"text-end","id":"t"}') + TAIL)
        await conn.end()

    log = EventLog(tmp_path / "kai.db")
    texts = 0
    expected = 0
    async with raw_server(handler) as server, client_for(server, log=log) as client:
        with trio.fail_after(30):
            async for event in client.send_message("c1", "flood"):
                if isinstance(event, TextEvent):
                    assert event.text == f"w{texts} "
                    texts += 1
                expected += 1
    assert texts == n
    assert len(server_payloads(log, "c1")) == n + 6
    integrity_ok(tmp_path / "kai.db")


def _tool_output(size: int) -> bytes:
    output = msgspec.json.encode({"text": "x" * size})
    return sse(
        b'{"type":"tool-input-start","toolCallId":"c1","toolName":"dump"}',
        b'{"type":"tool-input-available","toolCallId":"c1","toolName":"dump","input":{}}',
        b'{"type":"tool-output-available","toolCallId":"c1","output":' + output + b"}",
    )


async def test_a_50_mb_tool_output_is_refused_under_the_default_bound(tmp_path: Path) -> None:
    body = HEAD + _tool_output(50 * MiB) + TAIL
    assert DEFAULT_MAX_EVENT_SIZE == 16 * MiB

    async def handler(conn: Conn, request: Request) -> None:
        await conn.start()
        for i in range(0, len(body), MiB):
            await conn.piece(body[i : i + MiB])
        await conn.end()

    log = EventLog(tmp_path / "kai.db")
    got = []
    async with raw_server(handler) as server, client_for(server, log=log) as client:
        with peak_memory() as peak, pytest.raises(KaiStreamError) as info:
            async for event in client.send_message("c1", "dump"):
                got.append(event)
    assert info.value.code == "stream:too_large"
    assert f"larger than {16 * MiB} bytes" in str(info.value)
    # The start, the step-start and the tool call so far:
    assert info.value.events_delivered == len(got) == 4
    # Bounded: the decoder held at most one event's worth, not the 50 MB.
    print(f"50 MB output, default bound: peak {peak[0] / MiB:.1f} MiB")
    assert peak[0] < 40 * MiB, peak[0]
    assert client_records(log, "c1", "stream-error")[0]["code"] == "stream:too_large"
    integrity_ok(tmp_path / "kai.db")


async def test_a_50_mb_tool_output_arrives_whole_under_a_larger_bound(tmp_path: Path) -> None:
    body = HEAD + _tool_output(50 * MiB) + TAIL

    async def handler(conn: Conn, request: Request) -> None:
        await conn.start()
        for i in range(0, len(body), MiB):
            await conn.piece(body[i : i + MiB])
        await conn.end()

    log = EventLog(tmp_path / "kai.db")
    async with raw_server(handler) as server:
        async with client_for(server, log=log, max_event_size=64 * MiB) as client:
            with trio.fail_after(60):
                events = [e async for e in client.send_message("c1", "dump")]
    outputs = [e for e in events if isinstance(e, ToolCallEvent) and e.state == "output-available"]
    assert len(outputs[0].output["text"]) == 50 * MiB  # type: ignore[index]
    assert isinstance(events[-1], FinishEvent)
    (big,) = [p for p in server_payloads(log, "c1") if len(p) > 50 * MiB]
    assert big.startswith(b'{"type":"tool-output-available"')
    integrity_ok(tmp_path / "kai.db")


@pytest.mark.parametrize(
    "unit",
    [b"a" * 65536, b"data: x\n" * 8192],
    ids=["one-line-without-end", "lines-without-a-blank-line"],
)
async def test_an_event_without_end_stops_at_the_bound(unit: bytes) -> None:
    sent = 0
    limit = 4 * MiB

    async def handler(conn: Conn, request: Request) -> None:
        nonlocal sent
        await conn.start()
        await conn.piece(HEAD + b"data: ")
        while sent < 500 * MiB:  # "without end": far more than anyone should buffer
            await conn.piece(unit)
            sent += len(unit)

    async with raw_server(handler) as server:
        async with client_for(server, max_event_size=limit) as client:
            with peak_memory() as peak, trio.fail_after(30), pytest.raises(KaiStreamError) as info:
                async for _ in client.send_message("c1", "flood"):
                    pass
            with trio.fail_after(10):
                await server.disconnected.wait()
    assert info.value.code == "stream:too_large"
    print(
        f"event without end, 4 MiB bound: peak {peak[0] / MiB:.1f} MiB, sent {sent / MiB:.1f} MiB"
    )
    assert peak[0] < 3 * limit + 8 * MiB, peak[0]
    # The client hung up soon after the bound (plus what the sockets buffer).
    assert sent < limit + 32 * MiB


async def test_default_bound_on_a_line_without_end() -> None:
    sent = 0

    async def handler(conn: Conn, request: Request) -> None:
        nonlocal sent
        await conn.start()
        await conn.piece(b"data: ")
        chunk = b"z" * MiB
        while sent < 200 * MiB:
            await conn.piece(chunk)
            sent += len(chunk)

    async with raw_server(handler) as server, client_for(server) as client:
        with peak_memory() as peak, trio.fail_after(30), pytest.raises(KaiStreamError) as info:
            async for _ in client.send_message("c1", "flood"):
                pass
    assert info.value.code == "stream:too_large"
    print(
        f"line without end, default bound: peak {peak[0] / MiB:.1f} MiB, sent {sent / MiB:.0f} MiB"
    )
    assert sent < 16 * MiB + 40 * MiB
    assert peak[0] < 48 * MiB, peak[0]


async def test_endless_keep_alive_comments_use_no_memory() -> None:
    # A server that only ever says ": keep-alive": nothing to buffer, nothing to
    # deliver; the caller's cancel ends it (after 4 MiB, not after some seconds,
    # so that a slow machine tests the same bytes).
    sent = 0
    caller = trio.CancelScope()

    async def handler(conn: Conn, request: Request) -> None:
        nonlocal sent
        await conn.start()
        await conn.piece(HEAD)
        block = b": keep-alive\n\n" * 4096
        while sent < 4 * MiB:
            await conn.piece(block)
            sent += len(block)
        caller.cancel()  # the caller gives up, the server would go on
        await conn.wait_disconnect()

    async with raw_server(handler) as server, client_for(server) as client:
        with peak_memory() as peak, trio.fail_after(60), caller:
            async for _ in client.send_message("c1", "comments"):
                pass
    print(f"keep-alive comments: {sent / MiB:.1f} MiB, peak {peak[0] / MiB:.2f} MiB")
    assert caller.cancelled_caught
    # Less than half of what came: the comments were dropped, not kept.
    assert peak[0] < 2 * MiB, peak[0]
