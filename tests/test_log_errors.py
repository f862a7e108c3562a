"""SQLite errors become KaiLogErrors by SQLite's result code, not by the words of the message.

Every error here is a real one, raised by SQLite on a real file.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from kai_core.log._db import translate


def error_of(connect: str, statement: str, *, uri: bool = False) -> sqlite3.Error:
    try:
        conn = sqlite3.connect(connect, uri=uri, timeout=0)
    except sqlite3.Error as exc:  # a file that cannot be opened fails here
        return exc
    try:
        conn.execute(statement)
    except sqlite3.Error as exc:
        return exc
    finally:
        conn.close()
    raise AssertionError(f"{statement!r} did not fail")


def test_each_kind_of_failure_gets_its_code(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a SQLite file" * 100)
    corrupt = error_of(str(garbage), "SELECT * FROM sqlite_master")
    assert translate(garbage, corrupt, "reading").code == "log:corrupt"

    db = tmp_path / "kai.db"
    sqlite3.connect(db).execute("CREATE TABLE t (x)").connection.close()
    read_only = error_of(f"file:{db}?mode=ro", "INSERT INTO t VALUES (1)", uri=True)
    assert translate(db, read_only, "appending").code == "log:read_only"

    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        busy = error_of(str(db), "INSERT INTO t VALUES (2)")
    finally:
        holder.close()
    assert translate(db, busy, "appending").code == "log:locked"

    missing = tmp_path / "no-such-dir" / "kai.db"
    cannot_open = error_of(str(missing), "SELECT 1")
    assert translate(missing, cannot_open, "opening").code == "log:open"


@pytest.mark.parametrize("table", ["busy_chats", "full_io", "readonly_copy", "malformed"])
def test_words_in_a_message_do_not_decide(tmp_path: Path, table: str) -> None:
    # "no such table: busy_chats" is not a lock, nor "full_io" a full disk.
    db = tmp_path / "kai.db"
    exc = error_of(str(db), f"SELECT * FROM {table}")
    translated = translate(db, exc, "reading")
    assert translated.code == "log:error"
    assert f"no such table: {table}" in str(translated)
