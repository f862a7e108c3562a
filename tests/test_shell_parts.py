"""kai-shell's parts on their own: registry, completion, approval replies, toolbar, keys."""

from __future__ import annotations

import base64
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.input.base import PipeInput
from prompt_toolkit.output import DummyOutput

from kai_core.exceptions import KaiLogError
from kai_shell.shell.approval import DENIED, ApprovalPrompt, describe_request, parse_reply
from kai_shell.shell.builtins import BUILTINS
from kai_shell.shell.clipboard import osc52_sequence, write_to_file
from kai_shell.shell.commands import CommandRegistry, ShellCommand, parse_usage
from kai_shell.shell.completer import ShellCompleter
from kai_shell.shell.editor import EditorError, edit_text, editor_command
from kai_shell.shell.prompt import build_prompt, open_history, prompt_message
from kai_shell.shell.state import ChatEntry, PendingApproval, ShellState
from kai_shell.shell.toolbar import toolbar

ISSUE_COMMANDS = (
    "new chats open history replay search approve deny vote delete export copy edit "
    "info ping plugins help quit"
).split()


@pytest.fixture
def pipe() -> Iterator[PipeInput]:
    with create_pipe_input() as inp:
        yield inp


def completions(completer: ShellCompleter, text: str) -> list[str]:
    found = completer.get_completions(Document(text), CompleteEvent(completion_requested=True))
    return [c.text for c in found]


def state_with_chats() -> ShellState:
    state = ShellState(chat_id="c-current")
    state.chats = (
        ChatEntry("3f2a0000-aaaa", "Tables in my project", 0.0),
        ChatEntry("3f2b1111-bbbb", "Create a bucket", 0.0),
        ChatEntry("9c000000-cccc", None, None),
    )
    state.pending = (
        PendingApproval("call_1", "create_bucket"),
        PendingApproval("call_2", "delete_table"),
    )
    state.tool_names = ("create_bucket", "list_tables")
    state.message_ids = ("msg-1", "msg-2")
    return state


# -- registry -----------------------------------------------------------------------


def test_builtins_cover_the_issue_commands() -> None:
    for name in ISSUE_COMMANDS:
        assert BUILTINS.get(name) is not None, name
        assert BUILTINS.get("/" + name) is BUILTINS.get(name)
    help_text = BUILTINS.help_text()
    for command in BUILTINS:
        assert command.help, command.name
        assert command.synopsis in help_text


def test_usage_drives_argument_kinds() -> None:
    args = parse_usage("CHAT [FILE]")
    assert [(a.kind, a.optional) for a in args] == [("chat", False), ("path", True)]
    (choice, message) = parse_usage("up|down [MESSAGE]")
    assert choice.kind == "choice" and choice.choices == ("up", "down")
    assert message.kind == "message" and message.optional
    (query,) = parse_usage("QUERY...")
    assert query.kind == "tool" and query.rest
    (reason,) = parse_usage("[REASON]")
    assert reason.kind == "text" and reason.rest


def test_registry_refuses_taking_a_name_and_suggests() -> None:
    registry = BUILTINS.copy()
    with pytest.raises(ValueError, match="/open already exists"):
        registry.add(ShellCommand("open", lambda shell, args: None, help="mine"))
    with pytest.raises(ValueError, match="/exit"):
        registry.add(ShellCommand("leave", lambda shell, args: None, aliases=("exit",)))
    assert registry.suggest("opn") == "open"
    assert registry.get("exit") is registry.get("quit")
    assert registry.parse("/export  abc  out.md ") == (
        registry.get("export"),
        "export",
        "abc  out.md",
    )
    assert len(BUILTINS) == len(BUILTINS.copy())


def test_plugin_command_help_comes_from_its_docstring() -> None:
    async def tables(shell: object, args: str) -> None:
        """List my tables.

        More words.
        """

    registry = CommandRegistry()
    registry.add(ShellCommand("/tables", tables, usage="[BUCKET]", source="acme"))
    command = registry.get("tables")
    assert command is not None
    assert command.help == "List my tables."
    assert "/tables [BUCKET]" in registry.help_text()
    assert "from plugin acme" in registry.help_text("tables")


# -- completion ---------------------------------------------------------------------


def test_completes_commands_by_prefix() -> None:
    completer = ShellCompleter(BUILTINS, ShellState())
    assert completions(completer, "/de") == ["/delete ", "/deny "]
    assert "/quit" in completions(completer, "/q")
    assert completions(completer, "hello /de") == []
    everything = completions(completer, "/")
    assert len(everything) >= len(ISSUE_COMMANDS)


def test_completes_chat_ids_by_prefix_and_by_title() -> None:
    completer = ShellCompleter(BUILTINS, state_with_chats())
    assert completions(completer, "/open 3f2") == ["3f2a0000-aaaa", "3f2b1111-bbbb"]
    assert completions(completer, "/open bucket") == ["3f2b1111-bbbb"]
    assert completions(completer, "/replay ") == ["3f2a0000-aaaa", "3f2b1111-bbbb", "9c000000-cccc"]
    found = list(
        completer.get_completions(
            Document("/export 3f2a"), CompleteEvent(completion_requested=True)
        )
    )
    assert found[0].display_meta_text.startswith("Tables in my project")
    assert found[0].start_position == -4


def test_completes_pending_tool_calls_choices_messages_and_tools() -> None:
    completer = ShellCompleter(BUILTINS, state_with_chats())
    assert completions(completer, "/approve ") == ["call_1", "call_2"]
    assert completions(completer, "/deny call_2") == ["call_2"]
    assert completions(completer, "/deny call_2 ") == []  # the reason is free text
    assert completions(completer, "/vote ") == ["up", "down"]
    assert completions(completer, "/vote up ") == ["msg-2", "msg-1"]
    assert completions(completer, "/search create") == ["create_bucket"]
    assert completions(completer, "/search rows list") == ["list_tables"]
    assert completions(completer, "/help ap") == ["approve"]
    assert completions(completer, "/new ") == []


def test_completes_file_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "answer.md").write_text("x")
    (tmp_path / "archive").mkdir()
    monkeypatch.chdir(tmp_path)
    completer = ShellCompleter(BUILTINS, state_with_chats())
    assert sorted(completions(completer, "/export 3f2a0000-aaaa a")) == ["nswer.md", "rchive"]
    assert completions(completer, "/copy ans") == ["wer.md"]


def test_approval_completer_offers_only_approve_and_deny() -> None:
    completer = ShellCompleter(BUILTINS, state_with_chats(), only=("approve", "deny"))
    assert completions(completer, "/") == ["/approve ", "/deny "]


# -- approval replies -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "approved", "reason", "target"),
    [
        ("y", "decide", True, None, "call_1"),
        ("YES", "decide", True, None, "call_1"),
        ("", "decide", False, DENIED, "call_1"),
        ("n", "decide", False, DENIED, "call_1"),
        ("no it deletes data", "decide", False, "it deletes data", "call_1"),
        ("/approve", "decide", True, None, "call_1"),
        ("/approve call_1", "decide", True, None, "call_1"),
        ("/approve call_2", "other", True, None, "call_2"),
        ("/deny call_2 too risky", "other", False, "too risky", "call_2"),
        ("/deny too risky", "decide", False, "too risky", "call_1"),
        ("?", "help", False, None, None),
    ],
)
def test_parse_reply(
    text: str, kind: str, approved: bool, reason: str | None, target: str | None
) -> None:
    reply = parse_reply(text, "call_1", ["call_1", "call_2"])
    assert reply.kind == kind
    if kind in ("decide", "other"):
        assert (reply.approved, reply.reason, reply.tool_call_id or "call_1") == (
            approved,
            reason,
            target,
        )


def test_parse_reply_rejects_nonsense() -> None:
    assert parse_reply("maybe", "call_1").kind == "invalid"
    reply = parse_reply("/approve call_9", "call_1", ["call_1"])
    assert reply.kind == "invalid" and "call_9" in reply.message


def test_request_is_described_with_pretty_json() -> None:
    text = describe_request("create_bucket", "call_1", {"name": "b1", "tags": ["x"]})
    assert "create_bucket" in text and "call_1" in text
    assert '  "name": "b1"' in text and '    "x"' in text


def test_approval_prompt_reads_a_line(pipe: PipeInput) -> None:
    prompt = ApprovalPrompt(BUILTINS, ShellState(), input=pipe, output=DummyOutput())
    pipe.send_text("n not today\r")
    assert prompt.read("create_bucket") == "n not today"
    pipe.send_text("\x03")
    with pytest.raises(KeyboardInterrupt):
        prompt.read("create_bucket")


# -- the main prompt's keys -----------------------------------------------------------


def make_prompt(pipe: PipeInput, state: ShellState | None = None) -> object:
    return build_prompt(
        BUILTINS, state or ShellState(), history=InMemoryHistory(), input=pipe, output=DummyOutput()
    )


def test_escape_enter_inserts_a_newline_and_enter_sends(pipe: PipeInput) -> None:
    session = make_prompt(pipe)
    pipe.send_text("first line\x1b\rsecond line\r")
    assert session.prompt() == "first line\nsecond line"  # type: ignore[attr-defined]


def test_bracketed_paste_keeps_the_newlines(pipe: PipeInput) -> None:
    session = make_prompt(pipe)
    pipe.send_text("\x1b[200~one\ntwo\nthree\x1b[201~\r")
    assert session.prompt() == "one\ntwo\nthree"  # type: ignore[attr-defined]


def test_ctrl_c_clears_the_line_then_interrupts_an_empty_one(pipe: PipeInput) -> None:
    session = make_prompt(pipe)
    pipe.send_text("half a thought\x03kept\r")
    assert session.prompt() == "kept"  # type: ignore[attr-defined]
    pipe.send_text("\x03")
    with pytest.raises(KeyboardInterrupt):
        session.prompt()  # type: ignore[attr-defined]
    pipe.send_text("\x04")
    with pytest.raises(EOFError):
        session.prompt()  # type: ignore[attr-defined]


def test_history_search_with_ctrl_r(pipe: PipeInput) -> None:
    history = InMemoryHistory()
    for line in ("list my tables", "create a bucket called b1", "hello"):
        history.append_string(line)
    session = build_prompt(
        BUILTINS, ShellState(), history=history, input=pipe, output=DummyOutput()
    )
    pipe.send_text("\x12bucket\r\r")
    assert session.prompt() == "create a bucket called b1"


@pytest.mark.parametrize(
    ("typed", "line"),
    [
        ("/op\t\r", "/open "),  # one completion: inserted
        ("/open bucket\t\r", "/open 3f2b1111-bbbb"),  # a word of the title: the chat id
        ("/open 3f\t\r", "/open 3f2"),  # several: what they share
        ("/de\t\r", "/de"),  # several sharing nothing: the menu, nothing chosen
        ("hello\t\r", "hello"),  # a message: nothing to complete
    ],
)
def test_tab_read_together_with_the_keys_before_it_completes(
    pipe: PipeInput, typed: str, line: str
) -> None:
    # The keys and the Tab arrive in one read, before the completion queued
    # for the typed text has run: prompt-toolkit's own Tab was dropped then.
    session = make_prompt(pipe, state_with_chats())
    pipe.send_text(typed)
    assert session.prompt() == line  # type: ignore[attr-defined]


def test_tab_completes_in_the_approval_prompt(pipe: PipeInput) -> None:
    prompt = ApprovalPrompt(BUILTINS, state_with_chats(), input=pipe, output=DummyOutput())
    pipe.send_text("/ap\tcall_2\r")
    assert prompt.read("delete_table") == "/approve call_2"


def test_history_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "state" / "shell_history"
    history = open_history(path)
    history.store_string("secret-ish")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.chmod(0o644)
    open_history(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert list(open_history(path).load_history_strings()) == ["secret-ish"]


# -- toolbar and prompt message -------------------------------------------------------


def text_of(fragments: list[tuple[str, str]]) -> str:
    return "".join(text for _, text in fragments)


def test_toolbar_shows_server_chat_tokens_and_pending() -> None:
    state = ShellState(chat_id="3f2a0000-aaaa", chat_title="Tables in my project")
    assert "offline" in text_of(toolbar(state))
    state.server, state.server_note = "online", "kai-agent @ 127.0.0.1:8000"
    state.tokens_in, state.tokens_out = 218, 40
    state.pending = (PendingApproval("call_1", "create_bucket"),)
    bar = text_of(toolbar(state))
    assert "online (kai-agent @ 127.0.0.1:8000)" in bar
    assert "Tables in my project" in bar and "[3f2a0000]" in bar
    assert "tokens 218 in / 40 out" in bar
    assert "approval: create_bucket call_1" in bar
    assert text_of(prompt_message(state)) == "kai ⏸> "
    state.server, state.pending = "offline", ()
    assert text_of(prompt_message(state)) == "kai (offline)> "


# -- clipboard and editor -------------------------------------------------------------


def test_osc52_plain_and_inside_tmux() -> None:
    plain = osc52_sequence("héllo", env={})
    assert plain.startswith("\x1b]52;c;") and plain.endswith("\x07")
    assert base64.b64decode(plain[7:-1]).decode() == "héllo"
    tmux = osc52_sequence("x", env={"TMUX": "/tmp/tmux-1/default,1,0"})
    assert tmux.startswith("\x1bPtmux;\x1b\x1b]52;c;") and tmux.endswith("\x1b\\")


def test_write_to_file(tmp_path: Path) -> None:
    path = write_to_file("an answer", str(tmp_path / "a.md"))
    assert path.read_text() == "an answer\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # /copy and /export never write over the log (issue 12, item 6).
    log = tmp_path / "kai.db"
    log.write_bytes(b"the log")
    for target in (log, tmp_path / "kai.db-wal"):
        with pytest.raises(KaiLogError, match="own file"):
            write_to_file("an answer", str(target), log=log)
    assert log.read_bytes() == b"the log"


@pytest.mark.e2e
def test_editor_runs_the_users_editor(tmp_path: Path) -> None:
    script = tmp_path / "fake-editor"
    script.write_text(
        f"#!{sys.executable}\nimport sys\nopen(sys.argv[1], 'a').write(' world\\n')\n"
    )
    script.chmod(0o755)
    assert editor_command({"EDITOR": "vim -u NONE"}) == ["vim", "-u", "NONE"]
    assert editor_command({"VISUAL": "code -w", "EDITOR": "vim"}) == ["code", "-w"]
    assert edit_text("hello", env={"EDITOR": str(script)}) == "hello world"
    with pytest.raises(EditorError, match="could not start"):
        edit_text("", env={"EDITOR": str(tmp_path / "missing")})
    failing = f"{sys.executable} -c 'raise SystemExit(3)'"
    with pytest.raises(EditorError, match="exited with 3"):
        edit_text("", env={"EDITOR": failing})
    assert not [p for p in os.listdir(tmp_path) if p.startswith("kai-message-")]


def test_a_registry_takes_the_builtins_for_a_completer_made_before_them() -> None:
    # kai-shell's early prompt: its completer exists before the built-ins are
    # imported, and sees them once the loader hands them over.
    registry = CommandRegistry()
    completer = ShellCompleter(registry, ShellState())
    assert completions(completer, "/he") == []
    registry.take(BUILTINS)
    assert completions(completer, "/he") == ["/help "]
    registry.add(ShellCommand("mine", lambda shell, args: None, help="a plugin's"))
    assert BUILTINS.get("mine") is None  # a copy: the plugin's command stays in this shell
