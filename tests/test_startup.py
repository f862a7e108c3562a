"""Start-up stays cheap (issue 16): what ``import kai_core.client`` and
``kai --version`` load, checked in fresh interpreters.

Timings are the benchmark's job (``bench/bench_startup.py``); these tests pin
the imports that made the difference, so that a new eager import fails here
instead of slowing every program that only imports the client.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e  # fresh interpreters and the real console scripts

HEAVY = ("httpx", "trio", "hypercorn", "h2", "sqlite3", "starlette", "click", "prompt_toolkit")
"""Packages ``import kai_core.client`` must not load."""


def _modules_after(code: str, **run: Any) -> set[str]:
    probe = code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True, **run
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


def loaded_after(code: str, **run: Any) -> set[str]:
    """The modules a fresh interpreter has after running ``code`` and not before.

    What the interpreter loads by itself is not ``code``'s doing: under CI's
    coverage of subprocesses, every interpreter starts coverage, which brings
    sqlite3 (its data file). A package counts when it is there itself: a
    submodule's import brings its package first (``httpx._main``, kai's
    stand-in, alone is no httpx).
    """
    return _modules_after(code, **run) - _modules_after("pass", **run)


def test_importing_the_client_loads_no_network_stack_or_database() -> None:
    loaded = loaded_after("import kai_core.client")
    assert sorted(loaded & set(HEAVY)) == []


def test_the_client_module_still_offers_event_stream() -> None:
    # EventStream comes on first use (PEP 562), the same class as the stream's.
    from kai_core import client
    from kai_core._stream import EventStream

    assert client.EventStream is EventStream
    with pytest.raises(AttributeError):
        _ = client.NoSuchName  # type: ignore[attr-defined]


def test_making_a_client_loads_its_transport_then() -> None:
    # The deferred imports come in with the first client, and it works as before.
    loaded = loaded_after(
        "from kai_core.client import KaiClient\n"
        "c = KaiClient('token-123456789', 'https://connection.keboola.com', 'https://kai.example')\n"
        "assert repr(c) == \"KaiClient(base_url='https://kai.example', backend=None)\", repr(c)\n"
    )
    assert "httpx" in loaded
    assert sorted(loaded & {"hypercorn", "h2", "starlette", "sqlite3"}) == []


def _script(name: str) -> str:
    path = Path(sys.executable).parent / name
    if not path.exists():
        pytest.skip(f"{name} is not installed in this environment")
    return str(path)


@pytest.mark.parametrize("program", ["kai", "kai-shell"])
def test_version_answers_without_click(program: str) -> None:
    done = subprocess.run(
        [_script(program), "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env_tracing_imports(),
    )
    assert done.returncode == 0, done.stderr
    from importlib.metadata import version

    # click's version_option said exactly this; the installed version, not a copy
    assert done.stdout == f"{program} {version('kai')}\n"
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines()}
    assert "kai_core" in imported  # the trace works
    assert (
        sorted(imported & {"click", "kai_shell.cli", "kai_shell.repl", "importlib.metadata"}) == []
    )


@pytest.mark.parametrize("program", ["kai", "kai-shell"])
def test_version_with_more_arguments_is_click_s(program: str) -> None:
    # Only a lone --version is answered early; click still owns the rest
    # (and refuses the unknown option, as before).
    done = subprocess.run(
        [_script(program), "--version", "--no-such-option"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "No such option" in done.stderr


FIRST_PROMPT = """
import sys
from kai_shell.shell.launch import run
from kai_shell.shell.options import parse_plain
from kai_shell.runtime import Options, Runtime
import kai_shell.shell.prompt
params = parse_plain(["--offline", "--db", "kai.db", "--service", "agent"])
assert params is not None
Runtime(Options(db=params["db"])).check_config()
"""
"""What ``kai-shell`` does before its first prompt shows (see kai_shell/shell/early.py)."""


def test_the_shell_s_first_prompt_needs_no_click_and_no_rule_engine(tmp_path: Path) -> None:
    import os

    # No policy file applies here: nothing to read, so nothing to read it with.
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config")}
    env.pop("KAI_MANAGED_POLICY", None)
    loaded = loaded_after(FIRST_PROMPT, cwd=tmp_path, env=env)
    assert "prompt_toolkit" in loaded  # the probe got that far
    assert sorted(loaded & {"click", "msgspec", "kai_core.permissions", "trio"}) == []
    # With a policy file, the rules are read before the prompt (a broken one stops it).
    (tmp_path / ".kai").mkdir()
    (tmp_path / ".kai" / "policy.toml").write_text('[permissions]\nallow = ["list_*"]\n')
    assert "kai_core.permissions" in loaded_after(FIRST_PROMPT, cwd=tmp_path, env=env)


def _env_tracing_imports() -> dict[str, str]:
    import os

    # -X importtime through the environment: the console script's own imports
    # are listed on stderr, one per line, the module name last.
    return {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}


def test_making_a_client_loads_no_trio() -> None:
    # The transport imports trio where it sleeps or shields, not to exist.
    loaded = loaded_after(
        "from kai_core.client import KaiClient\n"
        "KaiClient('token-123456789', 'https://connection.keboola.com', 'https://kai.example')\n"
    )
    assert "trio" not in loaded


def test_the_library_leaves_httpx_alone() -> None:
    # The stand-in for httpx's command line is for kai's own processes only:
    # an embedder who imports kai_core gets httpx exactly as httpx made it.
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import kai_core.client, httpx, httpx._main as m; print(m.__file__)",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("_main.py")


def test_kai_leaves_httpx_s_command_line_out() -> None:
    # httpx's __init__ imports its CLI (click's rich and pygments helpers,
    # ~45-150 ms) unless kai's stand-in is there first (kai_shell/_httpx_cli.py).
    done = subprocess.run(
        [_script("kai"), "--url", "https://connection.keboola.com"]
        + ["--base-url", "http://127.0.0.1:9", "--token", "x", "ping"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**_env_tracing_imports(), "KAI_DB": "/nonexistent/kai.db"},
    )
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    assert "httpx" in imported, done.stderr[-2000:]  # the trace works, and ping made a client
    assert sorted(imported & {"httpx._main", "rich", "pygments"}) == []


def test_httpx_s_command_line_still_runs_behind_the_stand_in() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from kai_shell import _httpx_cli\n"
            "_httpx_cli.install()\n"
            "import httpx, sys\n"
            "assert 'click' not in sys.modules\n"
            "httpx.main(['--help'])\n",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "Usage: httpx" in done.stdout
