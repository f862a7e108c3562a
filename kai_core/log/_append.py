"""Appending: records to frames, and the one-transaction insert.

The only write on the streaming path. It inserts the records and nothing
else (projections catch up later, see :mod:`._projections`), and a burst of
server chunks is one row (see :mod:`._frames`), so a commit costs one insert,
one small WAL write and, with ``synchronous=FULL``, one fsync.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from ._db import write_transaction
from ._frames import Frame, insert_frames

__all__ = ["append_frames"]


def append_frames(conn: sqlite3.Connection, frames: Sequence[Frame]) -> int:
    """Insert frames in one ``BEGIN IMMEDIATE`` transaction; return the last record's ``seq``.

    Returns after ``COMMIT``; on any error nothing of ``frames`` is stored.
    """
    with write_transaction(conn):
        return insert_frames(conn, frames)
