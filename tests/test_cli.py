"""The real ``kai`` binary against the emulator: global options, server commands, chat.

Each test starts the emulator in its trio run (``kai_emulator``) and runs
``kai`` in subprocesses, several at once where they do not depend on each
other. Approvals are in ``test_cli_approvals.py``, errors in
``test_cli_errors.py``, the offline commands in ``test_cli_offline.py`` and
the terminal dialogues in ``test_cli_pty.py``.
"""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from functools import partial
from typing import Any

import pytest
import trio

from kai_core.testing import Emulator
from kai_shell.cli import COMMANDS

from .cli_common import (
    DEVNULL,
    KAI,
    TOKEN,
    Kai,
    chat_id_of,
    client_records,
    gather,
)

pytestmark = pytest.mark.e2e


@pytest.fixture
def kai_emulator_options() -> dict[str, Any]:
    return {"token": TOKEN}


# kai-client's pydantic field names (model_dump), which --json-output keeps.
CHAT_FIELDS = {"id", "title", "created_at", "updated_at", "visibility", "user_id"}
MESSAGE_FIELDS = {"id", "role", "parts", "created_at", "metadata"}
EVENT_FIELDS = {
    "text": {"type", "text", "state"},
    "step-start": {"type"},
    "tool-call": {"type", "tool_call_id", "tool_name", "state", "input", "output", "approval"},
    "tool-approval-request": {"type", "approval_id", "tool_call_id"},
    "data-usage": {"type", "usage"},
    "finish": {"type", "finish_reason", "usage"},
    "error": {"type", "message", "code"},
    "tool-output-error": {"type", "tool_call_id", "error_text"},
}
USAGE_FIELDS = {
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
}


def assert_kai_client_event_shape(event: dict[str, Any]) -> None:
    """An event line has (at least) the fields kai-client's model_dump() gives."""
    expected = EVENT_FIELDS.get(event["type"])
    if expected is not None:
        assert expected <= set(event), event
    if isinstance(event.get("usage"), dict):
        assert USAGE_FIELDS <= set(event["usage"]), event


# -- version, help ---------------------------------------------------------------


async def test_version_and_help_list_every_command(kai: Kai) -> None:
    version, help_long, help_short, chat_help, log_help = await gather(
        kai("--version", db=False),
        kai("--help", db=False),
        kai("-h", db=False),
        kai("chat", "--help", db=False),
        kai("log", "--help", db=False),
    )
    assert version.returncode == 0
    assert re.fullmatch(r"kai \d+\.\d+\.\d+\S*\n", version.stdout), version
    assert help_long.returncode == 0 and help_long.stdout == help_short.stdout
    listed = help_long.stdout.split("Commands:", 1)[1]
    for name in COMMANDS:
        assert re.search(rf"^\s+{re.escape(name)}\s", listed, re.M), name
    for option in ("--token", "--url", "--base-url", "--service", "--db", "--no-log"):
        assert option in help_long.stdout
    for option in ("--renderer", "--policy", "--debug", "--version"):
        assert option in help_long.stdout
    assert chat_help.returncode == 0
    for option in ("--message", "-m", "--chat-id", "--auto-approve", "--json-output"):
        assert option in chat_help.stdout
    for name in ("path", "stats", "export", "import", "rebuild", "backup", "forget"):
        assert re.search(rf"^\s+{name}\s", log_help.stdout, re.M), name


# -- configuration: flags, environment, .env.local, discovery ----------------------


async def test_ping_and_info_by_flags_env_and_discovery(kai: Kai, kai_emulator: Emulator) -> None:
    em = kai_emulator
    env_discover = kai.env(STORAGE_API_TOKEN=TOKEN, STORAGE_API_URL=em.storage_api_url)
    env_base = kai.env(
        STORAGE_API_TOKEN=TOKEN,
        STORAGE_API_URL=em.storage_api_url,
        KAI_BASE_URL=em.base_url,
        KAI_SERVICE="agent",
    )
    env_wrong_service = kai.env(
        STORAGE_API_TOKEN=TOKEN, STORAGE_API_URL=em.storage_api_url, KAI_SERVICE="assistant"
    )
    ping, info, info_json, info_env, info_base_env, wrong_service, flag_wins = await gather(
        kai(*kai.online(em), "ping"),
        kai(*kai.online(em, discover=True), "info"),
        kai(*kai.online(em, discover=True), "info", "--json-output"),
        kai("info", env=env_discover),
        kai("info", env=env_base),
        kai("info", env=env_wrong_service),
        # a flag beats the environment
        kai("--service", "agent", "info", env=env_wrong_service),
    )
    assert ping.returncode == 0 and ping.stdout.startswith("Server is alive: "), ping
    assert info.returncode == 0, info
    assert "App: kai-agent" in info.stdout and "Backend: kai-agent" in info.stdout
    assert "Connected MCP servers: 1" in info.stdout
    data = info_json.json()
    assert {"timestamp", "uptime", "app_name", "app_version", "server_version"} <= set(data)
    assert "connected_mcp" in data
    assert "Backend: kai-agent" in info_env.stdout, info_env
    assert info_base_env.returncode == 0 and "App: kai-agent" in info_base_env.stdout
    # KAI_SERVICE=assistant on a server that lists only kai-agent: a clear error
    assert wrong_service.returncode != 0
    assert "kai-assistant" in wrong_service.stderr and "not found" in wrong_service.stderr
    assert len(wrong_service.stderr.strip().splitlines()) == 1, wrong_service
    assert flag_wins.returncode == 0 and "Backend: kai-agent" in flag_wins.stdout
    # the calls reached the emulator: discovery asked /v2/storage
    assert any(r.path == "/v2/storage" for r in em.state.requests)


@pytest.mark.kai_emulator(backend="assistant")
async def test_discovery_of_the_assistant_backend(kai: Kai, kai_emulator: Emulator) -> None:
    em = kai_emulator
    default, by_flag, agent_missing = await gather(
        kai(*kai.online(em, discover=True), "info"),
        kai(*kai.online(em, discover=True), "--service", "assistant", "info"),
        kai(*kai.online(em, discover=True), "--service", "agent", "info"),
    )
    # no kai-agent listed: discovery falls back to kai-assistant
    assert default.returncode == 0 and "Backend: kai-assistant" in default.stdout, default
    assert by_flag.returncode == 0 and "Backend: kai-assistant" in by_flag.stdout, by_flag
    assert agent_missing.returncode == 3, agent_missing
    assert "kai-agent" in agent_missing.stderr and "--service" in agent_missing.stderr


async def test_env_local_is_loaded_and_a_readable_one_warned_about(
    kai: Kai, kai_emulator: Emulator
) -> None:
    private, shared = kai.root / "private", kai.root / "shared"
    for folder, mode in ((private, 0o600), (shared, 0o644)):
        folder.mkdir()
        env_file = folder / ".env.local"
        env_file.write_text(
            "# kai settings\n"
            f"STORAGE_API_TOKEN={TOKEN}\n"
            f'export STORAGE_API_URL="{kai_emulator.storage_api_url}"\n'
            f"KAI_BASE_URL='{kai_emulator.base_url}'\n"
        )
        env_file.chmod(mode)
    quiet, warned, elsewhere = await gather(
        kai("ping", cwd=private),
        kai("ping", cwd=shared),
        kai("ping"),  # another folder: no .env.local, no token
    )
    assert quiet.returncode == 0 and quiet.stderr == "", quiet
    assert warned.returncode == 0, warned
    assert "readable by other users" in warned.stderr and "chmod 600" in warned.stderr
    assert elsewhere.returncode == 3 and "STORAGE_API_TOKEN" in elsewhere.stderr


async def test_env_local_does_not_override_the_environment_and_is_checked(
    kai: Kai, kai_emulator: Emulator
) -> None:
    folder = kai.root / "proj"
    folder.mkdir()
    env_file = folder / ".env.local"
    env_file.write_text("STORAGE_API_TOKEN=not-the-token\nSTORAGE_API_URL=http://127.0.0.1:9\n")
    env_file.chmod(0o600)
    env = kai.env(
        STORAGE_API_TOKEN=TOKEN,
        STORAGE_API_URL=kai_emulator.storage_api_url,
        KAI_BASE_URL=kai_emulator.base_url,
    )
    bad = kai.root / "bad"
    bad.mkdir()
    (bad / ".env.local").write_text("KAI_SERVICE=robot\n")
    (bad / ".env.local").chmod(0o600)
    result, bad_service = await gather(
        kai("history", cwd=folder, env=env),
        kai("history", cwd=bad, env=env),
    )
    assert result.returncode == 0, result
    # a value from .env.local is checked like the flag's
    assert bad_service.returncode == 2 and "robot" in bad_service.stderr, bad_service


# -- chat ---------------------------------------------------------------------------


async def test_chat_message_and_continuing_a_chat(kai: Kai, kai_emulator: Emulator) -> None:
    online = kai.online(kai_emulator)
    first = await kai(*online, "chat", "-m", "hello")
    assert first.returncode == 0, first
    chat_id = chat_id_of(first)
    uuid.UUID(chat_id)
    assert "How can I help?" in first.stdout
    second = await kai(*online, "chat", "--chat-id", chat_id, "-m", "list my tables")
    assert second.returncode == 0, second
    assert chat_id_of(second) == chat_id
    assert "You have 3 tables" in second.stdout
    chat = kai_emulator.state.chats[chat_id]
    assert [m["role"] for m in chat.messages] == ["user", "assistant", "user", "assistant"]
    assert chat.messages[2]["parts"][0]["text"] == "list my tables"
    # both turns are in the log
    sent = client_records(kai.db, "user-message", chat_id)
    assert [r["message"]["parts"][0]["text"] for r in sent] == ["hello", "list my tables"]


async def test_chat_json_output_lines_parse_with_kai_client_field_names(
    kai: Kai, kai_emulator: Emulator
) -> None:
    result = await kai(*kai.online(kai_emulator), "chat", "--json-output", "-m", "list my tables")
    assert result.returncode == 0, result
    events = result.json_lines()  # every line parses
    assert "Chat ID" not in result.stdout
    types = [e["type"] for e in events]
    assert {"step-start", "text", "tool-call", "finish"} <= set(types)
    for event in events:
        assert_kai_client_event_shape(event)
    states = [e["state"] for e in events if e["type"] == "tool-call"]
    assert states == ["started", "input-available", "output-available"]
    tool = [e for e in events if e["type"] == "tool-call"][-1]
    assert tool["tool_name"] == "list_tables" and tool["output"]["count"] == 3
    assert events[-1]["type"] == "finish" and events[-1]["finish_reason"] == "stop"
    text = "".join(e["text"] for e in events if e["type"] == "text")
    assert "You have 3 tables" in text


async def test_chat_reads_the_message_from_stdin_and_never_waits(
    kai: Kai, kai_emulator: Emulator
) -> None:
    online = kai.online(kai_emulator)
    piped, closed, empty, blank, spaces = await gather(
        kai(*online, "chat", stdin=b"hello from a pipe\n"),
        kai(*online, "chat", stdin=DEVNULL),
        kai(*online, "chat", "-m", ""),
        kai(*online, "chat", stdin=b"  \n\n"),
        kai(*online, "chat", "-m", "   "),
    )
    assert piped.returncode == 0, piped
    chat = kai_emulator.state.chats[chat_id_of(piped)]
    assert chat.messages[0]["parts"][0]["text"].strip() == "hello from a pipe"
    for result in (closed, empty, blank, spaces):
        assert result.returncode == 2, result
        assert result.stderr.startswith("kai: error: "), result
        assert len(result.stderr.strip().splitlines()) == 1, result
    assert "-m" in closed.stderr  # says how to give a message
    assert len(kai_emulator.state.chats) == 1  # nothing sent for the empty ones


async def test_chat_renderers_and_no_log(kai: Kai, kai_emulator: Emulator) -> None:
    online = kai.online(kai_emulator)
    other_db = kai.root / "other.db"
    plain, as_json, markdown, unknown, unlogged = await gather(
        kai(*online, "--renderer", "plain", "chat", "-m", "hello"),
        kai(*online, "--renderer", "json", "chat", "-m", "hello"),
        kai(*online, "--renderer", "markdown", "chat", "-m", "hello"),
        kai(*online, "--renderer", "nope", "chat", "-m", "hello"),
        kai(*online, "--no-log", "chat", "-m", "hello", db=other_db),
    )
    for result in (plain, markdown, unlogged):
        assert result.returncode == 0, result
        assert "How can I help?" in result.stdout
    assert as_json.returncode == 0
    json_lines = [line for line in as_json.stdout.splitlines() if line.startswith("{")]
    assert json_lines and all(line.endswith("}") for line in json_lines)
    assert unknown.returncode == 2 and "nope" in unknown.stderr, unknown
    assert not other_db.exists() or not client_records(other_db, "user-message")
    logged = {r["message"]["parts"][0]["text"] for r in client_records(kai.db, "user-message")}
    assert logged == {"hello"}
    assert len(client_records(kai.db, "user-message")) == 3  # plain, json, markdown


async def test_chat_answer_error_exits_10(kai: Kai, kai_emulator: Emulator) -> None:
    online = kai.online(kai_emulator)
    boom, boom_json = await gather(
        kai(*online, "chat", "-m", "boom"),
        kai(*online, "chat", "--json-output", "-m", "boom"),
    )
    assert boom.returncode == 10, boom
    assert boom_json.returncode == 10, boom_json
    errors = [e for e in boom_json.json_lines() if e["type"] == "error"]
    assert errors and errors[0]["message"]
    assert_kai_client_event_shape(errors[0])


# -- history, get-chat, delete-chat, vote, get-votes ---------------------------------


async def seed_chats(kai: Kai, emulator: Emulator, *texts: str) -> list[str]:
    """Chat ids of one ``kai chat -m`` per text (run one after another: ordered)."""
    ids = []
    for text in texts:
        result = await kai(*kai.online(emulator), "chat", "-m", text)
        assert result.returncode == 0, result
        ids.append(chat_id_of(result))
    return ids


async def test_history_text_and_json(kai: Kai, kai_emulator: Emulator) -> None:
    first, second, third = await seed_chats(kai, kai_emulator, "hello", "list my tables", "think")
    online = kai.online(kai_emulator)
    text, limited, as_json, all_json, bad_limit = await gather(
        kai(*online, "history"),
        kai(*online, "history", "-n", "2"),
        kai(*online, "history", "-n", "2", "--json-output"),
        kai(*online, "history", "--limit", "50", "--json-output"),
        kai(*online, "history", "-n", "0"),
    )
    assert text.returncode == 0, text
    rows = [line.split()[0] for line in text.stdout.splitlines() if line.strip()]
    assert rows == [third, second, first]
    assert "list my tables" in text.stdout
    assert [line.split()[0] for line in limited.stdout.splitlines()[:2]] == [third, second]
    assert "more" in limited.stderr and "more" not in limited.stdout  # a hint, not data
    data = as_json.json()
    assert set(data) == {"chats", "hasMore"} and data["hasMore"] is True
    assert [c["id"] for c in data["chats"]] == [third, second]
    for chat in data["chats"]:
        assert CHAT_FIELDS <= set(chat), chat
    assert all_json.json()["hasMore"] is False and len(all_json.json()["chats"]) == 3
    assert bad_limit.returncode == 2, bad_limit


async def test_get_chat_shows_text_and_tool_calls(kai: Kai, kai_emulator: Emulator) -> None:
    (chat_id,) = await seed_chats(kai, kai_emulator, "list my tables")
    online = kai.online(kai_emulator)
    text, as_json = await gather(
        kai(*online, "get-chat", chat_id),
        kai(*online, "get-chat", chat_id, "--json-output"),
    )
    assert text.returncode == 0, text
    assert f"Chat ID: {chat_id}" in text.stdout
    assert "Title: list my tables" in text.stdout and "Messages: 2" in text.stdout
    assert "[USER]" in text.stdout and "[ASSISTANT]" in text.stdout
    assert "\nlist my tables\n" in text.stdout  # the user's words, not only roles
    assert "You have 3 tables" in text.stdout  # the answer's text
    assert "[tool list_tables: output-available]" in text.stdout
    assert "in.c-main.customers" in text.stdout  # the tool's output
    data = as_json.json()
    assert CHAT_FIELDS | {"messages"} <= set(data)
    assert data["id"] == chat_id and len(data["messages"]) == 2
    for message in data["messages"]:
        assert MESSAGE_FIELDS <= set(message), message
    assert any(p["type"] == "tool-list_tables" for p in data["messages"][1]["parts"])


async def test_delete_chat_needs_confirmation(kai: Kai, kai_emulator: Emulator) -> None:
    keep, gone = await seed_chats(kai, kai_emulator, "hello", "hello again")
    online = kai.online(kai_emulator)
    refused, closed = await gather(
        kai(*online, "delete-chat", keep),
        kai(*online, "delete-chat", keep, stdin=DEVNULL),
    )
    for result in (refused, closed):
        assert result.returncode == 2 and "--yes" in result.stderr, result
    assert keep in kai_emulator.state.chats
    deleted = await kai(*online, "delete-chat", "-y", gone)
    assert deleted.returncode == 0 and f"Deleted chat {gone}" in deleted.stdout, deleted
    assert gone not in kai_emulator.state.chats and keep in kai_emulator.state.chats
    after, long_flag = await gather(
        kai(*online, "get-chat", gone),
        kai(*online, "delete-chat", "--yes", keep),
    )
    assert after.returncode == 5, after
    assert long_flag.returncode == 0 and not kai_emulator.state.chats
    assert len(client_records(kai.db, "delete-chat")) == 2


async def test_vote_and_get_votes(kai: Kai, kai_emulator: Emulator) -> None:
    (chat_id,) = await seed_chats(kai, kai_emulator, "hello")
    answer_id = kai_emulator.state.chats[chat_id].messages[1]["id"]
    online = kai.online(kai_emulator)
    empty = await kai(*online, "get-votes", chat_id)
    assert empty.returncode == 0 and "No votes" in empty.stdout, empty
    down = await kai(*online, "vote", chat_id, answer_id, "down")
    assert down.returncode == 0 and "down" in down.stdout, down
    up = await kai(*online, "vote", chat_id, answer_id, "up")
    assert up.returncode == 0 and "up" in up.stdout, up
    assert kai_emulator.state.votes[(chat_id, answer_id)] is True
    text, as_json, bad_type = await gather(
        kai(*online, "get-votes", chat_id),
        kai(*online, "get-votes", chat_id, "--json-output"),
        kai(*online, "vote", chat_id, answer_id, "sideways"),
    )
    assert f"{answer_id}: up" in text.stdout, text
    votes = as_json.json()
    assert len(votes) == 1
    assert {"chat_id", "message_id", "type"} <= set(votes[0])
    assert votes[0]["message_id"] == answer_id and votes[0]["type"] == "up"
    assert bad_type.returncode == 2, bad_type
    assert [r["type"] for r in client_records(kai.db, "vote", chat_id)] == ["down", "up"]


# -- plugins, demo, serve -------------------------------------------------------------


async def test_plugins_listing(kai: Kai) -> None:
    policy = kai.root / "policy.toml"
    policy.write_text('[[rule]]\ntool = "create_*"\naction = "ask"\n')
    text, as_json, with_policy, hook = await gather(
        kai("plugins"),
        kai("plugins", "--json-output"),
        kai("--policy", str(policy), "plugins", "--json-output"),
        kai("plugins", "--hook", "kai_vote"),
    )
    assert text.returncode == 0 and "renderers: kai_register_renderers" in text.stdout, text
    rows = as_json.json()
    assert {row["name"] for row in rows} >= {"renderers", "voting"}
    for row in rows:
        assert {"name", "hooks", "builtin"} <= set(row)
        assert isinstance(row["hooks"], list)
    # The permission rules are the session's own engine, not a plugin.
    assert with_policy.returncode == 0, with_policy
    assert "policy-file" not in {row["name"] for row in with_policy.json()}
    assert hook.stdout.strip() == "voting: kai_vote", hook


async def test_demo_without_a_terminal_plays_the_script(kai: Kai) -> None:
    agent, assistant = await gather(
        kai("demo", db=False),
        kai("demo", "--backend", "assistant", db=kai.root / "demo2.db"),
    )
    for result in (agent, assistant):
        assert result.returncode == 0, result
        assert ">>> hello" in result.stdout
        assert "You have 3 tables" in result.stdout
        assert "create_bucket" in result.stdout and "approved" in result.stdout
        assert "in.c-demo was created" in result.stdout
    assert "kai-assistant" in assistant.stdout
    # without --db the demo keeps to its own log, away from the user's chats
    demo_db = kai.home / "data" / "kai" / "demo.db"
    assert demo_db.exists() and not (kai.home / "data" / "kai" / "kai.db").exists()
    assert f"kai --db {demo_db} history --local" in agent.stdout
    # recorded, so the suggested command works
    local = await kai("history", "--local", db=demo_db)
    assert local.returncode == 0 and "hello" in local.stdout, local


async def test_serve_runs_until_terminated(kai: Kai) -> None:
    async with trio.open_nursery() as nursery:
        process = await nursery.start(
            partial(
                trio.run_process,
                [KAI, "serve", "--port", "0", "--token", TOKEN, "--backend", "assistant"],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                check=False,
                env=kai.env(),
                cwd=str(kai.cwd),
            )
        )
        line = b""
        with trio.fail_after(20):
            while not line.endswith(b"\n"):
                line += await process.stdout.receive_some(4096)
        url = re.search(rb"on (http://127\.0\.0\.1:\d+)", line)
        assert url, line
        base = url.group(1).decode()
        assert TOKEN.encode() not in line
        online = ["--token", TOKEN, "--url", base]
        info = await kai(*online, "info")
        assert info.returncode == 0 and "Backend: kai-assistant" in info.stdout, info
        process.terminate()
    assert process.returncode == 0


def test_env_of_the_suite_loads_no_plugins() -> None:
    # Installed third-party plugins must not load inside the test suite.
    assert os.environ.get("KAI_LOAD_PLUGINS") == ""
