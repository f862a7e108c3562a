"""Projections: chats, messages, tool calls, votes and the search text, from events.

Projections are brought up to date lazily: ``append`` only inserts events
(that keeps the write on the streaming path tiny), and every read of a
projection first calls :meth:`Projector.catch_up`, which folds the events
after the ``watermark`` (the last ``seq`` projected, kept in the file) and
writes the rows they change, in short ``BEGIN IMMEDIATE`` batches.

Rows are always written whole, from a chat's :class:`~._fold.ChatFold`, and
a fold depends only on the chat's events, so catching up in any number of
steps and :meth:`Projector.rebuild` give identical rows (a test checks it).
"""

from __future__ import annotations

import sqlite3
import warnings
from collections import OrderedDict
from typing import Any, Final

import msgspec

from ._db import write_transaction
from ._fold import ChatFold, MessageState, message_text, tool_rows
from ._frames import FRAME_COLUMNS, TOP_SEQ, stored_events, top_seq
from ._records import StoredEvent
from ._validate import SkippedRecordWarning

__all__ = [
    "PROJECTION_TABLES",
    "Projector",
    "count_forget",
    "fold_frame",
    "read_events",
    "write_fold",
]

PROJECTION_TABLES: Final = ("chats", "messages", "tool_calls", "votes", "search_text")
_BATCH: Final = 2000  # records per catch-up transaction: keeps appends waiting briefly
_CACHE: Final = 256  # chat folds kept between catch-ups
_encode: Final = msgspec.json.Encoder()
# Frames holding a position after ?1 (the first may straddle it: readers filter).
_AFTER: Final = (
    "seq >= coalesce((SELECT max(seq) FROM frames WHERE seq <= ?1), ?1 + 1) AND seq + n > ?1 + 1"
)
_CHAT_AFTER: Final = (
    "chat_id = ?2 AND seq >= coalesce((SELECT max(seq) FROM frames "
    "WHERE chat_id = ?2 AND seq <= ?1), ?1 + 1) AND seq + n > ?1 + 1"
)


def read_events(
    conn: sqlite3.Connection, chat_id: str | None = None, *, after: int = 0
) -> list[StoredEvent]:
    """The records of one chat (or all) after position ``after``, in ``seq`` order."""
    if chat_id is None:
        sql = f"SELECT {FRAME_COLUMNS} FROM frames WHERE {_AFTER} ORDER BY seq"
        params: tuple[Any, ...] = (after,)
    else:
        sql = f"SELECT {FRAME_COLUMNS} FROM frames WHERE {_CHAT_AFTER} ORDER BY seq"
        params = (after, chat_id)
    return stored_events(conn.execute(sql, params), after=after)


def _frames_after(conn: sqlite3.Connection, watermark: int) -> list[tuple[Any, ...]]:
    """The next frames to project: about :data:`_BATCH` records after the watermark."""
    frames = []
    records = 0
    for frame in conn.execute(
        f"SELECT {FRAME_COLUMNS} FROM frames WHERE {_AFTER} ORDER BY seq", (watermark,)
    ):
        frames.append(frame)
        records += frame[1]
        if records >= _BATCH:
            break
    return frames


def _watermark(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM projection_state WHERE key = 'watermark'").fetchone()
    return int(row[0]) if row else 0


def _forgets(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM projection_state WHERE key = 'forgets'").fetchone()
    return int(row[0]) if row else 0


def count_forget(conn: sqlite3.Connection) -> None:
    """Note that a chat was forgotten: every process's cached folds are stale now."""
    conn.execute(
        "INSERT INTO projection_state (key, value) VALUES ('forgets', 1) "
        "ON CONFLICT (key) DO UPDATE SET value = value + 1"
    )


def _set_watermark(conn: sqlite3.Connection, seq: int) -> None:
    conn.execute(
        "INSERT INTO projection_state (key, value) VALUES ('watermark', ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (seq,),
    )


def _json(value: Any) -> str | None:
    return None if value is None else _encode.encode(value).decode()


def _search_row(state: MessageState, text: str) -> tuple[Any, ...]:
    names: list[str] = []
    io: list[str] = []
    for part in tool_rows(state.parts):
        name = part.get("toolName")
        if not isinstance(name, str):
            name = str(part.get("type", ""))[5:]
        if name and name not in names:
            names.append(name)
        for key in ("input", "output"):
            if part.get(key) is not None:
                value = part[key]
                io.append(value if isinstance(value, str) else _encode.encode(value).decode())
        if isinstance(part.get("errorText"), str):
            io.append(part["errorText"])
    user = text if state.role == "user" else ""
    answer = "" if state.role == "user" else text
    return (state.seq, user, answer, " ".join(names), "\n".join(io))


class Projector:
    """Keeps the projections of one log file in step with its events.

    Holds the folds of recently touched chats, so catching up after a small
    append costs only the new events. Use it from one thread at a time.
    """

    def __init__(self) -> None:
        self._folds: OrderedDict[str, ChatFold] = OrderedDict()
        self._known: tuple[int, int] | None = None  # (watermark, forgets) last seen

    def forget_chat(self, chat_id: str) -> None:
        """Drop a chat's cached fold (after its events were deleted)."""
        self._folds.pop(chat_id, None)

    def catch_up(self, conn: sqlite3.Connection) -> int:
        """Project every event after the watermark; return how many were folded."""
        total = 0
        if self._up_to_date(conn):
            return 0  # the common case: no write lock needed
        while True:
            try:
                with write_transaction(conn):
                    watermark = _watermark(conn)
                    forgets = _forgets(conn)
                    if (watermark, forgets) != self._known:
                        # Another connection projected (or forgot a chat) since we
                        # last looked: our cached folds may not match the file.
                        self._folds.clear()
                    frames = _frames_after(conn, watermark)
                    if not frames:
                        self._known = (watermark, forgets)
                        return total
                    by_chat: dict[str, list[tuple[Any, ...]]] = {}
                    for frame in frames:
                        by_chat.setdefault(frame[2], []).append(frame)
                    for chat_id, chat_frames in by_chat.items():
                        fold = self._fold(conn, chat_id, watermark)
                        for seq, n, _, turn, ts, origin, types, body, sizes in chat_frames:
                            fold_frame(
                                fold, seq, n, turn, ts, origin, types, body, sizes, after=watermark
                            )
                        write_fold(conn, fold)
                    last = frames[-1]
                    last_seq: int = last[0] + last[1] - 1
                    _set_watermark(conn, last_seq)
            except BaseException:
                # Rolled back: the cached folds are ahead of the file.
                self._folds.clear()
                self._known = None
                raise
            self._known = (last_seq, forgets)
            # Every record of these frames was folded, but for those of the first
            # at or before the watermark.
            total += sum(f[1] for f in frames) - max(0, watermark + 1 - frames[0][0])

    def _up_to_date(self, conn: sqlite3.Connection) -> bool:
        top, watermark = conn.execute(
            f"SELECT {TOP_SEQ}, "
            "(SELECT coalesce(max(value), 0) FROM projection_state WHERE key = 'watermark')"
        ).fetchone()
        return bool(top <= watermark)

    def _fold(self, conn: sqlite3.Connection, chat_id: str, watermark: int) -> ChatFold:
        fold = self._folds.pop(chat_id, None)
        if fold is None:
            # Rebuild the chat's state from its projected events; its rows are
            # already in the file, so nothing is dirty afterwards.
            fold = ChatFold(chat_id)
            for seq, n, turn, ts, origin, types, body, sizes in conn.execute(
                "SELECT seq, n, turn, ts, origin, types, body, sizes FROM frames "
                "WHERE chat_id = ? AND seq <= ? ORDER BY seq",
                (chat_id, watermark),
            ):
                # Folded (and warned about) before: quietly.
                fold_frame(
                    fold, seq, n, turn, ts, origin, types, body, sizes, upto=watermark, warn=False
                )
            fold.dirty_messages.clear()
            fold.dirty_votes.clear()
            fold.dirty = False
        self._folds[chat_id] = fold
        while len(self._folds) > _CACHE:
            self._folds.popitem(last=False)
        return fold

    def rebuild(self, conn: sqlite3.Connection) -> int:
        """Drop every projection row and fold all events again, in one transaction.

        :returns: the number of events folded.
        """
        self._folds.clear()
        self._known = None
        with write_transaction(conn):
            # Without the row triggers the index is rebuilt in one pass at the end.
            triggers = conn.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                "AND tbl_name = 'search_text'"
            ).fetchall()
            for name, _ in triggers:
                conn.execute(f'DROP TRIGGER "{name}"')
            # Likewise the lookup indexes: built once at the end (a sort) rather
            # than updated row by row in chat order (unique ones stay: they decide
            # what INSERT OR REPLACE replaces).
            indexes = conn.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
                f"AND sql NOT LIKE 'CREATE UNIQUE %' AND tbl_name IN {PROJECTION_TABLES!r}"
            ).fetchall()
            for name, _ in indexes:
                conn.execute(f'DROP INDEX "{name}"')
            for table in PROJECTION_TABLES:
                conn.execute(f"DELETE FROM {table}")
            conn.execute("INSERT INTO search_text_fts (search_text_fts) VALUES ('delete-all')")
            last = top_seq(conn)
            count = 0
            fold: ChatFold | None = None
            cursor = conn.execute(f"SELECT {FRAME_COLUMNS} FROM frames ORDER BY chat_id, seq")
            for seq, n, chat_id, turn, ts, origin, types, body, sizes in cursor:
                if fold is None or fold.chat_id != chat_id:
                    if fold is not None:
                        write_fold(conn, fold)
                    fold = ChatFold(chat_id)
                fold_frame(fold, seq, n, turn, ts, origin, types, body, sizes)
                count += n
            if fold is not None:
                write_fold(conn, fold)
            conn.execute("INSERT INTO search_text_fts (search_text_fts) VALUES ('rebuild')")
            for _, sql in triggers:
                conn.execute(sql)
            for _, sql in indexes:
                conn.execute(sql)
            _set_watermark(conn, last)
            forgets = _forgets(conn)
        self._known = (last, forgets)
        return count


def fold_frame(
    fold: ChatFold,
    seq: int,
    n: int,
    turn: str,
    ts: float,
    origin: str,
    types: str | bytes,
    body: bytes,
    sizes: bytes | None,
    *,
    after: int = 0,
    upto: int | None = None,
    warn: bool = True,
) -> None:
    """Fold one stored frame into ``fold``; a frame that cannot be folded is
    left out with a :class:`SkippedRecordWarning` naming its chat, so one bad
    record (an old import, a damaged frame) never stops the projections of
    the rest of the log."""
    try:
        fold.feed_frame(seq, n, turn, ts, origin, types, body, sizes, after=after, upto=upto)
    except Exception as exc:  # any record may be in a log; see the docstring
        if warn:
            warnings.warn(
                f"chat {fold.chat_id!r}: the record at position {seq} cannot be read "
                f"({type(exc).__name__}: {exc}); history, search and stats leave it out",
                SkippedRecordWarning,
                stacklevel=2,
            )


def write_fold(conn: sqlite3.Connection, fold: ChatFold) -> None:
    """Write the rows the fold changed since the last write."""
    if not fold.dirty:
        return
    chat_id = fold.chat_id
    message_rows = []
    search_rows = []
    call_rows: list[dict[str, Any]] = []
    for message_id in fold.dirty_messages:
        state = fold.messages.get(message_id)
        if state is None:
            continue
        state.settle()
        text = message_text(state.parts)
        message_rows.append(
            (
                state.seq,
                state.id,
                chat_id,
                state.turn,
                state.role,
                state.ts,
                text,
                _encode.encode(state.parts).decode(),
                _json(state.metadata),
                state.finish_reason,
                state.prompt_tokens,
                state.completion_tokens,
                int(state.imported),
            )
        )
        search_rows.append(_search_row(state, text))
        call_rows.extend(fold.tool_call_rows(state))
    if message_rows:
        conn.executemany(
            "INSERT OR REPLACE INTO messages (seq, id, chat_id, turn, role, ts, text, parts, "
            "metadata, finish_reason, prompt_tokens, completion_tokens, imported) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            message_rows,
        )
        # An upsert (not REPLACE) so the FTS update trigger fires.
        conn.executemany(
            "INSERT INTO search_text (seq, user_text, answer_text, tool_names, tool_io) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (seq) DO UPDATE SET "
            "user_text = excluded.user_text, answer_text = excluded.answer_text, "
            "tool_names = excluded.tool_names, tool_io = excluded.tool_io",
            search_rows,
        )
    if call_rows:
        conn.executemany(
            "INSERT OR REPLACE INTO tool_calls (chat_id, tool_call_id, message_id, message_seq, "
            "tool_name, state, input, output, error_text, approval_id, approved, decided_by, "
            "reason) VALUES (:chat_id, :tool_call_id, :message_id, :message_seq, :tool_name, "
            ":state, :input, :output, :error_text, :approval_id, :approved, :decided_by, :reason)",
            call_rows,
        )
    if fold.dirty_votes:
        conn.executemany(
            "INSERT OR REPLACE INTO votes (chat_id, message_id, type, ts) VALUES (?, ?, ?, ?)",
            [(chat_id, mid, *fold.votes[mid]) for mid in fold.dirty_votes],
        )
    conn.execute(
        "INSERT OR REPLACE INTO chats (id, title, first_ts, last_ts, message_count, "
        "prompt_tokens, completion_tokens, server, backend, deleted_ts, last_seq) "
        "SELECT ?, ?, ?, ?, count(*), coalesce(sum(prompt_tokens), 0), "
        "coalesce(sum(completion_tokens), 0), ?, ?, ?, ? FROM messages WHERE chat_id = ?",
        (
            chat_id,
            fold.chat_title,
            fold.first_ts,
            fold.last_ts,
            fold.server,
            fold.backend,
            fold.deleted_ts,
            fold.last_seq,
            chat_id,
        ),
    )
    fold.dirty_messages.clear()
    fold.dirty_votes.clear()
    fold.dirty = False
