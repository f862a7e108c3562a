"""The example third-party plugin (docs/examples/approval-plugin), installed and in effect.

It is installed for real (built with its own build backend, by ``uv pip
install --target``) into a temporary folder that is put on ``sys.path``,
so ``importlib.metadata`` finds its ``kai`` entry point through the
installed ``dist-info``, exactly as for a plugin installed with pip.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kai_core.events import TextEvent
from kai_core.plugins import Plugins
from kai_core.policy import ApprovalContext, ApprovalRequest
from kai_core.render import create_renderer
from kai_plugins.policies import register_builtin_policies

pytestmark = pytest.mark.e2e

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "examples" / "approval-plugin"
NAME = "approval-example"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example package installed into a fresh target folder."""
    uv = shutil.which("uv")
    if uv is None:
        pytest.fail("uv is needed to build and install the example plugin")
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [uv, "pip", "install", "--quiet", "--no-deps", "--python", sys.executable,
         "--target", str(target), str(EXAMPLE)],
        check=True,
    )  # fmt: skip
    assert list(target.glob("kai_approval_example-*.dist-info"))
    return target


@pytest.fixture
def on_path(installed: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.syspath_prepend(str(installed))
    yield installed
    sys.modules.pop("kai_approval_example", None)


def decide(plugins: Plugins, tool_name: str) -> tuple[str, object] | None:
    return plugins.call_first(
        "kai_approve_tool",
        fail_closed=True,
        request=ApprovalRequest(tool_name=tool_name, tool_call_id="c1", approval_id="a1"),
        context=ApprovalContext(chat_id="chat-1"),
    )


def test_installed_plugin_decides_approvals(on_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAI_LOAD_PLUGINS", NAME)
    plugins = Plugins()
    assert NAME in plugins.names()
    row = next(r for r in plugins.listing() if r["name"] == NAME)
    assert row["hooks"] == ["kai_approve_tool", "kai_register_commands", "kai_register_renderers"]
    assert not row["builtin"]

    name, decision = decide(plugins, "list_tables") or ("", None)
    assert name == NAME and decision.approved  # type: ignore[attr-defined]
    name, decision = decide(plugins, "delete_bucket") or ("", None)
    assert name == NAME and not decision.approved  # type: ignore[attr-defined]
    assert decide(plugins, "update_description") is None


def test_installed_plugin_offers_its_renderer(
    on_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KAI_LOAD_PLUGINS", raising=False)  # unset: every installed plugin
    plugins = Plugins()
    out = io.StringIO()
    renderer = create_renderer(plugins.renderers(), "quiet", out)
    renderer.begin("hi")
    renderer.event(TextEvent(text="Hello"))
    renderer.end()
    assert out.getvalue() == "Hello\n"


def test_kai_load_plugins_keeps_it_out(on_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for value in ("", "some-other-plugin"):
        monkeypatch.setenv("KAI_LOAD_PLUGINS", value)
        plugins = Plugins()
        assert NAME not in plugins.names()
        assert {"renderers", "voting"} <= set(plugins.names())  # built-ins always load
        assert decide(plugins, "list_tables") is None


def test_rules_file_comes_before_it_and_auto_approve_after(
    on_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAI_LOAD_PLUGINS", NAME)
    rules = tmp_path / "policy.toml"
    rules.write_text('[[rule]]\ntool = "list_secrets"\naction = "reject"\nreason = "secret"\n')
    plugins = Plugins()
    register_builtin_policies(plugins, policy_path=rules, auto_approve=True)
    assert decide(plugins, "list_secrets")[0] == "policy-file"  # type: ignore[index]
    assert decide(plugins, "delete_bucket")[0] == NAME  # type: ignore[index]
    assert decide(plugins, "update_description")[0] == "auto-approve"  # type: ignore[index]


def test_the_examples_own_tests_pass(installed: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(installed), *sys.path])}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE / "tests")],
        cwd=EXAMPLE,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_its_command_joins_the_kai_cli(installed: Path) -> None:
    """A plugin's kai_register_commands adds a command to the real `kai` binary."""
    kai = Path(sys.executable).parent / "kai"
    env = {**os.environ, "PYTHONPATH": str(installed)}
    env.pop("KAI_LOAD_PLUGINS", None)  # load installed plugins, as a user's kai would
    out = subprocess.run(
        [str(kai), "approval-example-rules"], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert "reject: create_" in out.stdout
    env["KAI_LOAD_PLUGINS"] = ""  # none: the command is not there
    out = subprocess.run(
        [str(kai), "approval-example-rules"], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2 and "No such command" in out.stderr
