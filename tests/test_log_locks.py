"""The log never closes a descriptor of its file while SQLite holds locks on it.

Closing any descriptor of a file drops every POSIX lock the process holds on
it, SQLite's included; another process may then checkpoint and delete the
WAL under a reader ("disk I/O error", seen with four ``kai`` processes on one
log). The header check before SQLite opens a file is the only plain ``open``
of the log: it must run for the first connection only.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from kai_core.log import EventLog, LogRecord

_opened: list[str] = []
_watch: list[str] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "open" and _watch and isinstance(args[0], str | Path):
        if str(args[0]) == _watch[0]:
            _opened.append(str(args[0]))


sys.addaudithook(_audit)  # cannot be removed: it only acts while _watch is set


def test_reader_connections_do_not_open_the_file_again(tmp_path: Path) -> None:
    path = tmp_path / "kai.db"
    EventLog(path).close()  # an existing log: the header check applies
    _watch.append(str(path))
    try:
        log = EventLog(path)
        try:
            assert _opened == [str(path)]  # the first connection's header check
            log.append([LogRecord("c", "t", "client", "vote", b'{"message_id":"m","type":"up"}')])
            with log._reader("test") as first, log._reader("test") as second:
                # two reader connections opened while the writer is connected
                assert first is not second
            assert log.events("c")
        finally:
            log.close()
    finally:
        _watch.clear()
    assert _opened == [str(path)]
