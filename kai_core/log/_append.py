"""Appending: records to frames, and the one-transaction insert.

The only write on the streaming path. It inserts the records and nothing
else (projections catch up later, see :mod:`._projections`), and a burst of
server chunks is one row (see :mod:`._frames`), so a commit costs one insert,
one small WAL write and, with ``synchronous=FULL``, one fsync.

One frame (the usual burst) is inserted by a single statement outside
``BEGIN``: SQLite runs a statement outside a transaction as its own
transaction, taking the write lock when the statement starts (an ``INSERT``
opens a write transaction before it reads anything, as ``BEGIN IMMEDIATE``
does, waiting out the busy timeout like it) and committing when it ends.
That is the same transaction in one call instead of three: the client
commits from a worker thread, and every call into SQLite gives the GIL back
and has to win it again from the thread that decodes the stream.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from ._db import write_transaction
from ._frames import INSERT_FRAME, Frame, insert_frames

__all__ = ["append_frames"]


def append_frames(conn: sqlite3.Connection, frames: Sequence[Frame]) -> int:
    """Insert frames in one transaction; return the last record's ``seq``.

    Returns after the commit; on any error nothing of ``frames`` is stored.
    ``conn`` must be in autocommit mode (``isolation_level=None``) and not in a
    transaction.
    """
    if len(frames) == 1 and not conn.in_transaction:
        frame = frames[0]
        last = conn.execute(INSERT_FRAME, frame).lastrowid
        return 0 if last is None else last + frame[0] - 1
    with write_transaction(conn):
        return insert_frames(conn, frames)
