"""Approvals by elicitation: the MCP client's user decides what no policy did.

The session consults the approval policies first (rules file, plugins,
``--auto-approve``); a request still undecided becomes an
``elicitation/create`` to the client. Every path that is not an explicit
"yes" rejects, with a reason that is sent to Kai and logged: a decline, a
cancel, no answer within the timeout, a client without the elicitation
capability, a connection that cannot carry a server-initiated request, or
an answer that does not fit the schema.
"""

from __future__ import annotations

import json
from typing import Any

import trio
from pydantic import BaseModel, Field

from kai_core.policy import ApprovalDecision, ApprovalRequest
from kai_core.sanitize import for_terminal

__all__ = ["DEFAULT_APPROVAL_TIMEOUT", "ApprovalForm", "ElicitationApproval", "summarize_input"]

DEFAULT_APPROVAL_TIMEOUT = 300.0
"""Seconds the user has to answer one approval question."""

_SUMMARY_LIMIT = 1500


class ApprovalForm(BaseModel):
    """The form the client shows: approve yes/no and an optional reason."""

    approve: bool = Field(title="Approve", description="Let Kai run this tool?")
    reason: str = Field(
        default="", title="Reason", description="Optional; sent to Kai and kept in the log."
    )


def summarize_input(value: Any, limit: int = _SUMMARY_LIMIT) -> str:
    """The tool's input as readable, sanitised text (no control characters), cut at ``limit``."""
    if value is None:
        return "(no input)"
    text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return for_terminal(text, multiline=True)


class ElicitationApproval:
    """A session's ``ask`` that asks the MCP client's user by elicitation.

    :param context: the MCP request context of the ``ask_kai`` call (its
        session carries the elicitation back to the client that called).
    :param timeout: seconds to wait for the answer; past it the tool is rejected.
    """

    def __init__(self, context: Any, timeout: float = DEFAULT_APPROVAL_TIMEOUT) -> None:
        self.context = context
        self.timeout = timeout

    @property
    def client_name(self) -> str:
        """The client's name as it introduced itself (``unknown`` if it did not)."""
        session = self.context.request_context.session
        params = getattr(session, "client_params", None)
        info = getattr(params, "client_info", None)
        return for_terminal(str(getattr(info, "name", None) or "unknown"))

    def _can_elicit(self) -> bool:
        capabilities = self.context.client_capabilities
        return capabilities is not None and capabilities.elicitation is not None

    async def __call__(self, request: ApprovalRequest) -> ApprovalDecision:
        """Ask the user about ``request``; anything but an explicit yes rejects."""
        client = self.client_name
        who = f"user via MCP client {client}"
        if not self._can_elicit():
            return ApprovalDecision.reject(
                f"the MCP client {client} cannot ask its user (no elicitation support)",
                decided_by=f"no-elicitation (MCP client {client})",
            )
        message = (
            f"Kai wants to run the tool {for_terminal(request.tool_name)} with this input:\n"
            f"{summarize_input(request.input)}\n\nApprove?"
        )
        from mcp.server.elicitation import AcceptedElicitation, DeclinedElicitation

        try:
            with trio.move_on_after(self.timeout):
                result = await self.context.elicit(message, ApprovalForm)
                if isinstance(result, AcceptedElicitation):
                    reason = result.data.reason.strip() or None
                    if result.data.approve:
                        return ApprovalDecision.approve(reason, decided_by=who)
                    return ApprovalDecision.reject(reason or "not approved by the user", who)
                what = "declined" if isinstance(result, DeclinedElicitation) else "cancelled"
                return ApprovalDecision.reject(f"the user {what} the approval", decided_by=who)
        except Exception as exc:  # the client could not ask: fail closed
            return ApprovalDecision.reject(
                f"the approval question could not be asked: {for_terminal(str(exc))}",
                decided_by=f"no-elicitation (MCP client {client})",
            )
        return ApprovalDecision.reject(
            f"no answer from the user within {self.timeout:g} s",
            decided_by=f"timeout (MCP client {client})",
        )
