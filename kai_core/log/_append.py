"""Appending: records to rows, and the one-transaction insert.

The only write on the streaming path. It inserts the events and nothing
else (projections catch up later, see :mod:`._projections`), so a commit
costs one small WAL write plus, with ``synchronous=FULL``, one fsync.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, Final

from ..exceptions import KaiLogError
from ._records import LogRecord

__all__ = ["INSERT", "INSERT_SEQ", "insert_rows", "record_rows"]

INSERT: Final = (
    "INSERT INTO events (chat_id, turn, ts, origin, type, body) VALUES (?, ?, ?, ?, ?, ?)"
)
INSERT_SEQ: Final = (
    "INSERT INTO events (seq, chat_id, turn, ts, origin, type, body) VALUES (?, ?, ?, ?, ?, ?, ?)"
)


def record_rows(records: Sequence[LogRecord], now: float) -> list[tuple[Any, ...]]:
    """Check records and turn them into ``events`` rows (``ts`` None becomes ``now``).

    :raises KaiLogError: an origin other than server/client, or a body that is not UTF-8.
    """
    rows = []
    for r in records:
        if r.origin != "server" and r.origin != "client":
            raise KaiLogError(
                f"a log record's origin must be 'server' or 'client', not {r.origin!r}",
                code="log:bad_record",
            )
        body = r.body
        try:
            text = body if isinstance(body, str) else bytes(body).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise KaiLogError(
                f"a {r.type!r} record's body is not UTF-8 JSON", code="log:bad_record"
            ) from exc
        rows.append((r.chat_id, r.turn, now if r.ts is None else r.ts, r.origin, r.type, text))
    return rows


def insert_rows(conn: sqlite3.Connection, rows: Sequence[tuple[Any, ...]]) -> int:
    """Insert rows in one ``BEGIN IMMEDIATE`` transaction; return the last ``seq``.

    Returns after ``COMMIT``; on any error nothing of ``rows`` is stored.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.executemany(INSERT, rows)
        last: int = conn.execute("SELECT last_insert_rowid()").fetchone()[0]
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return last
