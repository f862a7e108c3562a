"""Writes other than appends: imports, and forgetting a chat for real."""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..exceptions import KaiLogError
from ._db import write_transaction
from ._export import imported_records
from ._frames import (
    INSERT_FRAME_AT,
    allocated_seq,
    build_frames,
    frames_from_rows,
    insert_frames,
    raise_floor,
)
from ._projections import count_forget
from ._records import StoredEvent
from ._validate import MAX_SEQ

__all__ = ["compact_and_checkpoint", "forget_chat", "import_detail", "import_events"]


def import_events(conn: sqlite3.Connection, events: Sequence[StoredEvent]) -> int:
    """Insert exported events in one transaction; return how many were added.

    A turn already in the log is skipped whole (importing twice adds
    nothing). A position is kept when it is past the last one handed out
    (always, for an empty log), else the event gets the next one.

    :raises KaiLogError: a record with a bad origin or a body that is not UTF-8.
    """
    rows: list[tuple[Any, ...]] = []
    with write_transaction(conn):
        seen: dict[str, bool] = {}
        top = allocated_seq(conn)
        for ev in events:
            keep = seen.get(ev.turn)
            if keep is None:
                found = conn.execute("SELECT 1 FROM frames WHERE turn = ? LIMIT 1", (ev.turn,))
                keep = seen[ev.turn] = found.fetchone() is None
            if not keep:
                continue
            # Never past MAX_SEQ: the log keeps room for every later append.
            top = ev.seq if top < ev.seq <= MAX_SEQ else top + 1
            rows.append((top, ev.chat_id, ev.turn, ev.ts, ev.origin, ev.type, ev.body))
        conn.executemany(INSERT_FRAME_AT, frames_from_rows(rows))
    return len(rows)


def _chat_id(detail: Any) -> str:
    value = detail.get("id") if isinstance(detail, dict) else getattr(detail, "id", None)
    if not isinstance(value, str):
        raise KaiLogError("a chat detail to import needs an 'id'", code="log:bad_import")
    return value


def import_detail(conn: sqlite3.Connection, detail: Any, skipped: list[str] | None = None) -> int:
    """Record the messages of a server chat detail not yet in the log (projections
    must be current); return how many. ``skipped`` gets the messages left out
    (see :func:`~._export.imported_records`)."""
    with write_transaction(conn):
        chat_id = _chat_id(detail)
        known = {
            row[0] for row in conn.execute("SELECT id FROM messages WHERE chat_id = ?", (chat_id,))
        }
        now = time.time()
        records = imported_records(detail, known, uuid.uuid4().hex, now, skipped)
        if records:
            insert_frames(conn, build_frames(records, now))
    return len(records)


def forget_chat(conn: sqlite3.Connection, chat_id: str) -> int:
    """Delete a chat's events and projection rows in one transaction; return the
    number of events deleted. Follow with :func:`compact_and_checkpoint`."""
    with write_transaction(conn):
        deleted: int = conn.execute(
            "SELECT coalesce(sum(n), 0) FROM frames WHERE chat_id = ?", (chat_id,)
        ).fetchone()[0]
        raise_floor(conn)  # its positions stay used, also when they were the newest
        conn.execute("DELETE FROM frames WHERE chat_id = ?", (chat_id,))
        conn.execute(
            "DELETE FROM search_text WHERE seq IN (SELECT seq FROM messages WHERE chat_id = ?)",
            (chat_id,),
        )
        for table, column in (
            ("messages", "chat_id"),
            ("tool_calls", "chat_id"),
            ("votes", "chat_id"),
            ("chats", "id"),
        ):
            conn.execute(f"DELETE FROM {table} WHERE {column} = ?", (chat_id,))
        count_forget(conn)
    return deleted


def compact_and_checkpoint(conn: sqlite3.Connection, path: Path) -> None:
    """Leave no deleted bytes behind: merge the FTS index (no segment keeps a
    forgotten word), then copy the WAL into the file and truncate it."""
    conn.execute("INSERT INTO search_text_fts (search_text_fts) VALUES ('optimize')")
    # Another process reading at this moment keeps the WAL; wait for it a little.
    deadline = time.monotonic() + 10.0
    while True:
        busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        if not busy:
            return
        if time.monotonic() > deadline:
            raise KaiLogError(
                f"event log {path}: another process kept the log open, so the write-ahead "
                "log could not be truncated; run forget again later",
                code="log:locked",
            )
        time.sleep(0.05)
