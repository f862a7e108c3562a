"""The real ``kai-shell`` process under a pseudo-terminal (pexpect), against the emulator.

The emulator runs in the test's trio loop; the pexpect dialogue, which
blocks, runs in a worker thread (helpers in ``pty_support.py``). Ctrl-C is sent as the terminal sends it
(``\\x03`` on the pty), so the kernel's line discipline turns it into SIGINT
while an answer streams, and into a key press while the prompt is showing.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import msgspec
import pexpect
import pytest

from kai_core.log import EventLog
from kai_core.testing import Emulator, Say, open_emulator

from .pty_support import ANSI, PROMPT, in_thread, online_args, quit_shell, say, spawn

pytestmark = pytest.mark.e2e

OFFLINE_PROMPT = re.compile(rf"kai{ANSI} \(offline\){ANSI}> ")


def client_records(db: Path, kind: str) -> list[dict[str, Any]]:
    with EventLog(db) as log:
        return [
            msgspec.json.decode(e.body)
            for e in log.events()
            if e.origin == "client" and e.type == kind
        ]


async def record_chat(emulator: Emulator, db: Path, text: str) -> str:
    """Record a chat in the log the way any front end would (in-process); its id."""
    from kai_core.client import KaiClient
    from kai_core.session import Session

    with EventLog(db) as log:
        async with KaiClient(
            storage_api_token=emulator.token,
            storage_api_url=emulator.storage_api_url,
            base_url=emulator.base_url,
            backend=emulator.backend,
            log=log,
        ) as client:
            session = Session(client)
            async with session.stream(text) as events:
                async for _ in events:
                    pass
            return session.chat_id


async def test_streamed_answer_and_approvals_yes_and_no(
    tmp_path: Path, children: list[pexpect.spawn]
) -> None:
    async with open_emulator() as emulator:

        def dialogue() -> None:
            child = spawn(tmp_path, *online_args(emulator))
            children.append(child)
            say(child, "hello")
            child.expect("How can I help")
            say(child, "create a bucket called b1")
            child.expect("wants to run")
            child.expect(r'"name": "b1"')
            child.expect(r"\[y/N\]")
            child.send("y\r")
            child.expect("approved by user")
            child.expect("was created")
            say(child, "create a bucket called b2")
            child.expect(r"\[y/N\]")
            child.send("n not today\r")
            child.expect(r"rejected by user \(not today\)")
            quit_shell(child)

        await in_thread(dialogue)
    decided = [
        (a["approved"], a["reason"]) for a in client_records(tmp_path / "kai.db", "approval")
    ]
    assert decided == [(True, None), (False, "not today")]


async def test_ctrl_c_stops_a_slow_answer_and_the_shell_goes_on(
    tmp_path: Path, children: list[pexpect.spawn]
) -> None:
    async with open_emulator() as emulator:
        emulator.script(
            lambda text: [Say(*(f"piece {n}. " for n in range(1, 60)), pause=0.1)],
            trigger="slowly",
        )

        def dialogue() -> None:
            child = spawn(tmp_path, *online_args(emulator))
            children.append(child)
            child.expect(PROMPT)
            child.send("\x03")  # at the prompt: a key, not a signal
            child.expect(re.escape("(Ctrl-D or /quit to exit)"))
            say(child, "tell me slowly")
            child.expect("piece 3")
            child.send("\x03")  # while streaming: SIGINT
            child.expect(re.escape("stopped (Ctrl-C)"))
            say(child, "hello")
            child.expect("How can I help")
            quit_shell(child)

        await in_thread(dialogue)
    with EventLog(tmp_path / "kai.db") as log:
        (chat,) = log.chats()
        detail = log.get_chat(chat.id)
        assert detail is not None
        answers = [m.text for m in detail.messages if m.role == "assistant"]
        assert "piece 3." in answers[0] and "piece 59." not in answers[0]
        assert "How can I help" in answers[1]
    assert len(client_records(tmp_path / "kai.db", "cancelled")) == 1


async def test_search_finds_an_old_chat_and_replay_shows_it(
    tmp_path: Path, children: list[pexpect.spawn]
) -> None:
    async with open_emulator() as emulator:
        old_chat = await record_chat(emulator, tmp_path / "kai.db", "what tables do I have?")

        def second_session() -> None:
            child = spawn(tmp_path, *online_args(emulator))
            children.append(child)
            say(child, "/search tables")
            child.expect(re.escape(old_chat))
            child.expect(PROMPT)
            # completion: a word of the title completes to the chat id
            child.send("/replay what")
            child.expect("just now")  # the menu, opened while typing: the title matched
            child.send("\t")  # takes the first entry
            child.send(" 0\r")
            child.expect(re.escape("you> what tables do I have?"))
            child.expect("list_tables")
            quit_shell(child)
            # The line as sent, from the history file: on screen, prompt-toolkit
            # redraws only the cells that change, so the completed id can be
            # broken by a cursor move (the "a" of "what" kept in place).
            history = (tmp_path / "state" / "kai" / "shell_history").read_text()
            assert f"\n+/replay {old_chat} 0\n" in history

        await in_thread(second_session)


@pytest.fixture
async def old_chat_db(tmp_path: Path) -> Path:
    """A log holding one recorded chat ("hello"), the emulator gone."""
    async with open_emulator() as emulator:
        await record_chat(emulator, tmp_path / "kai.db", "hello")
    return tmp_path / "kai.db"


async def test_offline_without_a_token(
    tmp_path: Path, old_chat_db: Path, children: list[pexpect.spawn]
) -> None:
    def dialogue() -> None:
        child = spawn(tmp_path)
        children.append(child)
        child.expect(re.escape("offline (no Storage API token)"))
        child.expect(OFFLINE_PROMPT)
        child.send("hello again\r")
        child.expect("needs the server, and the shell is offline")
        say(child, "/chats")
        child.expect("hello")
        say(child, "/search help")
        child.expect(r"How can I")
        quit_shell(child)

    await in_thread(dialogue)


async def test_offline_when_the_server_is_unreachable(
    tmp_path: Path, old_chat_db: Path, children: list[pexpect.spawn]
) -> None:
    def dialogue() -> None:
        # a token, but nothing listens at the address
        nowhere = "http://127.0.0.1:9"
        child = spawn(tmp_path, "--token", "t", "--url", nowhere, "--base-url", nowhere)
        children.append(child)
        say(child, "hello again")
        child.expect("error: ")
        child.expect(OFFLINE_PROMPT)
        child.send("/chats\r")
        child.expect("hello")
        quit_shell(child)

    await in_thread(dialogue)


async def test_chat_id_takes_a_prefix_the_log_knows(
    tmp_path: Path, old_chat_db: Path, children: list[pexpect.spawn]
) -> None:
    with EventLog(old_chat_db) as log:
        (chat,) = log.chats()

    def dialogue() -> None:
        child = spawn(tmp_path, "--chat-id", chat.id[:8])
        children.append(child)
        child.expect(re.escape(f"kai-shell: chat {chat.id}"))  # the whole id, resolved
        quit_shell(child)
        unknown = spawn(tmp_path, "--chat-id", "ffff0000")
        children.append(unknown)
        unknown.expect(re.escape("no chat id starts with 'ffff0000' in the event log"))
        unknown.expect(pexpect.EOF)
        unknown.close()
        assert unknown.exitstatus == 1

    await in_thread(dialogue)
