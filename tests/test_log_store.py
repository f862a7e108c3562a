"""The log file: creation, refusal of foreign files, migrations, appends, durability."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from kai_core.exceptions import KaiLogError
from kai_core.log import APPLICATION_ID, MIGRATIONS, EventLog, LogRecord, default_log_path

from .log_common import new_log


@pytest.fixture
def log(tmp_path: Path) -> Iterator[EventLog]:
    """A fresh event log, closed after the test."""
    with new_log(tmp_path) as opened:
        yield opened


ROOT = Path(__file__).resolve().parent.parent


def _record(i: int, chat: str = "c1", turn: str = "t1") -> LogRecord:
    return LogRecord(
        chat, turn, "server", "text-delta", b'{"type":"text-delta","id":"0","delta":"%d"}' % i
    )


def test_new_file_is_owner_only_with_wal(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "kai.db"
    with EventLog(path) as log:
        log.append([_record(1)])
        for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            assert stat.S_IMODE(name.stat().st_mode) == 0o600, name
        conn = sqlite3.connect(path)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        names = [r[0] for r in conn.execute("SELECT name FROM migrations ORDER BY rowid")]
        assert names == [name for name, _ in MIGRATIONS]
        conn.close()


def test_reopen_keeps_events_and_runs_no_migration_twice(tmp_path: Path) -> None:
    path = tmp_path / "kai.db"
    with EventLog(path) as log:
        assert log.append([_record(1), _record(2)]) == 2
    with EventLog(path) as log:
        assert log.append([_record(3)]) == 3
        assert [e.seq for e in log.events()] == [1, 2, 3]
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(*) FROM migrations").fetchone()[0] == len(MIGRATIONS)
    conn.close()


def test_default_path_env_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KAI_DB", str(tmp_path / "x.db"))
    assert default_log_path() == tmp_path / "x.db"
    monkeypatch.delenv("KAI_DB")
    assert default_log_path().name == "kai.db"
    assert "kai" in str(default_log_path().parent)


def _refused(path: Path, code: str) -> KaiLogError:
    before = path.read_bytes()
    with pytest.raises(KaiLogError) as info:
        EventLog(path)
    assert str(path) in str(info.value)
    assert info.value.code == code
    assert path.read_bytes() == before  # never overwritten
    assert not Path(f"{path}-wal").exists()
    return info.value


def test_foreign_sqlite_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (x)")
    conn.execute("INSERT INTO notes VALUES ('mine')")
    conn.commit()
    conn.close()
    error = _refused(path, "log:not_kai")
    assert "another program" in error.message and "--db" in error.message


def test_corrupt_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "kai.db"
    path.write_bytes(b"this is not a database at all\n" * 100)
    error = _refused(path, "log:corrupt")
    assert "move it aside" in error.message


def test_damaged_kai_log_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "kai.db"
    with EventLog(path) as log:
        log.append([_record(1)])
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    data = bytearray(path.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)  # smash the schema page
    path.write_bytes(bytes(data))
    with pytest.raises(KaiLogError) as info:
        EventLog(path)
    assert str(path) in str(info.value)


def test_read_only_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "kai.db"
    with EventLog(path) as log:
        log.append([_record(1)])
    path.chmod(0o400)
    try:
        error = _refused(path, "log:read_only")
        assert "chmod" in error.message
    finally:
        path.chmod(0o600)


def test_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KaiLogError, match="not a regular file"):
        EventLog(tmp_path)


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "kai.db"
    EventLog(path).close()
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO migrations VALUES ('9999_future', 0)")
    conn.commit()
    conn.close()
    with pytest.raises(KaiLogError, match="newer kai") as info:
        EventLog(path)
    assert info.value.code == "log:too_new"


def test_append_stores_exactly_what_is_passed(log: EventLog) -> None:
    bodies = [b'{"type":"start","messageId":"m\\u00e9"}', '{"x": [1, 2.50, "é"]}'.encode()]
    log.append(
        [
            LogRecord("chat", "turn", "server", "start", bodies[0], ts=12.5),
            LogRecord("chat", "turn", "client", "vote", bodies[1]),
        ]
    )
    events = log.events()
    assert [e.body for e in events] == bodies
    assert events[0].ts == 12.5 and events[1].ts > 1e9
    conn = sqlite3.connect(log.path)
    rows = conn.execute("SELECT * FROM frames ORDER BY seq").fetchall()
    conn.close()
    # Origin and time differ: two frames of one record each (seq, n, ..., types, body, sizes).
    assert rows[0] == (1, 1, "chat", "turn", 12.5, "server", '["start"]', bodies[0], None)
    assert rows[1][:4] == (2, 1, "chat", "turn") and rows[1][5:] == (
        "client",
        '["vote"]',
        bodies[1],
        None,
    )
    # Nothing else was written: no extra columns, no other table holds record data.
    assert len(rows[0]) == 9


def test_append_rejects_bad_records_atomically(log: EventLog) -> None:
    with pytest.raises(KaiLogError, match="origin"):
        log.append([_record(1), LogRecord("c", "t", "nobody", "x", b"{}")])  # type: ignore[arg-type]
    with pytest.raises(KaiLogError, match="UTF-8"):
        log.append([_record(1), LogRecord("c", "t", "server", "x", b"\xff")])
    assert log.events() == []
    assert log.append([]) == 0


def test_secret_not_passed_is_never_in_file(tmp_path: Path) -> None:
    secret = "kbc-token-0123456789abcdef"
    path = tmp_path / "kai.db"
    with EventLog(path) as log:
        for i in range(50):
            log.append([_record(i)])
        log.search("anything")
        log.chats()
        data = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert secret.encode() not in data


def test_closed_log_refuses(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "kai.db")
    log.close()
    log.close()
    with pytest.raises(KaiLogError, match="closed"):
        log.append([_record(1)])


# -- processes ---------------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys
    from kai_core.log import EventLog, LogRecord
    path, name, batches, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    log = EventLog(path)
    print("ready", flush=True)
    for b in range(batches):
        body = b'{"type":"text-delta","id":"%s","delta":"%d"}'
        records = [
            LogRecord(name, "t%d" % b, "server", "text-delta", body % (name.encode(), b * size + i))
            for i in range(size)
        ]
        seq = log.append(records)
        print(seq, flush=True)
    log.close()
    """
)


def _spawn(path: Path, name: str, batches: int, size: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), name, str(batches), str(size)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


@pytest.mark.e2e
def test_sigkill_loses_nothing_the_caller_saw(tmp_path: Path) -> None:
    path = tmp_path / "kai.db"
    rng = random.Random(1234)
    confirmed: list[int] = []
    for round_ in range(4):
        proc = _spawn(path, f"chat{round_}", 100_000, 10)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        for _ in range(rng.randint(1, 300)):
            confirmed.append(int(proc.stdout.readline()))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        assert proc.stderr is not None
        proc.stderr.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    stored = {
        s for seq, n in conn.execute("SELECT seq, n FROM frames") for s in range(seq, seq + n)
    }
    conn.close()
    missing = [seq for seq in confirmed if seq not in stored]
    assert missing == []
    with EventLog(path) as log:  # and the file still opens and takes appends
        assert log.append([_record(0)]) > max(confirmed)


@pytest.mark.e2e
def test_parallel_writers_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "kai.db"  # does not exist yet: the processes race to create it
    writers, batches, size = 4, 150, 5
    procs = [_spawn(path, f"w{i}", batches, size) for i in range(writers)]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert "locked" not in err
    with EventLog(path) as log:
        events = log.events()
        assert len(events) == writers * batches * size
        assert len({e.seq for e in events}) == len(events)
        for i in range(writers):
            mine = [e.body for e in events if e.chat_id == f"w{i}"]
            expected = [
                b'{"type":"text-delta","id":"w%d","delta":"%d"}' % (i, n)
                for n in range(batches * size)
            ]
            assert mine == expected  # all there, in order, once
        conn = sqlite3.connect(path)
        assert conn.execute("SELECT count(*) FROM migrations").fetchone()[0] == len(MIGRATIONS)
        conn.close()


def test_a_new_log_has_the_released_schema(tmp_path: Path) -> None:
    # The migrations are plain SQL now (they were sqlite-utils calls): a new log
    # must have exactly the schema released logs have, statement for statement.
    with new_log(tmp_path) as opened:
        path = opened.path
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY rowid").fetchall()
    finally:
        conn.close()
    expected = (Path(__file__).parent / "data" / "log_schema.txt").read_text().splitlines()
    assert [repr(row) for row in rows] == expected
