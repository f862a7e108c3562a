"""Opening the log file: checks, pragmas, migrations and error translation.

A file is a kai log when its header carries :data:`APPLICATION_ID`. A new
(empty) file becomes one; anything else -- another program's SQLite file,
a file that is not SQLite at all, a read-only file -- is refused with a
:class:`~kai_core.exceptions.KaiLogError` that names the file and says what
to do. The file is never modified in that case.

Migrations are named, ordered and recorded in the ``migrations`` table; they
run on open inside ``BEGIN IMMEDIATE``, so two processes opening a new file
at the same moment apply each migration exactly once.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final, Literal, TypeAlias

import platformdirs

from ..exceptions import KaiLogError
from ._frames import INSERT_FRAME_AT, frames_from_rows

__all__ = [
    "APPLICATION_ID",
    "BUSY_TIMEOUT",
    "MIGRATIONS",
    "Synchronous",
    "default_log_path",
    "log_errors",
    "open_connection",
    "write_transaction",
]

APPLICATION_ID: Final = 0x4B414931  # "KAI1" in the SQLite header: marks a kai log
BUSY_TIMEOUT: Final = 10.0  # seconds a writer waits for another one before failing
_SQLITE_MAGIC: Final = b"SQLite format 3\x00"
_HINT: Final = "pass another file with --db or the KAI_DB environment variable"

Synchronous: TypeAlias = Literal["full", "normal"]


def default_log_path() -> Path:
    """Where the log lives unless told otherwise.

    ``$KAI_DB`` when set, else ``kai.db`` in the user's data directory
    (``platformdirs.user_data_path("kai")``).
    """
    env = os.environ.get("KAI_DB")
    if env:
        return Path(env).expanduser()
    return platformdirs.user_data_path("kai", appauthor=False) / "kai.db"


def _error(path: Path, message: str, code: str, exc: BaseException | None = None) -> KaiLogError:
    cause = str(exc) if exc is not None else None
    return KaiLogError(f"event log {path}: {message}", code=code, cause=cause)


def _primary_code(exc: sqlite3.Error) -> str:
    """SQLite's primary result code of ``exc`` (``SQLITE_IOERR`` for ``SQLITE_IOERR_FSYNC``),
    or "" for an error SQLite did not report (one raised by Python's sqlite3 itself)."""
    name = getattr(exc, "sqlite_errorname", None) or ""
    return "_".join(name.split("_")[:2])


def translate(path: Path, exc: sqlite3.Error, action: str) -> KaiLogError:
    """Turn an sqlite3 error into a KaiLogError that says what to do.

    Mapped by SQLite's result code, not by the words of its message (which
    SQLite may change).
    """
    code = _primary_code(exc)
    if code in ("SQLITE_NOTADB", "SQLITE_CORRUPT"):
        return _error(
            path,
            f"the file is corrupt or not a SQLite database ({action}); "
            f"move it aside (it was left untouched) or {_HINT}",
            "log:corrupt",
            exc,
        )
    if code == "SQLITE_READONLY":
        return _error(
            path,
            f"the file or its directory is read-only ({action}); make both writable "
            f"for your user or {_HINT}",
            "log:read_only",
            exc,
        )
    if code in ("SQLITE_BUSY", "SQLITE_LOCKED"):
        return _error(
            path,
            f"another process held the log for over {BUSY_TIMEOUT:g} s ({action}); try again",
            "log:locked",
            exc,
        )
    if code == "SQLITE_CANTOPEN":
        return _error(
            path,
            f"cannot open the file ({action}); check that its directory exists and is "
            f"writable, or {_HINT}",
            "log:open",
            exc,
        )
    if code in ("SQLITE_FULL", "SQLITE_IOERR"):
        return _error(path, f"the disk failed ({action}): {exc}", "log:io", exc)
    return _error(path, f"{action} failed: {exc}", "log:error", exc)


class log_errors:  # used like a function: ``with log_errors(path, action):``
    """Re-raise sqlite3 errors inside the block as KaiLogError.

    A class, not a generator: it wraps every append.
    """

    __slots__ = ("path", "action")

    def __init__(self, path: Path, action: str) -> None:
        self.path = path
        self.action = action

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, _tb: object
    ) -> None:
        if isinstance(exc, sqlite3.Error):
            raise translate(self.path, exc, self.action) from exc


class write_transaction:  # used like a function: ``with write_transaction(conn):``
    """``BEGIN IMMEDIATE`` ... ``COMMIT``; rolled back on any exception (cancellation too).

    A class, not a generator: it wraps every append.
    """

    __slots__ = ("conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        conn = self.conn
        try:
            if exc_type is None:
                conn.execute("COMMIT")  # may fail too (a full disk): then roll back
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")


def _create_file(path: Path) -> os.stat_result | None:
    """Create the file owner-only before SQLite sees it (its -wal/-shm copy this mode).

    Never through a symbolic link (``O_EXCL`` and ``O_NOFOLLOW``): a link
    dangling at ``path`` would make SQLite create its target with the default
    mode, readable by everyone.

    :returns: the new file's status, or None when another process created a
        regular file there a moment ago.
    """
    if not path.parent.exists():
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise _error(path, f"cannot create its directory ({exc.strerror})", "log:open") from exc
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        if stat.S_ISLNK(os.lstat(path).st_mode):
            raise _symlink_error(path, "a symbolic link appeared there") from None
        return None  # another process created it a moment ago: fine
    except OSError as exc:
        raise _error(path, f"cannot create the file ({exc.strerror}); {_HINT}", "log:open") from exc
    try:
        return os.fstat(fd)
    finally:
        os.close(fd)


def _symlink_error(path: Path, why: str) -> KaiLogError:
    return _error(
        path,
        f"is a symbolic link and {why}; kai opens a log through a link only when it "
        f"points at a kai log of yours; pass the log's own path, or {_HINT}",
        "log:symlink",
    )


def _kai_header(path: Path) -> bool:
    """True when the file's header says SQLite and kai (application_id at byte 68)."""
    try:
        with open(path, "rb") as f:
            head = f.read(72)
    except OSError:
        return False
    return head.startswith(_SQLITE_MAGIC) and int.from_bytes(head[68:72]) == APPLICATION_ID


def _resolve(path: Path, *, read_header: bool) -> Path:
    """The file to hand SQLite: ``path``, or the kai log a symbolic link there points at.

    :param read_header: check the link's target is a kai log by its header
        (only before this process holds a connection: see :func:`_check_existing`).
    :raises KaiLogError: ``log:symlink`` for a dangling link, or one to a file
        that is not a regular file of this user's, or not a kai log.
    """
    try:
        if not stat.S_ISLNK(os.lstat(path).st_mode):
            return path
    except OSError:
        return path  # missing: created below (never through a link)
    target = Path(os.path.realpath(path))
    try:
        st = os.stat(target)
    except OSError:
        raise _symlink_error(path, f"its target {target} does not exist") from None
    if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
        raise _symlink_error(path, f"its target {target} is not a file of yours")
    if read_header and not _kai_header(target):
        raise _symlink_error(path, f"its target {target} is not a kai log")
    return target


def _check_existing(path: Path, *, read_header: bool) -> os.stat_result:
    """Refuse files we must not touch, before SQLite opens (and maybe changes) them.

    :param read_header: also read the file's first bytes. Only before this
        process holds a connection to the file: closing any descriptor of a
        file drops every POSIX lock the process holds on it, SQLite's included,
        and another process may then checkpoint and delete the WAL under a
        reader ("disk I/O error").
    """
    try:
        st = path.stat()
    except OSError as exc:
        raise _error(path, f"cannot read the file ({exc.strerror})", "log:open") from exc
    if not stat.S_ISREG(st.st_mode):
        raise _error(path, f"is not a regular file; {_HINT}", "log:open")
    # Mode bits too, not only access(): root may write anything, but a file
    # someone made read-only is not ours to change.
    if not (st.st_mode & stat.S_IWUSR) or not os.access(path, os.R_OK | os.W_OK):
        raise _error(
            path,
            f"the file is read-only; make it writable (chmod u+rw) or {_HINT}",
            "log:read_only",
        )
    if st.st_size == 0 or not read_header:
        return st
    try:
        with open(path, "rb") as f:
            head = f.read(len(_SQLITE_MAGIC))
    except OSError as exc:
        raise _error(path, f"cannot read the file ({exc.strerror})", "log:open") from exc
    if head != _SQLITE_MAGIC:
        raise _error(
            path,
            f"the file is corrupt or not a SQLite database; move it aside (it was left "
            f"untouched) or {_HINT}",
            "log:corrupt",
        )
    return st


def _check_same(path: Path, target: Path, checked: os.stat_result) -> None:
    """Refuse when the file SQLite opened is not the one checked: it was swapped
    for a link or another file in between."""
    try:
        st = os.lstat(target)
    except OSError as exc:
        raise _error(path, f"the file vanished while opening ({exc.strerror})", "log:open") from exc
    if (st.st_dev, st.st_ino) != (checked.st_dev, checked.st_ino):
        raise _symlink_error(path, "the file was replaced while kai opened it")


def _check_kai(conn: sqlite3.Connection, path: Path) -> bool:
    """True when the file is a kai log, False when it is empty; raise otherwise."""
    # One statement, so one snapshot: read apart, another kai process could
    # commit a new log's schema in between (id 0 read before, its 32 objects
    # after), and a kai log would be called another program's.
    app_id, objects = conn.execute(
        "SELECT (SELECT application_id FROM pragma_application_id),"
        " (SELECT count(*) FROM sqlite_master)"
    ).fetchone()
    if app_id == APPLICATION_ID:
        return True
    if app_id == 0 and objects == 0:
        return False
    raise _error(
        path,
        f"this SQLite file belongs to another program (application_id {app_id}, "
        f"{objects} schema objects), not kai; it was left untouched; {_HINT}",
        "log:not_kai",
    )


def _set_wal(conn: sqlite3.Connection) -> None:
    # Switching to WAL needs a moment of exclusive access; when another process
    # holds the file, wait like any writer would.
    deadline = time.monotonic() + BUSY_TIMEOUT
    while True:
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        except sqlite3.OperationalError as exc:
            busy = _primary_code(exc) in ("SQLITE_BUSY", "SQLITE_LOCKED")
            if not busy or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
            continue
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError(f"cannot switch to WAL (journal_mode={mode})")
        return


def open_connection(
    path: Path, *, synchronous: Synchronous = "full", migrate: bool = True
) -> sqlite3.Connection:
    """Open (creating if needed) the log at ``path`` and bring its schema up to date.

    :param synchronous: ``"full"`` (default) makes each commit survive power
        loss; ``"normal"`` survives a killed process but not a power cut.
    :param migrate: run the migrations (the first connection of a log does).
    :raises KaiLogError: for a file that is not a kai log, corrupt, or read-only.
    """
    target = _resolve(path, read_header=migrate)
    if target.exists():
        # A reader connection (migrate=False) comes after the writer's: no header read.
        checked = _check_existing(target, read_header=migrate)
    else:
        # None: another kai process created it a moment ago and may be writing
        # its first page: no header read (half a page is no verdict).
        checked = _create_file(target) or _check_existing(target, read_header=False)
    conn: sqlite3.Connection | None = None
    with log_errors(path, "opening"):
        try:
            conn = sqlite3.connect(
                target, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
            )
            _check_same(path, target, checked)
            conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT * 1000)}")
            _check_kai(conn, path)
            _set_wal(conn)
            conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
            # Deleted content is overwritten with zeros, so `forget` leaves nothing behind,
            # not even older versions of a row that was rewritten by a projection.
            conn.execute("PRAGMA secure_delete=ON")
            conn.execute("PRAGMA foreign_keys=OFF")
            # Replay and search read a chat's rows scattered over the file: map it
            # and keep a bigger page cache instead of one read() per page.
            conn.execute("PRAGMA mmap_size=1073741824")
            conn.execute("PRAGMA cache_size=-32768")
            if migrate:
                _migrate(conn, path)
        except BaseException:
            if conn is not None:
                conn.close()
            raise
    return conn


# --- migrations -----------------------------------------------------------
#
# Each migration is plain SQL on the connection. The first two were written
# with sqlite-utils; their statements below are the ones it generated, byte
# for byte, so a log made now has the same schema as one made then (a test
# compares them) and the library no longer needs sqlite-utils (nor click).

Migration: TypeAlias = "Callable[[sqlite3.Connection], None]"


def _run(conn: sqlite3.Connection, statements: tuple[str, ...]) -> None:
    for statement in statements:
        conn.execute(statement)


def _m001_events(conn: sqlite3.Connection) -> None:
    # AUTOINCREMENT: seq is never reused after `forget` deleted the newest
    # events (readers may remember positions).
    _run(
        conn,
        (
            """
        CREATE TABLE events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            chat_id TEXT NOT NULL,
            turn TEXT NOT NULL,
            ts REAL NOT NULL,
            origin TEXT NOT NULL CHECK (origin IN ('server', 'client')),
            type TEXT NOT NULL,
            body TEXT NOT NULL
        )
        """,
            'CREATE INDEX "events_chat"\n    ON "events" ("chat_id", "seq")',
            'CREATE INDEX "events_turn"\n    ON "events" ("turn")',
        ),
    )


# One row per message in search_text: the FTS5 index (external content, kept
# in step by the three triggers) ranks each column separately.
_FTS_COLUMNS = '"user_text", "answer_text", "tool_names", "tool_io"'
_FTS_NEW = 'new."user_text", new."answer_text", new."tool_names", new."tool_io"'
_FTS_OLD = 'old."user_text", old."answer_text", old."tool_names", old."tool_io"'
_FTS_INSERT = (
    f'INSERT INTO "search_text_fts" (rowid, {_FTS_COLUMNS}) VALUES (new.rowid, {_FTS_NEW});'
)
_FTS_DELETE = (
    f'INSERT INTO "search_text_fts" ("search_text_fts", rowid, {_FTS_COLUMNS}) '
    f"VALUES('delete', old.rowid, {_FTS_OLD});"
)

_M002: Final = (
    'CREATE TABLE "projection_state" (\n   "key" TEXT PRIMARY KEY,\n   "value" INTEGER NOT NULL\n)',
    'CREATE TABLE "chats" (\n   "id" TEXT PRIMARY KEY,\n   "title" TEXT,\n   "first_ts" REAL,\n'
    '   "last_ts" REAL,\n   "message_count" INTEGER,\n   "prompt_tokens" INTEGER,\n'
    '   "completion_tokens" INTEGER,\n   "server" TEXT,\n   "backend" TEXT,\n'
    '   "deleted_ts" REAL,\n   "last_seq" INTEGER\n)',
    'CREATE INDEX "chats_last_ts"\n    ON "chats" ("last_ts")',
    # A message's key is the seq of the event that started it: stable across
    # rebuilds and in log order.
    'CREATE TABLE "messages" (\n   "seq" INTEGER PRIMARY KEY,\n   "id" TEXT NOT NULL,\n'
    '   "chat_id" TEXT NOT NULL,\n   "turn" TEXT,\n   "role" TEXT NOT NULL,\n'
    '   "ts" REAL NOT NULL,\n   "text" TEXT NOT NULL,\n   "parts" TEXT NOT NULL,\n'
    '   "metadata" TEXT,\n   "finish_reason" TEXT,\n   "prompt_tokens" INTEGER,\n'
    '   "completion_tokens" INTEGER,\n   "imported" INTEGER\n)',
    'CREATE UNIQUE INDEX "messages_chat_id"\n    ON "messages" ("chat_id", "id")',
    'CREATE INDEX "messages_id"\n    ON "messages" ("id")',
    'CREATE INDEX "messages_ts"\n    ON "messages" ("ts")',
    'CREATE TABLE "tool_calls" (\n   "chat_id" TEXT,\n   "tool_call_id" TEXT,\n'
    '   "message_id" TEXT,\n   "message_seq" INTEGER,\n   "tool_name" TEXT,\n'
    '   "state" TEXT,\n   "input" TEXT,\n   "output" TEXT,\n   "error_text" TEXT,\n'
    '   "approval_id" TEXT,\n   "approved" INTEGER,\n   "decided_by" TEXT,\n'
    '   "reason" TEXT,\n   PRIMARY KEY ("message_seq", "tool_call_id")\n)',
    'CREATE INDEX "tool_calls_name"\n    ON "tool_calls" ("tool_name")',
    'CREATE INDEX "tool_calls_chat"\n    ON "tool_calls" ("chat_id")',
    'CREATE TABLE "votes" (\n   "chat_id" TEXT,\n   "message_id" TEXT,\n   "type" TEXT,\n'
    '   "ts" REAL,\n   PRIMARY KEY ("chat_id", "message_id")\n)',
    'CREATE TABLE "search_text" (\n   "seq" INTEGER PRIMARY KEY,\n   "user_text" TEXT,\n'
    '   "answer_text" TEXT,\n   "tool_names" TEXT,\n   "tool_io" TEXT\n)',
    f'CREATE VIRTUAL TABLE "search_text_fts" USING FTS5 (\n    {_FTS_COLUMNS},\n'
    "    tokenize='porter unicode61 remove_diacritics 2',\n    content=\"search_text\"\n)",
    f'CREATE TRIGGER "search_text_ai" AFTER INSERT ON "search_text" BEGIN\n  {_FTS_INSERT}\nEND',
    f'CREATE TRIGGER "search_text_ad" AFTER DELETE ON "search_text" BEGIN\n  {_FTS_DELETE}\nEND',
    f'CREATE TRIGGER "search_text_au" AFTER UPDATE ON "search_text" BEGIN\n  {_FTS_DELETE}\n'
    f"  {_FTS_INSERT}\nEND",
)


def _m002_projections(conn: sqlite3.Connection) -> None:
    _run(conn, _M002)


def _m003_frames(conn: sqlite3.Connection) -> None:
    # One row per run of records of an append (see _frames.py); the old rows
    # move over with their positions, and the old table goes.
    conn.execute(
        """
        CREATE TABLE frames (
            seq INTEGER PRIMARY KEY,
            n INTEGER NOT NULL CHECK (n > 0),
            chat_id TEXT NOT NULL,
            turn TEXT NOT NULL,
            ts REAL NOT NULL,
            origin TEXT NOT NULL CHECK (origin IN ('server', 'client')),
            types TEXT NOT NULL,
            body BLOB NOT NULL,
            sizes BLOB
        )
        """
    )
    conn.execute("CREATE INDEX frames_chat ON frames (chat_id, seq)")
    conn.execute("CREATE INDEX frames_turn ON frames (turn)")
    conn.execute("CREATE TABLE log_state (key TEXT PRIMARY KEY, value INTEGER NOT NULL)")
    # AUTOINCREMENT remembered positions past the last row (forgotten chats): keep them used.
    floor = conn.execute(
        "SELECT max(coalesce((SELECT max(seq) FROM events), 0), "
        "coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0))"
    ).fetchone()[0]
    rows = conn.execute(
        "SELECT seq, chat_id, turn, ts, origin, type, CAST(body AS BLOB) FROM events ORDER BY seq"
    )
    conn.executemany(INSERT_FRAME_AT, frames_from_rows(rows))
    conn.execute("INSERT INTO log_state (key, value) VALUES ('seq_floor', ?)", (floor,))
    conn.execute("DROP TABLE events")
    conn.execute("DELETE FROM sqlite_sequence WHERE name = 'events'")


MIGRATIONS: Final[tuple[tuple[str, Migration], ...]] = (
    ("0001_events", _m001_events),
    ("0002_projections", _m002_projections),
    ("0003_frames", _m003_frames),
)
"""Named, ordered, never edited once released; append new ones at the end."""


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    with write_transaction(conn):
        # Checked again under the write lock: another process may have
        # initialised the file since we looked.
        _check_kai(conn, path)
        conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS migrations "
            "(name TEXT PRIMARY KEY, applied_at REAL NOT NULL)"
        )
        applied = {row[0] for row in conn.execute("SELECT name FROM migrations")}
        known = {name for name, _ in MIGRATIONS}
        if applied - known:
            raise _error(
                path,
                f"the file was written by a newer kai (unknown migrations: "
                f"{', '.join(sorted(applied - known))}); upgrade kai or {_HINT}",
                "log:too_new",
            )
        pending = [(name, migration) for name, migration in MIGRATIONS if name not in applied]
        if pending:
            for name, migration in pending:
                migration(conn)
                conn.execute(
                    "INSERT INTO migrations (name, applied_at) VALUES (?, ?)", (name, time.time())
                )
