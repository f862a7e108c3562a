"""The audit trail: who decided each tool call, recorded in the event log's ``approval`` records.

Every decision a :class:`~kai_core.session.Session` makes is logged as an
``approval`` record (origin ``client``) before it reaches the server. Its
body holds what the replay needs (``approval_id``, ``tool_call_id``,
``approved``, ``reason``, ``decided_by``, ``transport``) and what an auditor
needs:

===============  ==============================================================
``tool_name``    the tool
``decision``     ``allow`` or ``deny``
``who``          :class:`Attribution`: ``{"kind": "rule", "rule", "scope",
                 "source"}``, ``{"kind": "user"}``, ``{"kind": "auto-approve"}``,
                 ``{"kind": "plugin", "name", "rule"}``, ``{"kind": "server",
                 "setting"}`` or ``{"kind": "no-terminal"}``
``input_digest`` ``sha256:`` of the input's canonical JSON (sorted keys, compact)
``input``        the full input, only when asked for (``[audit] full_input``)
``elapsed_ms``   how long the decision took (a person's thinking included)
===============  ==============================================================

The chat id is the record's own. :func:`read_audit` lists them (``kai audit``);
``kai log export`` exports them like every record.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Literal

import msgspec

if TYPE_CHECKING:
    from .events import ApprovalDecisionEvent, ToolApprovalRequestEvent
    from .log import EventLog
    from .permissions import Verdict

__all__ = [
    "AUTO_APPROVE",
    "Attribution",
    "AuditEntry",
    "approval_body",
    "input_digest",
    "read_audit",
]

AUTO_APPROVE: Final = "auto-approve"
"""The name the front ends register ``--auto-approve``'s policy under."""

Kind = Literal["rule", "user", "auto-approve", "plugin", "server", "no-terminal"]


class Attribution(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Who or what made a decision.

    :param kind: ``rule``, ``user``, ``auto-approve``, ``plugin``, ``server`` or ``no-terminal``.
    :param rule: the rule's text (``rule``; a ``plugin`` that says which of its rules).
    :param scope: ``rule``: the scope of the file (``managed``, ``user``, ...).
    :param source: ``rule``: ``file:line``.
    :param name: ``plugin``: the plugin's name.
    :param setting: ``server``: Kai's ``toolPermissions`` value (``blocked``).
    """

    kind: Kind
    rule: str | None = None
    scope: str | None = None
    source: str | None = None
    name: str | None = None
    setting: str | None = None

    @classmethod
    def of_rule(cls, verdict: Verdict) -> Attribution:
        """A permission rule's verdict."""
        return cls(kind="rule", rule=verdict.rule, scope=verdict.scope, source=verdict.source)

    @classmethod
    def plugin(cls, name: str, rule: str | None = None) -> Attribution:
        """A policy plugin, and the rule it says it applied."""
        return cls(kind="plugin", name=name, rule=rule)

    def describe(self) -> str:
        """One line: ``rule 'delete_*' (managed /etc/kai/policy.toml:3)``, ``user``, ..."""
        if self.kind == "rule":
            where = f" ({self.scope} {self.source})" if self.source else ""
            return f"rule {self.rule!r}{where}"
        if self.kind == "plugin":
            return f"plugin {self.name}" + (f" (rule {self.rule!r})" if self.rule else "")
        if self.kind == "server":
            return f"server setting {self.setting}"
        return self.kind


_canonical: Final = msgspec.json.Encoder(order="sorted")


def input_digest(tool_input: Any) -> str:
    """``sha256:<hex>`` of the input's canonical JSON (sorted keys, compact)."""
    try:
        data = _canonical.encode(tool_input)
    except (TypeError, msgspec.EncodeError):
        data = repr(tool_input).encode()
    return "sha256:" + hashlib.sha256(data).hexdigest()


def approval_body(
    event: ToolApprovalRequestEvent,
    decided: ApprovalDecisionEvent,
    who: Attribution,
    *,
    elapsed: float,
    full_input: bool = False,
) -> dict[str, Any]:
    """The body of the ``approval`` record of one decision."""
    body: dict[str, Any] = {
        "approval_id": event.approval_id,
        "tool_call_id": event.tool_call_id,
        "tool_name": event.tool_name,
        "approved": decided.approved,
        "reason": decided.reason,
        "decided_by": decided.decided_by,
        "transport": event.transport,
        "decision": "allow" if decided.approved else "deny",
        "who": msgspec.to_builtins(who),
        "input_digest": input_digest(event.input),
        "elapsed_ms": round(elapsed * 1000, 3),
    }
    if full_input:
        body["input"] = event.input
    return body


class AuditEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One decision as ``kai audit`` lists it."""

    seq: int
    ts: float
    chat_id: str
    tool_call_id: str | None
    tool_name: str | None
    decision: str
    who: dict[str, Any]
    reason: str | None = None
    input_digest: str | None = None
    elapsed_ms: float | None = None
    input: Any = None

    @property
    def time(self) -> str:
        """The time as ISO 8601, UTC."""
        return datetime.fromtimestamp(self.ts, UTC).isoformat(timespec="seconds")

    def describe_who(self) -> str:
        """The attribution in one line."""
        try:
            return msgspec.convert(self.who, Attribution).describe()
        except msgspec.ValidationError:
            return str(self.who.get("kind", "unknown"))


def _entry(seq: int, ts: float, chat_id: str, body: dict[str, Any]) -> AuditEntry:
    approved = bool(body.get("approved"))
    who = body.get("who")
    if not isinstance(who, dict):  # a record from before the audit fields
        by = body.get("decided_by")
        who = {"kind": "user"} if by == "user" else {"kind": "plugin", "name": by}
    return AuditEntry(
        seq=seq,
        ts=ts,
        chat_id=chat_id,
        tool_call_id=body.get("tool_call_id"),
        tool_name=body.get("tool_name"),
        decision=body.get("decision") or ("allow" if approved else "deny"),
        who=who,
        reason=body.get("reason"),
        input_digest=body.get("input_digest"),
        elapsed_ms=body.get("elapsed_ms"),
        input=body.get("input"),
    )


def read_audit(
    log: EventLog,
    *,
    since: float | None = None,
    chat_id: str | None = None,
    decision: str | None = None,
) -> list[AuditEntry]:
    """Every logged decision, oldest first, filtered.

    :param since: only decisions at or after this Unix time.
    :param chat_id: only this chat's.
    :param decision: only ``allow`` or only ``deny``.
    """
    entries = []
    for stored in log.client_records("approval", chat_id=chat_id, since=since):
        try:
            body = msgspec.json.decode(stored.body)
        except msgspec.DecodeError:
            continue
        if not isinstance(body, dict):
            continue
        entry = _entry(stored.seq, stored.ts, stored.chat_id, body)
        if decision is None or entry.decision == decision:
            entries.append(entry)
    return entries
