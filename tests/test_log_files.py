"""The files a user names: ``--db`` through a symbolic link, and export and
backup outputs that must never be the log's own files (issue 12, items 5 and 6).

Each case runs the real ``kai`` on a real log file recorded in-process.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from kai_core.exceptions import KaiLogError
from kai_core.log import EventLog, private_output, write_private
from kai_shell.errors import EXIT_CODES

from .cli_common import Kai
from .log_common import Recorder, dump_rows


def _record(path: Path) -> str:
    with EventLog(path) as log:
        chat = Recorder(log)
        chat.send("list my tables", "tables.sse")
        log.refresh()  # at rest: a read changes nothing in the file
        return chat.chat_id


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- item 5: --db through a symbolic link ------------------------------------------


@pytest.mark.e2e
async def test_a_dangling_symlink_as_the_log_is_refused_and_nothing_is_created(
    kai: Kai, tmp_path: Path
) -> None:
    target = tmp_path / "elsewhere" / "target.db"
    target.parent.mkdir()
    link = tmp_path / "link.db"
    link.symlink_to(target)
    for args in (("log", "stats"), ("history", "--local"), ("search", "tables")):
        result = await kai(*args, db=link)
        assert result.returncode == EXIT_CODES["log"], result
        assert "symbolic link" in result.stderr and str(target) in result.stderr, result
        assert len(result.stderr.strip().splitlines()) == 1, result
    assert not target.exists() and list(target.parent.iterdir()) == []
    assert link.is_symlink()
    with pytest.raises(KaiLogError) as info:
        EventLog(link)
    assert info.value.code == "log:symlink"
    assert not target.exists()


@pytest.mark.e2e
async def test_a_symlink_to_a_kai_log_of_the_user_is_followed(kai: Kai, tmp_path: Path) -> None:
    real = tmp_path / "real.db"
    chat_id = _record(real)
    link = tmp_path / "link.db"
    link.symlink_to(real)
    result = await kai("history", "--local", db=link)
    assert result.returncode == 0 and chat_id in result.stdout, result
    assert link.is_symlink()
    # The -wal/-shm files of a log opened through a link live beside the real file.
    assert not (tmp_path / "link.db-wal").exists()


@pytest.mark.e2e
@pytest.mark.parametrize("what", ["empty", "not-kai", "other-owner", "directory"])
async def test_a_symlink_to_anything_but_a_kai_log_of_the_user_is_refused(
    what: str, kai: Kai, tmp_path: Path
) -> None:
    target = tmp_path / "target"
    if what == "directory":
        target.mkdir()
    elif what == "not-kai":
        import sqlite3

        conn = sqlite3.connect(target)
        conn.execute("CREATE TABLE t (x)")
        conn.close()
    else:
        target.write_bytes(b"")
        if what == "other-owner":
            _record(target.with_name("made"))
            os.replace(target.with_name("made"), target)
            if os.geteuid() != 0:
                pytest.skip("only root can give a file to another user")
            os.chown(target, os.geteuid() + 1, -1)
    before = _digest(target) if target.is_file() else None
    link = tmp_path / "link.db"
    link.symlink_to(target)
    with pytest.raises(KaiLogError) as info:
        EventLog(link)
    assert info.value.code == "log:symlink", info.value
    if what != "directory":  # (click refuses a directory as --db itself)
        result = await kai("log", "stats", db=link)
        assert result.returncode == EXIT_CODES["log"], result
        assert "symbolic link" in result.stderr, result
    if before is not None:
        assert _digest(target) == before


def test_a_new_log_is_created_owner_only(tmp_path: Path) -> None:
    with EventLog(tmp_path / "new.db") as log:
        log.refresh()
    for path in tmp_path.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


# -- item 6: an export or backup onto the log's own files --------------------------


def _own_files(db: Path) -> dict[str, Path]:
    hard = db.with_name("hard-link.db")
    os.link(db, hard)
    soft = db.with_name("soft-link.db")
    soft.symlink_to(db)
    return {
        "log": db,
        "wal": db.with_name(db.name + "-wal"),
        "shm": db.with_name(db.name + "-shm"),
        "hard link": hard,
        "symlink": soft,
    }


@pytest.mark.e2e
async def test_export_onto_the_log_or_its_files_is_refused_and_the_log_survives(
    kai: Kai,
) -> None:
    chat_id = _record(kai.db)
    with EventLog(kai.db) as log:
        before = (log.events(), dump_rows(log))
    for name, path in _own_files(kai.db).items():
        for args in (
            ("log", "export", "-o", str(path)),
            ("log", "export", chat_id, "--format", "markdown", "-o", str(path)),
            ("log", "backup", str(path)),
        ):
            result = await kai(*args)
            assert result.returncode == EXIT_CODES["usage"], (name, result)
            assert "event log's own file" in result.stderr, (name, result)
            assert "log:locked" not in result.stderr
        assert kai.db.stat().st_size > 0, name
        with EventLog(kai.db) as log:
            assert (log.events(), dump_rows(log)) == before, name
    result = await kai("history", "--local")
    assert result.returncode == 0 and chat_id in result.stdout, result


@pytest.mark.e2e
async def test_export_replaces_the_target_whole_and_owner_only(kai: Kai, tmp_path: Path) -> None:
    chat_id = _record(kai.db)
    out = tmp_path / "out.jsonl"
    out.write_text("old content\n")
    out.chmod(0o644)
    result = await kai("log", "export", "-o", str(out))
    assert result.returncode == 0, result
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    with EventLog(kai.db) as log:
        assert out.read_text().count("\n") == len(log.events())
    # A failed export (an unknown chat) leaves the target as it was.
    kept = out.read_bytes()
    result = await kai(
        "log",
        "export",
        "00000000-0000-4000-8000-00000000dead",
        "--format",
        "markdown",
        "-o",
        str(out),
    )
    assert result.returncode == EXIT_CODES["not_found"], result
    assert out.read_bytes() == kept
    # A symbolic link at the target is replaced, never followed.
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    link = tmp_path / "link.md"
    link.symlink_to(victim)
    result = await kai("log", "export", chat_id, "--format", "markdown", "-o", str(link))
    assert result.returncode == 0, result
    assert victim.read_text() == "keep me\n"
    assert not link.is_symlink() and link.read_text().startswith("# list my tables")
    assert stat.S_IMODE(link.stat().st_mode) == 0o600
    # No temporary file is left behind.
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]


def test_private_output_writes_whole_or_not_at_all(tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    target.write_text("before")
    with pytest.raises(RuntimeError), private_output(target) as out:
        out.write(b"half")
        raise RuntimeError("the writer failed")
    assert target.read_text() == "before"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]
    assert write_private(target, "é\n") == target
    assert target.read_text(encoding="utf-8") == "é\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    with pytest.raises(KaiLogError) as info:
        write_private(tmp_path, "x")
    assert info.value.code == "log:bad_output"
    with pytest.raises(KaiLogError) as info:
        write_private(tmp_path / "missing" / "x.md", "x")
    assert info.value.code == "log:output" and "missing" in str(info.value)
    # A pipe or a device is written in place.
    assert write_private(os.devnull, "x") == Path(os.devnull)


def test_a_log_created_by_another_process_while_it_is_checked_is_kai(tmp_path: Path) -> None:
    # Two kai processes open a new log at once: one creates the schema while the
    # other checks whose file it is. Read in two statements, the check could see
    # application_id 0 (before the other's commit) and the schema (after it), and
    # call the log another program's (log:not_kai, seen in CI as a flaky
    # test_several_processes_chat_into_one_log_at_once). One statement, one snapshot.
    import sqlite3

    from kai_core.log._db import _check_kai

    path = tmp_path / "kai.db"
    path.touch()  # what the creating process leaves before SQLite writes
    checker = sqlite3.connect(path, isolation_level=None)
    created: list[str] = []

    def create_the_log_meanwhile(statement: str) -> None:
        # The other process commits the schema just before this statement runs.
        if "sqlite_master" in statement and not created:
            created.append(statement)
            EventLog(path).close()

    checker.set_trace_callback(create_the_log_meanwhile)
    try:
        assert _check_kai(checker, path) is True
    finally:
        checker.close()
    assert created  # the other process did come in between
