"""The built-in approval policies: the permission rules and ``--auto-approve``.

Neither is an entry point: a front end registers them explicitly with
:func:`register_builtin_policies`, so they apply only when the user asks.
Order of consultation (first decision wins): the rules, then installed
policy plugins, then auto-approve; when none decides, the front end asks the
user, or rejects when it cannot. (A :class:`~kai_core.session.Session` given
the permission set itself asks it before any plugin; see ``docs/permissions.md``.)
"""

from __future__ import annotations

import os

from kai_core.permissions import PermissionSet, load_permissions
from kai_core.plugins import Plugins

from .auto import AutoApprove
from .rules import (
    PolicyFileError,
    RulesPolicy,
    default_policy_path,
    load_policy,
)

__all__ = [
    "AUTO_APPROVE_PLUGIN",
    "AutoApprove",
    "POLICY_FILE_PLUGIN",
    "PolicyFileError",
    "RulesPolicy",
    "default_policy_path",
    "load_policy",
    "register_builtin_policies",
]

POLICY_FILE_PLUGIN = "policy-file"
AUTO_APPROVE_PLUGIN = "auto-approve"


def register_builtin_policies(
    plugins: Plugins,
    *,
    policy_path: str | os.PathLike[str] | None = None,
    auto_approve: bool = False,
    use_default_policy: bool = True,
    permissions: PermissionSet | None = None,
    rules_plugin: bool = True,
) -> list[str]:
    """Register the rules policy and, if asked, auto-approve.

    :param plugins: the session's plugin manager (entry points already loaded).
    :param policy_path: ``--policy FILE``, merged with the other scopes' files.
    :param auto_approve: ``--auto-approve``: approve what no other policy decided.
    :param use_default_policy: False reads ``policy_path`` alone (tests).
    :param permissions: a set already loaded (then no file is read).
    :param rules_plugin: False registers no rules plugin (a front end whose
        :class:`~kai_core.session.Session` is given ``permissions`` itself);
        ``permissions`` still decides whether ``--auto-approve`` is allowed.
    :returns: the names of the plugins registered (``policy-file``, ``auto-approve``).
    :raises PolicyFileError: a policy file cannot be read or parsed, or the
        managed policy forbids ``--auto-approve`` (a start-up error).
    """
    registered = []
    if permissions is None:
        if use_default_policy:
            permissions = load_permissions(policy_path)
        elif policy_path is not None:
            permissions = RulesPolicy(policy_path).permissions
    if permissions and rules_plugin:
        # Registered last, so pluggy consults it before installed policies.
        plugins.register(RulesPolicy(permissions), name=POLICY_FILE_PLUGIN)
        registered.append(POLICY_FILE_PLUGIN)
    if auto_approve:
        if permissions is not None:
            permissions.refuse_auto_approve()
        plugins.register(AutoApprove(), name=AUTO_APPROVE_PLUGIN)
        registered.append(AUTO_APPROVE_PLUGIN)
    return registered
