"""The offline commands of the real ``kai`` binary: ``history --local``,
``replay``, ``search`` and ``log ...``, run with no token and no server.

The log is recorded once per test by ``kai chat`` against the emulator;
every offline run then gets an environment with no token and a Storage API
URL where nothing listens, so any attempt to use the network would fail.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trio

from kai_core.testing import Emulator, open_emulator
from kai_shell.errors import EXIT_CODES

from .cli_common import (
    DEVNULL,
    KAI,
    TOKEN,
    Kai,
    chat_id_of,
    closed_port_url,
    gather,
)

pytestmark = pytest.mark.e2e


@pytest.fixture
def kai_emulator_options() -> dict[str, Any]:
    return {"token": TOKEN}


@dataclass(frozen=True)
class Recorded:
    """Chats recorded by ``kai chat``: ``hello``, ``tables`` (a read-only tool), ``bucket``."""

    db: Path
    hello: str
    tables: str
    bucket: str


async def record(kai: Kai, emulator: Emulator, db: Path) -> list[str]:
    """Record the three chats in ``db``, one after another (so their order is known)."""
    ids = []
    for args in (
        ("-m", "hello"),
        ("-m", "list my tables"),
        ("--auto-approve", "-m", "create a bucket called zebra"),
    ):
        result = await kai(*kai.online(emulator), "chat", *args, db=db)
        assert result.returncode == 0, result
        ids.append(chat_id_of(result))
    return ids


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    """The chats, recorded once for the module (a trio run of its own)."""
    folder = tmp_path_factory.mktemp("recorded")
    recorder = Kai(folder)

    async def main() -> list[str]:
        async with open_emulator(token=TOKEN) as emulator:
            return await record(recorder, emulator, recorder.db)

    ids = trio.run(main)
    assert not recorder.leaked_files()
    return Recorded(recorder.db, *ids)


@pytest.fixture
def chats(recorded: Recorded, kai: Kai) -> Recorded:
    """A copy of the recorded log at ``kai.db``, for this test to change."""
    shutil.copyfile(recorded.db, kai.db)
    return recorded


def offline(kai: Kai) -> dict[str, str]:
    """No token, and a URL where nothing listens."""
    return kai.env(STORAGE_API_URL=closed_port_url(), KAI_BASE_URL=closed_port_url())


async def test_history_local_needs_no_token_and_no_network(kai: Kai, chats: Recorded) -> None:
    env = offline(kai)
    text, as_json, limited, no_log = await gather(
        kai("history", "--local", env=env),
        kai("history", "--local", "--json-output", env=env),
        kai("history", "--local", "-n", "1", "--json-output", env=env),
        kai("--no-log", "history", "--local", env=env),
    )
    assert text.returncode == 0, text
    ids = [line.split()[0] for line in text.stdout.splitlines() if line.strip()]
    assert ids == [chats.bucket, chats.tables, chats.hello]
    data = as_json.json()
    assert set(data) == {"chats", "hasMore"} and data["hasMore"] is False
    assert [c["id"] for c in data["chats"]] == ids
    for chat in data["chats"]:
        assert {"id", "title", "created_at"} <= set(chat)
    assert data["chats"][2]["title"] == "hello"
    one = limited.json()
    assert one["hasMore"] is True and [c["id"] for c in one["chats"]] == [chats.bucket]
    assert no_log.returncode == 2 and "--no-log" in no_log.stderr, no_log


async def test_replay_instant_timed_and_json(kai: Kai, chats: Recorded) -> None:
    env = offline(kai)
    # Each run has its hang guard (cli_common.RUN_TIMEOUT); replay's pace is
    # checked on the mock clock (test_log_replay).
    instant, fast, as_json, unknown, bad_speed, no_log = await gather(
        kai("replay", chats.bucket, "--instant", env=env),
        kai("replay", chats.tables, "--speed", "1000", env=env),
        kai("replay", chats.bucket, "--instant", "--json-output", env=env),
        kai("replay", "1b4e28ba-2fa1-11d2-883f-0016d3cca427", "--instant", env=env),
        kai("replay", chats.hello, "--speed", "0", env=env),
        kai("--no-log", "replay", chats.hello, "--instant", env=env),
    )
    assert instant.returncode == 0, instant
    assert ">>> create a bucket called zebra" in instant.stdout
    assert "in.c-zebra was created" in instant.stdout
    assert "approved by auto-approve" in instant.stdout
    assert fast.returncode == 0 and "You have 3 tables" in fast.stdout, fast
    assert ">>> list my tables" in fast.stdout
    events = as_json.json_lines()
    types = {e["type"] for e in events}
    assert {"text", "tool-call", "finish", "approval-decision"} <= types
    assert unknown.returncode == 5 and "no chat" in unknown.stderr, unknown
    assert bad_speed.returncode == 2, bad_speed
    assert no_log.returncode == 2, no_log


async def test_search_filters_and_json(kai: Kai, chats: Recorded) -> None:
    env = offline(kai)
    (
        plain,
        as_json,
        users,
        assistants,
        by_tool,
        by_chat,
        limited,
        future,
        until_past,
        nothing,
        bad_date,
    ) = await gather(
        kai("search", "zebra", env=env),
        kai("search", "zebra", "--json-output", env=env),
        kai("search", "tables", "--role", "user", "--json-output", env=env),
        kai("search", "tables", "--role", "assistant", "--json-output", env=env),
        kai("search", "customers", "--tool", "list_tables", "--json-output", env=env),
        kai("search", "zebra", "--chat", chats.hello, "--json-output", env=env),
        kai("search", "zebra", "-n", "1", "--json-output", env=env),
        kai("search", "zebra", "--since", "2999-01-01", "--json-output", env=env),
        kai("search", "zebra", "--until", "2000-01-01T00:00", env=env),
        kai("search", "xylophone", env=env),
        kai("search", "zebra", "--since", "yesterday", env=env),
    )
    assert plain.returncode == 0, plain
    assert chats.bucket in plain.stdout and "[user]" in plain.stdout
    assert "[zebra]" in plain.stdout  # the match is marked in the snippet
    hits = as_json.json_lines()
    assert len(hits) >= 2 and {h["chat_id"] for h in hits} == {chats.bucket}
    for hit in hits:
        assert {"chat_id", "message_id", "role", "snippet", "ts"} <= set(hit), hit
    assert {h["role"] for h in users.json_lines()} == {"user"}
    assert {h["role"] for h in assistants.json_lines()} == {"assistant"}
    assert {h["chat_id"] for h in by_tool.json_lines()} == {chats.tables}
    assert by_chat.json_lines() == []
    assert len(limited.json_lines()) == 1
    assert future.json_lines() == []
    assert until_past.returncode == 0 and "No matches." in until_past.stdout
    assert nothing.returncode == 0 and "No matches." in nothing.stdout
    assert bad_date.returncode == 2 and "yesterday" in bad_date.stderr, bad_date


async def test_search_never_crashes_on_odd_queries(kai: Kai, chats: Recorded) -> None:
    env = offline(kai)
    queries = [
        chats.bucket,  # a UUID: its dashes are FTS5 operators
        '"unbalanced',
        "it's NOT zebra",
        "a AND",
        "NEAR(",
        "col:zebra* ^(",
        "",
        "zebra; DROP TABLE events",
        "ünïcödé 表",
    ]
    results = await gather(*(kai("search", q, "--json-output", env=env) for q in queries))
    for query, result in zip(queries, results, strict=True):
        assert result.returncode in (0, 2), (query, str(result))
        if result.returncode == 0:
            result.json_lines()
        else:
            assert "kai: error: " in result.stderr
    uuid_hits = results[0].json_lines()
    assert uuid_hits == [] or {h["chat_id"] for h in uuid_hits} == {chats.bucket}
    raw_ok, raw_prefix, raw_bad, raw_bad_json = await gather(
        kai("search", "zebra OR customers", "--raw", "--json-output", env=env),
        kai("search", "zeb*", "--raw", "--json-output", env=env),
        kai("search", "zebra AND (", "--raw", env=env),
        kai("search", '"unbalanced', "--raw", "--json-output", env=env),
    )
    assert {h["chat_id"] for h in raw_ok.json_lines()} == {chats.bucket, chats.tables}
    assert {h["chat_id"] for h in raw_prefix.json_lines()} == {chats.bucket}
    for result in (raw_bad, raw_bad_json):
        assert result.returncode == 2, result
        assert "search" in result.stderr and result.stdout == ""
        assert len(result.stderr.strip().splitlines()) == 1, result


async def test_log_path_stats_export_and_backup(kai: Kai, chats: Recorded) -> None:
    env = offline(kai)
    out_jsonl = kai.root / "out" / "chat.jsonl"
    out_jsonl.parent.mkdir()
    out_md = kai.root / "out" / "chat.md"
    backup = kai.root / "out" / "backup.db"
    (
        path,
        env_path,
        default_path,
        stats,
        stats_json,
        jsonl_all,
        jsonl_one,
        markdown,
        to_file,
        md_to_file,
        md_no_chat,
        backed_up,
    ) = await gather(
        kai("log", "path", env=env),
        kai("log", "path", env=kai.env(KAI_DB=str(kai.root / "env.db")), db=False),
        kai("log", "path", db=False),
        kai("log", "stats", env=env),
        kai("log", "stats", "--json-output", env=env),
        kai("log", "export", env=env),
        kai("log", "export", chats.tables, env=env),
        kai("log", "export", chats.bucket, "--format", "markdown", env=env),
        kai("log", "export", chats.bucket, "-o", str(out_jsonl), env=env),
        kai(
            "log", "export", chats.bucket, "--format", "markdown", "--output", str(out_md), env=env
        ),
        kai("log", "export", "--format", "markdown", env=env),
        kai("log", "backup", str(backup), env=env),
    )
    assert path.stdout.strip() == str(kai.db)
    assert env_path.stdout.strip() == str(kai.root / "env.db")
    assert default_path.stdout.strip() == str(kai.home / "data" / "kai" / "kai.db")
    assert stats.returncode == 0 and "chats: 3" in stats.stdout, stats
    counts = stats_json.json()
    assert counts["chats"] == 3 and counts["events"] > 0 and counts["tool_calls"] == 2
    rows = jsonl_all.json_lines()
    assert {r["chat_id"] for r in rows} == {chats.hello, chats.tables, chats.bucket}
    assert {"seq", "chat_id", "turn", "ts", "origin", "type", "body"} <= set(rows[0])
    assert {r["chat_id"] for r in jsonl_one.json_lines()} == {chats.tables}
    assert markdown.returncode == 0 and "# create a bucket called zebra" in markdown.stdout
    assert "create_bucket" in markdown.stdout
    for result in (to_file, md_to_file):
        assert result.returncode == 0 and result.stdout == "", result
    for file in (out_jsonl, out_md):
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
    assert [json.loads(line)["chat_id"] for line in out_jsonl.read_text().splitlines()] == [
        chats.bucket
    ] * len(out_jsonl.read_text().splitlines())
    assert out_md.read_text() == markdown.stdout
    assert md_no_chat.returncode == 2, md_no_chat
    assert backed_up.returncode == 0 and backup.exists(), backed_up
    unknown = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
    not_there = kai.root / "out" / "unknown.jsonl"
    no_chat, no_chat_md, over_backup = await gather(
        kai("log", "export", unknown, "-o", str(not_there), env=env),
        kai("log", "export", unknown, "--format", "markdown", env=env),
        kai("log", "backup", str(backup), env=env),
    )
    for result in (no_chat, no_chat_md):
        assert result.returncode == 5 and unknown in result.stderr, result
    assert not not_there.exists()
    assert over_backup.returncode == 2 and "exists" in over_backup.stderr, over_backup
    with sqlite3.connect(backup) as conn:
        (count,) = conn.execute("select coalesce(sum(n), 0) from frames").fetchone()
    assert count == counts["events"]
    from_backup = await kai("history", "--local", db=backup, env=env)
    assert chats.hello in from_backup.stdout


async def test_log_import_rebuild_and_forget(kai: Kai, chats: Recorded) -> None:
    env = offline(kai)
    export = kai.root / "all.jsonl"
    exported = await kai("log", "export", "-o", str(export), env=env)
    assert exported.returncode == 0, exported
    fresh = kai.root / "fresh.db"
    first = await kai("log", "import", str(export), db=fresh, env=env)
    again, neither, both = await gather(
        kai("log", "import", str(export), db=fresh, env=env),
        kai("log", "import", db=fresh, env=env),
        kai("log", "import", str(export), "--server", db=fresh, env=env),
    )
    assert first.returncode == 0 and "Imported" in first.stdout, first
    assert again.returncode == 0 and "Imported 0 " in again.stdout, again
    assert neither.returncode == 2 and both.returncode == 2
    not_an_export = kai.root / "notes.txt"
    not_an_export.write_text("shopping list\n")
    bad_import = await kai("log", "import", str(not_an_export), db=fresh, env=env)
    assert bad_import.returncode == 2 and "line 1" in bad_import.stderr, bad_import
    history = await kai("history", "--local", "--json-output", db=fresh, env=env)
    assert {c["id"] for c in history.json()["chats"]} == {
        chats.hello,
        chats.tables,
        chats.bucket,
    }
    rebuilt, searched = await gather(
        kai("log", "rebuild", db=fresh, env=env),
        kai("search", "zebra", "--json-output", db=fresh, env=env),
    )
    assert rebuilt.returncode == 0 and "Rebuilt" in rebuilt.stdout, rebuilt
    assert searched.json_lines()
    refused, closed = await gather(
        kai("log", "forget", chats.hello, db=fresh, env=env),
        kai("log", "forget", chats.hello, db=fresh, env=env, stdin=DEVNULL),
    )
    for result in (refused, closed):
        assert result.returncode == 2 and "--yes" in result.stderr, result
    forgot = await kai("log", "forget", "-y", chats.hello, db=fresh, env=env)
    assert forgot.returncode == 0 and "Forgot chat" in forgot.stdout, forgot
    after, replay, unknown = await gather(
        kai("history", "--local", "--json-output", db=fresh, env=env),
        kai("replay", chats.hello, "--instant", db=fresh, env=env),
        kai("log", "forget", "--yes", chats.hello, db=fresh, env=env),
    )
    assert chats.hello not in {c["id"] for c in after.json()["chats"]}
    assert replay.returncode == 5
    assert unknown.returncode == 5 and "no chat" in unknown.stderr, unknown


async def test_log_import_from_the_server(kai: Kai, kai_emulator: Emulator) -> None:
    online = kai.online(kai_emulator)
    # chats made elsewhere (say the web app): not in the log that imports them
    made = await gather(
        kai(*online, "chat", "-m", "hello", db=kai.root / "elsewhere.db"),
        kai(*online, "chat", "-m", "list my tables", db=kai.root / "elsewhere.db"),
    )
    hello, tables = (chat_id_of(result) for result in made)
    fresh, one = kai.root / "imported.db", kai.root / "one.db"
    everything, only_one = await gather(
        kai(*online, "log", "import", "--server", db=fresh),
        kai(*online, "log", "import", "--server", "--chat", tables, db=one),
    )
    assert everything.returncode == 0, everything
    assert "Imported 4 messages from 2 chats" in everything.stdout
    assert only_one.returncode == 0 and "from 1 chats" in only_one.stdout, only_one
    env = offline(kai)
    again, history, only, found = await gather(
        kai(*online, "log", "import", "--server", db=fresh),
        kai("history", "--local", "--json-output", db=fresh, env=env),
        kai("history", "--local", "--json-output", db=one, env=env),
        kai("search", "customers", "--json-output", db=fresh, env=env),
    )
    assert again.returncode == 0 and "Imported 0 messages" in again.stdout, again
    assert {c["id"] for c in history.json()["chats"]} == {hello, tables}
    assert [c["id"] for c in only.json()["chats"]] == [tables]
    assert {h["chat_id"] for h in found.json_lines()} == {tables}


async def run_into_closed_pipe(kai: Kai, *args: str) -> tuple[int, str]:
    """Run ``kai`` with stdout a pipe whose reader is gone (``kai ... | head``)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        with trio.fail_after(30):
            done = await trio.run_process(
                [KAI, "--db", str(kai.db), *args],
                stdout=write_end,
                capture_stderr=True,
                check=False,
                env=offline(kai),
                cwd=str(kai.cwd),
            )
    finally:
        os.close(write_end)
    return done.returncode, done.stderr.decode()


async def test_a_closed_stdout_ends_quietly(kai: Kai, chats: Recorded) -> None:
    results = await gather(
        run_into_closed_pipe(kai, "log", "export"),
        run_into_closed_pipe(kai, "history", "--local"),
        run_into_closed_pipe(kai, "search", "zebra", "--json-output"),
        run_into_closed_pipe(kai, "replay", chats.bucket, "--instant"),
    )
    for status, stderr in results:
        assert (status, stderr) == (EXIT_CODES["broken_pipe"], ""), stderr


async def test_a_closed_stdout_ends_a_json_replay_quietly(kai: Kai, chats: Recorded) -> None:
    status, stderr = await run_into_closed_pipe(
        kai, "replay", chats.bucket, "--instant", "--json-output"
    )
    assert (status, stderr) == (EXIT_CODES["broken_pipe"], "")
