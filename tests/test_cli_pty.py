"""The real ``kai`` binary on a pseudo-terminal (pexpect): the approval prompt
answered yes and no on both backends, Enter meaning No, the vote prompt, the
confirmations of ``delete-chat`` and ``log forget``, and ``kai shell`` /
``kai demo`` opening the shell.

The emulator runs in the test's trio loop; each dialogue, which blocks, runs
in a worker thread. Everything a terminal showed is checked for the token
(``pty_support.Terminal``).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from kai_core.testing import Emulator, Say, open_emulator

from .cli_common import TOKEN, Kai, chat_id_of, client_records
from .pty_support import APPROVE, Terminal, in_thread

pytestmark = pytest.mark.e2e

YOU = "You: "
SHELL_PROMPT = re.compile(r"kai(?:\x1b\[[0-9;?]*[a-zA-Z])*(?: \([a-z]+\))?\S*> ")


@pytest.fixture
def kai_emulator_options() -> dict[str, Any]:
    return {"token": TOKEN}


@pytest.mark.parametrize("backend", ["agent", "assistant"])
async def test_approval_prompt_yes_and_no(
    backend: str, kai: Kai, terminal: Terminal, kai_emulator_options: dict[str, Any]
) -> None:
    async with open_emulator(**kai_emulator_options, backend=backend) as emulator:

        def dialogue() -> tuple[int, str]:
            child = terminal.spawn(*kai.online(emulator), "chat")
            child.expect(r"Chat ID: (\S+)")
            chat_id = child.match.group(1)
            child.expect(YOU)
            child.send("create a bucket called yes1\r")
            child.expect("needs your approval")
            child.expect(r'"name": "yes1"')  # the input, as pretty JSON
            child.expect(APPROVE)
            child.send("y\r")
            child.expect("in.c-yes1 was created")
            child.expect(YOU)
            child.send("create a bucket called no1\r")
            child.expect(APPROVE)
            child.send("n\r")
            child.expect("denied by the user")
            child.expect(YOU)
            child.send("create a bucket called enter1\r")
            child.expect(APPROVE)
            child.send("\r")  # the default is No
            child.expect("denied by the user")
            child.expect(YOU)
            child.send("exit\r")
            child.expect("Chat ended.")
            return terminal.finish(child), chat_id

        status, chat_id = await in_thread(dialogue)
        assert status == 0
        assert "in.c-yes1" in emulator.state.buckets
        assert "in.c-no1" not in emulator.state.buckets
        assert "in.c-enter1" not in emulator.state.buckets
        assert len(emulator.state.chats[chat_id].messages) == 6
    decisions = client_records(kai.db, "approval", chat_id)
    assert [(d["approved"], d["decided_by"]) for d in decisions] == [
        (True, "user"),
        (False, "user"),
        (False, "user"),
    ]
    transport = "agent" if backend == "agent" else "v6"
    assert {d["transport"] for d in decisions} == {transport}


async def test_single_message_on_a_terminal_asks_and_policies_skip_the_prompt(
    kai: Kai, terminal: Terminal, kai_emulator: Emulator
) -> None:
    policy = kai.root / "policy.toml"
    policy.write_text('[[rule]]\ntool = "create_bucket"\naction = "approve"\n')

    def dialogue() -> tuple[int, int, int]:
        asked = terminal.spawn(*kai.online(kai_emulator), "chat", "-m", "create a bucket called t1")
        asked.expect(APPROVE)
        asked.send("y\r")
        asked.expect("in.c-t1 was created")
        first = terminal.finish(asked)
        auto = terminal.spawn(
            *kai.online(kai_emulator), "chat", "--auto-approve", "-m", "create a bucket called t2"
        )
        index = auto.expect([APPROVE, "in.c-t2 was created"])
        assert index == 1, "--auto-approve must not prompt"
        second = terminal.finish(auto)
        ruled = terminal.spawn(
            *kai.online(kai_emulator),
            "--policy",
            str(policy),
            "chat",
            "-m",
            "create a bucket called t3",
        )
        index = ruled.expect([APPROVE, "in.c-t3 was created"])
        assert index == 1, "a policy's decision must not prompt"
        return first, second, terminal.finish(ruled)

    assert await in_thread(dialogue) == (0, 0, 0)
    assert {"in.c-t1", "in.c-t2", "in.c-t3"} <= set(kai_emulator.state.buckets)
    decided_by = [d["decided_by"] for d in client_records(kai.db, "approval")]
    assert decided_by == ["user", "auto-approve", "rule"]
    # the audit trail, through the real kai: the person at the prompt is "user"
    listed = await kai("audit", "--json-output")
    assert [e["who"]["kind"] for e in listed.json_lines()] == ["user", "auto-approve", "rule"]
    assert listed.json_lines()[2]["who"]["source"] == f"{policy}:1"


async def test_vote_prompt_after_an_answer(
    kai: Kai, terminal: Terminal, kai_emulator: Emulator
) -> None:
    def dialogue() -> tuple[int, str]:
        child = terminal.spawn(*kai.online(kai_emulator), "chat", "--vote", "-m", "hello")
        child.expect(r"Chat ID: (\S+)")
        chat_id = child.match.group(1)
        child.expect("How can I help")
        child.expect(re.escape("Vote on this answer?"))
        child.send("u\r")
        return terminal.finish(child), chat_id

    status, chat_id = await in_thread(dialogue)
    assert status == 0
    answer_id = kai_emulator.state.chats[chat_id].messages[1]["id"]
    assert kai_emulator.state.votes == {(chat_id, answer_id): True}
    assert [v["type"] for v in client_records(kai.db, "vote", chat_id)] == ["up"]


async def test_delete_chat_and_forget_confirm_on_a_terminal(
    kai: Kai, terminal: Terminal, kai_emulator: Emulator
) -> None:
    online = kai.online(kai_emulator)
    made = await kai(*online, "chat", "-m", "hello")
    chat_id = chat_id_of(made)

    def dialogue() -> list[int]:
        statuses = []
        for answer in ("n", "y"):
            child = terminal.spawn(*online, "delete-chat", chat_id)
            child.expect(re.escape(f"Delete chat {chat_id}? [y/N]: "))
            child.send(f"{answer}\r")
            child.expect("Cancelled." if answer == "n" else f"Deleted chat {chat_id}")
            statuses.append(terminal.finish(child))
        for answer in ("\r", "y\r"):
            child = terminal.spawn("log", "forget", chat_id)
            child.expect(re.escape("from the local log? [y/N]: "))
            child.send(answer)
            child.expect("Cancelled." if answer == "\r" else "Forgot chat")
            statuses.append(terminal.finish(child))
        return statuses

    # the first "n" must leave the chat on the server: check between the runs
    assert await in_thread(dialogue) == [0, 0, 0, 0]
    assert chat_id not in kai_emulator.state.chats
    local = await kai("history", "--local", "--json-output")
    assert local.json()["chats"] == []


async def test_interactive_chat_ends_on_ctrl_d(
    kai: Kai, terminal: Terminal, kai_emulator: Emulator
) -> None:
    def dialogue() -> int:
        child = terminal.spawn(*kai.online(kai_emulator), "chat")
        child.expect(YOU)
        child.send("hello\r")
        child.expect("How can I help")
        child.expect(YOU)
        child.sendeof()
        child.expect("Chat ended.")
        return terminal.finish(child)

    assert await in_thread(dialogue) == 0


async def test_shell_and_demo_open_the_shell_on_a_terminal(
    kai: Kai, terminal: Terminal, kai_emulator: Emulator
) -> None:
    def dialogue() -> tuple[int, int]:
        shell = terminal.spawn(*kai.online(kai_emulator), "shell")
        shell.expect(SHELL_PROMPT)
        shell.send("hello\r")
        shell.expect("How can I help")
        shell.expect(SHELL_PROMPT)
        shell.send("/quit\r")
        first = terminal.finish(shell)
        demo = terminal.spawn("demo")
        demo.expect(SHELL_PROMPT)
        demo.send("what tables do I have?\r")
        demo.expect("You have 3 tables")
        demo.expect(SHELL_PROMPT)
        demo.send("/quit\r")
        return first, terminal.finish(demo)

    assert await in_thread(dialogue) == (0, 0)
    assert len(kai_emulator.state.chats) == 1


async def test_ctrl_c_stops_a_streaming_answer(
    kai: Kai, terminal: Terminal, kai_emulator: Emulator
) -> None:
    kai_emulator.script(
        lambda text: [Say(*(f"piece {n}. " for n in range(1, 80)), pause=0.1)], trigger="slowly"
    )

    def dialogue() -> tuple[int, str]:
        child = terminal.spawn(*kai.online(kai_emulator), "chat", "-m", "tell me slowly")
        child.expect(r"Chat ID: (\S+)")
        chat_id = child.match.group(1)
        child.expect("piece 3")
        child.send("\x03")  # the terminal turns it into SIGINT
        child.expect("kai: interrupted")
        return terminal.finish(child), chat_id

    status, chat_id = await in_thread(dialogue)
    assert status == 130
    (cancelled,) = client_records(kai.db, "cancelled", chat_id)
    assert cancelled["events_delivered"] > 0


@pytest.mark.parametrize("backend", ["agent", "assistant"])
@pytest.mark.parametrize("mode", ["message", "interactive"])
async def test_ctrl_c_at_the_approval_prompt_rejects_logs_and_exits_130(
    backend: str, mode: str, kai: Kai, terminal: Terminal
) -> None:
    # Before the fix the prompt ran input() in a worker thread: Ctrl-C ended the
    # trio run while that thread held stdin's buffer, and the interpreter died at
    # exit ("Fatal Python error: _enter_buffered_busy", status 134), logging nothing.
    async with open_emulator(token=TOKEN, backend=backend) as emulator:

        def dialogue() -> tuple[int, str, str]:
            if mode == "message":
                child = terminal.spawn(
                    *kai.online(emulator), "chat", "-m", "create a bucket called c1"
                )
            else:
                child = terminal.spawn(*kai.online(emulator), "chat")
            child.expect(r"Chat ID: (\S+)")
            chat_id = child.match.group(1)
            if mode == "interactive":
                child.expect(YOU)
                child.send("create a bucket called c1\r")
            child.expect(APPROVE)
            child.send("\x03")  # the terminal turns it into SIGINT
            child.expect("kai: interrupted")
            status = terminal.finish(child)
            return status, chat_id, terminal.transcripts[-1].getvalue()

        status, chat_id, shown = await in_thread(dialogue)
        assert status == 130, shown
        assert "Fatal Python error" not in shown
        assert "in.c-c1" not in emulator.state.buckets
    (decision,) = client_records(kai.db, "approval", chat_id)
    assert (decision["approved"], decision["decided_by"]) == (False, "user")
    assert decision["reason"] == "interrupted at the approval prompt (Ctrl-C)"


async def test_ctrl_c_at_the_message_prompt_exits_130(
    kai: Kai, terminal: Terminal, kai_emulator: Emulator
) -> None:
    def dialogue() -> tuple[int, str]:
        child = terminal.spawn(*kai.online(kai_emulator), "chat")
        child.expect(YOU)
        child.send("\x03")
        child.expect("kai: interrupted")
        return terminal.finish(child), terminal.transcripts[-1].getvalue()

    status, shown = await in_thread(dialogue)
    assert status == 130, shown
    assert "Fatal Python error" not in shown
