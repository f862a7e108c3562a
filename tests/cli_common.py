"""Helpers for the ``kai`` CLI tests: run the real binary against the emulator.

Every run goes through :class:`Kai`, which checks what any run must satisfy:
the token never shows in stdout or stderr, and no traceback is printed unless
``--debug`` was given. The ``kai`` fixture of each CLI test module also scans
every file the runs left behind (the event log, exports, backups) for the
token when the test ends.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Awaitable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import trio

from kai_core.log import EventLog
from kai_core.testing import Emulator

__all__ = [
    "KAI",
    "TOKEN",
    "WRONG_TOKEN",
    "Kai",
    "Result",
    "client_records",
    "closed_port_url",
    "gather",
    "kai_fixture",
]

KAI = str(Path(sys.executable).with_name("kai"))
TOKEN = "e2e-SECRET-token-7f3a9c41"
"""The token the emulator accepts; recognisable, so a leak is easy to find."""
WRONG_TOKEN = "e2e-REFUSED-token-0b5d22"
"""A token the emulator refuses; it must not leak either."""
RUN_TIMEOUT = 30.0


@dataclass(repr=False)
class Result:
    """One finished ``kai`` run."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    def json_lines(self) -> list[Any]:
        """Every stdout line parsed as JSON (each line must parse)."""
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]

    def json(self) -> Any:
        """Stdout as one JSON document."""
        return json.loads(self.stdout)

    def __repr__(self) -> str:
        return (
            f"kai {' '.join(self.args)} -> {self.returncode}\n"
            f"--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"
        )


def base_env(home: Path) -> dict[str, str]:
    """The environment of a run: ours stripped of kai settings, dirs under ``home``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("STORAGE_API_", "KAI_", "XDG_"))
        and k not in ("NO_COLOR", "FORCE_COLOR")
    }
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_DATA_HOME=str(home / "data"),
        XDG_STATE_HOME=str(home / "state"),
        XDG_CACHE_HOME=str(home / "cache"),
        KAI_LOAD_PLUGINS="",
        PYTHONIOENCODING="utf-8",
        COLUMNS="200",
    )
    return env


class Kai:
    """Runs the real ``kai`` binary with its own home, working folder and log."""

    def __init__(self, tmp_path: Path) -> None:
        self.root = tmp_path
        self.home = tmp_path / "home"
        self.cwd = tmp_path / "cwd"
        self.db = tmp_path / "kai.db"
        self.home.mkdir(exist_ok=True)
        self.cwd.mkdir(exist_ok=True)
        self.results: list[Result] = []

    def env(self, **extra: str) -> dict[str, str]:
        """The run environment with ``extra`` added."""
        env = base_env(self.home)
        env.update(extra)
        return env

    @staticmethod
    def online(emulator: Emulator, *, discover: bool = False) -> list[str]:
        """Global options pointing at ``emulator`` (``discover``: no --base-url)."""
        args = ["--token", emulator.token, "--url", emulator.storage_api_url]
        if not discover:
            args += ["--base-url", emulator.base_url, "--service", emulator.backend]
        return args

    async def __call__(
        self,
        *args: str,
        stdin: bytes | int = b"",
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        db: Path | None | bool = True,
    ) -> Result:
        """Run ``kai [--db DB] *args``; stdin is a pipe (not a terminal) by default.

        :param stdin: bytes to feed, or ``subprocess.DEVNULL``.
        :param db: True: this test's log; a path: that log; False/None: no ``--db``.
        """
        argv = list(args)
        if db is True:
            argv = ["--db", str(self.db), *argv]
        elif isinstance(db, Path):
            argv = ["--db", str(db), *argv]
        with trio.fail_after(RUN_TIMEOUT):
            done = await trio.run_process(
                [KAI, *argv],
                stdin=stdin,
                capture_stdout=True,
                capture_stderr=True,
                check=False,
                env=env if env is not None else self.env(),
                cwd=str(cwd or self.cwd),
            )
        result = Result(
            argv,
            done.returncode,
            done.stdout.decode("utf-8", "replace"),
            done.stderr.decode("utf-8", "replace"),
        )
        self.results.append(result)
        for secret in (TOKEN, WRONG_TOKEN):
            assert secret not in result.stdout, f"token on stdout:\n{result}"
            assert secret not in result.stderr, f"token on stderr:\n{result}"
        if "--debug" not in argv:
            assert "Traceback" not in result.stderr, f"traceback without --debug:\n{result}"
        return result

    def leaked_files(self) -> list[Path]:
        """Files under the test folder holding a token (``.env.local`` files excluded)."""
        leaks = []
        for path in self.root.rglob("*"):
            if path.is_file() and path.name != ".env.local":
                data = path.read_bytes()
                if TOKEN.encode() in data or WRONG_TOKEN.encode() in data:
                    leaks.append(path)
        return leaks


def kai_fixture(tmp_path: Path) -> Iterator[Kai]:
    """Body of each module's ``kai`` fixture: a runner, and no token in any file after."""
    runner = Kai(tmp_path)
    yield runner
    assert not runner.leaked_files(), f"token written to {runner.leaked_files()}"


async def gather(*runs: Awaitable[Any]) -> list[Any]:
    """Await several runs concurrently; their results in order."""
    results: list[Any] = [None] * len(runs)

    async def one(index: int, run: Awaitable[Any]) -> None:
        results[index] = await run

    async with trio.open_nursery() as nursery:
        for index, run in enumerate(runs):
            nursery.start_soon(one, index, run)
    return results


def client_records(db: Path, kind: str, chat_id: str | None = None) -> list[dict[str, Any]]:
    """The bodies of the client-side records of one type in a log."""
    with EventLog(db) as log:
        return [
            msgspec.json.decode(e.body)
            for e in log.events(chat_id)
            if e.origin == "client" and e.type == kind
        ]


def closed_port_url() -> str:
    """A loopback URL where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def chat_id_of(result: Result) -> str:
    """The id from the ``Chat ID: ...`` line of a text-mode ``kai chat``."""
    for line in result.stdout.splitlines():
        if line.startswith("Chat ID: "):
            return line.removeprefix("Chat ID: ").strip()
    raise AssertionError(f"no Chat ID line:\n{result}")


def lines_with(text: str, needle: str) -> Sequence[str]:
    """The lines of ``text`` containing ``needle``."""
    return [line for line in text.splitlines() if needle in line]


DEVNULL = subprocess.DEVNULL
