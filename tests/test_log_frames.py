"""Frames: one row per run of records of an append, one position per record,
every body back byte for byte, positions never reused, old logs moved over."""

from __future__ import annotations

import io
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kai_core.exceptions import KaiLogError
from kai_core.log import APPLICATION_ID, MIGRATIONS, EventLog, LogRecord, StoredEvent

from .log_common import Recorder, dump_rows, new_log, payloads


@pytest.fixture
def log(tmp_path: Path) -> Iterator[EventLog]:
    """A fresh event log, closed after the test."""
    with new_log(tmp_path) as opened:
        yield opened


def _delta(i: int, chat: str = "c1", turn: str = "t1", ts: float | None = None) -> LogRecord:
    body = b'{"type":"text-delta","id":"0","delta":"%d "}' % i
    return LogRecord(chat, turn, "server", "text-delta", body, ts)


def _frames(path: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT seq, n, sizes IS NULL FROM frames ORDER BY seq").fetchall()
    finally:
        conn.close()


def _same(events: list[StoredEvent], records: list[LogRecord]) -> bool:
    return [(e.chat_id, e.turn, e.origin, e.type, e.body) for e in events] == [
        (r.chat_id, r.turn, r.origin, r.type, r.body) for r in records
    ]


def test_a_burst_is_one_row_and_each_record_keeps_its_position(log: EventLog) -> None:
    burst = [_delta(i) for i in range(50)]
    assert log.append(burst) == 50
    assert log.append([_delta(50)]) == 51
    assert _frames(log.path) == [(1, 50, 1), (51, 1, 1)]
    events = log.events()
    assert [e.seq for e in events] == list(range(1, 52))
    assert _same(events, [*burst, _delta(50)])
    assert len({e.ts for e in events[:50]}) == 1  # "now" once per append
    assert log.stats().events == log.stats().last_seq == 51


def test_runs_split_where_chat_turn_origin_or_time_change(log: EventLog) -> None:
    records = [
        _delta(0),
        _delta(1),
        LogRecord("c1", "t1", "client", "vote", b'{"message_id":"m","type":"up"}'),
        _delta(2),
        _delta(3, turn="t2"),
        _delta(4, chat="c2", turn="t2"),
        _delta(5, chat="c2", turn="t2", ts=5.0),
        _delta(6, chat="c2", turn="t2", ts=5.0),
        _delta(7, chat="c2", turn="t2", ts=6.0),
    ]
    assert log.append(records) == len(records)
    assert [n for _, n, _ in _frames(log.path)] == [2, 1, 1, 1, 1, 2, 1]
    events = log.events()
    assert [e.seq for e in events] == list(range(1, 10))
    assert _same(events, records)
    assert [e.ts for e in events][-3:] == [5.0, 5.0, 6.0]
    assert _same(log.events("c2"), records[5:])


def test_bodies_come_back_byte_for_byte(tmp_path: Path, log: EventLog) -> None:
    odd = [
        b'{"a":\n1}',
        b"",
        b"\n",
        b"not json at all",
        "é ü\r\n".encode(),
        b'{"type":"data-x","data":1}',
        b"\n\n",
        b" " * 70_000,
        b'{"type":"text-delta","id":"0","delta":"\\n"}',
    ]
    records = [LogRecord("c1", "t1", "server", f"kind{i}", b, 1.0) for i, b in enumerate(odd)]
    clean = [_delta(i, ts=2.0) for i in range(5)]
    log.append(records + clean)
    # A body holding a newline needs the lengths; compact JSON never does.
    assert _frames(log.path) == [(1, len(odd), 0), (len(odd) + 1, 5, 1)]
    assert _same(log.events(), records + clean)
    assert list(log.replay_events("c1"))  # odd bodies yield nothing, the rest replays
    out = io.BytesIO()
    assert log.export_jsonl(None, out) == len(odd) + 5
    with new_log(tmp_path, "copy.db") as copy:
        assert copy.import_jsonl(io.BytesIO(out.getvalue())) == len(odd) + 5
        assert copy.events() == log.events()


def test_bad_records_store_nothing(log: EventLog) -> None:
    with pytest.raises(KaiLogError, match="UTF-8") as info:
        log.append([_delta(0), LogRecord("c1", "t1", "server", "x", b"ok \xc3")])
    assert info.value.code == "log:bad_record"
    # A multibyte character split over two bodies is two bad bodies, not one good one.
    with pytest.raises(KaiLogError, match="UTF-8"):
        log.append(
            [
                LogRecord("c1", "t1", "server", "x", b"\xc3"),
                LogRecord("c1", "t1", "server", "y", b"\xa9"),
            ]
        )
    with pytest.raises(KaiLogError, match="type must be text"):
        log.append([LogRecord("c1", "t1", "server", 7, b"{}")])  # type: ignore[arg-type]
    assert log.events() == []
    assert log.append([_delta(0)]) == 1


def test_reads_filter_a_frame_straddling_a_bound(log: EventLog) -> None:
    log.append([_delta(i) for i in range(10)])
    log.append([_delta(i, chat="c2") for i in range(3)])
    assert [e.seq for e in log.events(after=4)] == list(range(5, 14))
    assert [e.seq for e in log.events("c1", after=4)] == list(range(5, 11))
    assert log.events("c1", after=10) == []
    assert [e.seq for e in log.events("c2", after=11)] == [12, 13]
    assert log.events(after=13) == []


def test_positions_are_never_reused_after_forget(tmp_path: Path) -> None:
    path = tmp_path / "kai.db"
    with EventLog(path) as log:
        log.append([_delta(i, chat="keep") for i in range(3)])
        log.append([_delta(i, chat="gone") for i in range(7)])
        assert log.forget("gone") == 7  # the newest records
        assert log.append([_delta(3, chat="keep")]) == 11
        log.append([_delta(0, chat="gone2")])
    with EventLog(path) as log:
        assert log.forget("gone2") == 1
        assert log.forget("keep") == 4
        assert log.events() == [] and log.stats().events == 0
    with EventLog(path) as log:  # also across a reopen of an empty log
        assert log.append([_delta(0, chat="new")]) == 13


def test_replay_of_frames_equals_replay_record_by_record(log: EventLog) -> None:
    rec = Recorder(log, read_size=1000)  # each answer one frame
    for name in ("tables.sse", "think.sse", "sources.sse", "boom.sse", "metadata.sse"):
        rec.send("go", name)
    # A frame that cannot be decoded in one call: a data part, an unknown chunk,
    # a malformed one and a blank one amid ordinary chunks.
    chunks = payloads("hello.sse")
    odd = [b'{"type":"data-x","data":{"a":1}}', b'{"type":"no-such-chunk"}', b"{oops", b" "]
    mixed = chunks[:3] + odd + chunks[3:]
    turn = rec.user("odd")
    log.append([LogRecord(rec.chat_id, turn, "server", "x", p) for p in mixed])
    assert [n for _, n, _ in _frames(log.path)][-1] == len(mixed)
    by_record = [e for step in log.replay_steps(rec.chat_id) for e in step.events]
    assert list(log.replay_events(rec.chat_id)) == by_record
    assert len(by_record) > len(rec.live)


def test_rebuild_leaves_the_schema_as_it_was(log: EventLog) -> None:
    rec = Recorder(log, read_size=5)
    rec.send("list my tables", "tables.sse")
    rec.vote("00000000-0000-4000-8000-000000000002", "up")
    log.refresh()
    rows = dump_rows(log)

    def schema() -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(log.path)
        try:
            return conn.execute(
                "SELECT type, name, sql FROM sqlite_master ORDER BY name"
            ).fetchall()
        finally:
            conn.close()

    before = schema()
    assert any(name == "messages_ts" for _, name, _ in before)
    assert log.rebuild() == len(log.events())
    assert schema() == before  # indexes and triggers dropped for the rebuild are back
    assert dump_rows(log) == rows


def test_a_damaged_frame_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "kai.db"
    with EventLog(path) as log:
        log.append([_delta(i) for i in range(5)])
    conn = sqlite3.connect(path)
    conn.execute("UPDATE frames SET n = 6")
    conn.commit()
    conn.close()
    with EventLog(path) as log, pytest.raises(KaiLogError, match="damaged") as info:
        log.events()
    assert info.value.code == "log:corrupt"


# -- logs written before frames ------------------------------------------------------


def _old_log(path: Path, events: list[StoredEvent], *, floor: int, watermark: int) -> None:
    """A log as the previous schema wrote it: the first two migrations, one row per record."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
    conn.execute("CREATE TABLE migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)")
    for name, migration in MIGRATIONS[:2]:
        migration(conn)
        conn.execute("INSERT INTO migrations VALUES (?, ?)", (name, time.time()))
    conn.executemany(
        "INSERT INTO events (seq, chat_id, turn, ts, origin, type, body) VALUES (?,?,?,?,?,?,?)",
        [(e.seq, e.chat_id, e.turn, e.ts, e.origin, e.type, e.body.decode()) for e in events],
    )
    # AUTOINCREMENT remembers a forgotten newest chat.
    conn.execute("UPDATE sqlite_sequence SET seq = ? WHERE name = 'events'", (floor,))
    conn.execute("INSERT INTO projection_state VALUES ('watermark', ?)", (watermark,))
    conn.close()


def _copy_projections(src: Path, dst: Path) -> None:
    conn = sqlite3.connect(dst)
    conn.execute("ATTACH DATABASE ? AS src", (str(src),))
    for table in ("chats", "messages", "tool_calls", "votes", "search_text"):
        conn.execute(f"INSERT INTO {table} SELECT * FROM src.{table}")  # FTS triggers fire
    conn.commit()
    conn.close()


def _everything(log: EventLog, chats: list[str]) -> dict[str, Any]:
    out = io.BytesIO()
    log.export_jsonl(None, out)
    stats = log.stats()
    return {
        "events": log.events(),
        "export": out.getvalue(),
        "rows": dump_rows(log),
        "replay": {c: list(log.replay_events(c)) for c in chats},
        "search": log.search("tables"),
        "chats": log.chats(),
        "stats": (stats.events, stats.server_events, stats.client_events, stats.last_seq),
    }


def test_an_old_log_moves_to_frames_and_reads_back_the_same(tmp_path: Path) -> None:
    with new_log(tmp_path, "src.db") as src:
        a, b, c = Recorder(src, read_size=3), Recorder(src, read_size=4), Recorder(src)
        a.send("list my tables", "tables.sse")
        b.send("hello", "hello.sse")
        a.send("create a bucket called b1", "bucket-request.sse")
        c.send("gone soon", "hello.sse")
        a.answer_v6(False, "Not now", "bucket-denied.sse")
        b.vote("00000000-0000-4000-8000-000000000002", "up")
        src.forget(c.chat_id)  # a gap in the positions
        events = src.events()
        chats = [a.chat_id, b.chat_id]
        expected = _everything(src, chats)
    # The old log was projected up to a record in the middle of a read, which
    # the migration makes one frame: catching up must start inside it.
    middle = next(
        i
        for i in range(len(events) // 2, len(events) - 1)
        if events[i].seq + 1 == events[i + 1].seq
        and events[i].turn == events[i + 1].turn
        and events[i].ts == events[i + 1].ts
        and events[i].origin == "server"
    )
    watermark = events[middle].seq
    with new_log(tmp_path, "part.db") as part:
        part.import_jsonl(io.BytesIO(b"".join(expected["export"].splitlines(True)[: middle + 1])))
        part.refresh()
    old = tmp_path / "old.db"
    floor = events[-1].seq + 5
    _old_log(old, events, floor=floor, watermark=watermark)
    _copy_projections(tmp_path / "part.db", old)

    with EventLog(old) as log:
        assert _everything(log, chats) == expected
        conn = sqlite3.connect(old)
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        assert "events" not in tables and "events_chat" not in tables
        assert conn.execute("SELECT count(*) FROM sqlite_sequence").fetchone()[0] == 0
        (rows,) = conn.execute("SELECT count(*) FROM frames").fetchone()
        assert rows < len(events)  # the old rows of one read became one frame
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        conn.close()
        log.rebuild()
        assert dump_rows(log) == expected["rows"]
        assert log.append([_delta(0, chat=a.chat_id)]) == floor + 1  # nothing reused


def test_an_empty_old_log_migrates(tmp_path: Path) -> None:
    old = tmp_path / "old.db"
    _old_log(old, [], floor=0, watermark=0)
    with EventLog(old) as log:
        assert log.events() == [] and log.chats() == []
        assert log.append([_delta(0)]) == 1
