"""Real ``kai`` and ``kai-shell`` processes on a pseudo-terminal (pexpect).

The emulator runs in the test's trio loop; each dialogue, which blocks, runs
in a worker thread (:func:`in_thread`). :func:`spawn` starts ``kai-shell``
(or another program) with a clean environment; :class:`Terminal` starts
``kai`` with a :class:`~tests.cli_common.Kai`'s home and log and checks
everything its terminals showed for the token. The ``children`` and
``terminal`` fixtures (``conftest.py``) kill what is left at the end.

Used by ``test_shell_e2e*.py``, ``test_cli_pty.py`` and the reliability
modules that drive a terminal; no tests of its own.
"""

from __future__ import annotations

import io
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pexpect
import trio

from kai_core.testing import Emulator

from .cli_common import KAI, TOKEN, WRONG_TOKEN, Kai

TIMEOUT = 20  # seconds for any one expected output
ANSI = r"(?:\x1b\[[0-9;?]*[a-zA-Z])*"
# "kai> ", "kai (offline)> ", "kai ⏸> " with the styles prompt-toolkit puts between fragments
PROMPT = re.compile(rf"kai{ANSI}(?: \((?:offline|connecting)\))?{ANSI}(?: ⏸)?{ANSI}> ")
KAI_SHELL = str(Path(sys.executable).with_name("kai-shell"))


def spawn(
    tmp_path: Path, *args: str, program: str = KAI_SHELL, env_extra: dict[str, str] | None = None
) -> pexpect.spawn:
    """``program --db <tmp>/kai.db *args`` on a pty, with a clean environment."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("STORAGE_API_", "KAI_")) and k not in ("NO_COLOR", "VISUAL", "EDITOR")
    }
    env.update(
        PROMPT_TOOLKIT_NO_CPR="1",
        TERM="xterm",
        KAI_LOAD_PLUGINS="",
        XDG_STATE_HOME=str(tmp_path / "state"),
    )
    env.update(env_extra or {})
    child = pexpect.spawn(
        program,
        ["--db", str(tmp_path / "kai.db"), *args],
        env=env,
        cwd=str(tmp_path),  # no .env.local from the checkout
        encoding="utf-8",
        timeout=TIMEOUT,
        dimensions=(40, 120),
    )
    return child


def online_args(emulator: Emulator) -> list[str]:
    return [
        "--token",
        emulator.token,
        "--url",
        emulator.storage_api_url,
        "--base-url",
        emulator.base_url,
        "--service",
        emulator.backend,
    ]


def say(child: pexpect.spawn, line: str) -> None:
    """Type a line once the prompt shows, and press Enter."""
    child.expect(PROMPT)
    child.send(line + "\r")


def quit_shell(child: pexpect.spawn) -> None:
    say(child, "/quit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before


async def in_thread(fn: Callable[[], Any]) -> Any:
    with trio.fail_after(60):
        return await trio.to_thread.run_sync(fn)


APPROVE = re.escape("Approve this tool call? [y/N]: ")
"""The ``kai chat`` approval question, as a pexpect pattern."""


class Terminal:
    """Spawns ``kai`` on a pty and keeps everything the terminal showed."""

    def __init__(self, kai: Kai) -> None:
        self.kai = kai
        self.children: list[pexpect.spawn] = []
        self.transcripts: list[io.StringIO] = []

    def spawn(self, *args: str) -> pexpect.spawn:
        env = self.kai.env(PROMPT_TOOLKIT_NO_CPR="1", TERM="xterm")
        child = pexpect.spawn(
            KAI,
            ["--db", str(self.kai.db), *args],
            env=env,
            cwd=str(self.kai.cwd),
            encoding="utf-8",
            timeout=TIMEOUT,
            dimensions=(40, 120),
        )
        transcript = io.StringIO()
        child.logfile_read = transcript
        self.children.append(child)
        self.transcripts.append(transcript)
        return child

    def finish(self, child: pexpect.spawn) -> int:
        """Wait for the end; the exit status."""
        child.expect(pexpect.EOF)
        child.close()
        status: int = child.exitstatus
        return status

    def check(self) -> None:
        """Nothing shown on any terminal held a token or a traceback."""
        for transcript in self.transcripts:
            text = transcript.getvalue()
            assert TOKEN not in text and WRONG_TOKEN not in text
            assert "Traceback" not in text, text

    def kill_all(self) -> None:
        for child in self.children:
            if child.isalive():
                child.terminate(force=True)

    @classmethod
    @contextmanager
    def checked(cls, kai: Kai) -> Iterator[Terminal]:
        """A terminal whose transcripts are checked at the end; children killed."""
        term = cls(kai)
        try:
            yield term
            term.check()
        finally:
            term.kill_all()
