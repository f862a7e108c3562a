"""One permission rule: ``TOOL_GLOB`` or ``TOOL_GLOB(KEY=GLOB, KEY=GLOB, ...)``.

Parsing and matching, nothing else. The rules of matching, which the
``docs/permissions.md`` page spells out for a reviewer:

* globs are :func:`fnmatch.fnmatchcase` (``*``, ``?``, ``[seq]``), case-sensitive;
* a KEY is a top-level input key or a dotted path into nested objects
  (``configuration.parameters.table``); the value matched is the string
  itself, or the compact JSON of anything else (``42``, ``true``,
  ``["a","b"]``);
* ``KEY=`` (an empty glob) matches a missing, null or empty value (``""``,
  ``[]``, ``{}``); any other glob never matches a missing key;
* a rule with keys matches only when the tool glob and every key match;
* deny and ask rules see the tool name and the values NFKC-normalised with
  control and format characters removed, so a full-width or zero-width
  look-alike cannot slip past them; allow rules match only a name of
  printable ASCII and values without control or format characters, so such
  a name or value is never allowed by a rule (it falls through to ask).

A value that holds ``,``, ``(`` or ``)`` (or starts with ``"``) is written
as a JSON string:
``run_query(sql="SELECT a, b FROM t")``.
"""

from __future__ import annotations

import json
import re
import unicodedata
from fnmatch import fnmatchcase
from typing import Any, Final, Literal

import msgspec

__all__ = [
    "ACTIONS",
    "Action",
    "Rule",
    "RuleSyntaxError",
    "allowable_name",
    "parse_rule",
    "strict_text",
]

Action = Literal["allow", "ask", "deny"]
ACTIONS: Final[tuple[Action, ...]] = ("deny", "ask", "allow")
"""The actions, in the order they are evaluated."""

_TOOL: Final = re.compile(r"[!-'*-+\--<>-~]+")  # printable ASCII without ( ) , = and space
_KEY: Final = re.compile(r"\s*([A-Za-z0-9_$-]+(?:\.[A-Za-z0-9_$-]+)*)\s*=\s*")
_MISSING: Final = object()
_EMPTY: Final[tuple[Any, ...]] = (None, "", [], {})
_encode: Final = msgspec.json.Encoder()


class RuleSyntaxError(ValueError):
    """A rule that cannot be parsed; the message says what is wrong with it."""


def strict_text(text: str) -> str:
    """``text`` as deny and ask rules see it: NFKC, without control or format characters."""
    normal = unicodedata.normalize("NFKC", text)
    return "".join(ch for ch in normal if unicodedata.category(ch) not in ("Cc", "Cf"))


def allowable_name(name: str) -> bool:
    """Whether an allow rule may match ``name``: non-empty printable ASCII."""
    return name.isascii() and name.isprintable() and bool(name)


class Rule(msgspec.Struct, frozen=True, kw_only=True):
    """A parsed rule and where it was written.

    :param text: the rule as written (shown in explanations and the audit).
    :param action: ``allow``, ``ask`` or ``deny``.
    :param tool: the tool-name glob.
    :param keys: ``(dotted key, value glob)`` pairs; all must match.
    :param scope: ``managed``, ``user``, ``project``, ``command-line`` or ``""``.
    :param path: the file the rule is in (``""`` for rules made in code).
    :param line: its 1-based line in that file (0 when unknown).
    :param reason: a reason written beside an old-form ``[[rule]]``.
    """

    text: str
    action: Action
    tool: str
    keys: tuple[tuple[str, str], ...] = ()
    scope: str = ""
    path: str = ""
    line: int = 0
    reason: str | None = None

    @property
    def source(self) -> str:
        """``path:line`` (or the path alone, or ``""``)."""
        if self.path and self.line:
            return f"{self.path}:{self.line}"
        return self.path

    def matches(self, tool_name: str, tool_input: Any = None) -> bool:
        """Whether this rule applies to a call of ``tool_name`` with ``tool_input``
        (the name normalised as this rule's action requires)."""
        if self.action == "allow":
            return allowable_name(tool_name) and self.matches_normalised(tool_name, tool_input)
        return self.matches_normalised(strict_text(tool_name), tool_input)

    def matches_normalised(self, tool_name: str, tool_input: Any = None) -> bool:
        """:meth:`matches` for a name already normalised (:func:`strict_text` for
        deny and ask rules, checked with :func:`allowable_name` for allow rules):
        a set of rules normalises the name once, not once per rule."""
        if not fnmatchcase(tool_name, self.tool):
            return False
        strict = self.action != "allow"
        return all(_key_matches(tool_input, key, glob, strict) for key, glob in self.keys)


def _lookup(value: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _key_matches(tool_input: Any, key: str, glob: str, strict: bool) -> bool:
    value = _lookup(tool_input, key)
    if glob == "":
        return value is _MISSING or any(value == e and type(value) is type(e) for e in _EMPTY)
    if value is _MISSING:
        return False
    if isinstance(value, str):
        text = value
    else:
        try:
            text = _encode.encode(value).decode()
        except (TypeError, msgspec.EncodeError):
            return False  # not JSON: a rule cannot vouch for it (nor name it)
    if strict:
        return fnmatchcase(strict_text(text), glob)
    return text.isprintable() and fnmatchcase(text, glob)


def parse_rule(text: str, action: Action) -> Rule:
    """Parse one rule.

    :raises RuleSyntaxError: the tool glob is empty or not printable ASCII,
        the parentheses do not close, a key is malformed or repeated.
    """
    if not isinstance(text, str):
        raise RuleSyntaxError(f"a rule must be a string, not {type(text).__name__}")
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in text):
        raise RuleSyntaxError(f"rule {text!r} holds a control or format character")
    stripped = text.strip()
    tool, paren, rest = stripped.partition("(")
    tool = tool.strip()
    if not tool:
        raise RuleSyntaxError(
            f"rule {text!r} has no tool glob; write TOOL_GLOB or TOOL_GLOB(KEY=GLOB)"
        )
    if not _TOOL.fullmatch(tool):
        raise RuleSyntaxError(
            f"rule {text!r}: the tool glob {tool!r} must be printable ASCII without "
            "spaces, commas or '='"
        )
    keys: tuple[tuple[str, str], ...] = ()
    if paren:
        if not rest.endswith(")"):
            raise RuleSyntaxError(f"rule {text!r} does not end with ')'")
        keys = _parse_keys(text, rest[:-1])
    return Rule(text=stripped, action=action, tool=tool, keys=keys)


def _parse_keys(text: str, body: str) -> tuple[tuple[str, str], ...]:
    if not body.strip():
        raise RuleSyntaxError(f"rule {text!r} has empty parentheses; drop them or add KEY=GLOB")
    pairs: list[tuple[str, str]] = []
    pos = 0
    while True:
        match = _KEY.match(body, pos)
        if match is None:
            raise RuleSyntaxError(
                f"rule {text!r}: expected KEY=GLOB at {body[pos:].strip()!r} "
                "(keys are letters, digits, _ - $, joined by dots)"
            )
        key, pos = match.group(1), match.end()
        if body.startswith('"', pos):
            try:
                value, pos = json.JSONDecoder().raw_decode(body, pos)
            except json.JSONDecodeError:
                raise RuleSyntaxError(
                    f"rule {text!r}: the quoted value of {key} is not closed"
                ) from None
        else:
            end = body.find(",", pos)
            end = len(body) if end < 0 else end
            value, pos = body[pos:end].strip(), end
            if "(" in value or ")" in value:
                raise RuleSyntaxError(
                    f"rule {text!r}: the value of {key} holds a parenthesis; "
                    'write it as a JSON string: KEY="..."'
                )
        if any(key == seen for seen, _ in pairs):
            raise RuleSyntaxError(f"rule {text!r} names {key} twice")
        pairs.append((key, value))
        while pos < len(body) and body[pos].isspace():
            pos += 1
        if pos == len(body):
            return tuple(pairs)
        if body[pos] != ",":
            raise RuleSyntaxError(f"rule {text!r}: expected ',' or ')' after the value of {key}")
        pos += 1
