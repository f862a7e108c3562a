"""kai-shell's early prompt (issue 16): up before trio, and as usable as any later one.

The real ``kai-shell`` on a pseudo-terminal: what would stop the shell is
reported before any prompt; keys typed before the prompt shows are kept;
Ctrl-C and Ctrl-D at the first prompt behave as at every other; the first
line is run by the shell once it is loaded. (``kai_shell/shell/early.py``.)
"""

from __future__ import annotations

import re
from pathlib import Path

import pexpect
import pytest

from .pty_support import ANSI, PROMPT, in_thread, quit_shell, say, spawn

pytestmark = pytest.mark.e2e

OFFLINE_PROMPT = re.compile(rf"kai{ANSI} \(offline\){ANSI}> ")


async def test_a_broken_policy_file_stops_the_shell_before_any_prompt(
    tmp_path: Path, children: list[pexpect.spawn]
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text("[[rule]\ntool = \n")  # not TOML

    def dialogue() -> None:
        child = spawn(tmp_path, "--offline", "--policy", str(policy))
        children.append(child)
        child.expect(pexpect.EOF)
        child.close()
        shown = child.before or ""
        assert child.exitstatus == 3, shown
        assert "error" in shown and "policy.toml" in shown, shown
        assert not PROMPT.search(shown), shown  # no prompt, not even briefly

    await in_thread(dialogue)


async def test_a_broken_project_policy_or_a_managed_ban_stops_the_shell_before_any_prompt(
    tmp_path: Path, children: list[pexpect.spawn]
) -> None:
    # A plain command line (parsed without click) and policy files found, not
    # named: the rules are still read before the prompt shows.
    project = tmp_path / ".kai" / "policy.toml"
    project.parent.mkdir()
    project.write_text('[permissions]\ndeny = ["a(b"]\n')
    managed = tmp_path / "managed.toml"
    managed.write_text("[permissions]\ndisable_auto_approve = true\n")

    def stopped(*args: str, env: dict[str, str] | None = None) -> str:
        child = spawn(tmp_path, "--offline", *args, env_extra=env)
        children.append(child)
        child.expect(pexpect.EOF)
        child.close()
        shown = child.before or ""
        assert child.exitstatus == 3, shown
        assert not PROMPT.search(shown), shown
        return shown

    def dialogue() -> None:
        assert f"{project}:2: deny: rule 'a(b'" in stopped()
        project.unlink()
        banned = stopped("--auto-approve", env={"KAI_MANAGED_POLICY": str(managed)})
        assert f"{managed}:2: disable_auto_approve" in banned

    await in_thread(dialogue)


async def test_keys_typed_before_the_prompt_shows_are_kept(
    tmp_path: Path, children: list[pexpect.spawn]
) -> None:
    def dialogue() -> None:
        child = spawn(tmp_path, "--offline")
        children.append(child)
        child.send("/help\r")  # at once: python has not even started yet
        child.expect("Type a message")  # the greeting, then the prompt
        child.expect(OFFLINE_PROMPT)
        child.expect(re.escape("/quit"))  # /help's list, once the shell is loaded
        quit_shell(child)

    await in_thread(dialogue)


async def test_ctrl_c_and_ctrl_d_at_the_first_prompt(
    tmp_path: Path, children: list[pexpect.spawn]
) -> None:
    def dialogue() -> None:
        child = spawn(tmp_path, "--offline")
        children.append(child)
        child.expect(OFFLINE_PROMPT)
        child.send("half a line")
        child.sendcontrol("c")  # clears the line
        child.sendcontrol("c")  # on an empty line: how to quit, and a prompt again
        child.expect(re.escape("(Ctrl-D or /quit to exit)"))
        child.expect(OFFLINE_PROMPT)
        child.sendcontrol("d")
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 0

    await in_thread(dialogue)


async def test_the_first_line_runs_and_the_shell_goes_on(
    tmp_path: Path, children: list[pexpect.spawn]
) -> None:
    def dialogue() -> None:
        child = spawn(tmp_path, "--offline")
        children.append(child)
        say(child, "/nosuchcommand")
        child.expect(re.escape("unknown command /nosuchcommand"))
        say(child, "/chats")
        child.expect(OFFLINE_PROMPT)
        quit_shell(child)

    await in_thread(dialogue)
