"""EventLog.append_chunks: a burst of server chunks as the stream read them, the
same rows as ``append`` of their records, from any thread."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kai_core.exceptions import KaiLogError
from kai_core.log import EventLog, LogRecord

from .log_common import new_log

BODIES = [
    b'{"type":"start"}',
    b'{"type":"text-delta","id":"0","delta":"p\xc5\x99ehled "}',
    b'{"type":"text-delta","id":"0","delta":"a\\nb"}',
]
TYPES = ["start", "text-delta", "text-delta"]


@pytest.fixture
def log(tmp_path: Path) -> Iterator[EventLog]:
    with new_log(tmp_path) as opened:
        yield opened


def _rows(path: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(
            "SELECT seq, n, chat_id, turn, origin, types, body, sizes FROM frames ORDER BY seq"
        ).fetchall()
    finally:
        conn.close()


def test_the_same_rows_as_append_of_the_records(tmp_path: Path) -> None:
    error = LogRecord("c1", "t1", "client", "stream-error", b'{"code":"x","message":"y"}')
    with new_log(tmp_path, "a.db") as a, new_log(tmp_path, "b.db") as b:
        assert (
            a.append(
                [LogRecord("c1", "t1", "server", t, x) for t, x in zip(TYPES, BODIES, strict=True)]
            )
            == 3
        )
        assert a.append([LogRecord("c1", "t1", "server", "finish", b"{}"), error]) == 5
        assert b.append_chunks("c1", "t1", TYPES, BODIES, newline_free=True) == 3
        assert b.append_chunks("c1", "t1", ["finish"], [b"{}"], [error], utf8_checked=True) == 5
        assert b.append_chunks("c1", "t1", [], []) == 0  # nothing: no row
        # Bodies with newlines (SSE data of several lines): their sizes are kept.
        multi = [b'{"type":\n"start-step"}', b'{"type":"finish-step"}']
        a.append(
            [LogRecord("c1", "t1", "server", t, x) for t, x in zip(["s", "f"], multi, strict=True)]
        )
        b.append_chunks("c1", "t1", ["s", "f"], multi)
        assert _rows(b.path) == _rows(a.path)  # the same frames, byte for byte
        strip = [(e.seq, e.chat_id, e.turn, e.origin, e.type, e.body) for e in a.events()]
        assert [(e.seq, e.chat_id, e.turn, e.origin, e.type, e.body) for e in b.events()] == strip


def test_bodies_are_checked_as_utf8_unless_the_caller_did(log: EventLog) -> None:
    with pytest.raises(KaiLogError, match="UTF-8") as info:
        log.append_chunks("c1", "t1", ["x"], [b"ok \xc3"])
    assert info.value.code == "log:bad_record"
    assert log.events() == []
    # The records after the chunks are always checked.
    bad_tail = LogRecord("c1", "t1", "client", "x", b"\xff")
    with pytest.raises(KaiLogError, match="UTF-8"):
        log.append_chunks("c1", "t1", ["start"], [b"{}"], [bad_tail], utf8_checked=True)
    assert log.events() == []  # one transaction: nothing of it stored
    with pytest.raises(KaiLogError, match="chunk types"):
        log.append_chunks("c1", "t1", ["start"], [b"{}", b"{}"])


def test_appends_from_threads_are_serialised(log: EventLog) -> None:
    def burst(chat: str) -> None:
        for _ in range(20):
            log.append_chunks(chat, "t", TYPES, BODIES, utf8_checked=True)

    threads = [threading.Thread(target=burst, args=(f"c{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    log.append([LogRecord("main", "t", "client", "vote", b"{}")])
    for t in threads:
        t.join()
    events = log.events()
    assert [e.seq for e in events] == list(range(1, 4 * 20 * 3 + 2))
    for i in range(4):
        mine = [e.body for e in events if e.chat_id == f"c{i}"]
        assert mine == BODIES * 20
