"""Answering tool calls left pending after their answer was stopped (``/approve``, ``/deny``).

Inline approvals are the session's job. A call stays pending when the user
pressed Ctrl-C at the question: the stream is closed, but the server still
waits. Answering it later depends on the backend:

* kai-assistant (``v6``): the calls of one message are answered together by
  re-sending the message (:meth:`KaiClient.answer_approvals`), so decisions
  are held until every pending call is decided; then the continuation is
  streamed, and approvals it brings are decided the usual way (policies,
  then the inline question).
* kai-agent: the decision is posted (:meth:`KaiClient.submit_approval`); the
  answer goes on on the server, which cannot stream it again.

Each decision is logged as an ``approval`` record, as the session does.
When the session itself offers ``answer_pending(tool_call_id, decision)``,
that is used instead.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import TYPE_CHECKING

import msgspec

from kai_core.events import ApprovalDecisionEvent, Event, ToolApprovalRequestEvent
from kai_core.policy import ApprovalDecision

if TYPE_CHECKING:
    from ..repl import Shell

__all__ = ["decide_pending"]

Batch = list[tuple[ToolApprovalRequestEvent, ApprovalDecision]]


async def decide_pending(shell: Shell, tool_call_id: str, decision: ApprovalDecision) -> None:
    """Decide the pending call ``tool_call_id``; stream what follows when it can go on."""
    session = shell.session
    assert session is not None
    request = session.pending[tool_call_id]
    answer = getattr(session, "answer_pending", None)
    if answer is not None:  # the core's own way, when it offers one
        await shell.render_stream(None, aclosing(answer(tool_call_id, decision)))
        return
    held = shell.held_decisions
    held[tool_call_id] = (request, decision)
    waiting = [i for i in session.pending if i not in held]
    if request.transport == "v6" and waiting:
        verdict = "approved" if decision.approved else "denied"
        shell.dim(f"{request.tool_name} {verdict}; still to decide: {', '.join(waiting)}")
        return
    batch = [held.pop(i) for i in list(held)]
    await shell.render_stream(None, aclosing(_continue(shell, batch)))


async def _continue(shell: Shell, batch: Batch) -> AsyncIterator[Event]:
    """Log and send decisions, then stream the continuation, deciding new requests."""
    session, client = shell.session, shell.client
    assert session is not None and client is not None
    while batch:
        for request, decision in batch:
            decided = ApprovalDecisionEvent(
                approval_id=request.approval_id,
                tool_call_id=request.tool_call_id,
                tool_name=request.tool_name,
                approved=decision.approved,
                reason=decision.reason,
                decided_by=decision.decided_by or "user",
                chunk=request.chunk,
            )
            _log_decision(shell, request, decided)
            session.pending.pop(request.tool_call_id, None)
            yield decided
        for request, decision in batch:
            if request.transport == "agent":
                await client.submit_approval(
                    session.chat_id, request.tool_call_id, decision.approved, reason=decision.reason
                )
                shell.dim(f"{request.tool_name}: answer sent; the server goes on with the answer")
        answers = {r.approval_id: (d.approved, d.reason) for r, d in batch if r.transport == "v6"}
        batch = []
        if not answers:
            return
        requests: list[ToolApprovalRequestEvent] = []
        async with aclosing(client.answer_approvals(session.chat_id, answers)) as events:
            async for event in events:
                yield event
                if isinstance(event, ToolApprovalRequestEvent):
                    session.pending[event.tool_call_id] = event
                    requests.append(event)
        for request in requests:
            batch.append((request, await session.decide(request)))


def _log_decision(
    shell: Shell, request: ToolApprovalRequestEvent, decided: ApprovalDecisionEvent
) -> None:
    log = getattr(shell.client, "log", None)
    if log is None:
        return
    from kai_core.log import APPROVAL, LogRecord

    body = {
        "approval_id": request.approval_id,
        "tool_call_id": request.tool_call_id,
        "tool_name": request.tool_name,
        "approved": decided.approved,
        "reason": decided.reason,
        "decided_by": decided.decided_by,
        "transport": request.transport,
    }
    log.append(
        [
            LogRecord(
                chat_id=shell.state.chat_id or "",
                turn=uuid.uuid4().hex,
                origin="client",
                type=APPROVAL,
                body=msgspec.json.encode(body),
            )
        ]
    )
