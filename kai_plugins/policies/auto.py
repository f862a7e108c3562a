"""The ``--auto-approve`` policy: approves every tool, consulted after every other policy."""

from __future__ import annotations

from kai_core.hookspecs import hookimpl
from kai_core.policy import ApprovalContext, ApprovalDecision, ApprovalRequest

__all__ = ["AutoApprove", "DECIDED_BY"]

DECIDED_BY = "auto-approve"


class AutoApprove:
    """Approves any tool no other policy decided (``trylast``).

    Front ends register it only when asked (``--auto-approve``): a rules
    file or a third-party policy still rejects what it rejects.
    """

    @hookimpl(trylast=True)
    def kai_approve_tool(
        self, request: ApprovalRequest, context: ApprovalContext
    ) -> ApprovalDecision | None:
        """Approve, with reason ``--auto-approve``."""
        return ApprovalDecision.approve("--auto-approve", decided_by=DECIDED_BY)
