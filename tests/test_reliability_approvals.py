"""Approvals fail closed; a plugin that raises is reported once and disabled.

On both backends, through :class:`~kai_core.session.Session` and the
emulator, with the event log: a policy that raises, or nobody to ask, means
"not approved", the reason is logged and the tool never runs (the emulator's
bucket is not created). A rules file that cannot be read stops ``kai chat``
before any request leaves. A renderer, observer or voting plugin that raises
is reported once, disabled for the session, and the stream and the log go on.
"""

from __future__ import annotations

import io
import subprocess
from pathlib import Path
from typing import Any

import pytest
import trio

import kai_plugins.renderers
from kai_core.events import Event, TextEvent
from kai_core.hookspecs import hookimpl
from kai_core.log import EventLog, LogRecord
from kai_core.observe import ObservedLog
from kai_core.plugins import Plugins
from kai_core.policy import (
    AnswerInfo,
    ApprovalContext,
    ApprovalDecision,
    ApprovalRequest,
    VoteDecision,
)
from kai_core.render import GuardedRenderer, Renderer, create_renderer
from kai_core.session import NO_TERMINAL_REASON, Session
from kai_core.testing import open_emulator
from kai_plugins.policies import register_builtin_policies
from kai_plugins.renderers import PlainRenderer

from .test_reliability_support import (
    KAI,
    SECRET,
    Backend,
    client_records,
    connected,
    frame_payloads,
    integrity_ok,
    kai_env,
    server_payloads,
)

pytestmark = pytest.mark.reliability

BACKENDS = ["agent", "assistant"]


class RaisingPolicy:
    @hookimpl
    def kai_approve_tool(
        self, request: ApprovalRequest, context: ApprovalContext
    ) -> ApprovalDecision | None:
        raise RuntimeError("the policy service is down")


class NotADecision:
    @hookimpl
    def kai_approve_tool(self, request: ApprovalRequest) -> Any:
        return "yes please"


async def _run(session: Session, text: str) -> list[Event]:
    with trio.fail_after(30):
        return [e async for e in session.send(text)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", ["raising-policy", "not-a-decision", "no-terminal"])
async def test_approvals_fail_closed_with_the_reason_logged(
    backend: Backend, case: str, tmp_path: Path
) -> None:
    reports: list[str] = []
    plugins = Plugins(load_entry_points=False, report=reports.append)
    # --auto-approve is registered too: a failing policy must not fall through to it.
    register_builtin_policies(plugins, auto_approve=case != "no-terminal")
    if case == "raising-policy":
        plugins.register(RaisingPolicy(), name="raising")
    elif case == "not-a-decision":
        plugins.register(NotADecision(), name="sloppy")
    log = EventLog(tmp_path / "kai.db")
    async with connected(backend, log=log) as (emulator, client):
        session = Session(client, plugins=plugins, ask=None)
        events = await _run(session, "create a bucket called b1")
        chat_id = session.chat_id
        assert "in.c-b1" not in emulator.state.buckets  # the tool never ran
        (decision,) = client_records(log, chat_id, "approval")
        assert decision["approved"] is False
        assert decision["tool_name"] == "create_bucket"
        if case == "raising-policy":
            assert decision["decided_by"] == "raising"
            assert "the policy service is down" in decision["reason"]
            assert reports == [
                "plugin 'raising' failed in kai_approve_tool: RuntimeError: "
                "the policy service is down (disabled for this session)"
            ]
        elif case == "not-a-decision":
            assert decision["decided_by"] == "sloppy"
            assert "not a decision" in decision["reason"]
        else:
            assert decision["decided_by"] == "no-terminal"
            assert decision["reason"] == NO_TERMINAL_REASON
        # The answer went on to its end, and the log has all of it.
        assert events[-1].type == "finish"
        assert server_payloads(log, chat_id)[-len(frame_payloads(emulator, chat_id)) :] == (
            frame_payloads(emulator, chat_id)
        )
    integrity_ok(tmp_path / "kai.db")


@pytest.mark.parametrize("backend", BACKENDS)
async def test_an_ask_callback_that_raises_approves_nothing(backend: Backend) -> None:
    async def broken_ask(request: ApprovalRequest) -> ApprovalDecision | None:
        raise OSError("the terminal went away")

    async with connected(backend) as (emulator, client):
        session = Session(client, ask=broken_ask)
        with pytest.raises(OSError):
            await _run(session, "create a bucket called b1")
        await trio.sleep(0.2)  # give a (wrongly) approved tool time to run
        assert "in.c-b1" not in emulator.state.buckets


@pytest.mark.parametrize(
    "content",
    [b'[[rule]\ntool = "x"', b"\xff\xfe binary", None],
    ids=["syntax-error", "not-text", "missing"],
)
async def test_a_rules_file_that_cannot_be_read_stops_before_anything_is_sent(
    content: bytes | None, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.toml"
    if content is not None:
        policy.write_bytes(content)
    async with open_emulator(backend="assistant", token=SECRET) as emulator:
        argv = [
            str(KAI),
            "--base-url",
            emulator.base_url,
            "--url",
            emulator.base_url,
            "--db",
            str(tmp_path / "kai.db"),
            "--policy",
            str(policy),
            "chat",
            "-m",
            "create a bucket called b1",
        ]
        with trio.fail_after(30):
            done = await trio.run_process(
                argv,
                env=kai_env(tmp_path, STORAGE_API_TOKEN=SECRET),
                stdin=subprocess.DEVNULL,
                capture_stdout=True,
                capture_stderr=True,
                check=False,
            )
        assert done.returncode == 3, done.stderr
        lines = done.stderr.decode().strip().splitlines()
        assert len(lines) == 1 and "policy file" in lines[0], lines
        assert emulator.state.requests == []  # nothing at all was sent
    assert not (tmp_path / "kai.db").exists() or not EventLog(tmp_path / "kai.db").events()


# -- plugins that raise in a renderer, an observer, a voting hook ----------------------


class Broken:
    """Every kind of hook, each raising (the renderer after three events)."""

    def __init__(self) -> None:
        self.observed = 0
        self.votes = 0

    @hookimpl
    def kai_observe_event(self, record: LogRecord) -> None:
        self.observed += 1
        raise ValueError("observer bug")

    @hookimpl
    def kai_vote(self, answer: AnswerInfo) -> VoteDecision | None:
        self.votes += 1
        raise ZeroDivisionError("voting bug")

    @hookimpl
    def kai_register_renderers(self) -> dict[str, Any]:
        return {"fragile": FragileRenderer}


class Counting:
    """A well-behaved observer next to the broken one: it keeps seeing everything."""

    def __init__(self) -> None:
        self.records: list[LogRecord] = []

    @hookimpl
    def kai_observe_event(self, record: LogRecord) -> None:
        self.records.append(record)


class FragileRenderer(Renderer):
    shown = 0

    def event(self, event: Event) -> None:
        FragileRenderer.shown += 1
        if FragileRenderer.shown > 3:
            raise KeyError("renderer bug")
        if isinstance(event, TextEvent):
            self.stream.write(event.text)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_raising_plugin_is_reported_once_and_the_stream_and_log_go_on(
    backend: Backend, tmp_path: Path
) -> None:
    reports: list[str] = []
    plugins = Plugins(load_entry_points=False, report=reports.append)
    broken, counting = Broken(), Counting()
    plugins.register(broken, name="broken")
    plugins.register(counting, name="counting")
    plugins.register(kai_plugins.renderers, name="renderers")
    FragileRenderer.shown = 0
    out = io.StringIO()
    renderer = GuardedRenderer(
        create_renderer(plugins.renderers(), "fragile", out),
        reports.append,
        fallback=PlainRenderer(out),
    )
    log = EventLog(tmp_path / "kai.db")
    async with connected(backend, log=ObservedLog(log, plugins)) as (emulator, client):
        session = Session(client, plugins=plugins)
        texts = []
        for message in ("hello", "list my tables", "think"):
            renderer.begin(message)
            async for event in session.send(message):
                renderer.event(event)
            renderer.end()
            texts.append(frame_payloads(emulator, session.chat_id))
        # Each broken hook reported once, then disabled (not called again).
        assert sorted(reports) == sorted(
            [
                "plugin 'broken' failed in kai_observe_event: ValueError: observer bug "
                "(disabled for this session)",
                "plugin 'broken' failed in kai_vote: ZeroDivisionError: voting bug "
                "(disabled for this session)",
                "renderer FragileRenderer failed in event: KeyError: 'renderer bug' "
                "(disabled for this session)",
            ]
        )
        assert broken.observed == 1 and broken.votes == 1
        # The stream went on: every answer's text reached the output (the plain
        # renderer took over), the log and the good observer saw every record.
        assert "You have 3 tables" in out.getvalue()
        assert "the answer is 42" in out.getvalue()
        logged = log.events(session.chat_id)
        assert len(counting.records) == len(log.events())
        assert [e.type for e in logged if e.origin == "server"] == [
            r.type
            for r in counting.records
            if r.origin == "server" and r.chat_id == session.chat_id
        ]
        assert server_payloads(log, session.chat_id) == [p for t in texts for p in t]
    integrity_ok(tmp_path / "kai.db")
