"""Reading one policy file: TOML in, rules with their lines out, or an error naming the line.

The form a file takes::

    [permissions]
    allow = ["list_*", "get_*", "run_job(component_id=keboola.ex-db-*)"]
    ask   = ["create_*"]
    deny  = ["delete_*", "update_descriptions(table_id=out.c-prod.*)"]
    disable_auto_approve = true   # managed file only
    allow_user_rules = false      # managed file only

    [audit]
    full_input = true             # keep every tool input in the log, not only its digest

The old form, ``[[rule]]`` tables with ``tool``, ``action`` (approve,
reject, ask) and ``reason``, is still read, as allow, deny and ask rules, with a
warning that names the new form.

TOML parsers do not say where a value was, so the lines of rules are found
in the text: each rule's string is looked for from its key's line on.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import msgspec

from .rules import ACTIONS, Action, Rule, RuleSyntaxError, parse_rule

__all__ = ["MANAGED_ONLY", "PolicyError", "PolicyFile", "read_policy_file"]

MANAGED_ONLY: Final = ("disable_auto_approve", "allow_user_rules")
"""``[permissions]`` settings only the managed file may set."""
_TOP_KEYS: Final = ("permissions", "audit", "rule")
_PERMISSION_KEYS: Final = (*ACTIONS, *MANAGED_ONLY)
_ACTION_OF: Final[dict[str, Action]] = {action: action for action in ACTIONS}
_LEGACY_ACTIONS: Final[dict[str, Action]] = {"approve": "allow", "reject": "deny", "ask": "ask"}
_LEGACY_KEYS: Final = ("tool", "action", "reason")
_TOML_LINE: Final = re.compile(r"\(at line (\d+), column \d+\)")


class PolicyError(ValueError):
    """A policy file that cannot be used: the message names the file, the line and the problem.

    :param path: the file.
    :param problem: what is wrong, in one line.
    :param line: the 1-based line, when known.
    """

    def __init__(self, path: Path | str, problem: str, line: int | None = None) -> None:
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"policy file {where}: {problem}")
        self.path = Path(path)
        self.problem = problem
        self.line = line


@dataclass
class PolicyFile:
    """What one file holds.

    :param rules: every rule, in file order (old-form rules included).
    :param settings: the managed-only settings it sets (``disable_auto_approve``, ...).
    :param audit_full_input: ``[audit] full_input``, when set.
    :param warnings: lines to show the user (e.g. the old form is in use).
    """

    path: Path
    scope: str
    rules: list[Rule] = field(default_factory=list)
    settings: dict[str, bool] = field(default_factory=dict)
    audit_full_input: bool | None = None
    warnings: list[str] = field(default_factory=list)


class _Lines:
    """Finds where keys and strings are in the file's text."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()

    def key(self, name: str, *, start: int = 0, table: str | None = None) -> int | None:
        if table is not None:
            header = re.compile(rf"^\s*\[\s*{re.escape(table)}\s*\]")
            start = next((n for n, s in enumerate(self.lines) if header.match(s)), start)
        pattern = re.compile(rf"^\s*[\"']?{re.escape(name)}[\"']?\s*=")
        for number in range(start, len(self.lines)):
            if pattern.match(self.lines[number]):
                return number + 1
        return None

    def string(self, value: str, start: int) -> int | None:
        """The first line from ``start`` (1-based) holding ``value`` as a TOML string."""
        needles = (json.dumps(value, ensure_ascii=False), f"'{value}'")
        for number in range(max(start - 1, 0), len(self.lines)):
            if any(n in self.lines[number] for n in needles):
                return number + 1
        return None

    def header(self, name: str, occurrence: int = 1) -> int | None:
        """The line of the ``occurrence``-th (1-based) ``[name]`` or ``[[name]]`` header."""
        pattern = re.compile(rf"^\s*\[\[?\s*{re.escape(name)}\s*[\].]")
        seen = 0
        for number, text in enumerate(self.lines):
            if pattern.match(text):
                seen += 1
                if seen == occurrence:
                    return number + 1
        return None


def _decode(path: Path) -> tuple[str, dict[str, Any]]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise PolicyError(path, "no such file") from None
    except IsADirectoryError:
        raise PolicyError(path, "is a directory, not a file") from None
    except OSError as exc:
        raise PolicyError(path, f"cannot be read: {exc.strerror or exc}") from None
    import tomllib  # here: most runs have no policy file

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise PolicyError(path, "is not UTF-8 text", line) from None
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = _TOML_LINE.search(str(exc))
        at = int(found[1]) if found else None
        if at is None and "end of document" in str(exc):
            at = max(len(text.splitlines()), 1)
        message = _TOML_LINE.sub("", str(exc)).strip()
        raise PolicyError(path, f"invalid TOML: {message}", at) from None


def read_policy_file(path: Path | str, scope: str) -> PolicyFile:
    """Read and check one policy file.

    :param scope: ``managed``, ``user``, ``project`` or ``command-line``;
        only ``managed`` may set ``disable_auto_approve`` and ``allow_user_rules``.
    :raises PolicyError: the file is missing or unreadable, is not UTF-8 or
        not TOML, has an unknown key, a value of the wrong type, or a rule
        that does not parse. The message gives the line when it is known.
    """
    path = Path(path)
    text, doc = _decode(path)
    lines = _Lines(text)
    policy = PolicyFile(path=path, scope=scope)
    for key in doc:
        if key not in _TOP_KEYS:
            raise PolicyError(
                path,
                f"unknown key {key!r}; a policy file has [permissions], [audit] "
                "(and the old [[rule]] tables)",
                lines.key(key) or lines.header(key, 1),
            )
    if "permissions" in doc:
        _read_permissions(policy, doc["permissions"], lines)
    if "audit" in doc:
        _read_audit(policy, doc["audit"], lines)
    if "rule" in doc:
        _read_legacy(policy, doc["rule"], lines)
    return policy


def _table(policy: PolicyFile, value: Any, name: str, lines: _Lines) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PolicyError(policy.path, f"{name} must be a table: write [{name}]", lines.key(name))
    return value


def _read_permissions(policy: PolicyFile, raw: Any, lines: _Lines) -> None:
    path = policy.path
    table = _table(policy, raw, "permissions", lines)
    for key, value in table.items():
        line = lines.key(key, table="permissions")
        if key not in _PERMISSION_KEYS:
            raise PolicyError(
                path,
                f"unknown key {key!r} in [permissions]; keys are {', '.join(_PERMISSION_KEYS)}",
                line,
            )
        if key in MANAGED_ONLY:
            if policy.scope != "managed":
                raise PolicyError(path, f"{key} may only be set in the managed policy file", line)
            if not isinstance(value, bool):
                raise PolicyError(path, f"{key} must be true or false", line)
            policy.settings[key] = value
            continue
        if not isinstance(value, list):
            raise PolicyError(path, f'{key} must be a list of rules, e.g. {key} = ["list_*"]', line)
        cursor = line or 1
        for item in value:
            found = lines.string(item, cursor) if isinstance(item, str) else None
            where = found or line
            cursor = found or cursor
            try:
                rule = parse_rule(item, _ACTION_OF[key])
            except RuleSyntaxError as exc:
                raise PolicyError(path, f"{key}: {exc}", where) from None
            policy.rules.append(_placed(rule, policy, where))


def _placed(rule: Rule, policy: PolicyFile, line: int | None) -> Rule:
    return msgspec.structs.replace(rule, scope=policy.scope, path=str(policy.path), line=line or 0)


def _read_audit(policy: PolicyFile, raw: Any, lines: _Lines) -> None:
    table = _table(policy, raw, "audit", lines)
    for key, value in table.items():
        line = lines.key(key, table="audit")
        if key != "full_input":
            raise PolicyError(
                policy.path, f"unknown key {key!r} in [audit]; the key is full_input", line
            )
        if not isinstance(value, bool):
            raise PolicyError(policy.path, "full_input must be true or false", line)
        policy.audit_full_input = value


def _read_legacy(policy: PolicyFile, raw: Any, lines: _Lines) -> None:
    path = policy.path
    if not isinstance(raw, list):
        raise PolicyError(
            path, "rule must be an array of tables; write each as [[rule]]", lines.key("rule")
        )
    for number, table in enumerate(raw, start=1):
        line = lines.header("rule", number)
        where = f"rule {number}"
        if not isinstance(table, dict):
            raise PolicyError(path, f"{where} is not a table; write it as [[rule]]", line)
        unknown = sorted(set(table) - set(_LEGACY_KEYS))
        if unknown:
            raise PolicyError(
                path,
                f"{where} has unknown key(s) {', '.join(unknown)}; keys are tool, action, reason",
                line,
            )
        tool = table.get("tool")
        globs = [tool] if isinstance(tool, str) else tool
        if (
            not isinstance(globs, list)
            or not globs
            or not all(isinstance(g, str) and g for g in globs)
        ):
            raise PolicyError(path, f"{where}: tool must be a glob or a list of globs", line)
        action = _LEGACY_ACTIONS.get(table.get("action"))  # type: ignore[arg-type]
        if action is None:
            raise PolicyError(
                path,
                f"{where} ({tool!r}) has action {table.get('action')!r}; use approve, reject or ask",
                line,
            )
        reason = table.get("reason")
        if reason is not None and not isinstance(reason, str):
            raise PolicyError(path, f"{where} ({tool!r}): reason must be a string", line)
        for glob in globs:
            try:
                rule = parse_rule(glob, action)
            except RuleSyntaxError as exc:
                raise PolicyError(path, f"{where}: {exc}", line) from None
            policy.rules.append(msgspec.structs.replace(_placed(rule, policy, line), reason=reason))
    policy.warnings.append(
        f"policy file {path} uses the old [[rule]] form; it still works, but write "
        "[permissions] allow = [...], ask = [...], deny = [...] instead "
        "(deny rules now win over allow rules wherever they are; see docs/permissions.md)"
    )
