"""Answering v6 tool approvals (kai-assistant): the assistant message sent back.

The AI SDK's own client answers an approval by setting the tool part's
``state`` to ``approval-responded`` and adding ``approved`` (and ``reason``)
to its ``approval`` object, keeping every other field of that object
(``inputSchemaInput``, ``signature``, ``descriptor``: the SDK re-validates
them), and then re-sending the message. This module finds the message and
builds the answered parts; :class:`~kai_core.client.KaiClient` sends them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .api import ChatDetail, Message
from .exceptions import KaiError

__all__ = ["Answers", "answer_parts"]

Answers = Mapping[str, "tuple[bool, str | None]"]
"""approval id → (approved, reason or None)."""


def _approval_id(part: Any) -> str | None:
    if not isinstance(part, dict):
        return None
    approval = part.get("approval")
    if isinstance(approval, dict):
        value = approval.get("id")
        return value if isinstance(value, str) else None
    return None


def answer_parts(chat: ChatDetail, answers: Answers) -> tuple[Message, list[dict[str, Any]]]:
    """Find the newest assistant message holding the approvals; answer them.

    :returns: the message and its parts with every answered part in state
        ``approval-responded``.
    :raises KaiError: ``approval:not_found`` when an approval id is in no
        assistant message (or the ids are spread over several messages);
        ``approval:already_answered`` when a part is not waiting any more
        (answering again would run the tool a second time).
    """
    if not answers:
        raise ValueError("no approvals to answer")
    wanted = set(answers)
    message: Message | None = None
    for candidate in reversed(chat.messages):
        if candidate.role != "assistant":
            continue
        if any(_approval_id(part) in wanted for part in candidate.parts):
            message = candidate
            break
    if message is None:
        raise KaiError(
            f"no assistant message of chat {chat.id} holds approval {', '.join(sorted(wanted))}",
            code="approval:not_found",
        )
    found = {_approval_id(part) for part in message.parts}
    missing = wanted - found
    if missing:
        raise KaiError(
            f"approval {', '.join(sorted(missing))} is not in the newest assistant message "
            "holding the others; answer them separately",
            code="approval:not_found",
        )
    parts: list[dict[str, Any]] = []
    for part in message.parts:
        approval_id = _approval_id(part)
        if approval_id not in wanted:
            parts.append(part)
            continue
        assert approval_id is not None
        state = part.get("state")
        if state != "approval-requested":
            raise KaiError(
                f"approval {approval_id} is not waiting for an answer (its tool call is {state!r})",
                code="approval:already_answered",
            )
        approved, reason = answers[approval_id]
        approval = {**part["approval"], "approved": bool(approved)}
        if reason is not None:
            approval["reason"] = reason
        else:
            approval.pop("reason", None)
        parts.append({**part, "state": "approval-responded", "approval": approval})
    return message, parts
