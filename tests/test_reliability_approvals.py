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
import threading
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

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

from .reliability_support import (
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
                "the policy service is down (it rejects every call for the rest of this session)"
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


class RaisesOnce:
    """Raises on its first request, has no opinion afterwards: it must go on rejecting."""

    def __init__(self) -> None:
        self.calls = 0

    @hookimpl
    def kai_approve_tool(self, request: ApprovalRequest) -> ApprovalDecision | None:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("the policy service is down")
        return None


def _all_rejected_by(log: EventLog, chat_ids: list[str], plugin: str, count: int) -> None:
    decisions = [d for chat_id in chat_ids for d in client_records(log, chat_id, "approval")]
    assert len(decisions) == count
    assert {(d["approved"], d["decided_by"]) for d in decisions} == {(False, plugin)}


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_policy_that_raised_keeps_rejecting_for_the_whole_session(
    backend: Backend, tmp_path: Path
) -> None:
    # Before the fix the policy was disabled after raising once: the second tool
    # of the same answer, and every later message's tool, went on to
    # --auto-approve and ran.
    reports: list[str] = []
    plugins = Plugins(load_entry_points=False, report=reports.append)
    register_builtin_policies(plugins, auto_approve=True)
    policy = RaisesOnce()
    plugins.register(policy, name="raising")
    log = EventLog(tmp_path / "kai.db")
    async with connected(backend, log=log) as (emulator, client):
        session = Session(client, plugins=plugins, ask=None)
        await _run(session, "create two buckets called a1 and a2")
        first_chat = session.chat_id
        await _run(session, "create a bucket called b3")
        session = Session(client, plugins=plugins, ask=None)  # a new chat, same plugins
        await _run(session, "create a bucket called b4")
        assert emulator.state.buckets.keys().isdisjoint(
            {"in.c-a1", "in.c-a2", "in.c-b3", "in.c-b4"}
        )
        _all_rejected_by(log, [first_chat, session.chat_id], "raising", 4)
    assert policy.calls == 1  # tripped: rejected without being asked again
    assert len(reports) == 1


class Hangs:
    """Never answers until the test releases it (a remote policy service that hangs)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0

    @hookimpl
    def kai_approve_tool(self, request: ApprovalRequest) -> ApprovalDecision | None:
        self.calls += 1
        self.release.wait()
        return ApprovalDecision.approve("too late")


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_hung_policy_times_out_into_a_rejection(backend: Backend, tmp_path: Path) -> None:
    # Before the fix the session waited for the policy for ever (and held the trio loop).
    reports: list[str] = []
    plugins = Plugins(load_entry_points=False, report=reports.append)
    register_builtin_policies(plugins, auto_approve=True)
    policy = Hangs()
    plugins.register(policy, name="hanging")
    log = EventLog(tmp_path / "kai.db")
    try:
        async with connected(backend, log=log) as (emulator, client):
            session = Session(client, plugins=plugins, ask=None, policy_timeout=0.5)
            events = await _run(session, "create two buckets called a1 and a2")
            await _run(session, "create a bucket called b3")
            assert emulator.state.buckets.keys().isdisjoint({"in.c-a1", "in.c-a2", "in.c-b3"})
            _all_rejected_by(log, [session.chat_id], "hanging", 3)
            (first, *_) = client_records(log, session.chat_id, "approval")
            assert first["reason"] == ("approval policy 'hanging' failed: no decision within 0.5 s")
            assert events[-1].type == "finish"
    finally:
        policy.release.set()
    assert policy.calls == 1
    assert reports == [
        "plugin 'hanging' failed in kai_approve_tool: TimeoutError: no decision within "
        "0.5 s (it rejects every call for the rest of this session)"
    ]


class Returns:
    """A policy returning whatever it is given."""

    def __init__(self, result: Any) -> None:
        self.result = result

    @hookimpl
    def kai_approve_tool(self, request: ApprovalRequest) -> Any:
        return self.result


MALFORMED = {
    "approved-no": ApprovalDecision(approved="no"),  # type: ignore[arg-type]
    "approved-1": ApprovalDecision(approved=1),  # type: ignore[arg-type]
    "reason-int": ApprovalDecision(approved=True, reason=5),  # type: ignore[arg-type]
    "true": True,
    "string": "yes please",
    "dict": {"approved": True},
    "object": object(),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("result", list(MALFORMED))
async def test_a_malformed_decision_is_not_a_decision_and_rejects(
    backend: Backend, result: str, tmp_path: Path
) -> None:
    # Before the fix ApprovalDecision(approved="no") passed the isinstance check
    # and, "no" being truthy, the tool ran.
    plugins = Plugins(load_entry_points=False)
    register_builtin_policies(plugins, auto_approve=True)
    plugins.register(Returns(MALFORMED[result]), name="sloppy")
    log = EventLog(tmp_path / "kai.db")
    async with connected(backend, log=log) as (emulator, client):
        session = Session(client, plugins=plugins, ask=None)
        await _run(session, "create a bucket called b1")
        assert "in.c-b1" not in emulator.state.buckets
        (decision,) = client_records(log, session.chat_id, "approval")
        assert (decision["approved"], decision["decided_by"]) == (False, "sloppy")
        assert decision["reason"].startswith("approval policy 'sloppy' returned ")
        assert decision["reason"].endswith("not a decision")


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_malformed_answer_from_the_prompt_rejects(backend: Backend) -> None:
    async def sloppy_ask(request: ApprovalRequest) -> ApprovalDecision | None:
        return ApprovalDecision(approved="no")  # type: ignore[arg-type]

    async with connected(backend) as (emulator, client):
        session = Session(client, ask=sloppy_ask)
        events = await _run(session, "create a bucket called b1")
        assert "in.c-b1" not in emulator.state.buckets
        (decision,) = [e for e in events if e.type == "approval-decision"]
        assert decision.approved is False and "malformed" in (decision.reason or "")


class VotesGarbage:
    @hookimpl
    def kai_vote(self, answer: AnswerInfo) -> Any:
        return "thumbs up"


async def test_a_voting_plugin_returning_garbage_sends_no_vote() -> None:
    # Before the fix the session read .type of the result: AttributeError, the
    # answer's stream ended in a traceback.
    reports: list[str] = []
    plugins = Plugins(load_entry_points=False, report=reports.append)
    plugins.register(VotesGarbage(), name="voter")
    async with connected("agent") as (emulator, client):
        session = Session(client, plugins=plugins)
        events = await _run(session, "hello")
        assert events[-1].type == "finish"
        assert emulator.state.votes == {}
    assert reports == ["voting plugin 'voter' returned 'thumbs up', not a vote; no vote sent"]


class OffersGarbage:
    @hookimpl
    def kai_register_renderers(self) -> Any:
        return "fancy"


def test_a_plugin_offering_garbage_renderers_is_reported_and_skipped() -> None:
    # Before the fix dict.update("fancy") raised ValueError: every command that
    # renders (chat, replay, the shell) stopped with an internal error.
    reports: list[str] = []
    plugins = Plugins(load_entry_points=False, report=reports.append)
    plugins.register(kai_plugins.renderers, name="renderers")
    plugins.register(OffersGarbage(), name="garbage")
    assert {"plain", "markdown", "json"} <= set(plugins.renderers())
    assert reports == [
        "plugin 'garbage' offered renderers 'fancy', not a mapping of names to factories (ignored)"
    ]


@pytest.mark.parametrize("backend", BACKENDS)
async def test_an_ask_callback_that_raises_approves_nothing(backend: Backend) -> None:
    async def broken_ask(request: ApprovalRequest) -> ApprovalDecision | None:
        raise OSError("the terminal went away")

    async with connected(backend) as (emulator, client):
        session = Session(client, ask=broken_ask)
        with pytest.raises(OSError):
            await _run(session, "create a bucket called b1")
        # A (wrongly) approved tool would run in the emulator, in this trio run.
        await trio.testing.wait_all_tasks_blocked()
        assert "in.c-b1" not in emulator.state.buckets


@pytest.mark.e2e
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
