"""What the asyncio bridge (``kai_core.aio``) costs by itself, without a network.

    uv run python bench/bench_aio.py              # ~20 s
    uv run python bench/bench_aio.py --rounds 5 --events 500000

Three figures, each median (min–max) over the rounds:

- open + close: ``async with kai_core.aio.KaiClient(...)`` entered and left
  (the trio thread started and joined), per cycle;
- a call: ``await`` of a trio coroutine that only checkpoints, through the
  bridge (two cross-thread wake-ups), per call;
- events: a trio async iterator handing out ready-made events in bursts of
  ``--burst`` (a checkpoint between bursts, as between two network reads),
  read with ``async for`` under asyncio, per event; with the wake-ups of the
  asyncio loop counted (one per burst is the design).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import threading
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent))

import trio.lowlevel
from _common import Samples, fmt_range, machine, table

from kai_core.aio import KaiClient
from kai_core.aio._portal import Pipe
from kai_core.aio._stream import EventStream
from kai_core.events import TextEvent

OPTIONS = {"storage_api_token": "bench-token", "storage_api_url": "http://127.0.0.1:9"}


async def open_close(cycles: int) -> float:
    started = time.perf_counter()
    for _ in range(cycles):
        async with KaiClient(**OPTIONS):
            pass
    return (time.perf_counter() - started) / cycles


async def calls(n: int) -> float:
    async with KaiClient(**OPTIONS) as client:
        portal = client._portal
        await portal.call(trio.lowlevel.checkpoint)
        started = time.perf_counter()
        for _ in range(n):
            await portal.call(trio.lowlevel.checkpoint)
        return (time.perf_counter() - started) / n


class _Bursts:
    """``events`` ready-made events, ``burst`` at a time with a checkpoint between bursts."""

    def __init__(self, events: int, burst: int) -> None:
        self.left = events
        self.burst = burst
        self.event = TextEvent(text="word ")
        self.in_burst = 0

    def __aiter__(self) -> _Bursts:
        return self

    async def __anext__(self) -> TextEvent:
        if self.left <= 0:
            raise StopAsyncIteration
        if self.in_burst == self.burst:
            self.in_burst = 0
            await trio.lowlevel.checkpoint()  # the next "network read"
        self.in_burst += 1
        self.left -= 1
        return self.event

    async def aclose(self) -> None:
        self.left = 0


async def events(n: int, burst: int) -> tuple[float, float, int]:
    """Seconds per event (wall, CPU of the process) and the asyncio wake-ups it took."""
    wakes = 0
    wake = Pipe._wake

    def counted(self: Pipe[object]) -> None:
        nonlocal wakes
        wakes += 1
        wake(self)

    Pipe._wake = counted  # type: ignore[method-assign]
    try:
        async with KaiClient(**OPTIONS) as client:
            stream = EventStream(client._portal, _Bursts(n, burst))  # type: ignore[arg-type]
            w0, c0 = time.perf_counter(), time.process_time()
            count = 0
            async for _event in stream:
                count += 1
            wall, cpu = time.perf_counter() - w0, time.process_time() - c0
            assert count == n
    finally:
        Pipe._wake = wake  # type: ignore[method-assign]
    return wall / n, cpu / n, wakes


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--cycles", type=int, default=100, help="open/close cycles per round")
    p.add_argument("--calls", type=int, default=2000, help="calls per round")
    p.add_argument("--events", type=int, default=200_000, help="events per round")
    p.add_argument("--burst", type=int, default=500, help="events per burst")
    args = p.parse_args(argv)
    info = machine()
    print(f"# kai_core.aio bridge — {info['date']}\n")
    print(f"machine: {info['nproc']} CPUs ({info['cpu']}), Python {info['python']}\n")
    cycle, call, per_event, cpu_event = Samples(), Samples(), Samples(), Samples()
    wakes: list[int] = []
    threads = threading.active_count()
    for _ in range(args.rounds):
        cycle.add(asyncio.run(open_close(args.cycles)) * 1e3)
        call.add(asyncio.run(calls(args.calls)) * 1e6)
        wall, cpu, woken = asyncio.run(events(args.events, args.burst))
        per_event.add(wall * 1e6)
        cpu_event.add(cpu * 1e6)
        wakes.append(woken)
    assert threading.active_count() == threads, "a thread was left running"
    bursts = -(-args.events // args.burst)
    rows = [
        ["open + close a client", fmt_range(cycle, 2) + " ms", "-"],
        ["a call (round trip)", fmt_range(call, 1) + " µs", "-"],
        [
            f"an event ({args.burst} per burst)",
            fmt_range(per_event, 3) + " µs",
            f"{statistics.median(wakes):,.0f} wake-ups for {bursts:,} bursts",
        ],
        ["  CPU per event (both threads)", fmt_range(cpu_event, 3) + " µs", "-"],
    ]
    print(table(["what", "cost", "note"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
