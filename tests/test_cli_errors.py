"""Errors of the real ``kai`` binary: one line on stderr, a documented exit code,
no traceback unless ``--debug``, and never the token.

Faults come from the emulator's knobs (``kai_emulator.faults``).
"""

from __future__ import annotations

from typing import Any

import pytest

from kai_core.testing import Emulator
from kai_shell.errors import EXIT_CODES

from .cli_common import (
    TOKEN,
    WRONG_TOKEN,
    Kai,
    Result,
    client_records,
    closed_port_url,
    gather,
)

pytestmark = pytest.mark.e2e


@pytest.fixture
def kai_emulator_options() -> dict[str, Any]:
    return {"token": TOKEN}


UNKNOWN_CHAT = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"


def one_error_line(result: Result, code: str) -> str:
    """The single ``kai: error:`` line of a failed run, checked against ``code``."""
    assert result.returncode == EXIT_CODES[code], result
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result
    assert lines[0].startswith("kai: error: "), result
    return lines[0]


async def test_missing_configuration_exits_3(kai: Kai, kai_emulator: Emulator) -> None:
    url = kai_emulator.storage_api_url
    no_token, no_token_chat, no_url, empty_token = await gather(
        kai("--url", url, "ping"),
        kai("--url", url, "chat", "-m", "hello"),
        kai("--token", TOKEN, "history"),
        kai("history", env=kai.env(STORAGE_API_TOKEN="", STORAGE_API_URL=url)),
    )
    for result in (no_token, no_token_chat, empty_token):
        line = one_error_line(result, "config")
        assert "STORAGE_API_TOKEN" in line and "--token" in line
    line = one_error_line(no_url, "config")
    assert "STORAGE_API_URL" in line and "--url" in line
    assert kai_emulator.state.requests == []


async def test_refused_token_exits_4(kai: Kai, kai_emulator: Emulator) -> None:
    em = kai_emulator
    wrong = ["--token", WRONG_TOKEN, "--url", em.storage_api_url]
    by_discovery, by_base_url, chat, debug = await gather(
        kai(*wrong, "history"),
        kai(*wrong, "--base-url", em.base_url, "history"),
        kai(*wrong, "--base-url", em.base_url, "chat", "--json-output", "-m", "hello"),
        kai(*wrong, "--base-url", em.base_url, "--debug", "get-chat", UNKNOWN_CHAT),
    )
    for result in (by_discovery, by_base_url, chat):
        line = one_error_line(result, "auth")
        assert "token was refused" in line and "STORAGE_API_TOKEN" in line
    assert chat.stdout == ""
    assert debug.returncode == EXIT_CODES["auth"]
    assert "Traceback" in debug.stderr  # --debug shows it (and Kai checked: no token)
    assert em.state.chats == {}


async def test_unreachable_server_exits_6_naming_the_url(kai: Kai) -> None:
    url = closed_port_url()
    discovery, direct, chat = await gather(
        kai("--token", TOKEN, "--url", url, "ping"),
        kai("--token", TOKEN, "--url", url, "--base-url", url, "info", "--json-output"),
        kai("--token", TOKEN, "--url", url, "--base-url", url, "chat", "-m", "hello"),
    )
    for result in (discovery, direct, chat):
        line = one_error_line(result, "unreachable")
        assert url in line, line
    assert direct.stdout == ""


async def test_not_found_and_bad_ids(kai: Kai, kai_emulator: Emulator) -> None:
    online = kai.online(kai_emulator)
    results = await gather(
        kai(*online, "get-chat", UNKNOWN_CHAT),
        kai(*online, "get-chat", "--json-output", UNKNOWN_CHAT),
        kai(*online, "delete-chat", "-y", UNKNOWN_CHAT),
        kai(*online, "get-chat", "not-a-uuid"),
        kai(*online, "delete-chat", "-y", "not-a-uuid"),
        kai(*online, "vote", "x", "m1", "up"),
        kai(*online, "chat", "--chat-id", "chat-1", "-m", "hello"),
        kai(*online, "get-chat"),  # missing argument
        kai(*online, "no-such-command"),
        kai(*online, "--service", "robot", "ping"),
        kai(*online, "get-votes", "12345"),  # a prefix no chat has
    )
    not_found, not_found_json, delete_unknown, *usage, unknown_prefix = results
    for result in (not_found, not_found_json, delete_unknown):
        line = one_error_line(result, "not_found")
        assert f"no chat {UNKNOWN_CHAT} on the server" in line  # not "another user's"
    assert "no chat id starts with '12345'" in one_error_line(unknown_prefix, "not_found")
    assert not_found_json.stdout == ""
    for result in usage:
        assert result.returncode == EXIT_CODES["usage"], result
        assert result.stdout == "", result
    for result in usage[:4]:
        assert "UUID" in result.stderr, result
    assert kai_emulator.state.chats == {}
    assert not any(
        r.path.startswith("/api/chat") and r.status < 400 for r in kai_emulator.state.requests
    )


async def test_rate_limited_exits_7(kai: Kai, kai_emulator: Emulator) -> None:
    online = kai.online(kai_emulator)
    # A message over the daily limit is not retried: waiting would not help.
    kai_emulator.faults.rate_limit(times=1, retry_after=0)
    chat = await kai(*online, "chat", "-m", "hello")
    assert "rate_limit" in one_error_line(chat, "rate_limited")
    assert kai_emulator.state.chats == {}
    # Reads are retried (Retry-After honoured), then given up on.
    kai_emulator.faults.scope = "all"
    kai_emulator.faults.rate_limit(times=100, retry_after=0)
    history = await kai(*online, "history")
    one_error_line(history, "rate_limited")
    reads = [r for r in kai_emulator.state.requests if r.path == "/api/history"]
    assert len(reads) > 1 and all(r.status == 429 for r in reads)
    kai_emulator.faults.rate_limit(times=1, retry_after=1)
    recovered = await kai(*online, "history", "--json-output")
    assert recovered.returncode == 0 and recovered.json()["chats"] == [], recovered


async def test_server_error_after_retries_exits_1(kai: Kai, kai_emulator: Emulator) -> None:
    kai_emulator.faults.fail(times=100)
    result = await kai(*kai.online(kai_emulator), "chat", "-m", "hello")
    one_error_line(result, "error")


async def test_stream_cut_or_malformed_exits_8(kai: Kai, kai_emulator: Emulator) -> None:
    online = kai.online(kai_emulator)
    kai_emulator.faults.drop_connection(after=3, times=None)
    cut = await kai(*online, "chat", "-m", "hello")
    line = one_error_line(cut, "stream")
    assert "cut" in line
    kai_emulator.faults.reset()
    kai_emulator.faults.inject_malformed(at=2, times=None)
    bad, bad_json, bad_debug = await gather(
        kai(*online, "chat", "-m", "hello"),
        kai(*online, "chat", "--json-output", "-m", "hello"),
        kai(*online, "--debug", "chat", "-m", "hello"),
    )
    for result in (bad, bad_json):
        line = one_error_line(result, "stream")
        assert "malformed" in line
    bad_json.json_lines()  # what was printed before the error still parses
    assert bad_debug.returncode == EXIT_CODES["stream"] and "Traceback" in bad_debug.stderr
    # the failure is in the log
    errors = client_records(kai.db, "stream-error")
    assert len(errors) >= 3 and all(e["message"] for e in errors)


@pytest.mark.kai_emulator(backend="assistant")  # kai-agent has no resumable streams
async def test_a_cut_stream_is_resumed(kai: Kai, kai_emulator: Emulator) -> None:
    kai_emulator.faults.drop_connection(after=4, times=1)
    result = await kai(*kai.online(kai_emulator), "chat", "-m", "list my tables")
    assert result.returncode == 0, result
    assert "You have 3 tables" in result.stdout
    assert client_records(kai.db, "resume")


async def test_unwritable_log_exits_9(kai: Kai, kai_emulator: Emulator) -> None:
    not_a_db = kai.root / "not-a.db"
    not_a_db.write_bytes(b"this is not sqlite" * 100)
    in_a_file = kai.root / "file" / "kai.db"
    (kai.root / "file").write_text("a file, not a folder")
    results = await gather(
        kai(*kai.online(kai_emulator), "chat", "-m", "hello", db=not_a_db),
        kai("history", "--local", db=in_a_file),
        kai("log", "stats", db=not_a_db),
    )
    for result in results:
        line = one_error_line(result, "log")
        assert "log" in line


async def test_broken_policy_file_stops_before_anything_is_sent(
    kai: Kai, kai_emulator: Emulator
) -> None:
    broken = kai.root / "broken.toml"
    broken.write_text('[[rule]\ntool = "create_*"\n')
    unknown_action = kai.root / "unknown.toml"
    unknown_action.write_text('[[rule]]\ntool = "create_*"\naction = "maybe"\n')
    missing = kai.root / "missing.toml"
    online = kai.online(kai_emulator)
    results = await gather(
        kai(*online, "--policy", str(broken), "chat", "-m", "create a bucket called x"),
        kai(*online, "--policy", str(unknown_action), "chat", "-m", "create a bucket called x"),
        kai(*online, "--policy", str(missing), "chat", "-m", "create a bucket called x"),
        kai(*online, "--policy", str(broken), "chat", "--json-output", "-m", "hello"),
    )
    for result, path in zip(results, (broken, unknown_action, missing, broken), strict=True):
        line = one_error_line(result, "config")
        assert path.name in line, result
        assert result.stdout == "", result
    assert "TOML" in results[0].stderr
    assert "maybe" in results[1].stderr
    assert kai_emulator.state.chats == {}
    assert not any(r.path.startswith("/api/chat") for r in kai_emulator.state.requests)
    assert not kai.db.exists() or client_records(kai.db, "user-message") == []
