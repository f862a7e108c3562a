"""The original kai-client 0.12.0 CLI works unchanged against ``kai serve --backend assistant``.

kai-client is installed from PyPI into a cached venv
(``~/.cache/kai-tests/kai-client-0.12.0``); the test is skipped only when
PyPI cannot be reached.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

import httpx
import pytest
import trio

from .emulator_support import start_serve, stop

pytestmark = [pytest.mark.network, pytest.mark.e2e]

VERSION = "0.12.0"
VENV = Path.home() / ".cache" / "kai-tests" / f"kai-client-{VERSION}"
TOKEN = "compat-token"


async def run(args: list[str], cwd: Path) -> trio.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STORAGE_API_", "KAI_"))}
    with trio.fail_after(120):
        return await trio.run_process(
            args, cwd=cwd, env=env, capture_stdout=True, capture_stderr=True, check=False
        )


async def kai_client_python(tmp_path: Path) -> Path:
    """The venv's python with kai-client installed (created once, then reused)."""
    python = VENV / "bin" / "python"
    if python.exists():
        probe = await run([str(python), "-c", "import kai_client.cli"], tmp_path)
        if probe.returncode == 0:
            return python
    staging = VENV.with_name(VENV.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    uv = shutil.which("uv")
    if uv:
        steps = [
            [uv, "venv", "-q", "--python", sys.executable, str(staging)],
            [
                uv,
                "pip",
                "install",
                "-q",
                "--python",
                str(staging / "bin" / "python"),
                f"kai-client=={VERSION}",
            ],
        ]
    else:
        steps = [
            [sys.executable, "-m", "venv", str(staging)],
            [
                str(staging / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "-q",
                f"kai-client=={VERSION}",
            ],
        ]
    for step in steps:
        result = await run(step, tmp_path)
        if result.returncode != 0:
            await skip_if_pypi_unreachable()
            pytest.fail(f"installing kai-client failed:\n{result.stderr.decode()}")
    shutil.rmtree(VENV, ignore_errors=True)
    staging.rename(VENV)  # we run ``python -m``, so scripts' shebangs do not matter
    return python


async def skip_if_pypi_unreachable() -> None:
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            await client.get("https://pypi.org/simple/kai-client/")
    except httpx.HTTPError as exc:
        pytest.skip(f"PyPI is unreachable, cannot install kai-client=={VERSION}: {exc}")


class KaiCli:
    """kai-client's ``kai`` command pointed at the emulator."""

    def __init__(self, python: Path, url: str, cwd: Path, *, discover: bool = False) -> None:
        self.prefix = [str(python), "-m", "kai_client.cli", "--token", TOKEN, "--url", url]
        if not discover:
            self.prefix += ["--base-url", url]
        self.cwd = cwd

    async def __call__(self, *args: str) -> str:
        result = await run([*self.prefix, *args], self.cwd)
        assert result.returncode == 0, (args, result.stdout.decode(), result.stderr.decode())
        assert b"Traceback" not in result.stderr, result.stderr.decode()
        return result.stdout.decode()


def chat_id_of(output: str) -> str:
    match = re.search(r"Chat ID: ([0-9a-f-]{36})", output)
    assert match, output
    return match.group(1)


async def test_original_kai_client_cli_against_kai_serve(tmp_path: Path) -> None:
    python = await kai_client_python(tmp_path)
    process, url = await start_serve("--backend", "assistant", "--token", TOKEN)
    try:
        kai = KaiCli(python, url, tmp_path)
        assert "Server is alive:" in await kai("ping")
        info = await kai("info")
        assert "App: kai-assistant (emulator)" in info and "Connected MCP servers: 1" in info

        hello = await kai("chat", "-m", "hello")
        assert "Hello! I'm Kai, the Keboola AI assistant (emulator). How can I help?" in hello
        hello_id = chat_id_of(hello)

        bucket = await kai("chat", "--auto-approve", "-m", "create a bucket called b1")
        assert "[Tool create_bucket requires approval]" in bucket
        assert "[Auto-approving...]" in bucket
        assert "Done: bucket in.c-b1 was created." in bucket

        history = await kai("history")
        assert hello_id in history and "create a bucket called b1" in history

        shown = await kai("get-chat", hello_id)
        assert "Title: hello" in shown and "Messages: 2" in shown
        detail = json.loads(await kai("get-chat", "--json-output", hello_id))
        answer_id = detail["messages"][1]["id"]
        assert detail["messages"][1]["parts"][-1]["text"].startswith("Hello!")

        assert f"Voted up on message {answer_id}" in await kai("vote", hello_id, answer_id, "up")
        assert f"{answer_id}: up" in await kai("get-votes", hello_id)
        assert f"Deleted chat {hello_id}" in await kai("delete-chat", "-y", hello_id)
        assert hello_id not in await kai("history")

        # Discovery through /v2/storage on the same server, no --base-url.
        discovered = KaiCli(python, url, tmp_path, discover=True)
        assert "Server is alive:" in await discovered("ping")
        tables = await discovered("chat", "-m", "list my tables")
        assert "You have 3 tables" in tables
        echo_id = chat_id_of(await discovered("chat", "-m", "What is Keboola?"))
        assert echo_id in await discovered("history", "-n", "50")
    finally:
        code, _ = await stop(process)
    assert code == 0
