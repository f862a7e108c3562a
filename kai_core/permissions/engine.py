"""The permission set: every scope's rules merged, and the verdict on one tool call.

Evaluation, for a tool name and its input:

1. deny rules, of every scope; the first that matches decides **deny**;
2. then ask rules: the first that matches decides **ask**;
3. then allow rules: the first that matches decides **allow**;
4. no rule matches: **ask**.

Specificity does not matter and neither does the scope: a deny anywhere
wins over an allow anywhere. "Ask" is the front end's to settle (a prompt,
an MCP elicitation, an embedder's callback, ``--auto-approve``); with
nobody to ask the tool is rejected. Nothing turns a deny into anything else.

Scopes, read in this order (each optional): ``managed`` (``$KAI_MANAGED_POLICY``,
else ``/etc/kai/policy.toml``), ``user`` (``policy.toml`` in kai's config
folder), ``project`` (``.kai/policy.toml`` in the working directory or the
nearest parent that has one), ``command-line`` (``--policy FILE``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import msgspec

from .._policy_files import (
    ENV_MANAGED_POLICY,
    MANAGED_POLICY_PATH,
    PROJECT_POLICY,
    find_policy_files,
    user_policy_path,
)
from .files import PolicyError, PolicyFile, read_policy_file
from .rules import ACTIONS, Action, Rule, allowable_name, parse_rule, strict_text

__all__ = [
    "ENV_MANAGED_POLICY",
    "MANAGED_POLICY_PATH",
    "NO_RULE",
    "PROJECT_POLICY",
    "SCOPES",
    "PermissionSet",
    "Verdict",
    "find_policy_files",
    "load_permissions",
    "user_policy_path",
]

SCOPES: Final = ("managed", "user", "project", "command-line")
"""The scopes, in the order they are read."""


class Verdict(msgspec.Struct, frozen=True, kw_only=True):
    """The engine's answer for one tool call, and what made it.

    :param decision: ``allow``, ``ask`` or ``deny``.
    :param rule: the rule's text, or None when no rule matched.
    :param scope: the rule's scope (``managed``, ``user``, ``project``, ``command-line``).
    :param path: the file the rule is in; ``line`` its line.
    :param reason: one line for people (and, for a deny, for Kai).
    """

    decision: Action
    rule: str | None = None
    scope: str | None = None
    path: str | None = None
    line: int | None = None
    reason: str = ""

    @property
    def source(self) -> str | None:
        """``path:line`` of the rule, or None."""
        if self.path is None:
            return None
        return f"{self.path}:{self.line}" if self.line else self.path

    def to_dict(self) -> dict[str, Any]:
        """As JSON-ready data (``kai policy check --json-output``, the audit)."""
        return {
            "decision": self.decision,
            "rule": self.rule,
            "scope": self.scope,
            "source": self.source,
            "reason": self.reason,
        }


def _verdict(rule: Rule) -> Verdict:
    where = f" ({rule.scope} policy {rule.source})" if rule.path else ""
    if rule.reason:
        reason = f"{rule.reason}: {rule.action} rule {rule.text!r}{where}"
    else:
        reason = f"{rule.action} rule {rule.text!r}{where}"
    return Verdict(
        decision=rule.action,
        rule=rule.text,
        scope=rule.scope or None,
        path=rule.path or None,
        line=rule.line or None,
        reason=reason,
    )


NO_RULE: Final = Verdict(decision="ask", reason="no rule matches")


class PermissionSet:
    """The merged rules of every scope, evaluated deny → ask → allow.

    :param files: the policy files read, in scope order (see :func:`load_permissions`).
    :param rules: extra rules made in code, after the files' (embedders).

    Build one from files with :func:`load_permissions`, or in code with
    :meth:`from_rules`. An empty set decides ``ask`` for everything.
    """

    def __init__(self, files: Sequence[PolicyFile] = (), rules: Iterable[Rule] = ()) -> None:
        self.files = list(files)
        self.warnings: list[str] = [w for f in self.files for w in f.warnings]
        managed = next((f for f in self.files if f.scope == "managed"), None)
        self.managed_path: Path | None = managed.path if managed else None
        settings = managed.settings if managed else {}
        self.auto_approve_disabled: bool = settings.get("disable_auto_approve", False)
        self.user_rules_allowed: bool = settings.get("allow_user_rules", True)
        counted = [f for f in self.files if self.user_rules_allowed or f.scope == "managed"]
        ignored = [f for f in self.files if f not in counted and f.rules]
        if ignored:
            self.warnings.append(
                f"the managed policy {self.managed_path} sets allow_user_rules = false: "
                f"the rules of {', '.join(str(f.path) for f in ignored)} are ignored"
            )
        everything = [r for f in counted for r in f.rules] + list(rules)
        self.rules: dict[Action, list[Rule]] = {
            action: [r for r in everything if r.action == action] for action in ACTIONS
        }
        self.audit_full_input: bool = any(f.audit_full_input for f in self.files)

    @classmethod
    def from_rules(
        cls,
        *,
        allow: Iterable[str] = (),
        ask: Iterable[str] = (),
        deny: Iterable[str] = (),
    ) -> PermissionSet:
        """A set made in code: ``PermissionSet.from_rules(deny=["delete_*"])``.

        :raises ~kai_core.permissions.RuleSyntaxError: a rule does not parse.
        """
        made = [parse_rule(t, "allow") for t in allow]
        made += [parse_rule(t, "ask") for t in ask]
        made += [parse_rule(t, "deny") for t in deny]
        return cls(rules=made)

    def __repr__(self) -> str:
        counts = ", ".join(f"{len(v)} {k}" for k, v in self.rules.items())
        return f"PermissionSet({len(self.files)} files; {counts})"

    def __bool__(self) -> bool:
        return any(self.rules.values())

    def evaluate(self, tool_name: str, tool_input: Any = None) -> Verdict:
        """The verdict on a call of ``tool_name`` with ``tool_input`` (pure, no I/O)."""
        strict = strict_text(tool_name)
        for action in ACTIONS:
            if action == "allow":
                if not allowable_name(tool_name):
                    break
                name = tool_name
            else:
                name = strict
            for rule in self.rules[action]:
                if rule.matches_normalised(name, tool_input):
                    return _verdict(rule)
        return NO_RULE

    def refuse_auto_approve(self) -> None:
        """Raise when the managed policy forbids ``--auto-approve``.

        :raises PolicyError: naming the managed file and the line of the setting.
        """
        if self.auto_approve_disabled and self.managed_path is not None:
            raise PolicyError(
                self.managed_path,
                "disable_auto_approve = true: --auto-approve is not allowed here",
                _setting_line(self.managed_path, "disable_auto_approve"),
            )


def _setting_line(path: Path, key: str) -> int | None:
    try:
        lines = path.read_text("utf-8").splitlines()
    except OSError:
        return None
    return next((n for n, s in enumerate(lines, 1) if s.strip().startswith(key)), None)


def load_permissions(
    command_line: str | os.PathLike[str] | None = None,
    *,
    cwd: Path | None = None,
    environ: Mapping[str, str] = os.environ,
) -> PermissionSet:
    """Read every scope's policy file and merge them.

    :param command_line: ``--policy FILE`` (must exist).
    :param cwd: where to start looking for ``.kai/policy.toml`` (default: the working directory).
    :raises PolicyError: any file is broken (nothing should be sent then).
    """
    found = find_policy_files(command_line, cwd=cwd, environ=environ)
    return PermissionSet([read_policy_file(path, scope) for scope, path in found])
