"""EventLog: the append-only event log of every chat, on one SQLite file.

The API is synchronous. ``append`` is one small transaction per burst of
network reads, made on the trio thread or, by the client's stream, in a worker
thread (``append_chunks``) while the next burst is read; everything that reads more than a
few rows (search, replay, export, rebuild, forget) should run in a worker
thread from async code: ``await trio.to_thread.run_sync(log.search, "words")``.
:meth:`EventLog.replay` already does. One EventLog may be used from several
threads at once: appends share one connection under a lock, reads take a
connection of their own.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
import warnings
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from ..events import Event
from ..exceptions import KaiLogError
from ._append import append_frames
from ._db import Synchronous, default_log_path, log_errors, open_connection
from ._export import (
    FileArg,
    decode_lines,
    encode_line,
    open_for_reading,
    open_for_writing,
    render_markdown,
)
from ._frames import FRAME_COLUMNS, Frame, build_frames, make_frame, no_room, stored_events
from ._html import render_html
from ._maintenance import compact_and_checkpoint, forget_chat, import_detail, import_events
from ._output import check_output, private_path
from ._projections import Projector, read_events
from ._queries import chat_detail, list_chats, log_stats
from ._records import LogRecord, StoredEvent
from ._replay import (
    REPLAY_COLUMNS,
    Replay,
    ReplayStep,
    replay_rows,
    replay_steps,
    replay_timed,
)
from ._search import SearchHit, search_messages
from ._validate import SkippedRecordWarning
from ._views import LocalChat, LocalChatDetail, LocalToolCall, LogStats

__all__ = ["EventLog"]

WRITER_CACHE_KIB = 2048
"""The page cache of the connection that appends (readers keep 32 MiB each)."""


class EventLog:
    """The event log on one SQLite file; see ``docs/event-log.md``.

    :param path: the file; ``None`` means :func:`default_log_path`
        (``$KAI_DB`` or ``kai.db`` in the user data directory). It is created
        owner-only (0600) when missing.
    :param synchronous: ``"full"`` (default): a commit is on disk before
        ``append`` returns, surviving a killed process and a power cut;
        ``"normal"``: it is in the operating system, surviving a killed process
        but maybe not a power cut (faster on slow disks).
    :raises KaiLogError: the file is not a kai log, is corrupt, or read-only.
    """

    def __init__(
        self, path: str | os.PathLike[str] | None = None, *, synchronous: Synchronous = "full"
    ) -> None:
        self.path = Path(path).expanduser() if path is not None else default_log_path()
        self._synchronous: Synchronous = synchronous
        self._writer = open_connection(self.path, synchronous=synchronous)
        # The writer only appends: it reads the last frame's page and writes the new
        # ones. The big page cache is for readers; here it would only keep what was
        # written, growing the process by up to its 32 MiB as a long stream is logged.
        self._writer.execute(f"PRAGMA cache_size=-{WRITER_CACHE_KIB}")
        self._write_lock = threading.Lock()
        self._maint: sqlite3.Connection | None = None
        self._maint_lock = threading.RLock()
        self._projector = Projector()
        self._readers: list[sqlite3.Connection] = []
        self._all: list[sqlite3.Connection] = [self._writer]
        self._pool_lock = threading.Lock()
        self._closed = False

    def __repr__(self) -> str:
        return f"EventLog({str(self.path)!r})"

    # -- lifecycle ---------------------------------------------------------

    def close(self) -> None:
        """Close every connection. Idempotent."""
        with self._pool_lock:
            if self._closed:
                return
            self._closed = True
            conns, self._all, self._readers = self._all, [], []
        with self._write_lock, self._maint_lock:
            for conn in conns:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise KaiLogError(f"event log {self.path} is closed", code="log:closed")

    def _new_connection(self) -> sqlite3.Connection:
        conn = open_connection(self.path, synchronous=self._synchronous, migrate=False)
        with self._pool_lock:
            if self._closed:
                conn.close()
                self._check_open()
            self._all.append(conn)
        return conn

    def _reader(self, action: str) -> _Reading:
        """``with self._reader(action) as conn:`` a pooled read connection."""
        self._check_open()
        with self._pool_lock:
            conn = self._readers.pop() if self._readers else None
        if conn is None:
            conn = self._new_connection()
        return _Reading(self, conn, action)

    def _give_back(self, conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            conn.rollback()
        with self._pool_lock:
            if not self._closed:
                self._readers.append(conn)

    @contextlib.contextmanager
    def _maintenance(self, action: str) -> Iterator[sqlite3.Connection]:
        self._check_open()
        with self._maint_lock:
            if self._maint is None:
                self._maint = self._new_connection()
            with log_errors(self.path, action):
                yield self._maint

    # -- writing -------------------------------------------------------------

    def append(self, records: Sequence[LogRecord]) -> int:
        """Append records in one transaction; return after it is committed.

        Each record gets its own ``seq``, in order. Consecutive records of one
        chat, turn, origin and time (a burst of server chunks) are stored as one
        row, so a burst costs about what one record does.

        :returns: the ``seq`` of the last record (0 when ``records`` is empty).
        :raises KaiLogError: when the write fails; nothing of ``records`` is then stored.
        """
        if not isinstance(records, list | tuple):
            records = list(records)  # any iterable would do; we index it
        if not records:
            return 0
        return self._insert(build_frames(records, time.time()))

    def append_chunks(
        self,
        chat_id: str,
        turn: str,
        types: list[str],
        bodies: list[bytes],
        then: Sequence[LogRecord] = (),
        *,
        utf8_checked: bool = False,
        newline_free: bool = False,
    ) -> int:
        """Append a burst of server chunks, then ``then``, in one transaction.

        The same as ``append([LogRecord(chat_id, turn, "server", t, b) for t, b
        in zip(types, bodies)] + list(then))``, without a record object per
        chunk: the chunks become one frame straight from their payloads. This
        is what the client's stream calls, once per burst of reads, from a
        worker thread (appends are serialised by a lock).

        :param types: the chunks' wire types.
        :param bodies: their exact payloads, one per type.
        :param then: records to append after the chunks (a ``stream-error``).
        :param utf8_checked: the caller has checked that every body is UTF-8
            (the stream checks each read): the bodies are not decoded again.
            ``then`` is always checked.
        :param newline_free: the caller knows that no body has a newline (the
            stream's SSE decoder does): the frame's bodies are not searched for one.
        :returns: the ``seq`` of the last record (0 when there is none).
        :raises KaiLogError: as :meth:`append`; nothing is then stored.
        """
        if len(types) != len(bodies):
            raise KaiLogError(
                f"{len(types)} chunk types for {len(bodies)} bodies", code="log:bad_record"
            )
        now = time.time()
        frames = (
            [
                make_frame(
                    chat_id,
                    turn,
                    now,
                    "server",
                    types,
                    bodies,
                    utf8_checked=utf8_checked,
                    newline_free=newline_free,
                )
            ]
            if bodies
            else []
        )
        if then:
            frames += build_frames(then if isinstance(then, list | tuple) else list(then), now)
        if not frames:
            return 0
        return self._insert(frames)

    def _insert(self, frames: list[Frame]) -> int:
        """Insert ``frames`` in one write transaction (serialised with every other write)."""
        self._check_open()
        with self._write_lock, log_errors(self.path, "appending"):
            try:
                return append_frames(self._writer, frames)
            except (sqlite3.IntegrityError, OverflowError) as exc:
                self._raise_no_room(self._writer, exc)
                raise

    def _raise_no_room(self, conn: sqlite3.Connection, exc: Exception) -> None:
        error = no_room(conn, self.path, exc)
        if error is not None:
            raise error from exc

    # -- reading events ----------------------------------------------------

    def events(self, chat_id: str | None = None, *, after: int = 0) -> list[StoredEvent]:
        """Stored events in log order, of one chat or all, after position ``after``."""
        with self._reader("reading events") as conn:
            return read_events(conn, chat_id, after=after)

    def client_records(
        self, record_type: str, *, chat_id: str | None = None, since: float | None = None
    ) -> list[StoredEvent]:
        """The client-side records of one type (e.g. ``approval``), oldest first.

        :param chat_id: only this chat's.
        :param since: only records at or after this Unix time.
        """
        # types holds a frame's record types as a JSON array: LIKE narrows the
        # frames read, stored_events() then keeps exactly the records asked for.
        sql = f"SELECT {FRAME_COLUMNS} FROM frames WHERE origin = 'client' AND types LIKE ?"
        params: list[Any] = [f'%"{record_type}"%']
        if chat_id is not None:
            sql += " AND chat_id = ?"
            params.append(chat_id)
        if since is not None:
            sql += " AND ts >= ?"
            params.append(since)
        with self._reader("reading records") as conn:
            found = stored_events(conn.execute(sql + " ORDER BY seq", params))
        return [r for r in found if r.type == record_type]

    def has_chat(self, chat_id: str) -> bool:
        """True when the log holds any record of the chat."""
        with self._reader("reading events") as conn:
            found = conn.execute("SELECT 1 FROM frames WHERE chat_id = ? LIMIT 1", (chat_id,))
            return found.fetchone() is not None

    # -- projections -----------------------------------------------------------

    def refresh(self) -> int:
        """Bring the projections up to date; return how many events were folded.

        Every projection read does this first; call it yourself to pay the
        cost at a moment of your choosing.
        """
        with self._maintenance("updating projections") as conn:
            return self._projector.catch_up(conn)

    def rebuild(self) -> int:
        """Drop every projection and rebuild it from the events (one transaction).

        :returns: the number of events folded.
        """
        with self._maintenance("rebuilding projections") as conn:
            return self._projector.rebuild(conn)

    def chats(self, *, limit: int | None = None, offset: int = 0) -> list[LocalChat]:
        """The chats in the log, most recently active first."""
        self.refresh()
        with self._reader("listing chats") as conn:
            return list_chats(conn, limit=limit, offset=offset)

    def get_chat(self, chat_id: str) -> LocalChatDetail | None:
        """A chat's messages (ordered by time), tool calls and votes; None if unknown."""
        self.refresh()
        with self._reader("reading a chat") as conn:
            return chat_detail(conn, chat_id)

    def search(
        self,
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
    ) -> list[SearchHit]:
        """Full-text search over user text, answers, tool names and tool input/output.

        :param query: words to find (all of them); ``"a phrase"``; ``prefix*``.
            With ``raw=True``, FTS5 query syntax.
        :param chat_id: only this chat.
        :param role: only ``user`` or ``assistant`` messages.
        :param tool: only messages that called this tool.
        :param since: only messages from this time on (epoch seconds or datetime).
        :param until: only messages before this time.
        :param limit: at most this many hits, best first.
        :param marks: what to put around matched words in snippets.
        :raises KaiLogError: ``raw=True`` and the query is not valid FTS5.
        """
        self.refresh()
        with self._reader("searching") as conn:
            return search_messages(
                conn,
                query,
                chat_id=chat_id,
                role=role,
                tool=tool,
                since=since,
                until=until,
                limit=limit,
                raw=raw,
                marks=marks,
            )

    # -- replay ----------------------------------------------------------------

    def replay_steps(self, chat_id: str, *, decisions: bool = True) -> Iterator[ReplayStep]:
        """Each stored record of the chat with the events it stands for (user
        messages included, for front ends that show them)."""
        return replay_steps(self.events(chat_id), decisions=decisions)

    def _chat_rows(self, chat_id: str) -> tuple[str, list[tuple[Any, ...]]]:
        with self._reader("reading a chat") as conn:
            rows = conn.execute(
                f"SELECT {REPLAY_COLUMNS} FROM frames WHERE chat_id = ? ORDER BY seq", (chat_id,)
            ).fetchall()
        return chat_id, rows

    def replay_events(self, chat_id: str, *, decisions: bool = True) -> Iterator[Event]:
        """The events the chat's live streams yielded, in order, at once.

        :param decisions: also yield the approval decisions the session yielded.
        """
        for _, events in replay_rows(*self._chat_rows(chat_id), decisions=decisions):
            yield from events

    def replay(
        self,
        chat_id: str,
        *,
        speed: float | None = None,
        max_delay: float | None = None,
        decisions: bool = True,
    ) -> Replay:
        """The chat's events, instantly (``speed=None``) or at the recorded pace
        divided by ``speed``; reads in a worker thread::

            async with log.replay(chat_id, speed=2.0) as events:
                async for event in events: ...

        :param max_delay: cap on each pause, in replay seconds.
        """
        return Replay(
            replay_timed(
                lambda: self._chat_rows(chat_id),
                speed=speed,
                max_delay=max_delay,
                decisions=decisions,
            )
        )

    # -- moving data in and out ----------------------------------------------------

    def export_jsonl(self, chat_id: str | None, file: FileArg) -> int:
        """Write the events of one chat (or all, ``None``) as JSON lines.

        :param file: a path or a binary/text file object. A path is written
            whole or not at all, owner-only (0600), and may not be one of the
            log's own files (see :func:`~kai_core.log.private_output`).
        :returns: the number of events written.
        :raises KaiLogError: ``log:bad_output`` for the log's own files.
        """
        count = 0
        with open_for_writing(file, log=self.path) as out, self._reader("exporting") as conn:
            if chat_id is None:
                cursor = conn.execute(f"SELECT {FRAME_COLUMNS} FROM frames ORDER BY seq")
            else:
                cursor = conn.execute(
                    f"SELECT {FRAME_COLUMNS} FROM frames WHERE chat_id = ? ORDER BY seq",
                    (chat_id,),
                )
            for frame in cursor:
                for ev in stored_events((frame,)):
                    out.write(encode_line(ev))
                    count += 1
        return count

    def import_jsonl(self, file: FileArg) -> int:
        """Import events exported by :meth:`export_jsonl`, in one transaction.

        A turn already in the log is skipped whole, so importing twice adds
        nothing. Positions are kept when they are past the log's end (always,
        for an empty log), else renumbered in order.

        :returns: the number of events added.
        :raises KaiLogError: a line is not an export line (nothing is imported).
        """
        with open_for_reading(file) as src:
            try:
                parsed = [ev for _, ev in decode_lines(src)]
            except ValueError as exc:
                raise KaiLogError(f"cannot import: {exc}", code="log:bad_import") from exc
        with self._maintenance("importing") as conn:
            try:
                return import_events(conn, parsed)
            except (sqlite3.IntegrityError, OverflowError) as exc:
                self._raise_no_room(conn, exc)
                raise

    def export_markdown(self, chat_id: str) -> str:
        """A Markdown transcript of one chat for people to read.

        :raises KaiLogError: the chat is not in the log.
        """
        detail = self._known_chat(chat_id)
        calls = {(c.message_id, c.tool_call_id): _call_dict(c) for c in detail.tool_calls}
        messages = [
            {
                "id": m.id,
                "role": m.role,
                "ts": m.ts,
                "parts": m.parts,
                "imported": m.imported,
                "finish_reason": m.finish_reason,
            }
            for m in detail.messages
        ]
        chat = {f: getattr(detail.chat, f) for f in detail.chat.__struct_fields__}
        return render_markdown(chat, messages, calls)

    def export_html(
        self, chat_id: str, *, include_tool_output: bool = False, secrets: Iterable[str] = ()
    ) -> str:
        """One chat as a self-contained HTML page (see :func:`~kai_core.log.render_html`).

        :raises KaiLogError: the chat is not in the log.
        """
        return render_html(
            self._known_chat(chat_id), include_tool_output=include_tool_output, secrets=secrets
        )

    def _known_chat(self, chat_id: str) -> LocalChatDetail:
        detail = self.get_chat(chat_id)
        if detail is None:
            raise KaiLogError(f"chat {chat_id} is not in the log {self.path}", code="log:no_chat")
        return detail

    def import_chat(self, detail: Any) -> int:
        """Record a chat made elsewhere (e.g. the web app) from its server detail.

        Each message whose id is not in the log yet (recorded live or imported
        before) becomes one ``imported-message`` record; all in one transaction.

        A message whose fields kai reads have the wrong types (a list as an
        approval id, a number as a text) is left out with a
        :class:`SkippedRecordWarning` naming the chat and the message.

        :param detail: ``GET /api/chat/{id}``'s answer: a mapping, Struct or
            dataclass with ``id``, ``title`` and ``messages``.
        :returns: the number of messages imported.
        """
        self.refresh()
        skipped: list[str] = []
        with self._maintenance("importing a chat") as conn:
            count = import_detail(conn, detail, skipped)
        for line in skipped:
            warnings.warn(f"not imported: {line}", SkippedRecordWarning, stacklevel=2)
        return count

    def forget(self, chat_id: str) -> int:
        """Delete a chat for real: events, projections, index entries, and their bytes.

        The one exception to append-only. Deleted content is zeroed (secure
        delete), the full-text index is merged so no stale entry keeps a word,
        and the WAL is checkpointed and truncated. Event positions then have gaps.

        :returns: the number of events deleted.
        """
        with self._maintenance("forgetting a chat") as conn:
            deleted = forget_chat(conn, chat_id)
            self._projector.forget_chat(chat_id)
            compact_and_checkpoint(conn, self.path)
        return deleted

    def backup(self, dest: str | os.PathLike[str]) -> Path:
        """Write a consistent, compacted copy of the log to ``dest`` (``VACUUM INTO``).

        The copy is made owner-only beside ``dest`` and renamed to it when complete.

        :raises KaiLogError: ``dest`` exists and is not empty, or is one of the
            log's own files (``log:bad_output``).
        """
        target = check_output(dest, log=self.path)
        if target.exists() and target.stat().st_size > 0:
            raise KaiLogError(
                f"backup target {target} exists; choose a new file", code="log:backup_exists"
            )
        with private_path(target, log=self.path) as temporary, self._reader("backing up") as conn:
            conn.execute("VACUUM INTO ?", (str(temporary),))
        return target

    def stats(self) -> LogStats:
        """Counts, time span and size on disk of the log."""
        self.refresh()
        with self._reader("reading stats") as conn:
            return log_stats(conn, self.path)


class _Reading:
    """A pooled read connection lent for a ``with`` block (a class, not a
    generator: replay borrows one per chat)."""

    __slots__ = ("log", "conn", "errors")

    def __init__(self, log: EventLog, conn: sqlite3.Connection, action: str) -> None:
        self.log = log
        self.conn = conn
        self.errors = log_errors(log.path, action)

    def __enter__(self) -> sqlite3.Connection:
        return self.conn

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        try:
            self.errors.__exit__(exc_type, exc, tb)
        finally:
            self.log._give_back(self.conn)


def _call_dict(call: LocalToolCall) -> dict[str, Any]:
    return {f: getattr(call, f) for f in call.__struct_fields__}
