"""Reads of the projections: chat lists, one chat in full, counts."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any, Final

from ._frames import TOP_SEQ
from ._views import LocalChat, LocalChatDetail, LocalMessage, LocalToolCall, LogStats

__all__ = ["chat_detail", "list_chats", "log_stats"]

_CHAT_COLUMNS: Final = (
    "id, title, first_ts, last_ts, message_count, prompt_tokens, completion_tokens, "
    "server, backend, deleted_ts, last_seq"
)


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def list_chats(
    conn: sqlite3.Connection, *, limit: int | None = None, offset: int = 0
) -> list[LocalChat]:
    """The chats, most recently active first."""
    sql = f"SELECT {_CHAT_COLUMNS} FROM chats ORDER BY last_ts DESC, id"
    params: tuple[int, ...] = ()
    if limit is not None:
        sql += " LIMIT ? OFFSET ?"
        params = (limit, offset)
    return [LocalChat(*row) for row in conn.execute(sql, params)]


def chat_detail(conn: sqlite3.Connection, chat_id: str) -> LocalChatDetail | None:
    """A chat's messages (by time), tool calls and votes; None when unknown."""
    row = conn.execute(f"SELECT {_CHAT_COLUMNS} FROM chats WHERE id = ?", (chat_id,)).fetchone()
    if row is None:
        return None
    messages = [
        LocalMessage(
            seq=r[0],
            id=r[1],
            chat_id=r[2],
            role=r[3],
            ts=r[4],
            text=r[5],
            parts=json.loads(r[6]),
            metadata=_loads(r[7]),
            finish_reason=r[8],
            prompt_tokens=r[9] or 0,
            completion_tokens=r[10] or 0,
            imported=bool(r[11]),
        )
        for r in conn.execute(
            "SELECT seq, id, chat_id, role, ts, text, parts, metadata, finish_reason, "
            "prompt_tokens, completion_tokens, imported FROM messages "
            "WHERE chat_id = ? ORDER BY ts, seq",
            (chat_id,),
        )
    ]
    calls = [
        LocalToolCall(
            chat_id=r[0],
            tool_call_id=r[1],
            message_id=r[2],
            tool_name=r[3],
            state=r[4],
            input=_loads(r[5]),
            output=_loads(r[6]),
            error_text=r[7],
            approval_id=r[8],
            approved=None if r[9] is None else bool(r[9]),
            decided_by=r[10],
            reason=r[11],
        )
        for r in conn.execute(
            "SELECT chat_id, tool_call_id, message_id, tool_name, state, input, output, "
            "error_text, approval_id, approved, decided_by, reason FROM tool_calls "
            "WHERE chat_id = ? ORDER BY message_seq, tool_call_id",
            (chat_id,),
        )
    ]
    votes = dict(conn.execute("SELECT message_id, type FROM votes WHERE chat_id = ?", (chat_id,)))
    return LocalChatDetail(LocalChat(*row), messages, calls, votes)


def log_stats(conn: sqlite3.Connection, path: Path) -> LogStats:
    """Counts, time span and size on disk."""
    events, server, first, last, top = conn.execute(
        "SELECT coalesce(sum(n), 0), coalesce(sum(CASE origin WHEN 'server' THEN n END), 0), "
        f"min(ts), max(ts), {TOP_SEQ} FROM frames"
    ).fetchone()
    chats = conn.execute("SELECT count(*) FROM chats").fetchone()[0]
    messages = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
    calls = conn.execute("SELECT count(*) FROM tool_calls").fetchone()[0]
    size = sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
    return LogStats(
        path=str(path),
        size_bytes=size,
        events=events,
        server_events=server,
        client_events=events - server,
        chats=chats,
        messages=messages,
        tool_calls=calls,
        first_ts=first,
        last_ts=last,
        last_seq=top,
    )
