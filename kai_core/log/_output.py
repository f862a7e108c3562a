"""Writing a file a user named: exports, transcripts and backups.

Two rules keep such a write from destroying or leaking anything:

* the output is never the log itself: the log's file, its ``-wal``,
  ``-shm`` or ``-journal``, or any other name for one of them (a symbolic
  or hard link) is refused before anything is written;
* the content goes to a new owner-only (0600) file beside the target, which
  replaces the target only once complete (``rename``). A failed or
  interrupted write leaves the target as it was; a symbolic link at the
  target is replaced, never followed.

A target that exists and is not a regular file (a pipe, a terminal,
``/dev/stdout``) is written in place: it cannot be renamed over and holds
nothing to lose.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Final

from ..exceptions import KaiLogError

__all__ = ["LOG_SUFFIXES", "check_output", "private_output", "private_path", "write_private"]

LOG_SUFFIXES: Final = ("", "-wal", "-shm", "-journal")
"""The files SQLite keeps for a log at ``path``: ``path`` plus each suffix."""

PathArg = str | os.PathLike[str]


def _same(a: Path, b: Path) -> bool:
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False  # one of them does not exist: not the same file


def check_output(path: PathArg, *, log: PathArg | None = None) -> Path:
    """The target ``path`` (``~`` expanded), after refusing the log's own files.

    :param log: the log whose files must not be written to.
    :raises KaiLogError: ``log:bad_output`` when ``path`` is one of them or a directory.
    """
    target = Path(path).expanduser()
    if target.is_dir():
        raise KaiLogError(f"cannot write to {target}: it is a directory", code="log:bad_output")
    if log is not None:
        base = Path(log).expanduser()
        for suffix in LOG_SUFFIXES:
            own = base.with_name(base.name + suffix)
            if _same(target, own):
                raise KaiLogError(
                    f"refusing to write to {target}: it is the event log's own file "
                    f"{own}; choose another file",
                    code="log:bad_output",
                )
    return target


def _in_place(target: Path) -> bool:
    try:
        return not stat.S_ISREG(os.stat(target).st_mode)
    except OSError:
        return False  # missing (or a dangling link): a new file replaces it


def _failed(target: Path, exc: OSError) -> KaiLogError:
    return KaiLogError(
        f"cannot write {target}: {exc.strerror or exc}", code="log:output", cause=str(exc)
    )


@contextlib.contextmanager
def private_path(path: PathArg, *, log: PathArg | None = None) -> Iterator[Path]:
    """A new, empty, owner-only file beside ``path`` to fill; it replaces
    ``path`` when the block ends without an exception, and is removed otherwise.

    For writers that need a file name (SQLite's ``VACUUM INTO``).

    :raises KaiLogError: ``log:bad_output`` (see :func:`check_output`) or
        ``log:output`` when the file cannot be made or renamed.
    """
    target = check_output(path, log=log)
    try:
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise _failed(target, exc) from exc
    os.close(fd)
    temporary = Path(name)
    try:
        yield temporary
        with open(temporary, "rb+") as done:
            os.fsync(done.fileno())  # the content is on disk before the name points at it
        os.replace(temporary, target)
    except OSError as exc:
        raise _failed(target, exc) from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


@contextlib.contextmanager
def private_output(path: PathArg, *, log: PathArg | None = None) -> Iterator[IO[bytes]]:
    """A binary file to write ``path``'s new content to, atomically and owner-only.

    ``with private_output(path, log=log.path) as out: out.write(data)``

    :param log: the event log whose files must not be the target.
    :raises KaiLogError: ``log:bad_output`` for the log's own files or a
        directory; ``log:output`` when the file cannot be written.
    """
    target = check_output(path, log=log)
    if _in_place(target):
        try:
            out = open(target, "wb")  # closed below
        except OSError as exc:
            raise _failed(target, exc) from exc
        with out:
            yield out
        return
    with private_path(target, log=log) as temporary, open(temporary, "wb") as out:
        yield out


def write_private(path: PathArg, data: str | bytes, *, log: PathArg | None = None) -> Path:
    """Write ``data`` (text as UTF-8) to ``path`` as :func:`private_output` does;
    return the path written."""
    with private_output(path, log=log) as out:
        out.write(data.encode("utf-8") if isinstance(data, str) else data)
    return Path(path).expanduser()
