"""``Session.decide_pending``: answering a tool call left pending after its answer was stopped.

The answer is stopped (as Ctrl-C does) while the session asks about a call;
the server still waits for it. Deciding it later logs the decision with who
made it, answers the server the way its backend needs (kai-assistant: every
call of the message together; kai-agent: the approval endpoint) and streams
what follows. A log that fails meanwhile is reported and never stops it.
"""

from __future__ import annotations

from contextlib import aclosing
from pathlib import Path
from typing import Any

import pytest
import trio

from kai_core.client import KaiClient
from kai_core.events import ApprovalDecisionEvent, Event, TextEvent, ToolApprovalRequestEvent
from kai_core.exceptions import KaiLogError
from kai_core.log import EventLog
from kai_core.permissions import PermissionSet
from kai_core.policy import ApprovalDecision, ApprovalRequest
from kai_core.session import Session

from .reliability_support import Backend, client_records, connected, requests_to

LIMIT = 30  # seconds: a generous bound on any one exchange
TWO = "create two buckets called x and y"


def stopping_ask(scope: trio.CancelScope, decide_first: ApprovalDecision | None = None) -> Any:
    """An ``ask`` that stops the answer at a question (as Ctrl-C does), after
    deciding the first call with ``decide_first`` if given."""
    asked: list[str] = []

    async def ask(request: ApprovalRequest) -> ApprovalDecision | None:
        asked.append(request.tool_call_id)
        if decide_first is not None and len(asked) == 1:
            return decide_first
        scope.cancel()
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    return ask


async def stopped(session: Session, text: str, scope: trio.CancelScope) -> list[Event]:
    """Send ``text``; the answer is stopped inside ``scope`` by the session's ``ask``."""
    got: list[Event] = []
    with trio.fail_after(LIMIT):
        with scope:
            async with aclosing(session.send(text)) as events:
                async for event in events:
                    got.append(event)
    assert scope.cancelled_caught
    return got


async def decide(session: Session, call: str, decision: ApprovalDecision) -> list[Event]:
    with trio.fail_after(LIMIT):
        async with aclosing(session.decide_pending(call, decision)) as events:
            return [event async for event in events]


def text_of(events: list[Event]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextEvent))


def failing(client: KaiClient) -> list[KaiLogError]:
    """Make the client's log fail from now on (as a full disk would); the failures seen."""
    log = client.log
    assert log is not None

    def append(*_: Any, **__: Any) -> Any:
        raise KaiLogError("cannot write the event log: database or disk is full", code="log:io")

    log.append = append  # type: ignore[method-assign]
    failures: list[KaiLogError] = []
    client.on_log_error = failures.append
    return failures


async def test_a_decision_made_before_the_stop_is_sent_with_the_later_one(
    tmp_path: Path,
) -> None:
    log = EventLog(tmp_path / "kai.db")
    async with connected("assistant", log=log) as (emu, client):
        scope = trio.CancelScope()
        ask = stopping_ask(scope, ApprovalDecision.approve(decided_by="user"))
        session = Session(client, ask=ask)
        await stopped(session, TWO, scope)
        # The first call was decided (and logged) before the stop; the second waits.
        assert list(session.pending) == ["call_000002"]
        got = await decide(session, "call_000002", ApprovalDecision.reject("only one"))
        assert isinstance(got[0], ApprovalDecisionEvent)
        assert (got[0].approved, got[0].decided_by, got[0].reason) == (False, "user", "only one")
        assert "in.c-x" in emu.state.buckets and "in.c-y" not in emu.state.buckets
        assert session.pending == {}
        records = client_records(log, session.chat_id, "approval")
    assert [(r["tool_call_id"], r["approved"]) for r in records] == [
        ("call_000001", True),
        ("call_000002", False),
    ]
    assert records[1]["who"] == {"kind": "user"}
    assert records[1]["elapsed_ms"] > 0  # from the request to the decision


async def test_kai_assistant_calls_are_held_until_all_are_decided(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "kai.db")
    async with connected("assistant", log=log) as (emu, client):
        scope = trio.CancelScope()
        session = Session(client, ask=stopping_ask(scope))
        await stopped(session, TWO, scope)
        assert list(session.pending) == ["call_000001", "call_000002"]
        posts = requests_to(emu, "POST", "/api/chat")
        first = await decide(session, "call_000001", ApprovalDecision.approve(decided_by="user"))
        # Decided and logged, but held: nothing is sent while call_000002 waits.
        assert [type(e) for e in first] == [ApprovalDecisionEvent]
        assert requests_to(emu, "POST", "/api/chat") == posts
        assert list(session.pending) == ["call_000002"]
        rest = await decide(session, "call_000002", ApprovalDecision.approve())
        assert isinstance(rest[0], ApprovalDecisionEvent) and rest[0].decided_by == "user"
        assert "created" in text_of(rest)
        assert {"in.c-x", "in.c-y"} <= emu.state.buckets.keys()
        assert session.last_answer is not None and session.last_answer.finish_reason == "stop"
        records = client_records(log, session.chat_id, "approval")
    assert [(r["tool_call_id"], r["approved"]) for r in records] == [
        ("call_000001", True),
        ("call_000002", True),
    ]


async def test_a_failing_log_does_not_stop_answering_a_pending_call(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "kai.db")
    async with connected("assistant", log=log) as (emu, client):
        scope = trio.CancelScope()
        session = Session(client, ask=stopping_ask(scope))
        await stopped(session, TWO, scope)
        failures = failing(client)
        await decide(session, "call_000001", ApprovalDecision.approve(decided_by="user"))
        got = await decide(session, "call_000002", ApprovalDecision.reject("only one"))
        # The log failed at the first decision: reported once, then off; the
        # decisions were sent and the continuation streamed all the same.
        assert len(failures) == 1 and failures[0].code == "log:io"
        assert client.log is None
        assert "in.c-x" in emu.state.buckets and "in.c-y" not in emu.state.buckets
        assert text_of(got)
        assert session.pending == {}


async def test_a_deny_rule_wins_over_an_approval_given_later(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "kai.db")
    async with connected("assistant", log=log) as (emu, client):
        scope = trio.CancelScope()
        session = Session(client, ask=stopping_ask(scope))
        await stopped(session, TWO, scope)
        # The rules change under the waiting calls (or they were never asked):
        # a deny still cannot be overridden.
        session.permissions = PermissionSet.from_rules(deny=["create_bucket"])
        await decide(session, "call_000001", ApprovalDecision.approve(decided_by="user"))
        got = await decide(session, "call_000002", ApprovalDecision.approve(decided_by="user"))
        assert isinstance(got[0], ApprovalDecisionEvent)
        assert (got[0].approved, got[0].decided_by) == (False, "rule")
        assert emu.state.buckets.keys().isdisjoint({"in.c-x", "in.c-y"})
        records = client_records(log, session.chat_id, "approval")
    assert [r["who"]["kind"] for r in records] == ["rule", "rule"]


async def test_a_malformed_decision_rejects() -> None:
    async with connected("agent") as (emu, client):
        scope = trio.CancelScope()
        session = Session(client, ask=stopping_ask(scope))
        await stopped(session, "create a bucket called b1", scope)
        malformed = ApprovalDecision(approved="yes")  # type: ignore[arg-type]
        got = await decide(session, "call_000001", malformed)
        assert isinstance(got[0], ApprovalDecisionEvent) and not got[0].approved
        assert "malformed ApprovalDecision" in (got[0].reason or "")
        assert "in.c-b1" not in emu.state.buckets


async def test_kai_agent_a_pending_call_is_answered_at_the_approval_endpoint(
    tmp_path: Path,
) -> None:
    log = EventLog(tmp_path / "kai.db")
    async with connected("agent", log=log) as (emu, client):
        scope = trio.CancelScope()
        session = Session(client, ask=stopping_ask(scope))
        await stopped(session, "create a bucket called b1", scope)
        assert list(session.pending) == ["call_000001"]
        got = await decide(session, "call_000001", ApprovalDecision.approve(decided_by="user"))
        # The decision only: kai-agent cannot stream the rest again.
        assert [type(e) for e in got] == [ApprovalDecisionEvent]
        assert requests_to(emu, "POST", f"/api/chat/{session.chat_id}/approval") == 1
        with trio.fail_after(LIMIT):  # the server goes on with the answer on its side
            while "in.c-b1" not in emu.state.buckets:  # noqa: ASYNC110 - no event to wait on
                await trio.sleep(0.01)
        assert session.pending == {}
        records = client_records(log, session.chat_id, "approval")
    assert [(r["tool_call_id"], r["approved"], r["transport"]) for r in records] == [
        ("call_000001", True, "agent")
    ]


@pytest.mark.parametrize("backend", ["agent", "assistant"])
async def test_a_caller_that_stops_at_the_request_can_still_answer_it(backend: Backend) -> None:
    async with connected(backend) as (emu, client):
        session = Session(client, ask=stopping_ask(trio.CancelScope()))
        with trio.fail_after(LIMIT):
            async with session.stream("create a bucket called b1") as events:
                async for event in events:
                    if isinstance(event, ToolApprovalRequestEvent):
                        break  # the stream is closed at this very event
        assert list(session.pending) == ["call_000001"]
        await decide(session, "call_000001", ApprovalDecision.approve(decided_by="user"))
        assert session.pending == {}
        with trio.fail_after(LIMIT):
            while "in.c-b1" not in emu.state.buckets:  # noqa: ASYNC110 - no event to wait on
                await trio.sleep(0.01)


async def test_an_unknown_call_is_refused_at_once() -> None:
    async with connected("assistant") as (_emu, client):
        session = Session(client)
        with pytest.raises(KeyError):
            session.decide_pending("call_missing", ApprovalDecision.approve())
