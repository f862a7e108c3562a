"""The Storage API token never leaks; what kai writes is owner-only.

A recognisable token (``SECRET``) goes through every path there is: both
backends, tools and approvals, votes, resumes, every kind of error, a user
who pastes the token into a message and a server that repeats it. Then it
must not appear in the log file's bytes (database, WAL), in ``str``/``repr``
of any exception raised or of the client, in ``--debug`` output, in JSON
output, in exported files, or in the shell's history. The log, the history
file and exports are created 0600.

(The warning about a world-readable ``.env.local`` and the emulator's
loopback-only binding are tested in ``test_cli.py``,
``test_emulator_plugin.py`` and ``test_emulator_serve.py``; here the
loopback rule is checked for the addresses one might try.)
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pexpect
import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kai_core.client import KaiClient
from kai_core.events import Event, TextEvent
from kai_core.exceptions import KaiError
from kai_core.log import EventLog
from kai_core.policy import ApprovalDecision, ApprovalRequest
from kai_core.session import Session
from kai_core.testing import Say, open_emulator
from kai_core.testing.server import check_host

from .pty_support import in_thread, online_args, quit_shell, say, spawn
from .raw_server import Conn, Request, free_port, raw_server
from .reliability_support import KAI, SECRET, connected, kai_env, mode_of, run, split_at

pytestmark = pytest.mark.reliability


async def _approve(request: ApprovalRequest) -> ApprovalDecision:
    return ApprovalDecision.approve(decided_by="test")


def _no_secret(*things: object) -> None:
    for thing in things:
        for text in (str(thing), repr(thing)):
            assert SECRET not in text, text


async def _collect(errors: list[BaseException], action: Callable[[], Awaitable[Any]]) -> Any:
    """Run ``action``; keep any KaiError it raises for the leak check."""
    try:
        return await action()
    except KaiError as exc:
        errors.append(exc)
        return None


def _private_and_clean(folder: Path) -> None:
    """The log's files (database, WAL, shared memory) are 0600 and hold no token."""
    paths = sorted(folder.glob("kai.db*"))
    assert paths
    for path in paths:
        assert mode_of(path) == 0o600, path
        assert SECRET.encode() not in path.read_bytes(), path


def _found(folder: Path, name: str) -> list[Path]:
    return list(folder.rglob(name))


async def test_the_token_is_nowhere_in_the_log_errors_or_reprs(tmp_path: Path) -> None:
    db = tmp_path / "kai.db"
    log = EventLog(db)
    errors: list[BaseException] = []
    shown: list[Event] = []
    for backend in ("agent", "assistant"):
        async with connected(backend, log=log) as (emulator, client):
            # (A token repeated inside one chunk is masked; see docs/reliability.md.)
            emulator.script(
                lambda text: [Say("Your token is ", f"{SECRET}, keep it safe.")], "echo"
            )
            _no_secret(client, client._http, emulator)
            session = Session(client, ask=_approve)
            for text in ("create a bucket called b1", "list my tables", "echo", "hello"):
                shown += [e async for e in session.send(text)]
            # A user who pastes the token into a message.
            _, answer = await client.chat(f"my token is {SECRET}")
            assert SECRET not in answer and "***" in answer
            chat_id = session.chat_id
            await _collect(errors, lambda c=chat_id: client.upvote(c, "m-1"))
            # Errors of every kind.
            await _collect(errors, lambda: client.get_chat(client.new_chat_id()))  # 404
            await _collect(errors, lambda: client.chat("hello", chat_id="not-a-uuid"))
            emulator.faults.inject_malformed(at=2)
            await _collect(errors, lambda: client.chat("hello"))
            emulator.faults.drop_connection(after=3)
            await _collect(errors, lambda: client.chat("hello"))  # resumed or cut
            emulator.faults.rate_limit(times=1, retry_after=500)
            await _collect(errors, lambda: client.chat("hello"))
            emulator.faults.fail(times=1, status=503)
            await _collect(errors, lambda: client.chat("hello"))
            stream = client.send_message(client.new_chat_id(), "hello")
            _no_secret(stream)
            await stream.aclose()
    # Another server's token refused; a server that is gone; one that echoes headers.
    async with open_emulator(token="another-token") as emulator:
        async with KaiClient(SECRET, emulator.base_url, emulator.base_url, log=log) as client:
            await _collect(errors, client.get_history)
            await _collect(errors, lambda: client.chat("hello"))

    async def echo_headers(conn: Conn, request: Request) -> None:
        await conn.simple(500, repr(request.headers).encode(), {"content-type": "text/plain"})

    async with raw_server(echo_headers) as server:
        url = f"http://127.0.0.1:{server.port}"
        async with KaiClient(SECRET, url, url, max_retries=0) as client:
            await _collect(errors, client.get_history)
            await _collect(errors, lambda: client.chat("hello"))
    port = free_port()
    async with KaiClient(SECRET, "https://x", f"http://127.0.0.1:{port}", max_retries=0) as client:
        await _collect(errors, client.get_history)
    print(f"{len(errors)} errors of {len({type(e) for e in errors})} classes")
    assert len(errors) >= 10
    assert {type(e).__name__ for e in errors} >= {
        "KaiNotFoundError",
        "KaiBadRequestError",
        "KaiStreamError",
        "KaiRateLimitError",
        "KaiAuthenticationError",
        "KaiConnectionError",
    }
    for error in errors:
        _no_secret(error, error.args, getattr(error, "cause", None), error.__cause__)
        assert SECRET not in str(getattr(error, "response_data", None))
    # Nothing shown to the user carries it: the repeated token was masked.
    texts = "".join(e.text for e in shown if isinstance(e, TextEvent))
    assert "Your token is ***, keep it safe." in texts
    _no_secret(*shown)
    # The log file's bytes (database and write-ahead log), before and after a checkpoint.
    _private_and_clean(tmp_path)
    log.close()
    assert SECRET.encode() not in db.read_bytes()
    # Exports: owner-only, no token.
    with EventLog(db) as log:
        log.export_jsonl(None, tmp_path / "all.jsonl")
        chat_id = log.chats()[0].id
        (tmp_path / "chat.md").write_text(log.export_markdown(chat_id))
    exported = tmp_path / "all.jsonl"
    assert mode_of(exported) == 0o600
    assert SECRET.encode() not in exported.read_bytes()
    assert b"***" in exported.read_bytes()


def _kai_runner(tmp_path: Path, db: Path) -> Callable[..., Awaitable[Any]]:
    """Runs the real ``kai`` on ``db``, the token in its environment, stdin closed."""
    env = kai_env(tmp_path, STORAGE_API_TOKEN=SECRET)

    async def kai(*args: str) -> subprocess.CompletedProcess[bytes]:
        with trio.fail_after(30):
            return await trio.run_process(
                [str(KAI), "--db", str(db), *args],
                env=env,
                cwd=tmp_path,
                stdin=subprocess.DEVNULL,
                capture_stdout=True,
                capture_stderr=True,
                check=False,
            )

    return kai


@pytest.mark.e2e
async def test_debug_output_json_output_and_exports_of_the_cli(tmp_path: Path) -> None:
    db = tmp_path / "kai.db"
    kai = _kai_runner(tmp_path, db)

    outputs: list[bytes] = []
    async with open_emulator(backend="assistant", token=SECRET) as emulator:
        emulator.script(lambda text: [Say("Your token is ", f"{SECRET}.")], "echo")
        online = [
            "--base-url",
            emulator.base_url,
            "--url",
            emulator.base_url,
            "--service",
            "assistant",
        ]
        done = await kai(*online, "--debug", "chat", "--json-output", "-m", "echo")
        assert done.returncode == 0, done.stderr
        assert b'"text":"***."' in done.stdout  # the delta that repeated it
        outputs += [done.stdout, done.stderr]
        emulator.faults.drop_connection(after=2, times=None)
        failed = await kai(*online, "--debug", "chat", "-m", "hello")
        assert failed.returncode == 8 and b"Traceback" in failed.stderr
        outputs += [failed.stdout, failed.stderr]
        exported = tmp_path / "export.jsonl"
        done = await kai("log", "export", "-o", str(exported))
        assert done.returncode == 0, done.stderr
        assert mode_of(exported) == 0o600
        outputs.append(exported.read_bytes())
    async with open_emulator(token="another-token") as emulator:
        online = ["--base-url", emulator.base_url, "--url", emulator.base_url]
        refused = await kai(*online, "--debug", "chat", "-m", "hello")
        assert refused.returncode == 4 and b"Traceback" in refused.stderr
        outputs += [refused.stdout, refused.stderr]
    gone = f"http://127.0.0.1:{free_port()}"
    unreachable = await kai("--base-url", gone, "--url", gone, "--debug", "chat", "-m", "hi")
    assert unreachable.returncode == 6
    outputs += [unreachable.stdout, unreachable.stderr]
    for output in outputs:
        assert SECRET.encode() not in output
    _private_and_clean(tmp_path)


@pytest.fixture(scope="module")
def secrets_log(tmp_path_factory: pytest.TempPathFactory) -> EventLog:
    return EventLog(tmp_path_factory.mktemp("secrets") / "kai.db", synchronous="normal")


_ECHO = (
    b'data: {"type":"start","messageId":"m"}\n\n'
    b'data: {"type":"text-start","id":"t"}\n\n'
    b'data: {"type":"text-delta","id":"t","delta":"the token: ' + SECRET.encode() + b'"}\n\n'
    b'data: {"type":"tool-input-available","toolCallId":"c","toolName":"env","input":{}}\n\n'
    b'data: {"type":"tool-output-available","toolCallId":"c","output":{"headers":"'
    + (SECRET.encode() + b" ")
    * 3
    + b'"}}\n\n'
    b'data: {"type":"text-end","id":"t"}\n\n'
    b'data: {"type":"finish","finishReason":"stop"}\n\ndata: [DONE]\n\n'
)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(cuts=st.lists(st.integers(min_value=0, max_value=len(_ECHO)), max_size=12))
def test_a_repeated_token_is_masked_however_the_reads_split_it(
    secrets_log: EventLog, cuts: list[int]
) -> None:
    outcome = run(split_at(_ECHO, cuts), log=secrets_log, token=SECRET)
    assert outcome.error is None
    _no_secret(*outcome.events)
    texts = "".join(e.text for e in outcome.events if isinstance(e, TextEvent))
    assert texts == "the token: ***"
    logged = b"".join(
        e.body if isinstance(e.body, bytes) else e.body.encode()
        for e in secrets_log.events(outcome.chat_id)
    )
    assert SECRET.encode() not in logged
    assert logged.count(b"***") == 4


@pytest.mark.e2e
async def test_the_shell_history_is_private_and_holds_no_token(tmp_path: Path) -> None:
    async with open_emulator(token=SECRET) as emulator:

        def dialogue() -> None:
            child = spawn(tmp_path, *online_args(emulator))
            say(child, "hello")
            child.expect("How can I help")
            quit_shell(child)

        await in_thread(dialogue)
    (history,) = _found(tmp_path / "state", "shell_history")
    assert mode_of(history) == 0o600
    assert b"hello" in history.read_bytes()
    assert SECRET.encode() not in history.read_bytes()
    _private_and_clean(tmp_path)
    assert pexpect  # the dialogue ran under a pseudo-terminal


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "10.0.0.1", "example.com"])
def test_the_emulator_refuses_other_hosts_unless_asked(host: str) -> None:
    with pytest.raises(ValueError, match="allow_remote"):
        check_host(host, allow_remote=False)
    assert check_host(host, allow_remote=True) == host


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_the_emulator_takes_loopback_addresses(host: str) -> None:
    assert check_host(host, allow_remote=False) in (host, "127.0.0.1")


async def test_the_emulator_listens_on_loopback_by_default() -> None:
    async with open_emulator() as emulator:
        assert emulator.base_url.startswith("http://127.0.0.1:")


# -- a token the server repeats with JSON escapes (kai-secret-DEADBEE\u0046) ------------


def _escaped(secret: str, at: int) -> bytes:
    """The token with its character at ``at`` written as a JSON ``\\uXXXX`` escape."""
    return (secret[:at] + f"\\u{ord(secret[at]):04x}" + secret[at:][1:]).encode()


_ESCAPED_ECHO = (
    b'data: {"type":"start","messageId":"m"}\n\n'
    b'data: {"type":"text-start","id":"t"}\n\n'
    b'data: {"type":"text-delta","id":"t","delta":"the token: ' + _escaped(SECRET, -1) + b'"}\n\n'
    b'data: {"type":"tool-input-available","toolCallId":"c","toolName":"env",'
    b'"input":{"key":"' + _escaped(SECRET, 4) + b'"}}\n\n'
    b'data: {"type":"tool-output-available","toolCallId":"c","output":{"headers":"'
    + _escaped(SECRET, 0)
    + b" and "
    + SECRET.encode()
    + b'"}}\n\n'
    b'data: {"type":"text-end","id":"t"}\n\n'
    b'data: {"type":"finish","finishReason":"stop"}\n\ndata: [DONE]\n\n'
)
_TOKEN_WORD = "7c1f9e"  # a word of SECRET, as the search index splits it


def _decoded_bodies(log: EventLog, chat_id: str) -> str:
    """Every logged body of the chat, JSON-decoded and re-encoded without escapes."""
    return "".join(json.dumps(json.loads(e.body), ensure_ascii=False) for e in log.events(chat_id))


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(cuts=st.lists(st.integers(min_value=0, max_value=len(_ESCAPED_ECHO)), max_size=8))
def test_a_json_escaped_token_is_masked_in_events_log_projections_and_search(
    secrets_log: EventLog, cuts: list[int]
) -> None:
    # Before the fix only the raw bytes were masked: the decoded token reached
    # the events, the projections and the search index.
    outcome = run(split_at(_ESCAPED_ECHO, cuts), log=secrets_log, token=SECRET)
    assert outcome.error is None
    _no_secret(*outcome.events)
    texts = "".join(e.text for e in outcome.events if isinstance(e, TextEvent))
    assert texts == "the token: ***"
    assert SECRET not in _decoded_bodies(secrets_log, outcome.chat_id)
    assert secrets_log.search(_TOKEN_WORD, chat_id=outcome.chat_id) == []
    assert SECRET not in secrets_log.export_markdown(outcome.chat_id)


@pytest.mark.e2e
async def test_a_json_escaped_token_reaches_no_output_log_or_search_of_the_cli(
    tmp_path: Path,
) -> None:
    chat_id = "0f5e2c1a-8d6b-4f3e-9a7c-2b1d0e9f8a76"
    detail = (
        b'{"id":"' + chat_id.encode() + b'","title":"about ' + _escaped(SECRET, 7) + b'",'
        b'"messages":[{"id":"m","role":"assistant","parts":[{"type":"text","text":"'
        + _escaped(SECRET, 2)
        + b'"}]}]}'
    )

    async def hostile(conn: Conn, request: Request) -> None:
        if request.method == "POST" and request.path == "/api/chat":
            await conn.simple(200, _ESCAPED_ECHO, {"content-type": "text/event-stream"})
        elif request.path == f"/api/chat/{chat_id}":
            await conn.simple(200, detail, {"content-type": "application/json"})
        else:
            await conn.simple(404, b'{"code":"not_found","cause":"' + _escaped(SECRET, 3) + b'"}')

    db = tmp_path / "kai.db"
    kai = _kai_runner(tmp_path, db)

    async with raw_server(hostile) as server:
        url = f"http://127.0.0.1:{server.port}"
        online = ["--base-url", url, "--url", url, "--service", "assistant"]
        chatted = await kai(*online, "chat", "--chat-id", chat_id, "-m", "say my token")
        as_json = await kai(*online, "chat", "--json-output", "-m", "again")
        shown = await kai(*online, "get-chat", chat_id)
        imported = await kai(*online, "log", "import", "--server", "--chat", chat_id)
        missing = await kai(*online, "info")  # a 404 whose body carries the escaped token
    searched = await kai("search", _TOKEN_WORD)
    history = await kai("history", "--local")
    replayed = await kai("replay", chat_id, "--instant")
    exported = await kai("log", "export")
    for done in (chatted, as_json, shown, imported, searched, history, replayed, exported):
        assert done.returncode == 0, done.stderr
    assert b"the token: ***" in chatted.stdout
    assert missing.returncode == 5 and b"***" in missing.stderr, missing.stderr
    assert searched.stdout.strip() == b"No matches."
    for done in (chatted, as_json, shown, imported, missing, searched, history, replayed, exported):
        for output in (done.stdout, done.stderr):
            assert SECRET.encode() not in output
            decoded = output.decode().encode().decode("unicode_escape", "replace")
            assert SECRET not in decoded  # nor spelled with escapes
    with EventLog(db) as log:
        for chat in log.chats():
            assert SECRET not in _decoded_bodies(log, chat.id)
    _private_and_clean(tmp_path)
