"""The real ``kai`` binary, used with the habits of git, llm and pgcli users (issue 13):
global options after the command, chat id prefixes, pipes, readable times,
clear words for a chat the server does not know, and replays without dead air.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from kai_core.log import EventLog
from kai_core.testing import Emulator
from kai_shell.commands.local import paced

from .cli_common import TOKEN, WRONG_TOKEN, Kai, chat_id_of, client_records

pytestmark = pytest.mark.e2e

PROJECT = Path(__file__).resolve().parent.parent
DATE_TIME = r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}"


@pytest.fixture
def kai_emulator_options() -> dict[str, Any]:
    return {"token": TOKEN}


async def new_chat(kai: Kai, em: Emulator, text: str, *extra: str) -> str:
    result = await kai(*kai.online(em), "chat", *extra, "-m", text)
    assert result.returncode == 0, result
    return chat_id_of(result)


def chat_with_prefix(prefix: str) -> str:
    """A fresh chat id starting with ``prefix``."""
    return prefix + str(uuid.uuid4())[len(prefix) :]


# -- 1. global options anywhere ------------------------------------------------------


async def test_global_options_after_the_command(kai: Kai, kai_emulator: Emulator) -> None:
    em = kai_emulator
    chat_id = await new_chat(kai, em, "hello")
    other_db = kai.root / "other.db"
    ping = await kai("ping", *kai.online(em), db=False)
    assert ping.returncode == 0 and "Server is alive" in ping.stdout, ping
    # after the command wins over before it
    override = await kai("--token", WRONG_TOKEN, "ping", "--token", TOKEN, *kai.online(em)[2:])
    assert override.returncode == 0, override
    history = await kai("history", "--local", "--db", str(kai.db), db=False)
    assert chat_id in history.stdout, history
    empty = await kai("history", "--local", "--db", str(other_db), db=False)
    assert chat_id not in empty.stdout and empty.returncode == 0, empty
    replayed = await kai("replay", chat_id, "--instant", "--renderer", "json")
    assert replayed.returncode == 0, replayed
    events = [json.loads(line) for line in replayed.stdout.splitlines() if line.startswith("{")]
    assert {event["type"] for event in events} >= {"text", "finish"}
    nested = await kai("log", "export", chat_id, "--db", str(kai.db), db=False)
    assert nested.returncode == 0 and chat_id in nested.stdout, nested
    for command in (["ping"], ["replay"], ["log", "export"]):
        shown = await kai(*command, "--help", db=False)
        section = shown.stdout.split("Global options", 1)
        assert len(section) == 2, shown
        for option in ("--token", "--url", "--db", "--no-log", "--renderer", "--debug"):
            assert option in section[1], (command, option)
    # a command's own flag of the same name keeps its meaning
    serve_help = await kai("serve", "--help", db=False)
    own, shared = serve_help.stdout.split("Global options", 1)
    assert "--token" in own and "--token" not in shared and "--db" in shared


# -- 2. chat ids people can type --------------------------------------------------------


async def test_chat_id_prefixes_continue_and_latest(kai: Kai, kai_emulator: Emulator) -> None:
    em = kai_emulator
    first = await new_chat(kai, em, "what tables do I have", "--chat-id", chat_with_prefix("aaaa1"))
    second = await new_chat(kai, em, "hello there", "--chat-id", chat_with_prefix("aaaa2"))
    prefix = first[:6]
    replayed = await kai("replay", prefix, "--instant")
    assert replayed.returncode == 0 and ">>> what tables do I have" in replayed.stdout, replayed
    shown = await kai(*kai.online(em), "get-chat", prefix)
    assert shown.returncode == 0 and f"Chat ID: {first}" in shown.stdout, shown
    votes = await kai(*kai.online(em), "get-votes", prefix)
    assert votes.returncode == 0, votes
    exported = await kai("log", "export", prefix)
    assert exported.returncode == 0 and {e["chat_id"] for e in exported.json_lines()} == {first}
    # ambiguous: exit 2, the candidates listed with their titles
    ambiguous = await kai("replay", "aaaa", "--instant")
    assert ambiguous.returncode == 2, ambiguous
    assert first in ambiguous.stderr and second in ambiguous.stderr
    assert "what tables do I have" in ambiguous.stderr and "hello there" in ambiguous.stderr
    too_short = await kai("replay", "aaa")
    assert too_short.returncode == 2 and "at least 4" in too_short.stderr, too_short
    unknown = await kai("replay", "ffff0")
    assert unknown.returncode == 5 and "no chat id starts with 'ffff0'" in unknown.stderr
    # chat --chat-id PREFIX continues that chat
    again = await new_chat(kai, em, "and one more", "--chat-id", prefix)
    assert again == first
    # -c continues the most recent chat (first, just now); a bare replay shows it
    latest = await new_chat(kai, em, "the latest words", "-c")
    assert latest == first
    bare = await kai("replay", "--instant")
    assert bare.returncode == 0 and ">>> the latest words" in bare.stdout, bare
    # a chat the log does not know is found on the server
    server_only = await kai(
        *kai.online(em), "--no-log", "chat", "--chat-id", chat_with_prefix("bbbb9"), "-m", "hi"
    )
    assert server_only.returncode == 0, server_only
    from_server = await kai(*kai.online(em), "get-chat", "bbbb9")
    assert from_server.returncode == 0 and "Chat ID: bbbb9" in from_server.stdout, from_server
    # log forget takes a prefix too, and says which whole id it forgot
    forgot = await kai("log", "forget", "aaaa2", "--yes")
    assert forgot.returncode == 0 and f"Forgot chat {second} (" in forgot.stdout, forgot


# -- 3. pipes ------------------------------------------------------------------------------


async def test_piped_text_follows_the_message_and_hints_go_to_stderr(
    kai: Kai, kai_emulator: Emulator
) -> None:
    em = kai_emulator
    result = await kai(
        *kai.online(em), "chat", "-m", "summarize this", stdin=b"NOTE one\nNOTE two\n"
    )
    assert result.returncode == 0, result
    (sent,) = client_records(kai.db, "user-message")
    text = sent["message"]["parts"][0]["text"]
    assert text == "summarize this\n\nNOTE one\nNOTE two\n"
    await new_chat(kai, em, "second")
    listing = await kai("history", "--local", "-n", "1")
    assert listing.returncode == 0 and len(listing.stdout.splitlines()) == 1, listing
    assert "and more" in listing.stderr and "and more" not in listing.stdout


# -- 4. readable output, clear words ---------------------------------------------------------


async def test_local_times_activity_order_and_deleted_marks(
    kai: Kai, kai_emulator: Emulator
) -> None:
    em = kai_emulator
    older = await new_chat(kai, em, "list my tables")
    newer = await new_chat(kai, em, "hello")
    deleted = await kai(*kai.online(em), "delete-chat", newer, "--yes")
    assert deleted.returncode == 0, deleted
    await new_chat(kai, em, "still here?", "--chat-id", older)  # older is now the most active
    listing = await kai("history", "--local")
    lines = listing.stdout.splitlines()
    assert [line.split()[0] for line in lines] == [older, newer], listing
    assert re.search(rf"^{older}  {DATE_TIME}  list my tables$", lines[0]), lines
    assert lines[1].endswith("(deleted on server)"), lines
    as_json = (await kai("history", "--local", "--json-output")).json()
    chat = as_json["chats"][0]
    assert isinstance(chat["last_ts"], float) and chat["last_ts_iso"].startswith("20")
    stats = await kai("log", "stats")
    assert re.search(rf"^last_ts: {DATE_TIME}$", stats.stdout, re.M), stats
    stats_json = (await kai("log", "stats", "--json-output")).json()
    assert isinstance(stats_json["first_ts"], float) and "T" in stats_json["first_ts_iso"]
    found = await kai("search", "tables")
    assert re.search(rf"^{older}  {DATE_TIME}  ", found.stdout, re.M), found
    hit = (await kai("search", "tables", "--json-output")).json_lines()[0]
    assert isinstance(hit["ts"], float) and hit["ts_iso"].startswith("20")


async def test_bad_url_and_a_chat_the_server_does_not_know(
    kai: Kai, kai_emulator: Emulator
) -> None:
    em = kai_emulator
    before = len(em.state.requests)
    bad = await kai("ping", "--token", TOKEN, "--url", "not-a-url")
    assert bad.returncode == 2, bad
    assert "'not-a-url' is not a URL" in bad.stderr and "https://" in bad.stderr
    bad_base = await kai("ping", *kai.online(em)[:4], "--base-url", "localhost:3000")
    assert bad_base.returncode == 2 and "--base-url" in bad_base.stderr, bad_base
    assert len(em.state.requests) == before  # nothing was sent
    unknown = str(uuid.uuid4())
    for command in (["delete-chat", unknown, "--yes"], ["get-chat", unknown]):
        result = await kai(*kai.online(em), *command)
        assert result.returncode == 5, result
        assert f"no chat {unknown} on the server" in result.stderr
        assert "another user" not in result.stderr


# -- 5. replay without dead air -------------------------------------------------------


def stretched_copy(source: Path, dest: Path, tmp: Path) -> str:
    """``source``'s chat, re-timed: the usage and finish of each answer come 600 s
    late (nothing to see), the next question 1200 s later (the user away)."""
    export = tmp / "chat.jsonl"
    with EventLog(source) as log:
        log.export_jsonl(None, export)
    lines = [json.loads(line) for line in export.read_text().splitlines()]
    shift = 0.0
    for line in lines:
        if line["type"] == "user-message" and line["seq"] > 1:
            shift += 1200
        if line["type"] in ("data-usage", "finish"):
            line["ts"] += shift + 600
        else:
            line["ts"] += shift
    export.write_text("".join(json.dumps(line) + "\n" for line in lines))
    with EventLog(dest) as log:
        log.import_jsonl(export)
    return str(lines[0]["chat_id"])


async def test_replay_caps_gaps_and_skips_what_shows_nothing(
    kai: Kai, kai_emulator: Emulator
) -> None:
    em = kai_emulator
    chat_id = await new_chat(kai, em, "hello")
    await new_chat(kai, em, "list my tables", "--chat-id", chat_id)
    stretched = kai.root / "stretched.db"
    assert stretched_copy(kai.db, stretched, kai.root) == chat_id
    with EventLog(stretched) as log:
        steps = list(log.replay_steps(chat_id))
    pauses = [(step.record.type, pause) for step, _, pause in paced(steps, max_pause=2.0)]
    assert all(pause == 0.0 for kind, pause in pauses if kind in ("data-usage", "finish"))
    assert max(p for _, p in pauses) == 2.0  # the 1200 s away, capped
    assert sum(p for _, p in pauses) < 2.0 + 1.0  # the rest is the recorded rhythm
    # the real process, with a tighter cap: a 1800 s recording plays at once
    result = await kai("replay", chat_id[:8], "--max-pause", "0.01", db=stretched)
    assert result.returncode == 0, result
    assert ">>> list my tables" in result.stdout and "list_tables" in result.stdout


# -- 7. hints that work the way kai was started -----------------------------------------


async def test_hints_name_kai_as_it_was_started(kai: Kai) -> None:
    import os
    import shutil

    import trio

    from .cli_common import KAI

    venv_bin = str(Path(KAI).parent)
    off_path = os.pathsep.join(
        p for p in os.environ.get("PATH", "").split(os.pathsep) if p != venv_bin
    )
    on_path = venv_bin + os.pathsep + off_path
    demo_db = kai.root / "demo.db"
    by_path = await kai("demo", env=kai.env(PATH=off_path), db=demo_db)
    assert f"Try: {KAI} --db {demo_db} history --local" in by_path.stdout, by_path
    by_name = await kai("demo", env=kai.env(PATH=on_path), db=demo_db)
    assert f"Try: kai --db {demo_db} history --local" in by_name.stdout, by_name
    uv = shutil.which("uv")
    if uv is None:
        pytest.fail("uv is needed to run this test (the project is run with it)")
    with trio.fail_after(60):
        done = await trio.run_process(
            [uv, "run", "--no-sync", "--offline", "kai", "--db", str(demo_db), "demo"],
            cwd=str(PROJECT),
            env=kai.env(PATH=off_path),
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    shown = done.stdout.decode()
    assert done.returncode == 0, done.stderr.decode()
    assert f"Try: uv run kai --db {demo_db} history --local" in shown, shown
