"""The rules-file approval policy: tool-name globs mapped to approve, reject or ask.

The file is TOML, a list of rules; the first rule whose ``tool`` glob
matches the tool's name decides::

    [[rule]]
    tool = "list_*"          # fnmatch glob on the tool name (or a list of globs)
    action = "approve"       # approve | reject | ask
    reason = "read-only"     # optional; logged and, for a rejection, sent to Kai

    [[rule]]
    tool = "delete_*"
    action = "reject"
    reason = "never delete from the CLI"

``ask`` means no opinion: the next policy, then the user, decides. A tool no
rule matches is also left to them. The default file is
``policy.toml`` in kai's config folder (:func:`default_policy_path`), used
when it exists; ``--policy FILE`` names another one, which must exist.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Literal

import msgspec

from kai_core.hookspecs import hookimpl
from kai_core.policy import ApprovalContext, ApprovalDecision, ApprovalRequest

__all__ = [
    "ACTIONS",
    "DECIDED_BY",
    "PolicyFileError",
    "Rule",
    "RulesPolicy",
    "default_policy_path",
    "load_policy",
    "load_rules",
]

ACTIONS = ("approve", "reject", "ask")
DECIDED_BY = "policy-file"
_RULE_KEYS = {"tool", "action", "reason"}


class PolicyFileError(ValueError):
    """The policy file cannot be used; the message names the file and the problem."""

    def __init__(self, path: Path | str, problem: str) -> None:
        super().__init__(f"policy file {str(path)!r}: {problem}")
        self.path = Path(path)
        self.problem = problem


class Rule(msgspec.Struct, frozen=True, kw_only=True):
    """One rule: ``tools`` globs, the ``action`` taken, and the ``reason`` given."""

    tools: tuple[str, ...]
    action: Literal["approve", "reject", "ask"]
    reason: str | None = None
    number: int = 0  # 1-based position in the file, for messages

    def matches(self, tool_name: str) -> bool:
        """Whether a glob of this rule matches ``tool_name`` (case-sensitive)."""
        return any(fnmatchcase(tool_name, glob) for glob in self.tools)


def default_policy_path() -> Path:
    """``policy.toml`` in kai's config folder (``~/.config/kai/policy.toml`` on Linux)."""
    import platformdirs

    return Path(platformdirs.user_config_dir("kai")) / "policy.toml"


def _parse_rule(path: Path, number: int, raw: Any) -> Rule:
    where = f"rule {number}"
    if not isinstance(raw, dict):
        raise PolicyFileError(path, f"{where} is not a table; write it as [[rule]]")
    unknown = sorted(set(raw) - _RULE_KEYS)
    if unknown:
        raise PolicyFileError(
            path, f"{where} has unknown key(s) {', '.join(unknown)}; keys are tool, action, reason"
        )
    tool = raw.get("tool")
    if tool is None:
        raise PolicyFileError(path, f'{where} has no tool; add tool = "glob"')
    globs = (tool,) if isinstance(tool, str) else tool
    if (
        not isinstance(globs, (list, tuple))
        or not globs
        or not all(isinstance(g, str) and g for g in globs)
    ):
        raise PolicyFileError(path, f"{where}: tool must be a glob or a list of globs")
    action = raw.get("action")
    if action is None:
        raise PolicyFileError(path, f"{where} ({tool!r}) has no action; use one of {ACTIONS}")
    if action not in ACTIONS:
        raise PolicyFileError(
            path, f"{where} ({tool!r}) has unknown action {action!r}; use one of {ACTIONS}"
        )
    reason = raw.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise PolicyFileError(path, f"{where} ({tool!r}): reason must be a string")
    return Rule(tools=tuple(globs), action=action, reason=reason, number=number)


def load_rules(path: Path | str) -> list[Rule]:
    """Read and check a rules file.

    :raises PolicyFileError: the file is missing or unreadable, is not valid
        TOML (the message gives the line), or a rule lacks ``tool`` or has
        an unknown ``action`` or key.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise PolicyFileError(path, "no such file") from None
    except IsADirectoryError:
        raise PolicyFileError(path, "is a directory, not a file") from None
    except OSError as exc:
        raise PolicyFileError(path, f"cannot be read: {exc.strerror or exc}") from None
    import tomllib  # here: every start loads this plugin, few have a rules file

    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise PolicyFileError(path, "is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise PolicyFileError(path, f"invalid TOML: {exc}") from None
    unknown = sorted(set(doc) - {"rule"})
    if unknown:
        raise PolicyFileError(
            path, f"unknown top-level key(s) {', '.join(unknown)}; write rules as [[rule]] tables"
        )
    raw_rules = doc.get("rule", [])
    if not isinstance(raw_rules, list):
        raise PolicyFileError(path, "rule must be an array of tables; write each as [[rule]]")
    return [_parse_rule(path, n, raw) for n, raw in enumerate(raw_rules, start=1)]


class RulesPolicy:
    """An approval policy plugin that applies the rules of one file.

    :param path: the rules file, read at once (errors surface at start-up).
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.rules = load_rules(self.path)

    def __repr__(self) -> str:
        return f"RulesPolicy({str(self.path)!r}, {len(self.rules)} rules)"

    def match(self, tool_name: str) -> Rule | None:
        """The first rule that matches ``tool_name``, or None."""
        for rule in self.rules:
            if rule.matches(tool_name):
                return rule
        return None

    @hookimpl
    def kai_approve_tool(
        self, request: ApprovalRequest, context: ApprovalContext
    ) -> ApprovalDecision | None:
        """Approve or reject by the first matching rule; None for ``ask`` or no match."""
        rule = self.match(request.tool_name)
        if rule is None or rule.action == "ask":
            return None
        reason = rule.reason or f"rule {rule.number} ({', '.join(rule.tools)}) in {self.path}"
        if rule.action == "approve":
            return ApprovalDecision.approve(reason, decided_by=DECIDED_BY)
        return ApprovalDecision.reject(reason, decided_by=DECIDED_BY)


def load_policy(path: Path | str | None = None) -> RulesPolicy | None:
    """The rules policy a front end should use.

    :param path: ``--policy FILE``: must exist and parse. None: the default
        file (:func:`default_policy_path`) if it exists, else no policy.
    :raises PolicyFileError: the file cannot be read or parsed.
    """
    if path is None:
        default = default_policy_path()
        if not default.exists():
            return None
        path = default
    return RulesPolicy(path)
