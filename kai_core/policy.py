"""The objects approval and voting hooks receive and return."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

__all__ = [
    "AnswerInfo",
    "ApprovalContext",
    "ApprovalDecision",
    "ApprovalRequest",
    "VoteDecision",
]


class ApprovalRequest(msgspec.Struct, frozen=True, kw_only=True):
    """A tool call waiting for approval.

    ``transport`` is ``"v6"`` (kai-assistant: answered by re-POSTing the
    message) or ``"agent"`` (kai-agent: answered while the stream waits).
    """

    tool_name: str
    tool_call_id: str
    approval_id: str
    input: Any = None
    transport: Literal["v6", "agent"] = "v6"


class ApprovalContext(msgspec.Struct, frozen=True, kw_only=True):
    """Where the request comes from."""

    chat_id: str
    backend: str | None = None
    server: str | None = None
    interactive: bool = False


class ApprovalDecision(msgspec.Struct, frozen=True, kw_only=True):
    """A decision on one tool call, and who or what made it.

    ``decided_by`` is filled in by kai with the plugin's name (or ``user``)
    when the policy leaves it empty. ``rule`` is the text of the rule a
    policy applied, if it has rules: the audit trail shows it.
    """

    approved: bool
    reason: str | None = None
    decided_by: str | None = None
    rule: str | None = None

    @classmethod
    def approve(
        cls, reason: str | None = None, decided_by: str | None = None, rule: str | None = None
    ) -> ApprovalDecision:
        """Let the tool run."""
        return cls(approved=True, reason=reason, decided_by=decided_by, rule=rule)

    @classmethod
    def reject(
        cls, reason: str | None = None, decided_by: str | None = None, rule: str | None = None
    ) -> ApprovalDecision:
        """Do not let the tool run; ``reason`` is sent to the server and logged."""
        return cls(approved=False, reason=reason, decided_by=decided_by, rule=rule)


class AnswerInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A finished answer, given to voting hooks."""

    chat_id: str
    message_id: str | None
    text: str
    finish_reason: str | None = None
    tool_names: list[str] = msgspec.field(default_factory=list)
    errors: list[str] = msgspec.field(default_factory=list)
    interactive: bool = False


class VoteDecision(msgspec.Struct, frozen=True, kw_only=True):
    """A vote on an answer: ``type`` is ``up`` or ``down``."""

    type: Literal["up", "down"]
    decided_by: str | None = None

    @classmethod
    def up(cls) -> VoteDecision:
        """Thumbs up."""
        return cls(type="up")

    @classmethod
    def down(cls) -> VoteDecision:
        """Thumbs down."""
        return cls(type="down")
