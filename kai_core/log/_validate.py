"""What an imported record may hold: positions, times, and the fields the
projections read.

Live records are made by kai itself; imported ones (a JSON lines file, a
server's chat detail) are anyone's. They are checked here before they reach
the log, so one bad line cannot make the log unwritable (a position near
2^63 leaves no room for the next append) or unreadable (a list where the
projections expect an id). Only the fields kai reads are checked; any other
field is kept as it came.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, Final

from ._records import APPROVAL, DELETE_CHAT, IMPORTED_MESSAGE, RESUME, USER_MESSAGE, VOTE

__all__ = [
    "MAX_SEQ",
    "MAX_TS",
    "MIN_TS",
    "SkippedRecordWarning",
    "message_problem",
    "record_problem",
    "sane_ts",
]

MAX_SEQ: Final = 2**53
"""The last position an import may keep: exact in JSON everywhere, and 2^10
times short of SQLite's integer limit, so appends always have room."""
MIN_TS: Final = 0.0
MAX_TS: Final = 253402300799.0
"""Record times are from 1970 to the end of year 9999 (what a date can show)."""


class SkippedRecordWarning(UserWarning):
    """A record was left out: a server message not imported, or a stored record
    the projections cannot fold (the chat's other records are kept). The
    message names the chat and says why."""


_TEXT_PARTS: Final = frozenset({"text", "reasoning"})
_OPTIONAL_STR: Final = (str, type(None))


def sane_ts(ts: object) -> bool:
    """True for a record time kai can store and show."""
    return (
        isinstance(ts, int | float)
        and not isinstance(ts, bool)
        and math.isfinite(ts)
        and MIN_TS <= ts <= MAX_TS
    )


def _fields(
    data: Mapping[str, Any], where: str, types: Mapping[str, tuple[type, ...]]
) -> str | None:
    for key, allowed in types.items():
        if key in data and not isinstance(data[key], allowed):
            return f"{where}.{key} must be {_names(allowed)}, not {type(data[key]).__name__}"
    return None


def _names(types: tuple[type, ...]) -> str:
    return " or ".join("null" if t is type(None) else t.__name__ for t in types)


def _part_problem(part: Any, where: str) -> str | None:
    if not isinstance(part, dict):
        return f"{where} must be an object"
    kind = part.get("type")
    if not isinstance(kind, str):
        return f"{where}.type must be a string"
    if kind in _TEXT_PARTS:
        return _fields(part, where, {"text": (str,)})
    if kind.startswith("tool-") or kind == "dynamic-tool":
        problem = _fields(
            part,
            where,
            {
                "toolCallId": (str,),
                "toolName": (str,),
                "state": _OPTIONAL_STR,
                "errorText": _OPTIONAL_STR,
                "approval": (dict, type(None)),
            },
        )
        approval = part.get("approval")
        if problem is None and isinstance(approval, dict):
            problem = _fields(
                approval,
                f"{where}.approval",
                {"id": (str,), "approved": (bool, type(None)), "reason": _OPTIONAL_STR},
            )
        return problem
    return None


def message_problem(message: Any) -> str | None:
    """What is wrong with a UI message (``None``: nothing kai reads)."""
    if not isinstance(message, dict):
        return "message must be an object"
    problem = _fields(message, "message", {"id": (str,), "role": (str,), "parts": (list,)})
    if problem is not None:
        return problem
    for i, part in enumerate(message.get("parts") or ()):
        problem = _part_problem(part, f"message.parts[{i}]")
        if problem is not None:
            return problem
    return None


def _message_record(body: dict[str, Any]) -> str | None:
    if "message" not in body:
        return "no message"
    return message_problem(body["message"]) or _fields(
        body, "body", {"title": _OPTIONAL_STR, "server": _OPTIONAL_STR, "backend": _OPTIONAL_STR}
    )


def _approval_record(body: dict[str, Any]) -> str | None:
    return _fields(
        body,
        "body",
        {
            "approval_id": (str,),
            "tool_call_id": (str,),
            "tool_name": _OPTIONAL_STR,
            "approved": (bool,),
            "reason": _OPTIONAL_STR,
            "decided_by": _OPTIONAL_STR,
            "transport": _OPTIONAL_STR,
        },
    )


def _resume_record(body: dict[str, Any]) -> str | None:
    skipped = body.get("skipped")
    if skipped is not None and (type(skipped) is not int or not 0 <= skipped <= MAX_SEQ):
        return "body.skipped must be a count"
    return None


_CHECKS: Final[dict[str, Callable[[dict[str, Any]], str | None]]] = {
    USER_MESSAGE: _message_record,
    IMPORTED_MESSAGE: _message_record,
    APPROVAL: _approval_record,
    VOTE: lambda body: _fields(body, "body", {"message_id": (str,), "type": (str,)}),
    DELETE_CHAT: lambda body: None,
    RESUME: _resume_record,
}


def record_problem(kind: str, body: Any) -> str | None:
    """What is wrong with the decoded body of a client record of type ``kind``
    (``None``: nothing; a type kai does not read is never wrong)."""
    check = _CHECKS.get(kind)
    if check is None:
        return None
    if not isinstance(body, dict):
        return f"a {kind!r} record's body must be an object"
    problem = check(body)
    return None if problem is None else f"a {kind!r} record: {problem}"
