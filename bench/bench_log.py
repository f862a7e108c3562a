"""Benchmark of the event log: append, replay, rebuild and search.

A plain script: ``uv run python bench/bench_log.py --events 100000`` builds a
log of synthetic chats shaped like real ones (a user message, then an answer
streamed as ~10-chunk reads: text deltas, sometimes a tool call with input
and output), then prints one table. ``--events 2000`` runs in a second (CI).

Figures:

* append: events/s through ``EventLog.append``, one call per read of ~10
  chunks, each call committed durably before it returns (``synchronous``
  FULL by default) and stored as one row;
* catch-up: projecting those events afterwards (what the first read pays);
* replay: instant replay of every chat, events/s (``replay_events``);
* rebuild: ``EventLog.rebuild`` from scratch, events/s;
* search: ``EventLog.search`` latency over random one- and two-word queries;
* pathological searches (issue 12, item 13): the most common word of the log
  (matches in most messages), a 1.4 MB message holding one word 200,000 times,
  a query of 300 distinct words (all in one message, 3 times each), the same
  word typed 300 times, and a raw query of 32 ORed words.
"""

from __future__ import annotations

import argparse
import itertools
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kai_core.log import EventLog, LogRecord

_enc = msgspec.json.Encoder()


def _vocabulary(rng: random.Random, size: int) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = set()
    while len(words) < size:
        words.add("".join(rng.choice(letters) for _ in range(rng.randint(3, 10))))
    return sorted(words)


class ChatGen:
    """Synthetic chats: word frequencies follow a Zipf-like law, like real text."""

    def __init__(self, seed: int = 7, vocabulary: int = 20_000) -> None:
        self.rng = random.Random(seed)
        self.words = _vocabulary(self.rng, vocabulary)
        self.cum_weights = list(itertools.accumulate(1.0 / (i + 1) for i in range(len(self.words))))

    def text(self, n: int) -> str:
        return " ".join(self.rng.choices(self.words, cum_weights=self.cum_weights, k=n))

    def turn(self, chat_id: str, ts: float) -> list[list[LogRecord]]:
        """One exchange as reads: [user-message], then reads of ~10 chunks."""
        rng = self.rng
        turn = uuid.uuid4().hex
        user = {
            "message": {
                "id": str(uuid.uuid4()),
                "role": "user",
                "parts": [{"type": "text", "text": self.text(rng.randint(4, 20))}],
            },
            "server": "https://kai.example",
            "backend": "kai-agent",
        }
        reads = [[LogRecord(chat_id, turn, "client", "user-message", _enc.encode(user), ts)]]
        chunks: list[dict[str, object]] = [
            {"type": "start", "messageId": str(uuid.uuid4())},
            {"type": "start-step"},
            {"type": "text-start", "id": "t0"},
        ]
        chunks += [
            {"type": "text-delta", "id": "t0", "delta": self.text(rng.randint(1, 4)) + " "}
            for _ in range(rng.randint(5, 40))
        ]
        chunks.append({"type": "text-end", "id": "t0"})
        if rng.random() < 0.4:
            call = f"call_{rng.randrange(10**6)}"
            name = rng.choice(["list_tables", "get_table", "run_query", "create_bucket"])
            args = {"query": self.text(3)}
            chunks += [
                {"type": "tool-input-start", "toolCallId": call, "toolName": name},
                {"type": "tool-input-delta", "toolCallId": call, "inputTextDelta": "{}"},
                {
                    "type": "tool-input-available",
                    "toolCallId": call,
                    "toolName": name,
                    "input": args,
                },
                {
                    "type": "tool-output-available",
                    "toolCallId": call,
                    "output": {"rows": self.text(30).split()},
                },
                {"type": "finish-step"},
                {"type": "start-step"},
                {"type": "text-start", "id": "t1"},
            ]
            chunks += [
                {"type": "text-delta", "id": "t1", "delta": self.text(rng.randint(1, 4)) + " "}
                for _ in range(rng.randint(5, 20))
            ]
            chunks.append({"type": "text-end", "id": "t1"})
        chunks += [
            {"type": "finish-step"},
            {
                "type": "data-usage",
                "data": {"promptTokens": 100, "completionTokens": 50},
                "transient": True,
            },
            {"type": "finish", "finishReason": "stop"},
        ]
        for i in range(0, len(chunks), 10):
            ts += 0.05
            reads.append(
                [
                    LogRecord(chat_id, turn, "server", str(c["type"]), _enc.encode(c), ts)
                    for c in chunks[i : i + 10]
                ]
            )
        return reads


def build(log: EventLog, gen: ChatGen, events: int, chats: int) -> tuple[int, float, list[str]]:
    """Append ~``events`` events over ``chats`` chats; return (count, seconds, chat ids)."""
    chat_ids = [str(uuid.uuid4()) for _ in range(chats)]
    count = 0
    ts = 1.7e9
    spent = 0.0
    clock = time.perf_counter
    while count < events:
        chat = gen.rng.choice(chat_ids)
        for read in gen.turn(chat, ts):  # generated outside the timed part
            start = clock()
            log.append(read)
            spent += clock() - start
            count += len(read)
        ts += 60
    return count, spent, chat_ids


def _frame_rows(path: Path) -> int:
    """How many rows hold the records (one per run of records of an append)."""
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM frames").fetchone()[0])
    finally:
        conn.close()


def _user_message(log: EventLog, chat_id: str, text: str) -> None:
    message = {"id": chat_id, "role": "user", "parts": [{"type": "text", "text": text}]}
    body = _enc.encode({"message": message})
    log.append([LogRecord(chat_id, chat_id, "client", "user-message", body, ts=1.8e9)])


def pathological(log: EventLog, gen: ChatGen) -> list[tuple[str, str]]:
    """Searches that were slow before the snippet and term bounds (slowest of 3 runs)."""
    many = [f"zq{i}x" for i in range(300)]
    _user_message(log, str(uuid.uuid4()), "bucketz " * 200_000)
    _user_message(log, str(uuid.uuid4()), " ".join(many * 3))
    log.refresh()
    cases = [
        ("the most common word", gen.words[0], False),
        ("200,000 matches in one 1.4 MB message", "bucketz", False),
        ("300 distinct words, one message", " ".join(many), False),
        ("one word typed 300 times", " ".join(["bucketz"] * 300), False),
        ("32 words ORed (raw)", " OR ".join(gen.words[:32]), True),
    ]
    rows = []
    for name, query, raw in cases:
        worst = 0.0
        for _ in range(3):
            t0 = time.perf_counter()
            log.search(query, raw=raw)
            worst = max(worst, time.perf_counter() - t0)
        rows.append((f"search: {name}", f"{worst * 1000:.1f} ms"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--chats", type=int, default=0, help="default: events / 40")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--sync", choices=["full", "normal"], default="full")
    parser.add_argument("--dir", type=Path, default=None, help="where to put the log")
    args = parser.parse_args()
    chats = args.chats or max(10, args.events // 40)
    gen = ChatGen()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = Path(tmp) / "bench.db"
        rows: list[tuple[str, str]] = []
        with EventLog(path, synchronous=args.sync) as log:
            count, secs, chat_ids = build(log, gen, args.events, chats)
            rows.append(
                (f"append ({args.sync}, ~10 events/commit)", f"{count / secs:,.0f} events/s")
            )
            start = time.perf_counter()
            log.refresh()
            secs = time.perf_counter() - start
            rows.append(("catch-up of all projections", f"{count / secs:,.0f} events/s"))

            start = time.perf_counter()
            for chat in chat_ids:
                log.events(chat)
            secs = time.perf_counter() - start
            rows.append(("read a chat's records (no folding)", f"{count / secs:,.0f} records/s"))

            start = time.perf_counter()
            replayed = 0
            for chat in chat_ids:
                for _ in log.replay_events(chat):
                    replayed += 1
            secs = time.perf_counter() - start
            rows.append(("instant replay (events out)", f"{replayed / secs:,.0f} events/s"))
            rows.append(("instant replay (records in)", f"{count / secs:,.0f} records/s"))

            start = time.perf_counter()
            log.rebuild()
            secs = time.perf_counter() - start
            rows.append(("rebuild", f"{count / secs:,.0f} events/s"))

            qrng = random.Random(11)
            timings = []
            hits = 0
            for i in range(args.queries):
                words = qrng.sample(gen.words[:2000], 1 + (i % 2))
                t0 = time.perf_counter()
                hits += len(log.search(" ".join(words)))
                timings.append((time.perf_counter() - t0) * 1000)
            timings.sort()
            p50 = statistics.median(timings)
            p99 = timings[min(len(timings) - 1, int(len(timings) * 0.99))]
            rows.append(("search p50", f"{p50:.2f} ms"))
            rows.append(("search p99", f"{p99:.2f} ms"))
            rows += pathological(log, gen)
            stats = log.stats()
        frames = _frame_rows(path)
        print(
            f"log: {stats.events:,} events in {frames:,} rows, {stats.chats:,} chats, "
            f"{stats.messages:,} messages, {stats.size_bytes / 1e6:.1f} MB "
            f"({args.queries} queries, {hits} hits)"
        )
        width = max(len(name) for name, _ in rows)
        print(f"{'measure'.ljust(width)}  result")
        print(f"{'-' * width}  {'-' * 20}")
        for name, value in rows:
            print(f"{name.ljust(width)}  {value}")


if __name__ == "__main__":
    main()
