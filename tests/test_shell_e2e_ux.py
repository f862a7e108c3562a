"""The real ``kai-shell`` on a pty: Ctrl-C while an answer streams, Ctrl-C at an
approval question then ``/approve``, reconnecting, the demo's welcome, themes.

The helpers (spawn, prompts, the emulator in the test's trio loop) are those
of ``test_shell_e2e.py``.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pexpect
import pytest

from kai_core.log import EventLog
from kai_core.testing import Say, open_emulator

from .test_shell_e2e import PROMPT, children, in_thread, online_args, quit_shell, say, spawn

pytestmark = pytest.mark.e2e

__all__ = ["children"]  # the fixture, imported for its use here


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
