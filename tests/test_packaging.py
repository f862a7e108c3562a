"""The library installs alone: no terminal, no web server, and the scripts say what is missing.

These tests install this checkout into a fresh virtual environment without
extras (uv, from its cache or the package registry) and use it for real: a
chat against the emulator (served by the development environment), the
pytest plugin loaded, and the ``kai`` script run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from .emulator_support import start_serve, stop

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
FRONT_END_PACKAGES = {
    "prompt-toolkit",
    "rich",
    "click",
    "starlette",
    "hypercorn",
    "h2",
    "httpx-sse",
    "mcp",
}


def _lock() -> dict[str, dict[str, object]]:
    with open(ROOT / "uv.lock", "rb") as f:
        return {p["name"]: p for p in tomllib.load(f)["package"]}


def test_the_locked_library_needs_none_of_the_front_ends() -> None:
    # Walk the lock file from kai's own (non-optional) dependencies.
    packages = _lock()
    seen: set[str] = set()
    todo = [d["name"] for d in packages["kai"]["dependencies"]]  # type: ignore[union-attr]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(d["name"] for d in packages[name].get("dependencies", []))  # type: ignore[union-attr]
    assert seen & FRONT_END_PACKAGES == set()
    assert {"trio", "httpx", "msgspec", "pluggy", "platformdirs"} <= seen


def _venv(tmp_path_factory: pytest.TempPathFactory, requirement: str) -> Path:
    venv = tmp_path_factory.mktemp("venv") / "venv"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "UV_PROJECT"))}
    subprocess.run(["uv", "venv", "-q", "--python", sys.executable, str(venv)], check=True, env=env)
    subprocess.run(
        ["uv", "pip", "install", "-q", "--python", str(venv / "bin" / "python"), requirement],
        check=True,
        env=env,
    )
    return venv


@pytest.fixture(scope="module")
def lean_venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A virtual environment with ``pip install <this checkout>``: no extras."""
    yield _venv(tmp_path_factory, str(ROOT))


def _run(venv: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KAI_LOAD_PLUGINS": ""}
    return subprocess.run(args, capture_output=True, text=True, env=env, cwd=venv, timeout=60)


def test_the_lean_install_has_no_front_end_packages(lean_venv: Path) -> None:
    listing = _run(lean_venv, "uv", "pip", "list", "--python", str(lean_venv / "bin" / "python"))
    installed = {line.split()[0].lower() for line in listing.stdout.splitlines()[2:]}
    assert "kai" in installed
    assert installed & FRONT_END_PACKAGES == set()


def test_the_kai_script_without_its_extra_says_what_to_install(lean_venv: Path) -> None:
    for script in ("kai", "kai-shell"):
        run = _run(lean_venv, str(lean_venv / "bin" / script), "--version")
        assert run.returncode == 1
        assert run.stdout == ""
        lines = run.stderr.splitlines()
        assert len(lines) == 1, run.stderr
        assert "pip install 'kai[cli]'" in lines[0] and "click" in lines[0]


def test_kai_mcp_without_its_extra_says_what_to_install(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    venv = _venv(tmp_path_factory, f"kai[cli] @ {ROOT.as_uri()}")
    run = _run(venv, str(venv / "bin" / "kai"), "--token", "t", "--url", "http://x", "mcp")
    assert run.returncode == 3
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    assert "kai mcp needs kai's 'mcp' extra" in lines[0]
    assert "pip install 'kai[mcp]'" in lines[0]


def test_the_emulator_without_its_extra_says_what_to_install(lean_venv: Path) -> None:
    code = "import kai_core.testing as t\ntry:\n    t.open_emulator\nexcept ModuleNotFoundError as e:\n    print(e)"
    run = _run(lean_venv, str(lean_venv / "bin" / "python"), "-c", code)
    assert "pip install 'kai[emulator]'" in run.stdout, run.stderr


def test_the_html_export_without_its_extra_says_what_to_install(lean_venv: Path) -> None:
    code = (
        "from kai_core.log import LocalChat, LocalChatDetail, LocalMessage, render_html\n"
        "chat = LocalChat('c', 'title', 1.0, 2.0, 1, 0, 0)\n"
        "text = [{'type': 'text', 'text': '**hi**'}]\n"
        "message = LocalMessage(1, 'm', 'c', 'assistant', 1.0, 'hi', text)\n"
        "try:\n"
        "    render_html(LocalChatDetail(chat, [message], [], {}))\n"
        "except ModuleNotFoundError as e:\n"
        "    print(e)"
    )
    run = _run(lean_venv, str(lean_venv / "bin" / "python"), "-c", code)
    assert "pip install 'kai[html]'" in run.stdout and "markdown_it" in run.stdout, run.stderr


def test_the_pytest_plugin_costs_nothing_until_a_fixture_is_used(tmp_path: Path) -> None:
    # A real pytest run in the development environment, where the web stack is
    # installed: kai's plugin loads (entry point pytest11) but imports none of it
    # until a test asks for the emulator.
    (tmp_path / "test_plain.py").write_text(
        "import sys\n"
        "def test_plain():\n"
        "    assert 'kai_core.testing.pytest_plugin' in sys.modules\n"
        "    assert [m for m in ('starlette', 'hypercorn', 'h2') if m in sys.modules] == []\n"
    )
    (tmp_path / "test_fixture.py").write_text(
        "import sys\n"
        "async def test_with_emulator(kai_emulator):\n"
        "    assert 'hypercorn' in sys.modules and kai_emulator.base_url\n"
    )
    for name in ("test_plain.py", "test_fixture.py"):
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "-o",
                "trio_mode=true",
                name,
            ],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=120,
        )
        assert run.returncode == 0, run.stdout + run.stderr


async def test_the_lean_library_chats_and_logs(lean_venv: Path, tmp_path: Path) -> None:
    process, url = await start_serve("--backend", "agent")
    try:
        code = (
            "import sys, trio\n"
            "from kai_core import KaiClient, EventLog\n"
            "async def main():\n"
            "    with EventLog(sys.argv[2]) as log:\n"
            "        async with KaiClient(storage_api_token='t', storage_api_url=sys.argv[1],\n"
            "                             base_url=sys.argv[1], log=log) as client:\n"
            "            chat_id, text = await client.chat('hello')\n"
            "        print(text, len(log.events(chat_id)) > 2)\n"
            "trio.run(main)\n"
        )
        run = _run(
            lean_venv, str(lean_venv / "bin" / "python"), "-c", code, url, str(tmp_path / "k.db")
        )
    finally:
        await stop(process)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().endswith("True")
    assert "sqlite_utils" not in run.stderr


def test_opening_a_log_needs_no_sqlite_utils() -> None:
    assert "sqlite-utils" not in _lock()
