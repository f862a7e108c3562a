"""The permission engine: allow / ask / deny rules on tool names and arguments.

Pure: it parses policy files and evaluates rules; it has no terminal and no
network. Every front end (``kai chat``, ``kai-shell``, an embedder's
:class:`~kai_core.session.Session`) asks the same :class:`PermissionSet`.
See ``docs/permissions.md`` for the rules a reviewer signs off.
"""

from __future__ import annotations

from .engine import (
    ENV_MANAGED_POLICY,
    MANAGED_POLICY_PATH,
    NO_RULE,
    PROJECT_POLICY,
    SCOPES,
    PermissionSet,
    Verdict,
    find_policy_files,
    load_permissions,
    user_policy_path,
)
from .files import PolicyError, PolicyFile, read_policy_file
from .rules import (
    ACTIONS,
    Action,
    Rule,
    RuleSyntaxError,
    allowable_name,
    parse_rule,
    strict_text,
)

__all__ = [
    "ACTIONS",
    "ENV_MANAGED_POLICY",
    "MANAGED_POLICY_PATH",
    "NO_RULE",
    "PROJECT_POLICY",
    "SCOPES",
    "Action",
    "PermissionSet",
    "PolicyError",
    "PolicyFile",
    "Rule",
    "RuleSyntaxError",
    "Verdict",
    "allowable_name",
    "find_policy_files",
    "load_permissions",
    "parse_rule",
    "read_policy_file",
    "strict_text",
    "user_policy_path",
]
