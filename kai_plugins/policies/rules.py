"""The rules policy: kai's permission engine as an approval plugin.

The rules themselves, their files and scopes are :mod:`kai_core.permissions`
(see ``docs/permissions.md``). :class:`RulesPolicy` answers the
``kai_approve_tool`` hook with the engine's verdict: allow approves, deny
rejects, ask leaves the call to the next policy and then the user.

The front ends (``kai chat``, ``kai-shell``) and :class:`~kai_core.session.Session`
do not need this plugin: a session given a ``permissions`` set asks the engine
itself, before any plugin, so that no plugin can turn a deny into an approval.
The plugin is for code that only has a plugin manager.
"""

from __future__ import annotations

import os
from pathlib import Path

from kai_core.hookspecs import hookimpl
from kai_core.permissions import (
    PermissionSet,
    PolicyError,
    Verdict,
    load_permissions,
    read_policy_file,
    user_policy_path,
)
from kai_core.policy import ApprovalContext, ApprovalDecision, ApprovalRequest

__all__ = [
    "DECIDED_BY",
    "PolicyFileError",
    "RulesPolicy",
    "default_policy_path",
    "load_policy",
]

DECIDED_BY = "rule"
PolicyFileError = PolicyError
"""The old name of :class:`kai_core.permissions.PolicyError`."""
default_policy_path = user_policy_path
"""The user's policy file (``~/.config/kai/policy.toml`` on Linux)."""


class RulesPolicy:
    """An approval policy plugin that applies a permission set.

    :param permissions: the set, or the path of one policy file (read at
        once: errors surface at start-up).
    """

    def __init__(self, permissions: PermissionSet | str | os.PathLike[str]) -> None:
        if not isinstance(permissions, PermissionSet):
            permissions = PermissionSet([read_policy_file(Path(permissions), "command-line")])
        self.permissions = permissions

    def __repr__(self) -> str:
        return f"RulesPolicy({self.permissions!r})"

    def verdict(self, request: ApprovalRequest) -> Verdict:
        """The engine's verdict on the request."""
        return self.permissions.evaluate(request.tool_name, request.input)

    @hookimpl
    def kai_approve_tool(
        self, request: ApprovalRequest, context: ApprovalContext
    ) -> ApprovalDecision | None:
        """Approve on allow, reject on deny, no opinion on ask."""
        verdict = self.verdict(request)
        if verdict.decision == "ask":
            return None
        approved = verdict.decision == "allow"
        return ApprovalDecision(
            approved=approved, reason=verdict.reason, decided_by=DECIDED_BY, rule=verdict.rule
        )


def load_policy(path: str | os.PathLike[str] | None = None) -> RulesPolicy | None:
    """The rules policy of every scope's files (and ``--policy`` ``path``), or None without rules.

    :raises PolicyError: a file cannot be read or parsed.
    """
    permissions = load_permissions(path)
    return RulesPolicy(permissions) if permissions else None
