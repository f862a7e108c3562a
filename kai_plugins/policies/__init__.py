"""The built-in approval policies: a rules file and ``--auto-approve``.

Neither is an entry point: a front end registers them explicitly with
:func:`register_builtin_policies`, so they apply only when the user asks.
Order of consultation (first decision wins): the rules file, then installed
policy plugins, then auto-approve; when none decides, the front end asks the
user, or rejects when it cannot.
"""

from __future__ import annotations

from pathlib import Path

from kai_core.plugins import Plugins

from .auto import AutoApprove
from .rules import (
    PolicyFileError,
    Rule,
    RulesPolicy,
    default_policy_path,
    load_policy,
    load_rules,
)

__all__ = [
    "AUTO_APPROVE_PLUGIN",
    "AutoApprove",
    "POLICY_FILE_PLUGIN",
    "PolicyFileError",
    "Rule",
    "RulesPolicy",
    "default_policy_path",
    "load_policy",
    "load_rules",
    "register_builtin_policies",
]

POLICY_FILE_PLUGIN = "policy-file"
AUTO_APPROVE_PLUGIN = "auto-approve"


def register_builtin_policies(
    plugins: Plugins,
    *,
    policy_path: Path | str | None = None,
    auto_approve: bool = False,
    use_default_policy: bool = True,
) -> list[str]:
    """Register the rules policy and, if asked, auto-approve.

    :param plugins: the session's plugin manager (entry points already loaded).
    :param policy_path: ``--policy FILE``; None uses the default file if it exists.
    :param auto_approve: ``--auto-approve``: approve what no other policy decided.
    :param use_default_policy: False ignores the default file (tests, ``--no-policy``).
    :returns: the names of the plugins registered (``policy-file``, ``auto-approve``).
    :raises PolicyFileError: the rules file cannot be read or parsed (a start-up error).
    """
    registered = []
    policy = load_policy(policy_path) if policy_path is not None or use_default_policy else None
    if policy is not None:
        # Registered last, so pluggy consults it before installed policies.
        plugins.register(policy, name=POLICY_FILE_PLUGIN)
        registered.append(POLICY_FILE_PLUGIN)
    if auto_approve:
        plugins.register(AutoApprove(), name=AUTO_APPROVE_PLUGIN)
        registered.append(AUTO_APPROVE_PLUGIN)
    return registered
