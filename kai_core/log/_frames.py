"""Frames: the rows that hold the records, one row per run of records of an append.

A frame holds consecutive records of one append that share chat, turn,
origin and time, so a burst of server chunks (everything one network read
brought) costs one row and one insert, not one per chunk. Records keep
their own positions: the frame at ``seq`` s with ``n`` records holds
positions s .. s+n-1, so a position means what it meant when every record
was a row, and readers filter frames that straddle a bound record by record.

The columns of ``frames`` (migration ``0003_frames``):

==========  ================================================================
``seq``     the position of the frame's first record (integer primary key)
``n``       how many records the frame holds (at least one)
``chat_id`` ``turn`` ``ts`` ``origin``: shared by all its records
``types``   the records' types, a JSON array of strings
``body``    the records' bodies, joined by a newline (``b"\\n"``)
``sizes``   NULL when splitting ``body`` at newlines gives the bodies back
            (always, unless a body holds a newline itself, which compact
            JSON never does); otherwise each body's length in bytes,
            unsigned 32-bit little-endian
==========  ================================================================

Either way every body comes back byte for byte, whatever it holds. A frame
of JSON bodies is JSON lines, so a whole frame of chunks decodes in one
call, and as the separator is ASCII no UTF-8 sequence can span two bodies:
checking the joined bytes checks every body.

Positions are never handed out twice, also after ``forget`` deleted the
newest frames: ``log_state``'s ``seq_floor`` keeps the last position handed
out before such a delete, and appends continue after the greater of it and
the last frame's end.
"""

from __future__ import annotations

import sqlite3
import sys
from array import array
from collections.abc import Iterable, Iterator, Sequence
from itertools import groupby
from operator import attrgetter
from typing import Any, Final, TypeAlias

import msgspec

from ..exceptions import KaiLogError
from ._records import LogRecord, StoredEvent
from ._validate import MAX_SEQ

__all__ = [
    "FRAME_COLUMNS",
    "INSERT_FRAME",
    "INSERT_FRAME_AT",
    "TOP_SEQ",
    "Frame",
    "allocated_seq",
    "build_frames",
    "frame_bodies",
    "frame_types",
    "frames_from_rows",
    "insert_frames",
    "make_frame",
    "no_room",
    "raise_floor",
    "stored_events",
    "top_seq",
]

FRAME_COLUMNS: Final = "seq, n, chat_id, turn, ts, origin, types, body, sizes"
"""The columns readers select, in the order :func:`stored_events` expects."""

Frame: TypeAlias = tuple[int, str, str, float, str, str, bytes, bytes | None]
"""A frame to insert: ``(n, chat_id, turn, ts, origin, types, body, sizes)``."""

_SEP: Final = b"\n"
_MAX_FRAME: Final = 1 << 20  # bytes of bodies grouped into one frame when importing
_U32: Final = next(code for code in "IL" if array(code).itemsize == 4)
_SWAP: Final = sys.byteorder == "big"  # sizes are stored little-endian
_FLOOR: Final = "coalesce((SELECT value FROM log_state WHERE key = 'seq_floor'), 0)"
TOP_SEQ: Final = "coalesce((SELECT seq + n - 1 FROM frames ORDER BY seq DESC LIMIT 1), 0)"
"""SQL: the position of the last record stored (0 for none)."""
_ALLOCATED: Final = f"max({TOP_SEQ}, {_FLOOR})"
INSERT_FRAME: Final = (
    "INSERT INTO frames (seq, n, chat_id, turn, ts, origin, types, body, sizes) "
    f"VALUES ({_ALLOCATED} + 1, ?, ?, ?, ?, ?, ?, ?, ?)"
)
"""Insert a :data:`Frame` at the next free position (inside a write transaction)."""
INSERT_FRAME_AT: Final = (
    "INSERT INTO frames (seq, n, chat_id, turn, ts, origin, types, body, sizes) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
"""Insert ``(seq, *frame)`` at an explicit position."""

_encode: Final = msgspec.json.Encoder()
_types_decoder: Final = msgspec.json.Decoder(list[str])
_key: Final = attrgetter("chat_id", "turn", "origin", "ts")
_body: Final = attrgetter("body")
_type: Final = attrgetter("type")


def _bad(message: str) -> KaiLogError:
    return KaiLogError(message, code="log:bad_record")


def _as_bytes(body: Any, kind: str) -> bytes:
    if isinstance(body, str):
        return body.encode("utf-8", "surrogatepass")
    try:
        return bytes(memoryview(body))  # not bytes(body): bytes(5) is five zero bytes
    except TypeError:
        raise _bad(f"a {kind!r} record's body must be bytes, not {type(body).__name__}") from None


def _sizes(bodies: Sequence[bytes]) -> bytes:
    sizes = array(_U32, map(len, bodies))
    if _SWAP:
        sizes.byteswap()
    return sizes.tobytes()


def _check_utf8(joined: bytes, bodies: Sequence[bytes], types: Sequence[str]) -> None:
    try:
        joined.decode("utf-8")
        return
    except UnicodeDecodeError:
        pass
    for body, kind in zip(bodies, types, strict=True):
        try:
            bytes(body).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _bad(f"a {kind!r} record's body is not UTF-8 JSON") from exc
    # The separators are ASCII, so the joined bytes fail only where a body does.
    raise AssertionError("unreachable")


def _types_json(types: list[str]) -> str:
    try:
        "".join(types)  # cheapest check that every type is a str
        return _encode.encode(types).decode()
    except (TypeError, UnicodeEncodeError, msgspec.EncodeError):
        raise _bad(f"a log record's type must be text, not one of {types!r}") from None


def make_frame(
    chat_id: str,
    turn: str,
    ts: float,
    origin: str,
    types: list[str],
    bodies: list[Any],
    *,
    utf8_checked: bool = False,
    newline_free: bool = False,
) -> Frame:
    """One frame from its records' parts, checked.

    :param utf8_checked: the caller has already checked that every body is
        UTF-8 (the client's stream checks each read it decodes): the bodies
        are not decoded again. Everything else is checked as usual.
    :param newline_free: the caller knows that no body has a newline (the
        separator): the joined frame is not searched for one, and the
        frame has no ``sizes``.
    :raises KaiLogError: an origin other than server/client, or a body that is not UTF-8.
    """
    if origin != "server" and origin != "client":
        raise _bad(f"a log record's origin must be 'server' or 'client', not {origin!r}")
    try:
        joined = _SEP.join(bodies)
    except TypeError:
        bodies = [_as_bytes(b, k) for b, k in zip(bodies, types, strict=True)]
        joined = _SEP.join(bodies)
    if not utf8_checked and not joined.isascii():
        _check_utf8(joined, bodies, types)
    n = len(bodies)
    sizes = None
    if n > 1 and not newline_free and joined.count(_SEP) != n - 1:
        sizes = _sizes([b if type(b) is bytes else bytes(b) for b in bodies])
    return (n, chat_id, turn, ts, origin, _types_json(types), joined, sizes)


def build_frames(records: Sequence[LogRecord], now: float) -> list[Frame]:
    """Group an append's records into frames: each run of consecutive records
    with the same chat, turn, origin and ``ts`` is one (``ts`` None is ``now``).

    :raises KaiLogError: a bad origin or a body that is not UTF-8; nothing is built.
    """
    first = records[0]
    chat_id, turn, origin, ts = first.chat_id, first.turn, first.origin, first.ts
    runs: Iterable[Sequence[LogRecord]]
    for r in records:  # the streaming case: one run, checked without building keys
        if r.chat_id != chat_id or r.turn != turn or r.origin != origin or r.ts != ts:
            runs = [list(run) for _, run in groupby(records, _key)]
            break
    else:
        runs = (records,)
    return [
        make_frame(
            run[0].chat_id,
            run[0].turn,
            now if run[0].ts is None else run[0].ts,
            run[0].origin,
            list(map(_type, run)),
            list(map(_body, run)),
        )
        for run in runs
    ]


def insert_frames(conn: sqlite3.Connection, frames: Sequence[Frame]) -> int:
    """Insert frames at the next free positions (inside a write transaction);
    return the position of the last record."""
    cursor = None
    for frame in frames:
        cursor = conn.execute(INSERT_FRAME, frame)
    if cursor is None or cursor.lastrowid is None:
        return 0
    return cursor.lastrowid + frames[-1][0] - 1


def frames_from_rows(rows: Iterable[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
    """Group ``(seq, chat_id, turn, ts, origin, type, body)`` records, in position
    order, into ``(seq, *frame)`` rows for :data:`INSERT_FRAME_AT`: consecutive
    positions sharing chat, turn, ts and origin become one frame.

    :raises KaiLogError: a bad origin or a body that is not UTF-8.
    """
    run: list[tuple[Any, ...]] = []
    size = 0
    for row in rows:
        if run:
            last = run[-1]
            if (
                row[0] == last[0] + 1
                and row[1] == last[1]
                and row[2] == last[2]
                and row[3] == last[3]
                and row[4] == last[4]
                and size < _MAX_FRAME
            ):
                run.append(row)
                size += len(row[6])
                continue
            yield _frame_at(run)
        run = [row]
        size = len(row[6])
    if run:
        yield _frame_at(run)


def _frame_at(run: list[tuple[Any, ...]]) -> tuple[Any, ...]:
    seq, chat_id, turn, ts, origin = run[0][:5]
    frame = make_frame(chat_id, turn, ts, origin, [r[5] for r in run], [r[6] for r in run])
    return (seq, *frame)


def frame_bodies(n: int, body: bytes, sizes: bytes | None) -> list[bytes]:
    """A frame's bodies, byte for byte.

    :raises KaiLogError: the frame does not hold ``n`` bodies (a damaged file).
    """
    if sizes is None:
        bodies = body.split(_SEP) if n > 1 else [body]
    else:
        lengths = array(_U32)
        lengths.frombytes(sizes)
        if _SWAP:
            lengths.byteswap()
        bodies = []
        start = 0
        for size in lengths:
            end = start + size
            bodies.append(body[start:end])
            start = end + 1
        if start != len(body) + 1:
            bodies = []  # the lengths do not add up: reported below
    if len(bodies) != n:
        raise KaiLogError(
            f"a stored frame does not hold the {n} records it claims; the log is damaged "
            "(restore a backup, or export what still reads)",
            code="log:corrupt",
        )
    return bodies


def frame_types(n: int, types: str | bytes) -> list[str]:
    """A frame's record types.

    :raises KaiLogError: they are not ``n`` strings (a damaged file).
    """
    try:
        out = _types_decoder.decode(types)
    except msgspec.MsgspecError:
        out = []
    if len(out) != n:
        raise KaiLogError(
            f"a stored frame's record types do not match its {n} records; the log is damaged",
            code="log:corrupt",
        )
    return out


def stored_events(
    rows: Iterable[tuple[Any, ...]], *, after: int = 0, upto: int | None = None
) -> list[StoredEvent]:
    """Expand :data:`FRAME_COLUMNS` rows into their records with ``after < seq <= upto``."""
    out: list[StoredEvent] = []
    add = out.append
    for seq, n, chat_id, turn, ts, origin, types, body, sizes in rows:
        kinds = frame_types(n, types)
        bodies = frame_bodies(n, body, sizes)
        position = seq
        for kind, data in zip(kinds, bodies, strict=True):
            if position > after and (upto is None or position <= upto):
                add(StoredEvent(position, chat_id, turn, ts, origin, kind, data))
            position += 1
    return out


def top_seq(conn: sqlite3.Connection) -> int:
    """The position of the last record stored (0 for an empty log)."""
    top: int = conn.execute(f"SELECT {TOP_SEQ}").fetchone()[0]
    return top


def allocated_seq(conn: sqlite3.Connection) -> int:
    """The last position ever handed out (stored or forgotten)."""
    top: int = conn.execute(f"SELECT {_ALLOCATED}").fetchone()[0]
    return top


def no_room(conn: sqlite3.Connection, path: object, exc: Exception) -> KaiLogError | None:
    """The error for a write that failed with ``exc`` when a frame holds a
    position past :data:`~._validate.MAX_SEQ` (imported by an older kai, the
    only way the positions run out): it names the chat and the repair. None
    when no frame does (``exc`` has another cause)."""
    found = conn.execute(
        "SELECT chat_id, seq FROM frames WHERE seq > ? ORDER BY seq DESC LIMIT 1", (MAX_SEQ,)
    ).fetchone()
    if found is None:
        return None
    return KaiLogError(
        f"event log {path}: no position is left for a new record: chat {found[0]!r} "
        f"holds one at {found[1]} (imported by an older kai); forget that chat "
        "(kai log forget) to repair the log",
        code="log:no_room",
        cause=str(exc),
    )


def raise_floor(conn: sqlite3.Connection) -> None:
    """Remember every position handed out so far (before deleting frames).

    Never past :data:`~._validate.MAX_SEQ`: a position beyond it was not handed
    out by the log but imported by an older kai, and remembering it would
    leave no room for the next append. Forgetting its chat repairs such a log.
    """
    conn.execute(
        "INSERT INTO log_state (key, value) VALUES ('seq_floor', "
        f"min({_ALLOCATED}, {MAX_SEQ})) ON CONFLICT (key) DO UPDATE SET "
        f"value = min(max(value, excluded.value), {MAX_SEQ})"
    )
