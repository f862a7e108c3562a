"""Full-text search over the messages projection (FTS5, bm25).

Each message has one row in the index with four columns: ``user_text``,
``answer_text``, ``tool_names`` and ``tool_io`` (tool inputs, outputs and
error texts). bm25 weighs them by :data:`WEIGHTS`, so a word the user typed
ranks above the same word in an answer.

By default the query is taken as words, not FTS5 syntax: each word becomes a
quoted FTS5 string, so a UUID, a hyphen, a stray quote or ``AND``/``NEAR``
can never raise a syntax error. ``"two words"`` in double quotes is a
phrase and a trailing ``*`` a prefix. ``raw=True`` passes FTS5 syntax
through; a syntax error then becomes a :class:`~kai_core.exceptions.KaiLogError`.
"""

from __future__ import annotations

import re
import sqlite3
from datetime import datetime
from typing import Final

import msgspec

from ..exceptions import KaiLogError

__all__ = ["WEIGHTS", "SearchHit", "safe_query", "search_messages"]

WEIGHTS: Final = (4.0, 1.0, 2.0, 1.0)
"""bm25 weights of user_text, answer_text, tool_names, tool_io."""

_TOKEN: Final = re.compile(r'"([^"]*)"|(\S+)')
_WORDY: Final = re.compile(r"\w")


class SearchHit(msgspec.Struct, frozen=True):
    """One message that matched.

    :param chat_id: the chat it belongs to.
    :param message_id: the message's id.
    :param role: ``user`` or ``assistant``.
    :param ts: when the message started (seconds since the epoch).
    :param title: the chat's title.
    :param snippet: the best-matching fragment, matched words between the markers.
    :param score: bm25 rank (lower is better).
    :param seq: the message's position in the log.
    """

    chat_id: str
    message_id: str
    role: str
    ts: float
    title: str | None
    snippet: str
    score: float
    seq: int


def safe_query(text: str) -> str:
    """Turn typed words into an FTS5 query that cannot be a syntax error.

    Words are ANDed; ``"a phrase"`` stays a phrase; ``word*`` is a prefix.
    Returns ``""`` when nothing searchable is left.
    """
    terms = []
    for match in _TOKEN.finditer(text):
        phrase, word = match.group(1), match.group(2)
        prefix = False
        if phrase is None:
            word = word.replace('"', " ")
            if word.endswith("*") and len(word) > 1:
                word, prefix = word.rstrip("*"), True
            phrase = word
        if not _WORDY.search(phrase):
            continue  # only punctuation: the tokenizer would make nothing of it
        terms.append('"' + phrase.replace('"', '""') + '"' + ("*" if prefix else ""))
    return " ".join(terms)


def _epoch(value: float | datetime | None) -> float | None:
    if value is None or isinstance(value, float | int):
        return value
    return value.timestamp()


def search_messages(
    conn: sqlite3.Connection,
    query: str,
    *,
    chat_id: str | None = None,
    role: str | None = None,
    tool: str | None = None,
    since: float | datetime | None = None,
    until: float | datetime | None = None,
    limit: int = 20,
    raw: bool = False,
    marks: tuple[str, str] = ("[", "]"),
    path: str = "",
) -> list[SearchHit]:
    """Run a search on an open connection (see :meth:`EventLog.search`)."""
    match = query.strip() if raw else safe_query(query)
    if not match or limit <= 0:
        return []
    where = ["search_text_fts MATCH ?"]
    params: list[object] = [match]
    if chat_id is not None:
        where.append("m.chat_id = ?")
        params.append(chat_id)
    if role is not None:
        where.append("m.role = ?")
        params.append(role)
    if tool is not None:
        where.append(
            "EXISTS (SELECT 1 FROM tool_calls t WHERE t.message_seq = m.seq AND t.tool_name = ?)"
        )
        params.append(tool)
    start, end = _epoch(since), _epoch(until)
    if start is not None:
        where.append("m.ts >= ?")
        params.append(start)
    if end is not None:
        where.append("m.ts < ?")
        params.append(end)
    weights = ", ".join(str(w) for w in WEIGHTS)
    sql = (
        "SELECT m.chat_id, m.id, m.role, m.ts, c.title, "
        "snippet(search_text_fts, -1, ?, ?, '…', 12), "
        f"bm25(search_text_fts, {weights}) AS score, m.seq "
        "FROM search_text_fts JOIN messages m ON m.seq = search_text_fts.rowid "
        "LEFT JOIN chats c ON c.id = m.chat_id "
        f"WHERE {' AND '.join(where)} ORDER BY score, m.seq LIMIT ?"
    )
    try:
        rows = conn.execute(sql, (marks[0], marks[1], *params, limit)).fetchall()
    except sqlite3.OperationalError as exc:
        text = str(exc)
        if raw:  # any failure of a raw query is the query's fault
            raise KaiLogError(
                f"invalid search syntax in {query!r}: {text}; search without --raw "
                "to look for the words as typed",
                code="log:bad_query",
                cause=text,
            ) from exc
        raise
    return [SearchHit(r[0], r[1], r[2], r[3], r[4], r[5] or "", r[6], r[7]) for r in rows]
