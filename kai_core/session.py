"""One conversation: send, stream, get approvals decided and answered, vote.

:class:`Session` is the loop the CLI, the shell and embedding apps share.
For each message it streams the answer's events and, when a tool waits for
approval, asks the approval policies (plugins), then the front end's ``ask``
callback, and answers the server with the transport the request needs:

* ``agent`` (kai-agent): the stream stays open and waits; the session posts
  the decision to the approval endpoint and reads on.
* ``v6`` (kai-assistant): the response ends with the requests; the session
  decides every pending request of the message and answers them all in one
  re-POST, whose continuation stream it then reads.

A call can also be left pending: the answer was stopped (Ctrl-C, a closed
stream) while the call waited. :meth:`Session.decide_pending` answers it
later, the same way: the decision is logged (with who made it) and sent,
and what the server streams next is read like any answer.

No decision is ever an accident: a policy that raises rejects (that call and
every later one it is asked about), a policy that has not decided within
``policy_timeout`` seconds rejects, a result that is not a well-formed
:class:`~kai_core.policy.ApprovalDecision` rejects, and with no one to ask
the tool is rejected, with the reason logged.

The policies are synchronous pluggy hooks: the session runs them in a worker
thread, so that a policy that hangs (a remote policy service that never
answers) cannot stop the trio loop; at the timeout the thread is abandoned
and the policy tripped (:meth:`~kai_core.plugins.Plugins.trip`).

Given a :class:`~kai_core.permissions.PermissionSet`, the session asks it
first: a tool Kai's own settings mark ``blocked`` and a tool a deny rule
matches are rejected before any plugin is asked (no plugin, no flag can
turn them into an approval); an allow rule approves; what is left ("ask")
goes to the plugins, then the user. Every decision is logged as an
``approval`` record with who made it (:mod:`kai_core.audit`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing, asynccontextmanager
from typing import TYPE_CHECKING, Any

import msgspec
import trio

from .audit import AUTO_APPROVE, Attribution, approval_body
from .events import (
    ApprovalDecisionEvent,
    ErrorEvent,
    Event,
    FinishEvent,
    TextEvent,
    ToolApprovalRequestEvent,
    ToolCallEvent,
    ToolOutputDeniedEvent,
    ToolOutputErrorEvent,
)
from .exceptions import KaiError, KaiNotFoundError
from .plugins import PluginFailure, Plugins
from .policy import AnswerInfo, ApprovalContext, ApprovalDecision, ApprovalRequest, VoteDecision

if TYPE_CHECKING:
    from ._stream import EventStream
    from .client import KaiClient
    from .permissions import PermissionSet, Verdict

__all__ = [
    "AskApproval",
    "AskVote",
    "DEFAULT_POLICY_TIMEOUT",
    "NO_TERMINAL_REASON",
    "Session",
    "checked_decision",
]

AskApproval = Callable[[ApprovalRequest], Awaitable[ApprovalDecision | None]]
"""A front end's way to ask the user about a tool; None means no answer (reject)."""
AskVote = Callable[[AnswerInfo], Awaitable[VoteDecision | None]]
"""A front end's way to ask the user for a vote after an answer."""

NO_TERMINAL_REASON = "no approval policy decided and there was no one to ask"
"""The reason sent to Kai (and logged) when nobody could be asked; a front end
adds its own hint (``kai chat`` names ``--auto-approve`` and ``--policy``)."""

DEFAULT_POLICY_TIMEOUT = 30.0
"""Seconds the approval policies of one request have, together, to decide."""

_APPROVE_HOOK = "kai_approve_tool"


def checked_decision(result: object) -> ApprovalDecision:
    """``result`` as a well-formed decision, or :class:`TypeError` saying why not.

    A policy (or a front end's ``ask``) must return an :class:`ApprovalDecision`
    whose fields have their declared types: ``ApprovalDecision(approved="no")``
    can be built (msgspec does not check on construction) but is not a decision,
    and ``bool("no")`` would approve.
    """
    if not isinstance(result, ApprovalDecision):
        raise TypeError(f"returned {_short_repr(result)}, not an ApprovalDecision")
    try:
        return msgspec.convert(msgspec.structs.asdict(result), ApprovalDecision)
    except msgspec.ValidationError as exc:
        raise TypeError(f"returned a malformed ApprovalDecision ({exc})") from None


def _short_repr(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}…"


class Session:
    """A conversation with Kai on one chat.

    :param client: an open :class:`~kai_core.client.KaiClient`.
    :param chat_id: the chat to continue; a new one when None.
    :param plugins: the plugin manager whose approval and voting hooks apply.
    :param ask: asks the user about a tool no policy decided; None = nobody
        to ask, such tools are rejected.
    :param ask_vote: asks the user for a vote after each answer (optional).
    :param policy_timeout: seconds the approval policies have to decide one
        request; past it the request is rejected and the policy that has not
        returned rejects every later request too.
    :param permissions: the permission rules to apply before any plugin
        (see ``docs/permissions.md``); None: only plugins and ``ask`` decide.
    :param audit_input: keep each tool's full input in the approval record
        (its digest is always kept); default: the permission set's
        ``[audit] full_input``.
    """

    def __init__(
        self,
        client: KaiClient,
        *,
        chat_id: str | None = None,
        plugins: Plugins | None = None,
        ask: AskApproval | None = None,
        ask_vote: AskVote | None = None,
        policy_timeout: float = DEFAULT_POLICY_TIMEOUT,
        permissions: PermissionSet | None = None,
        audit_input: bool | None = None,
    ) -> None:
        self.client = client
        self.chat_id = chat_id or client.new_chat_id()
        self.plugins = plugins or Plugins(load_entry_points=False)
        self.ask = ask
        self.ask_vote = ask_vote
        self.policy_timeout = policy_timeout
        self.last_answer: AnswerInfo | None = None
        self.last_message_id: str | None = None
        self.pending: dict[str, ToolApprovalRequestEvent] = {}
        """Approval requests not answered yet, by tool call id (see :meth:`decide_pending`)."""
        self._asked_at: dict[str, float] = {}  # when each pending request arrived
        # kai-assistant: decisions made (and logged) but not sent yet; the calls of
        # one message are answered together, once every one of them is decided.
        self._held: dict[str, tuple[ToolApprovalRequestEvent, ApprovalDecisionEvent]] = {}
        self._told_v6 = False  # the note that the server is kai-assistant, once
        self.permissions = permissions
        self.audit_input = (
            audit_input
            if audit_input is not None
            else bool(permissions is not None and permissions.audit_full_input)
        )
        self.last_decision: dict[str, Any] | None = None
        """The approval record of the last decision (what ``/why`` shows)."""

    # -- sending ---------------------------------------------------------------

    async def send(self, text: str, **options: Any) -> AsyncGenerator[Event, None]:
        """Send ``text`` and yield every event of the answer, approvals included.

        Leave the loop early (``break``, an exception, cancellation) and the
        stream is closed at once. Prefer :meth:`stream` for a block-scoped form.
        """
        opened = self.client.send_message(self.chat_id, text, **options)
        async with aclosing(self._follow(opened)) as events:
            async for event in events:
                yield event

    async def _follow(self, stream: EventStream | None) -> AsyncGenerator[Event, None]:
        """Read an answer's stream: decide, log and answer its approvals; then vote."""
        answer = _AnswerTracker(self.chat_id)
        # Decisions of this exchange by tool call: a server that turns out to be
        # kai-assistant while we expected kai-agent sends a v6 request for a
        # call already decided; the user is not asked twice.
        decided: dict[str, ApprovalDecisionEvent] = {}
        while stream is not None:
            v6_pending: list[ToolApprovalRequestEvent] = []
            async with aclosing(stream) as events:
                async for event in events:
                    answer.see(event)
                    # Before the caller sees the event: a caller that stops the
                    # answer at a request can still answer the call later.
                    self._track(event)
                    yield event
                    if isinstance(event, ToolApprovalRequestEvent):
                        if event.transport == "agent":
                            decision = await self._decide(event)
                            decided[event.tool_call_id] = decision
                            yield decision
                            await self._answer_agent(event, decision)
                        else:
                            v6_pending.append(event)
            stream = None
            if v6_pending:
                for request in v6_pending:
                    earlier = decided.get(request.tool_call_id)
                    if earlier is None:
                        earlier = decided[request.tool_call_id] = await self._decide(request)
                        yield earlier
                    elif not self._told_v6:
                        self._told_v6 = True
                        self.plugins.report(
                            "note: this server asks for approvals the kai-assistant way; "
                            "the decision was sent that way (for this server, use "
                            "--service assistant, or KaiClient(backend='assistant'))"
                        )
                    # Held until all are decided: an answer stopped in between
                    # keeps the decisions made, for decide_pending to send.
                    self._held[request.tool_call_id] = (request, earlier)
                    self._settled(request.tool_call_id)
                answers: dict[str, tuple[bool, str | None]] = {}
                for request in v6_pending:
                    _, made = self._held.pop(request.tool_call_id)
                    answers[request.approval_id] = (made.approved, made.reason)
                stream = self.client.answer_approvals(self.chat_id, answers)
        self.last_answer = answer.info(interactive=self.ask is not None)
        self.last_message_id = answer.message_id
        if answer.finished:
            await self._vote(self.last_answer)

    def _track(self, event: Event) -> None:
        """Keep :attr:`pending` up to date with what the stream says of each call."""
        if isinstance(event, ToolApprovalRequestEvent):
            self.pending[event.tool_call_id] = event
            self._asked_at[event.tool_call_id] = time.perf_counter()
        elif isinstance(event, ToolCallEvent):
            if event.state == "output-available":
                self._settled(event.tool_call_id)
        elif isinstance(event, (ToolOutputErrorEvent, ToolOutputDeniedEvent)):
            self._settled(event.tool_call_id)

    def _settled(self, tool_call_id: str) -> None:
        """The call does not wait any more (answered, or its output arrived)."""
        self.pending.pop(tool_call_id, None)
        self._asked_at.pop(tool_call_id, None)

    @asynccontextmanager
    async def stream(self, text: str, **options: Any) -> AsyncIterator[AsyncIterator[Event]]:
        """``async with session.stream(text) as events: async for e in events: ...``

        The stream's lifetime is the block: leaving it closes the connection.
        """
        gen = self.send(text, **options)
        try:
            yield gen
        finally:
            await gen.aclose()

    # -- calls left pending ----------------------------------------------------

    def decide_pending(
        self, tool_call_id: str, decision: ApprovalDecision
    ) -> AsyncGenerator[Event, None]:
        """Answer the call ``tool_call_id`` left pending; yield what follows.

        A call stays in :attr:`pending` when its answer was stopped while it
        waited (Ctrl-C at the question, a closed stream): the server still
        waits for it. ``decision`` (the user's, typically) is logged as an
        ``approval`` record, attributed to ``decision.decided_by`` (``user``
        when empty), and yielded as an :class:`ApprovalDecisionEvent`; then:

        * ``agent`` (kai-agent): it is posted to the approval endpoint and the
          generator ends. The answer goes on on the server, which cannot
          stream it again (``get_chat`` reads it later). A server error
          (:class:`KaiError`) is raised: the decision may not have landed.
        * ``v6`` (kai-assistant): the calls of one message are answered
          together. While another ``v6`` call is still pending, the decision
          is held and the generator ends; the last decision sends them all
          and the continuation is read like any answer (its approvals
          decided by the rules, the policies, then ``ask``).

        Fail closed as everywhere: a deny from Kai's ``blocked`` setting or a
        permission rule wins over an approval given here, and a ``decision``
        that is not a well-formed :class:`ApprovalDecision` rejects. A log
        that fails is reported once (``on_log_error``) and never stops the
        answer. Use it like :meth:`send`::

            async with aclosing(session.decide_pending(call, decision)) as events:
                async for event in events: ...

        :raises KeyError: no pending call ``tool_call_id`` (raised here, at once).
        """
        request = self.pending[tool_call_id]
        return self._answer_pending(request, decision)

    async def _answer_pending(
        self, request: ToolApprovalRequestEvent, decision: ApprovalDecision
    ) -> AsyncGenerator[Event, None]:
        asked_at = self._asked_at.get(request.tool_call_id)
        elapsed = time.perf_counter() - asked_at if asked_at is not None else 0.0
        given, who = await self._given(request, decision)
        decided = self._record(request, given, who, elapsed)
        self._settled(request.tool_call_id)
        yield decided
        if request.transport == "agent":
            await self.client.submit_approval(
                self.chat_id, request.tool_call_id, decided.approved, reason=decided.reason
            )
            return
        self._held[request.tool_call_id] = (request, decided)
        if any(waiting.transport == "v6" for waiting in self.pending.values()):
            return
        answers = {r.approval_id: (d.approved, d.reason) for r, d in self._held.values()}
        self._held.clear()
        opened = self.client.answer_approvals(self.chat_id, answers)
        async with aclosing(self._follow(opened)) as events:
            async for event in events:
                yield event

    async def _given(
        self, event: ToolApprovalRequestEvent, decision: ApprovalDecision
    ) -> tuple[ApprovalDecision, Attribution]:
        """A decision given for a pending call, checked, and who made it."""
        try:
            decision = checked_decision(decision)
        except TypeError as exc:
            rejected = ApprovalDecision.reject(f"the decision given {exc}", decided_by="user")
            return rejected, Attribution(kind="user")
        if decision.approved:  # a deny by Kai's setting or a rule is never overridden
            ruled = await self._by_rules(self._request(event))
            if ruled is not None and not ruled[0].approved:
                return ruled
        by = decision.decided_by
        if by is None or by == "user":
            return msgspec.structs.replace(decision, decided_by="user"), Attribution(kind="user")
        if by == AUTO_APPROVE:
            return decision, Attribution(kind="auto-approve")
        return decision, Attribution.plugin(by, decision.rule)

    # -- approvals -------------------------------------------------------------

    def _request(self, event: ToolApprovalRequestEvent) -> ApprovalRequest:
        return ApprovalRequest(
            tool_name=event.tool_name or "unknown",
            tool_call_id=event.tool_call_id,
            approval_id=event.approval_id,
            input=event.input,
            transport=event.transport,
        )

    async def decide(self, event: ToolApprovalRequestEvent) -> ApprovalDecision:
        """Ask the rules, the policies, then the user; fail closed. Does not log or answer."""
        decision, _ = await self._attributed(event)
        return decision

    async def _attributed(
        self, event: ToolApprovalRequestEvent
    ) -> tuple[ApprovalDecision, Attribution]:
        """The decision and who made it."""
        request = self._request(event)
        ruled = await self._by_rules(request)
        if ruled is not None:
            return ruled
        context = ApprovalContext(
            chat_id=self.chat_id,
            backend=self.client.backend,
            server=self.client.base_url,
            interactive=self.ask is not None,
        )
        try:
            found = await self._consult_policies(request, context)
        except PluginFailure as failure:
            return ApprovalDecision.reject(
                f"approval policy {failure.plugin!r} failed: {failure.error}",
                decided_by=failure.plugin,
            ), Attribution.plugin(failure.plugin)
        if found is not None:
            name, result = found
            try:
                decision = checked_decision(result)
            except TypeError as exc:
                return ApprovalDecision.reject(
                    f"approval policy {name!r} {exc}: not a decision", decided_by=name
                ), Attribution.plugin(name)
            if decision.decided_by is None:
                decision = msgspec.structs.replace(decision, decided_by=name)
            return decision, Attribution.plugin(name, decision.rule)
        if self.ask is None:
            no_one = ApprovalDecision.reject(NO_TERMINAL_REASON, decided_by="no-terminal")
            return no_one, Attribution(kind="no-terminal")
        answer = await self.ask(request)
        if answer is None:
            answer = ApprovalDecision.reject("not approved by the user", decided_by="user")
        try:
            answer = checked_decision(answer)
        except TypeError as exc:
            rejected = ApprovalDecision.reject(f"the approval prompt {exc}", decided_by="user")
            return rejected, Attribution(kind="user")
        if answer.decided_by is None:
            answer = msgspec.structs.replace(answer, decided_by="user")
        return answer, Attribution(kind="user")

    async def _by_rules(
        self, request: ApprovalRequest
    ) -> tuple[ApprovalDecision, Attribution] | None:
        """Kai's ``blocked`` setting, then the permission rules; None when they say "ask"."""
        if await self._server_setting(request.tool_name) == "blocked":
            reason = f"{request.tool_name} is blocked by Kai's tool permissions (server setting)"
            decision = ApprovalDecision.reject(reason, decided_by="server")
            return decision, Attribution(kind="server", setting="blocked")
        if self.permissions is None:
            return None
        verdict: Verdict = self.permissions.evaluate(request.tool_name, request.input)
        if verdict.decision == "ask":
            return None
        decision = ApprovalDecision(
            approved=verdict.decision == "allow",
            reason=verdict.reason,
            decided_by="rule",
            rule=verdict.rule,
        )
        return decision, Attribution.of_rule(verdict)

    async def _server_setting(self, tool_name: str) -> str | None:
        """kai-agent: the user's ``toolPermissions`` setting for the tool (fetched once)."""
        if str(getattr(self.client, "backend", None)) != "kai-agent":
            return None
        try:
            policy = await self.client.tool_policy()
        except KaiError:
            return None
        return policy.permissions.get(tool_name)

    async def _consult_policies(
        self, request: ApprovalRequest, context: ApprovalContext
    ) -> tuple[str, Any] | None:
        """The first policy decision, from a worker thread, within ``policy_timeout``.

        :raises PluginFailure: a policy raised, or had not returned in time.
        """
        called: list[str] = []

        def consult() -> tuple[str, Any] | None:
            return self.plugins.call_first(
                _APPROVE_HOOK,
                fail_closed=True,
                on_call=called.append,
                request=request,
                context=context,
            )

        with trio.move_on_after(self.policy_timeout):
            return await trio.to_thread.run_sync(consult, abandon_on_cancel=True)
        # Timed out: the thread is abandoned (a sync hook cannot be stopped);
        # the policy that was running rejects this and every later request.
        plugin = called[-1] if called else "?"
        error = TimeoutError(f"no decision within {self.policy_timeout:g} s")
        self.plugins.trip(plugin, _APPROVE_HOOK, error)
        raise PluginFailure(plugin, error)

    async def _decide(self, event: ToolApprovalRequestEvent) -> ApprovalDecisionEvent:
        started = time.perf_counter()
        decision, who = await self._attributed(event)
        if who.kind == "plugin" and who.name == AUTO_APPROVE:
            who = Attribution(kind="auto-approve")
        return self._record(event, decision, who, time.perf_counter() - started)

    def _record(
        self,
        event: ToolApprovalRequestEvent,
        decision: ApprovalDecision,
        who: Attribution,
        elapsed: float,
    ) -> ApprovalDecisionEvent:
        """The decision as an event, logged (with who made it) as an ``approval`` record."""
        decided = ApprovalDecisionEvent(
            approval_id=event.approval_id,
            tool_call_id=event.tool_call_id,
            tool_name=event.tool_name,
            approved=decision.approved,
            reason=decision.reason,
            decided_by=decision.decided_by or "unknown",
            rule=decision.rule,
            chunk=event.chunk,
        )
        self.last_decision = approval_body(
            event, decided, who, elapsed=elapsed, full_input=self.audit_input
        )
        self._log_decision(self.last_decision)
        return decided

    def _log_decision(self, record: dict[str, Any]) -> None:
        log = getattr(self.client, "log", None)
        if log is None:
            return
        from .records import LogRecord

        body = msgspec.json.encode(record)
        self.client.append_to_log(
            [
                LogRecord(
                    chat_id=self.chat_id,
                    turn=uuid.uuid4().hex,
                    origin="client",
                    type="approval",
                    body=body,
                )
            ]
        )

    async def _answer_agent(
        self, event: ToolApprovalRequestEvent, decided: ApprovalDecisionEvent
    ) -> None:
        try:
            await self.client.submit_approval(
                self.chat_id, event.tool_call_id, decided.approved, reason=decided.reason
            )
        except KaiNotFoundError:
            # Nothing waited: kai-agent announces tools that run without an approval
            # ("No pending approval found"), and kai-assistant has no such endpoint
            # (its v6 request follows, and gets this decision). Neither is an error.
            pass
        except KaiError as exc:
            # The tool may not have been waiting after all (a permission changed
            # on the server); the stream goes on either way.
            self.plugins.report(
                f"the kai-agent approval endpoint did not take the decision on "
                f"{event.tool_name}: {exc} (for a kai-assistant "
                f"server, use --service assistant, or KaiClient(backend='assistant'))"
            )
        self._settled(event.tool_call_id)

    # -- voting ----------------------------------------------------------------

    async def _vote(self, answer: AnswerInfo) -> None:
        if answer.message_id is None:
            return
        found = self.plugins.call_first("kai_vote", answer=answer)
        decision: VoteDecision | None = None
        if found is not None:
            name, result = found
            if isinstance(result, VoteDecision) and result.type in ("up", "down"):
                decision = result
            else:
                self.plugins.report(
                    f"voting plugin {name!r} returned {_short_repr(result)}, not a vote; "
                    "no vote sent"
                )
        if decision is None and self.ask_vote is not None:
            decision = await self.ask_vote(answer)
        if decision is None:
            return
        try:
            await self.client.vote(self.chat_id, answer.message_id, decision.type)
        except KaiError as exc:
            self.plugins.report(f"could not vote: {exc}")


class _AnswerTracker:
    """Collects what a voting hook needs to know about an answer."""

    def __init__(self, chat_id: str) -> None:
        self.chat_id = chat_id
        self.pieces: list[str] = []
        self.tools: list[str] = []
        self.errors: list[str] = []
        self.finish_reason: str | None = None
        self.finished = False
        self.message_id: str | None = None

    def see(self, event: Event) -> None:
        if isinstance(event, TextEvent):
            self.pieces.append(event.text)
        elif isinstance(event, ToolCallEvent) and event.state == "started" and event.tool_name:
            self.tools.append(event.tool_name)
        elif isinstance(event, ErrorEvent):
            self.errors.append(event.message)
        elif isinstance(event, ToolOutputErrorEvent):
            self.errors.append(f"{event.tool_name or event.tool_call_id}: {event.error_text}")
        elif isinstance(event, FinishEvent):
            self.finish_reason = event.finish_reason
            self.finished = event.finish_reason != "tool-calls"
            self.message_id = event.message_id or self.message_id

    def info(self, *, interactive: bool) -> AnswerInfo:
        return AnswerInfo(
            chat_id=self.chat_id,
            message_id=self.message_id,
            text="".join(self.pieces),
            finish_reason=self.finish_reason,
            tool_names=self.tools,
            errors=self.errors,
            interactive=interactive,
        )
