"""Export, import, forget and backup."""

from __future__ import annotations

import io
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from kai_core.exceptions import KaiLogError
from kai_core.log import EventLog

from .log_common import Recorder, dump_rows, new_log


@pytest.fixture
def log(tmp_path: Path) -> Iterator[EventLog]:
    """A fresh event log, closed after the test."""
    with new_log(tmp_path) as opened:
        yield opened


def _fill(log: EventLog) -> tuple[Recorder, Recorder]:
    a, b = Recorder(log, read_size=2), Recorder(log, read_size=3)
    a.send("list my tables", "tables.sse")
    b.send("hello", "hello.sse")
    a.send("create a bucket called b1", "bucket-request.sse")
    a.answer_v6(False, "Not now", "bucket-denied.sse")
    a.vote("00000000-0000-4000-8000-000000000003", "down")
    return a, b


def test_jsonl_round_trip_gives_identical_events_and_projections(tmp_path: Path) -> None:
    with new_log(tmp_path, "src.db") as src:
        a, _ = _fill(src)
        src.forget(_fill(src)[1].chat_id)  # leave a gap in the positions
        out = tmp_path / "all.jsonl"
        count = src.export_jsonl(None, out)
        assert count == len(src.events())
        assert stat.S_IMODE(out.stat().st_mode) == 0o600
        src.refresh()
        with new_log(tmp_path, "dst.db") as dst:
            assert dst.import_jsonl(out) == count
            assert dst.events() == src.events()
            dst.refresh()
            assert dump_rows(dst) == dump_rows(src)
            assert dst.import_jsonl(out) == 0  # importing twice adds nothing
            assert list(dst.replay_events(a.chat_id)) == a.live


def test_jsonl_one_chat_to_file_objects(log: EventLog) -> None:
    a, b = _fill(log)
    binary = io.BytesIO()
    n = log.export_jsonl(b.chat_id, binary)
    assert n == len(log.events(b.chat_id))
    lines = binary.getvalue().splitlines()
    assert len(lines) == n and b'"body":{"type":"start"' in binary.getvalue()
    text = io.StringIO()
    assert log.export_jsonl(b.chat_id, text) == n
    assert text.getvalue().encode() == binary.getvalue()


def test_import_rejects_garbage_atomically(log: EventLog) -> None:
    with pytest.raises(KaiLogError, match="line 2"):
        log.import_jsonl(
            io.BytesIO(
                b'{"seq":1,"chat_id":"c","turn":"t","ts":1,"origin":"client","type":"vote","body":{}}\nnot json\n'
            )
        )
    assert log.events() == []


def test_markdown_transcript(log: EventLog) -> None:
    a, _ = _fill(log)
    text = log.export_markdown(a.chat_id)
    assert text.startswith("# list my tables\n")
    assert "## User" in text and "## Assistant" in text
    assert "**Tool `list_tables`** (output-available)" in text
    assert "_rejected by test-policy: Not now_" in text
    assert "You have 3 tables" in text
    with pytest.raises(KaiLogError, match="not in the log"):
        log.export_markdown("missing")


def test_forget_removes_every_byte(tmp_path: Path) -> None:
    path = tmp_path / "kai.db"
    with EventLog(path) as log:
        keep, gone = Recorder(log), Recorder(log)
        keep.send("remember the aardvark", "hello.sse")
        gone.send("forget the xylophonist quuxbar", "tables.sse")
        gone.send("more about xylophonist quuxbar please", "hello.sse")
        assert log.search("xylophonist")
        log.rebuild()  # rewrite projection rows once more: stale copies must go too
        assert log.forget(gone.chat_id) > 0
        assert log.search("xylophonist") == []
        assert log.get_chat(gone.chat_id) is None
        assert [c.id for c in log.chats()] == [keep.chat_id]
        assert list(log.replay_events(gone.chat_id)) == []
        data = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
        for word in (b"xylophonist", b"quuxbar", gone.chat_id.encode()):
            assert word not in data, word
        assert b"aardvark" in data
        assert log.search("aardvark")
        keep.send("still works after forgetting", "hello.sse")
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


def test_backup(tmp_path: Path) -> None:
    with new_log(tmp_path) as log:
        _fill(log)
        target = log.backup(tmp_path / "backup.db")
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
        with pytest.raises(KaiLogError, match="exists"):
            log.backup(target)
        with EventLog(target) as copy:
            assert copy.events() == log.events()
            assert dump_rows(copy) == dump_rows(log)


def test_stats(log: EventLog) -> None:
    _fill(log)
    s = log.stats()
    # bucket-denied.sse continues another message id: a third assistant message
    assert s.chats == 2 and s.messages == 7 and s.tool_calls == 3
    assert s.events == s.server_events + s.client_events == s.last_seq
    assert s.size_bytes > 0
