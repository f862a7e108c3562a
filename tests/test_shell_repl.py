"""The shell driven through prompt-toolkit's pipe input, against the in-process emulator."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import trio
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.input.base import PipeInput
from prompt_toolkit.output import DummyOutput

from kai_core.hookspecs import hookimpl
from kai_core.log import EventLog
from kai_core.policy import ApprovalDecision, ApprovalRequest
from kai_core.testing import Emulator, Say
from kai_shell.repl import Shell
from kai_shell.runtime import Options, Runtime
from kai_shell.shell import ShellCommand
from kai_shell.shell.answer import Deferred, RunningAnswer

LIMIT = 20  # seconds: a generous bound on any one test


class Watched(io.StringIO):
    """Output that calls ``on_write(text so far)`` after each write (to react mid-stream)."""

    def __init__(self) -> None:
        super().__init__()
        self.on_write: Callable[[str], None] | None = None

    def write(self, s: str) -> int:
        n = super().write(s)
        if self.on_write is not None:
            self.on_write(self.getvalue())
        return n


@pytest.fixture
def pipe() -> Iterator[PipeInput]:
    with create_pipe_input() as inp:
        yield inp


def make_shell(
    tmp_path: Path,
    pipe: PipeInput,
    emulator: Emulator | None = None,
    **options: Any,
) -> tuple[Shell, Watched]:
    opts = Options(db=str(tmp_path / "kai.db"), renderer="plain", **options)
    if emulator is not None:
        opts.token = emulator.token
        opts.url = emulator.storage_api_url
        opts.base_url = emulator.base_url
        opts.service = emulator.backend
    out = Watched()
    shell = Shell(
        Runtime(opts),
        input=pipe,
        output=DummyOutput(),
        stream=out,
        history=InMemoryHistory(),
        handle_sigint=False,
        offline=emulator is None,
    )
    return shell, out


async def run(shell: Shell, pipe: PipeInput, *lines: str) -> None:
    pipe.send_text("".join(line + "\r" for line in lines))
    with trio.fail_after(LIMIT):
        await shell.run()


def approvals(db: Path) -> list[dict[str, Any]]:
    with EventLog(db) as log:
        return [
            msgspec.json.decode(e.body)
            for e in log.events()
            if e.origin == "client" and e.type == "approval"
        ]


@pytest.mark.parametrize("backend", ["agent", "assistant"])
async def test_chat_with_one_approval_yes_and_one_no(
    tmp_path: Path, pipe: PipeInput, backend: str
) -> None:
    from kai_core.testing import open_emulator

    async with open_emulator(backend=backend) as emulator:
        shell, out = make_shell(tmp_path, pipe, emulator)
        await run(
            shell,
            pipe,
            "hello",
            "create a bucket called b1",
            "y",
            "create a bucket called b2",
            "n not today",
            "/quit",
        )
    text = out.getvalue()
    assert "Hello! I'm Kai, the Keboola AI assistant (emulator). How can I help?" in text
    assert (
        'Tool create_bucket wants to run (call call_000001) with input:\n{\n  "name": "b1"' in text
    )
    assert "create_bucket approved by user" in text
    assert "create_bucket rejected by user (not today)" in text
    assert "error" not in text
    decided = [(a["tool_name"], a["approved"], a["reason"]) for a in approvals(tmp_path / "kai.db")]
    assert decided == [("create_bucket", True, None), ("create_bucket", False, "not today")]
    assert shell.state.tokens[1] > 0


async def test_approval_prompt_help_and_deciding_another_call_first(
    tmp_path: Path, pipe: PipeInput
) -> None:
    from kai_core.testing import open_emulator

    async with open_emulator(backend="assistant") as emulator:
        shell, out = make_shell(tmp_path, pipe, emulator)
        await run(
            shell,
            pipe,
            "create two buckets x and y",
            "?",
            "perhaps",
            "/deny call_000002 only one please",
            "yes",
            "/quit",
        )
    text = out.getvalue()
    assert "y = run the tool" in text
    assert "answer y or n" in text
    assert "will deny call_000002 when it is asked" in text
    assert "using your earlier decision" in text
    decided = [(a["tool_call_id"], a["approved"]) for a in approvals(tmp_path / "kai.db")]
    assert decided == [("call_000001", True), ("call_000002", False)]


async def test_a_policy_decides_without_asking(tmp_path: Path, pipe: PipeInput) -> None:
    from kai_core.testing import open_emulator

    class Careful:
        @hookimpl
        def kai_approve_tool(self, request: ApprovalRequest, context: Any) -> Any:
            return ApprovalDecision.reject("no writes on Fridays")

    async with open_emulator() as emulator:
        shell, out = make_shell(tmp_path, pipe, emulator)
        shell.runtime.plugins.register(Careful(), name="careful")
        await run(shell, pipe, "create a bucket called b1", "/quit")
    text = out.getvalue()
    assert "[y/N]" not in text and "wants to run" not in text
    assert "create_bucket rejected by careful (no writes on Fridays)" in text


async def test_stopping_an_answer_keeps_what_arrived(tmp_path: Path, pipe: PipeInput) -> None:
    from kai_core.testing import open_emulator

    async with open_emulator() as emulator:
        emulator.script(
            lambda text: [Say(*(f"part {n}. " for n in range(1, 40)), pause=0.05)],
            trigger="long story",
        )
        shell, out = make_shell(tmp_path, pipe, emulator)

        def stop_at_part_3(text: str) -> None:
            if "part 3." in text:
                out.on_write = None
                shell.interrupt()  # what the SIGINT task does on Ctrl-C

        out.on_write = stop_at_part_3
        await run(shell, pipe, "tell me a long story", "hello", "/quit")
        chat_id = shell.state.chat_id
    text = out.getvalue()
    assert "stopped (Ctrl-C); what arrived is kept in the log" in text
    assert "part 39." not in text
    assert "How can I help?" in text  # the shell went on
    with EventLog(tmp_path / "kai.db") as log:
        events = log.events(chat_id)
        assert [e.type for e in events if e.origin == "client"].count("cancelled") == 1
        detail = log.get_chat(chat_id)
        assert detail is not None
        first_answer = [m for m in detail.messages if m.role == "assistant"][0]
        assert "part 3." in first_answer.text and "part 39." not in first_answer.text


async def test_server_errors_are_one_line_and_the_shell_goes_on(
    tmp_path: Path, pipe: PipeInput
) -> None:
    from kai_core.testing import open_emulator

    async with open_emulator() as emulator:
        shell, out = make_shell(tmp_path, pipe, emulator)
        await run(
            shell, pipe, "boom", "/open 00000000-0000-0000-0000-000000000000", "/ping", "/quit"
        )
    text = out.getvalue()
    assert "Simulated model failure (boom)" in text
    assert text.count("error: ") == 1 and "not_found" in text  # the unknown chat
    assert "pong from" in text
    assert "Traceback" not in text


async def test_log_commands_work_offline(tmp_path: Path, pipe: PipeInput) -> None:
    from kai_core.testing import open_emulator

    # First record a chat, online.
    async with open_emulator() as emulator:
        shell, _ = make_shell(tmp_path, pipe, emulator)
        await run(shell, pipe, "list my tables", "/quit")
        old_chat = shell.state.chat_id
    assert old_chat is not None
    export = tmp_path / "chat.md"
    jsonl = tmp_path / "chat.jsonl"
    with create_pipe_input() as pipe2:
        shell, out = make_shell(tmp_path, pipe2)
        await run(
            shell,
            pipe2,
            "are you there?",
            "/ping",
            "/chats",
            "/search tables",
            f"/replay {old_chat[:8]} 0",
            f"/export {old_chat} {export}",
            f"/export {old_chat} {jsonl}",
            f"/open {old_chat}",
            f"/copy {tmp_path / 'answer.txt'}",
            "/nope",
            "/quit",
        )
    text = out.getvalue()
    assert "offline (--offline)" in text
    assert "sending a message needs the server" in text
    assert "/ping needs the server" in text
    assert f"  {old_chat}  " in text  # /chats
    assert "[list]" in text or "list my [tables]" in text  # /search snippet marks
    assert "you> list my tables" in text  # /replay shows the user's message
    assert "list_tables" in text
    assert export.read_text().startswith("#")
    assert jsonl.read_text().count("\n") > 5
    assert shell.state.chat_id == old_chat  # /open switched
    assert (tmp_path / "answer.txt").read_text().strip()
    assert "unknown command /nope" in text


async def test_plugin_commands_join_the_registry(tmp_path: Path, pipe: PipeInput) -> None:
    seen: list[str] = []

    async def greet(shell: Shell, args: str) -> None:
        """Say hello to someone."""
        seen.append(args)
        shell.echo(f"hello {args}")

    def broken(shell: Shell, args: str) -> None:
        raise RuntimeError("plugin bug")

    class Extra:
        @hookimpl
        def kai_shell_commands(self) -> list[Any]:
            return [
                ShellCommand("greet", greet, usage="NAME"),
                ShellCommand("broken", broken, help="Fails."),
                ShellCommand("open", greet, help="Clashes with a built-in."),
            ]

    opts = Options(db=str(tmp_path / "kai.db"), renderer="plain")
    runtime = Runtime(opts)
    runtime.plugins.register(Extra(), name="extra")
    out = Watched()
    shell = Shell(
        runtime,
        input=pipe,
        output=DummyOutput(),
        stream=out,
        history=InMemoryHistory(),
        handle_sigint=False,
        offline=True,
    )
    await run(shell, pipe, "/greet world", "/broken", "/help greet", "/help", "/quit")
    text = out.getvalue()
    assert seen == ["world"]
    assert "hello world" in text
    assert "error: RuntimeError: plugin bug" in text
    assert "/open already exists" in text
    assert "from plugin extra" in text
    assert "/greet NAME" in text


async def test_ctrl_c_on_an_empty_line_hints_and_ctrl_d_quits(
    tmp_path: Path, pipe: PipeInput
) -> None:
    shell, out = make_shell(tmp_path, pipe)
    pipe.send_text("\x03")
    pipe.send_text("\x04")
    with trio.fail_after(LIMIT):
        await shell.run()
    assert "(Ctrl-D or /quit to exit)" in out.getvalue()


async def test_server_commands(tmp_path: Path, pipe: PipeInput) -> None:
    from kai_core.client import KaiClient
    from kai_core.session import Session
    from kai_core.testing import open_emulator

    async with open_emulator() as emulator:
        # a chat that exists on the server only (recorded nowhere)
        async with KaiClient(
            storage_api_token=emulator.token,
            storage_api_url=emulator.storage_api_url,
            base_url=emulator.base_url,
        ) as client:
            elsewhere = Session(client)
            async with elsewhere.stream("hello") as events:
                async for _ in events:
                    pass
        shell, out = make_shell(tmp_path, pipe, emulator, vote=True)
        await run(
            shell,
            pipe,
            "list my tables",
            "u",  # --vote asks after the answer
            "/vote down",
            "/info",
            "/history",
            f"/open {elsewhere.chat_id}",
            "/delete .",
            "y",
            "/quit",
        )
        text = out.getvalue()
        assert "Vote on this answer?" not in text  # the prompt went to the (dummy) terminal
        assert "voted down on " in text
        assert "not recorded here" in text  # /history marks chats the log lacks
        assert "uptime" in text and "version" in text
        assert elsewhere.chat_id in text  # /history lists it
        assert "kai> Hello! I'm Kai" in text  # /open shows the server's messages
        assert f"deleted {elsewhere.chat_id} on the server" in text
        assert shell.state.chat_id != elsewhere.chat_id  # a new chat after deleting the current
    with EventLog(tmp_path / "kai.db") as log:
        assert log.get_chat(elsewhere.chat_id) is not None  # /open imported it
        kinds = [e.type for e in log.events() if e.origin == "client"]
    assert kinds.count("vote") == 2
    assert "delete-chat" in kinds


async def test_calls_left_pending_by_ctrl_c_are_answered_later(
    tmp_path: Path, pipe: PipeInput
) -> None:
    from kai_core.testing import open_emulator

    async with open_emulator(backend="assistant") as emulator:
        shell, out = make_shell(tmp_path, pipe, emulator)
        pipe.send_text("create two buckets x and y\r")
        pipe.send_text("\x03")  # Ctrl-C at the approval question: put off, the answer parks
        # /approve names the call; the answer goes on and asks about the second one
        pipe.send_text("/approve\r/approve call_000001\r/deny call_000002 only one\r/quit\r")
        with trio.fail_after(LIMIT):
            await shell.run()
    text = out.getvalue()
    assert "create_bucket waits for your decision" in text
    assert "stopped (Ctrl-C)" not in text
    assert "several tool calls wait" in text
    assert "create_bucket rejected by user (only one)" in text
    assert "was created" in text  # the continuation streamed
    assert shell.state.pending == ()
    decided = [(a["tool_call_id"], a["approved"]) for a in approvals(tmp_path / "kai.db")]
    assert decided == [("call_000001", True), ("call_000002", False)]


@pytest.mark.parametrize("backend", ["agent", "assistant"])
async def test_a_call_left_by_a_stopped_answer_is_answered_though_the_log_fails(
    tmp_path: Path, pipe: PipeInput, backend: str
) -> None:
    from kai_core.exceptions import KaiLogError
    from kai_core.testing import open_emulator

    async with open_emulator(backend=backend) as emulator:
        shell, out = make_shell(tmp_path, pipe, emulator)

        def log_fails(*_: Any, **__: Any) -> None:
            raise KaiLogError("cannot write the event log: disk is full", code="log:io")

        def stop_at_the_request(text: str) -> None:
            if "waits for approval" in text:  # stopped while it streamed, not at the question
                out.on_write = fail_the_log
                shell.interrupt()

        def fail_the_log(text: str) -> None:
            if "stopped (Ctrl-C)" in text:  # from now on, as if the disk were full
                out.on_write = None
                assert shell.client is not None and shell.client.log is not None
                shell.client.log.append = log_fails  # type: ignore[method-assign]

        out.on_write = stop_at_the_request
        await run(shell, pipe, "create a bucket called b1", "/approve", "/quit")
        assert "in.c-b1" in emulator.state.buckets
    text = out.getvalue()
    stopped = text.index("stopped (Ctrl-C)")
    # The decision was the first record the log could not take: reported, and answered.
    assert text.index("the event log is off for the rest of this run") > stopped
    assert "create_bucket approved by user" in text[stopped:]
    if backend == "assistant":
        assert "Done: bucket in.c-b1 was created." in text  # the continuation streamed
    else:
        assert "create_bucket: answer sent; the server goes on with the answer" in text
    assert "error" not in text
    assert shell.state.pending == ()


async def test_a_settled_answer_is_going_on_before_its_task_runs() -> None:
    # The prompt follows the answer right after /approve: were the answer
    # still marked parked until its task next ran (trio picks the order),
    # following would return at once and the shell prompt would read the
    # terminal while the answer asks its next question (a hang, 1 run in 2).
    answer = RunningAnswer(can_park=True)
    deferred = Deferred("create_bucket")
    answer.park("call_1", deferred)
    assert not answer.settle("call_2", ApprovalDecision.approve())
    assert answer.parked
    assert answer.settle("call_1", ApprovalDecision.approve())
    assert not answer.parked
    assert (await deferred.wait()).approved
    assert not answer.settle("call_1", ApprovalDecision.approve())  # once only


@pytest.mark.e2e
def test_a_shell_starts_without_rich_or_the_approval_prompt(tmp_path: Path) -> None:
    # Both cost start-up time (~45 ms and ~25 ms) and most shells need them
    # late or never: rich at the first answer drawn, the approval prompt at
    # the first question. Run in a fresh interpreter: this one imported rich.
    code = """
import sys
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput
from kai_core.events import TextEvent
from kai_shell.repl import Shell
from kai_shell.runtime import Options, Runtime

with create_pipe_input() as pipe:
    shell = Shell(
        Runtime(Options(db=sys.argv[1], renderer="markdown")),
        input=pipe, output=DummyOutput(), history=InMemoryHistory(),
        handle_sigint=False, offline=True,
    )
    started = ("rich" in sys.modules, "approval_prompt" in vars(shell))
    shell.renderer.begin("hello")
    shell.renderer.event(TextEvent(text="Hi, **there**."))
    shell.renderer.end()
    shell.approval_prompt
    print(started, ("rich" in sys.modules, "approval_prompt" in vars(shell)))
"""
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "kai.db")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "Hi, there." in done.stdout  # drawn by rich, as Markdown
    assert done.stdout.split("\n")[-2] == "(False, False) (True, True)"


async def test_permissions_and_why(
    tmp_path: Path, pipe: PipeInput, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kai_core.testing import open_emulator

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.chdir(tmp_path)
    policy = tmp_path / "policy.toml"
    policy.write_text('[permissions]\nallow = ["list_*"]\ndeny = ["create_*"]\n')
    async with open_emulator(backend="agent") as emulator:
        shell, out = make_shell(tmp_path, pipe, emulator, policy=str(policy))
        await run(
            shell,
            pipe,
            "/why",
            "create a bucket called b1",
            "/why",
            "/permissions",
            "/permissions create_bucket",
            "/quit",
        )
        assert "in.c-b1" not in emulator.state.buckets
    text = out.getvalue()
    assert "no tool call has been decided in this chat yet" in text
    assert f"create_bucket: deny by rule 'create_*' (command-line {policy}:3)" in text
    assert f"  reason: deny rule 'create_*' (command-line policy {policy}:3)" in text
    assert "deny  create_*" in text and "allow list_*" in text
    assert "list_tables              read-only kai: default      local: allow" in text
    assert f"create_bucket: deny by create_* (command-line {policy}:3)" in text
    assert "[y/N]" not in text
