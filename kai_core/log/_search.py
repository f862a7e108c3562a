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

What one search may cost is bounded, whatever the log holds:

* a query has at most :data:`MAX_TERMS` distinct terms: typed words are
  de-duplicated and the rest dropped; a raw query with more is refused;
* the index ranks the hits (bm25, linear in the matches) and only the
  ``limit`` best get a snippet, not every match;
* a snippet is cut from a bounded excerpt of the message, never the whole
  of it: FTS5's ``snippet()`` and ``highlight()`` take time quadratic in the
  matches of a text (a 1 MB message with 200,000 matches took over three
  minutes). A message of up to :data:`EXCERPT_CHARS` characters gets its
  snippet from the index; a longer one's columns are cut into pieces of
  :data:`EXCERPT_CHARS` characters, the first :data:`SCAN_CHARS` of each
  column are indexed in a temporary table, and ``snippet()`` runs on the
  best-ranked piece only (see :func:`_snippet`).
"""

from __future__ import annotations

import re
import sqlite3
from datetime import datetime
from typing import Final

import msgspec

from ..exceptions import KaiLogError

__all__ = [
    "EXCERPT_CHARS",
    "MAX_TERMS",
    "SCAN_CHARS",
    "WEIGHTS",
    "SearchHit",
    "excerpts",
    "query_terms",
    "safe_query",
    "search_messages",
]

WEIGHTS: Final = (4.0, 1.0, 2.0, 1.0)
"""bm25 weights of user_text, answer_text, tool_names, tool_io."""
MAX_TERMS: Final = 32
"""Distinct terms a query may have (more typed words are dropped, a raw query refused)."""
EXCERPT_CHARS: Final = 4096
"""The size of the pieces a long message is cut into for its snippet."""
SCAN_CHARS: Final = 65536
"""How much of each column of a hit is searched for the snippet's piece; a
match only further on is found by a plain (case-insensitive) text search."""
SNIPPET_TOKENS: Final = 12

_COLUMNS: Final = ("user_text", "answer_text", "tool_names", "tool_io")
_TOKEN: Final = re.compile(r'"([^"]*)"|(\S+)')
_WORDY: Final = re.compile(r"\w")
_RAW_WORD: Final = re.compile(r'"((?:[^"]|"")*)"(\*?)|(\w+)(\*?)')
_OPERATORS: Final = frozenset({"AND", "OR", "NOT", "NEAR"})
_EXCERPT_TABLE: Final = "temp.kai_search_excerpt"


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


def query_terms(text: str) -> list[str]:
    """The FTS5 terms of typed words: quoted strings (``"a phrase"``, ``"word"*``),
    de-duplicated (case-insensitively), at most :data:`MAX_TERMS`."""
    terms: list[str] = []
    seen: set[str] = set()
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
        term = '"' + phrase.replace('"', '""') + '"' + ("*" if prefix else "")
        key = " ".join(term.casefold().split())
        if key in seen:
            continue
        seen.add(key)
        terms.append(term)
        if len(terms) == MAX_TERMS:
            break  # every term costs the ranking and the snippet: bounded
    return terms


def safe_query(text: str) -> str:
    """Turn typed words into an FTS5 query that cannot be a syntax error.

    Words are ANDed; ``"a phrase"`` stays a phrase; ``word*`` is a prefix.
    Repeated words count once, and words after the first :data:`MAX_TERMS`
    distinct ones are dropped. Returns ``""`` when nothing searchable is left.
    """
    return " ".join(query_terms(text))


def _raw_terms(query: str) -> list[str]:
    """The words and strings of a raw FTS5 query, as terms (for the snippet).

    :raises KaiLogError: more than :data:`MAX_TERMS` of them.
    """
    terms = []
    for match in _RAW_WORD.finditer(query):
        quoted, star, word, word_star = match.groups()
        if quoted is not None:
            terms.append(f'"{quoted}"{star}')
        elif word not in _OPERATORS and not word.isdigit():
            terms.append(f'"{word}"{word_star}')
    terms = list(dict.fromkeys(terms))
    if len(terms) > MAX_TERMS:
        raise KaiLogError(
            f"the search has {len(terms)} terms; at most {MAX_TERMS} are allowed",
            code="log:bad_query",
        )
    return terms


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
    if raw:
        match = query.strip()
        terms = _raw_terms(match)
    else:
        terms = query_terms(query)
        match = " ".join(terms)
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
    # Ranked in a subquery that reads nothing but the index and the filters'
    # columns: SQLite evaluates every result column of every match before it
    # sorts, so the texts (and snippets) are read for the `limit` best only.
    # Without filters the ranking reads the index alone (no row of messages).
    filtered = " JOIN messages m ON m.seq = search_text_fts.rowid" if len(where) > 1 else ""
    sql = (
        "SELECT m.chat_id, m.id, m.role, m.ts, c.title, best.score, m.seq, "
        "s.user_text, s.answer_text, s.tool_names, s.tool_io FROM ("
        f"SELECT search_text_fts.rowid AS seq, bm25(search_text_fts, {weights}) AS score "
        f"FROM search_text_fts{filtered} "
        f"WHERE {' AND '.join(where)} ORDER BY score, seq LIMIT ?) AS best "
        "JOIN messages m ON m.seq = best.seq JOIN search_text s ON s.seq = m.seq "
        "LEFT JOIN chats c ON c.id = m.chat_id ORDER BY best.score, m.seq"
    )
    try:
        rows = conn.execute(sql, (*params, limit)).fetchall()
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
    # A short message's snippet comes from the index in one query (its cost is
    # bounded by the message's size); a long one's from a piece of it.
    short = [r[6] for r in rows if sum(len(t or "") for t in r[7:11]) <= EXCERPT_CHARS]
    made: dict[int, str] = {}
    if short:
        made = dict(
            conn.execute(
                f"SELECT rowid, snippet(search_text_fts, -1, ?, ?, '…', {SNIPPET_TOKENS}) "
                "FROM search_text_fts WHERE search_text_fts MATCH ? "
                f"AND rowid IN ({', '.join('?' * len(short))})",
                (*marks, match, *short),
            ).fetchall()
        )
    snippets = _Snippets(conn, terms, marks)
    try:
        return [
            SearchHit(
                r[0],
                r[1],
                r[2],
                r[3],
                r[4],
                made[r[6]] or "" if r[6] in made else snippets.of(r[7:11]),
                r[5],
                r[6],
            )
            for r in rows
        ]
    finally:
        snippets.close()


def excerpts(text: str) -> list[tuple[int, str]]:
    """The first :data:`SCAN_CHARS` of ``text`` as ``(offset, piece)``, in pieces
    of at most :data:`EXCERPT_CHARS` cut at white space where there is some."""
    out = []
    start = 0
    stop = min(len(text), SCAN_CHARS)
    while start < stop:
        end = min(start + EXCERPT_CHARS, len(text))
        if end < len(text):
            space = text.rfind(" ", start + EXCERPT_CHARS // 2, end)
            end = space + 1 if space > 0 else end
        out.append((start, text[start:end]))
        start = end
    return out


def _around(text: str, position: int) -> tuple[int, str]:
    """The piece of ``text`` of :data:`EXCERPT_CHARS` centred on ``position``."""
    start = max(0, position - EXCERPT_CHARS // 2)
    return start, text[start : start + EXCERPT_CHARS]


class _Snippets:
    """Snippets of hits, each made by FTS5 from one bounded piece of the hit.

    The pieces go into a temporary FTS5 table with the same tokenizer and
    columns as the index (so stemming and raw column filters work the same);
    it is ranked with the query's terms ORed, and ``snippet()`` runs on the
    best piece alone. The work per hit is bounded by :data:`SCAN_CHARS` per
    column, the snippet's by :data:`EXCERPT_CHARS`.
    """

    def __init__(self, conn: sqlite3.Connection, terms: list[str], marks: tuple[str, str]) -> None:
        self.conn = conn
        self.any_term = " OR ".join(terms)
        self.literals = [t.strip('"*').replace('""', '"').casefold() for t in terms]
        self.marks = marks
        self.ready = False

    def _table(self) -> None:
        if not self.ready:
            # In memory: message text never goes to a temporary file. (Set once:
            # setting it drops the temporary tables.)
            if self.conn.execute("PRAGMA temp_store").fetchone()[0] != 2:
                self.conn.execute("PRAGMA temp_store=MEMORY")
            self.conn.execute(
                f"CREATE VIRTUAL TABLE IF NOT EXISTS {_EXCERPT_TABLE} USING fts5("
                f"{', '.join(_COLUMNS)}, tokenize='porter unicode61 remove_diacritics 2')"
            )
            self.ready = True
        self.conn.execute(f"DELETE FROM {_EXCERPT_TABLE}")

    def close(self) -> None:
        if self.ready:
            self.conn.execute(f"DELETE FROM {_EXCERPT_TABLE}")

    def of(self, texts: tuple[str | None, ...]) -> str:
        """The snippet of one hit from its four column texts."""
        columns = [t or "" for t in texts]
        if not self.any_term:
            return _head(columns)
        self._table()
        pieces: list[tuple[int, int, str]] = []  # (column, offset, piece)
        for column, text in enumerate(columns):
            pieces += [(column, offset, piece) for offset, piece in excerpts(text)]
        found = self._best(pieces)
        if found is None:
            # The match lies past what was scanned: a plain text search finds
            # a place (the index already said the message matches).
            pieces = []
            for column, text in enumerate(columns):
                folded = text.casefold()
                at = min((p for p in map(folded.find, self.literals) if p >= 0), default=-1)
                if at >= 0:
                    pieces.append((column, *_around(text, at)))
            self.conn.execute(f"DELETE FROM {_EXCERPT_TABLE}")
            found = self._best(pieces)
        if found is None:
            return _head(columns)
        rowid, (column, offset, piece) = found
        snippet = self.conn.execute(
            f"SELECT snippet(kai_search_excerpt, -1, ?, ?, '…', {SNIPPET_TOKENS}) "
            f"FROM {_EXCERPT_TABLE} WHERE kai_search_excerpt MATCH ? AND rowid = ?",
            (*self.marks, self.any_term, rowid),
        ).fetchone()[0]
        text = columns[column]
        if offset > 0 and not snippet.startswith("…"):
            snippet = "…" + snippet
        if offset + len(piece) < len(text) and not snippet.endswith("…"):
            snippet += "…"
        return str(snippet)

    def _best(self, pieces: list[tuple[int, int, str]]) -> tuple[int, tuple[int, int, str]] | None:
        if not pieces:
            return None
        rows = []
        for rowid, (column, _offset, piece) in enumerate(pieces, 1):
            values = [""] * len(_COLUMNS)
            values[column] = piece
            rows.append((rowid, *values))
        self.conn.executemany(
            f"INSERT INTO {_EXCERPT_TABLE} (rowid, {', '.join(_COLUMNS)}) VALUES (?, ?, ?, ?, ?)",
            rows,
        )
        weights = ", ".join(str(w) for w in WEIGHTS)
        try:
            best = self.conn.execute(
                f"SELECT rowid FROM {_EXCERPT_TABLE} WHERE kai_search_excerpt MATCH ? "
                f"ORDER BY bm25(kai_search_excerpt, {weights}), rowid LIMIT 1",
                (self.any_term,),
            ).fetchone()
        except sqlite3.OperationalError:
            return None  # a raw query's word the piece query cannot take: no marks
        if best is None:
            return None
        return best[0], pieces[best[0] - 1]


def _head(columns: list[str]) -> str:
    """The start of the first non-empty column (a hit with no place to mark)."""
    for text in columns:
        words = text.split()
        if words:
            head = " ".join(words[: SNIPPET_TOKENS * 2])
            return head + ("…" if len(words) > SNIPPET_TOKENS * 2 else "")
    return ""
