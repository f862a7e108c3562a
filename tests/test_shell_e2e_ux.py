"""The real ``kai-shell`` on a pty: Ctrl-C while an answer streams, Ctrl-C at an
approval question then ``/approve``, reconnecting, the demo's welcome, themes.

The helpers (spawn, prompts, the emulator in the test's trio loop) are in
``pty_support.py``, as for ``test_shell_e2e.py``.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pexpect
import pytest

from kai_core.log import EventLog
from kai_core.testing import Say, open_emulator

from .pty_support import in_thread, online_args, quit_shell, say, spawn

pytestmark = pytest.mark.e2e


async def test_ctrl_c_while_streaming_draws_the_answer_once(
    tmp_path: Path, children: list[pexpect.spawn]
) -> None:
    async with open_emulator() as emulator:
        emulator.script(
            lambda text: [Say(*(f"piece {n}. " for n in range(1, 60)), pause=0.1)],
            trigger="slowly",
        )

        def dialogue() -> str:
            child = spawn(tmp_path, *online_args(emulator))
            children.append(child)
            shown = io.StringIO()
            child.logfile_read = shown
            say(child, "tell me slowly")
            child.expect("piece 3")
            child.send("\x03")  # SIGINT; the terminal must not draw ^C into the answer
            child.expect(re.escape("stopped (Ctrl-C)"))
            quit_shell(child)
            return shown.getvalue()

        shown = await in_thread(dialogue)
    # The echoed ^C wrapped the full-width line the live display had drawn, so
    # its next redraw started one line low and the answer stayed on screen twice.
    assert "^C" not in shown
    answer = shown[shown.index("piece 1.") : shown.index("stopped (Ctrl-C)")]
    redraws = answer.count("\x1b[1A")  # a redraw that climbs lines means several lines
    assert redraws == 0, repr(answer)


@pytest.mark.parametrize("backend", ["agent", "assistant"])
async def test_ctrl_c_at_the_approval_question_then_approve_shows_the_rest(
    tmp_path: Path, children: list[pexpect.spawn], backend: str
) -> None:
    async with open_emulator(backend=backend) as emulator:

        def dialogue() -> None:
            child = spawn(tmp_path, *online_args(emulator))
            children.append(child)
            say(child, "create a bucket called b1")
            child.expect(r"\[y/N\]")
            child.send("\x03")  # put the question off
            child.expect("create_bucket waits for your decision")
            say(child, "/approve")
            child.expect("was created")  # the rest of the answer, in the same stream
            child.expect("Σ")  # the end of the answer (its token counts)
            # typed ahead: the prompt may be redrawn in pieces the pattern misses
            child.send("/quit\r")
            child.expect(pexpect.EOF)
            child.close()
            assert child.exitstatus == 0

        await in_thread(dialogue)
    with EventLog(tmp_path / "kai.db") as log:
        (chat,) = log.chats()
        detail = log.get_chat(chat.id)
    assert detail is not None
    answer = [m.text for m in detail.messages if m.role == "assistant"]
    assert any("was created" in text for text in answer), answer  # /open shows it


async def test_started_with_the_server_down_it_goes_online_when_it_is_back(
    tmp_path: Path, children: list[pexpect.spawn]
) -> None:
    from .cli_common import closed_port_url

    url = closed_port_url()
    port = int(url.rsplit(":", 1)[1])
    child: pexpect.spawn | None = None

    def while_down() -> None:
        nonlocal child
        # discovery only (no --base-url): before, a failed start stayed offline for good
        child = spawn(tmp_path, "--token", "t", "--url", url)
        children.append(child)
        say(child, "hello")  # waits for the first attempt, then tries once more
        child.expect("needs the server, and the shell is offline")
        child.expect(re.escape("not sent: Up brings it back"))

    def when_back() -> None:
        assert child is not None
        child.send("\x1b[A")  # Up: the message again
        child.expect("hello")
        child.send("\r")  # sending it connects first
        child.expect("How can I help")
        child.expect("Σ")
        child.send("/reconnect\r")
        child.expect(re.escape("online: kai-agent @ 127.0.0.1"))
        child.send("/quit\r")
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 0

    await in_thread(while_down)
    async with open_emulator(port=port):
        await in_thread(when_back)


async def test_demo_welcomes_and_help_lists_the_emulator_words(
    tmp_path: Path, children: list[pexpect.spawn]
) -> None:
    from .cli_common import KAI

    def dialogue() -> None:
        child = spawn(tmp_path, "demo", program=KAI)
        children.append(child)
        child.expect("Welcome to the kai demo")
        for text in ("hello", "what tables do I have?", "create a bucket called demo"):
            child.expect(re.escape(text))
        say(child, "/help")
        child.expect("On the emulator, scripted words")
        child.expect("two buckets")
        say(child, "what tables do I have?")
        child.expect("list_tables")
        child.expect("Σ")
        child.send("/quit\r")
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 0

    await in_thread(dialogue)


@pytest.mark.parametrize(
    ("args", "env", "warn_colour"),
    [
        ([], {"COLORFGBG": "0;15"}, "\x1b[38;5;130m"),  # the terminal says: light background
        ([], {"COLORFGBG": "15;0"}, "\x1b[33m"),  # dark background
        (["--theme", "dark"], {"COLORFGBG": "0;15"}, "\x1b[33m"),  # the flag wins
        ([], {"KAI_THEME": "light"}, "\x1b[38;5;130m"),
    ],
)
async def test_colours_follow_the_terminal_theme(
    tmp_path: Path,
    children: list[pexpect.spawn],
    args: list[str],
    env: dict[str, str],
    warn_colour: str,
) -> None:
    def dialogue() -> None:
        child = spawn(tmp_path, *args, env_extra=env)  # no token: offline, warned
        children.append(child)
        child.expect(re.escape(warn_colour + "offline (no Storage API token)"))
        say(child, "/quit")
        child.expect(pexpect.EOF)

    await in_thread(dialogue)


async def test_delete_and_open_of_a_chat_the_server_does_not_know(
    tmp_path: Path, children: list[pexpect.spawn]
) -> None:
    import uuid

    unknown = str(uuid.uuid4())
    async with open_emulator() as emulator:

        def dialogue() -> None:
            child = spawn(tmp_path, *online_args(emulator))
            children.append(child)
            say(child, f"/delete {unknown}")
            child.expect(r"\[y/N\]")
            child.send("y\r")
            child.expect(re.escape(f"no chat {unknown} on the server"))
            say(child, f"/open {unknown}")
            child.expect(re.escape(f"no chat {unknown} on the server"))
            quit_shell(child)

        await in_thread(dialogue)
