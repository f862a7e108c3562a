"""What the emulated backend remembers: chats, messages, votes, settings, streams.

Everything is in memory and plain Python (dicts shaped like the wire JSON), so
a test can assert on it directly (``emulator.state.chats[chat_id].messages``).
Nothing here does I/O; the routes in :mod:`kai_core.testing.app` and the
stream runner in :mod:`kai_core.testing.runner` change it.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeGuard

import trio

__all__ = [
    "ChatRecord",
    "EmulatorState",
    "PendingApproval",
    "RequestRecord",
    "StreamRecord",
    "is_uuid",
    "iso",
    "user_id_for",
]


def iso(moment: datetime) -> str:
    """An ISO-8601 UTC timestamp with milliseconds, as JavaScript writes it."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def is_uuid(value: object) -> TypeGuard[str]:
    """True when ``value`` is a string holding a UUID (any version)."""
    if not isinstance(value, str):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def user_id_for(token: str) -> str:
    """The emulated user behind a token: a stable digest, never the token itself."""
    return "user-" + hashlib.sha256(token.encode()).hexdigest()[:12]


class StreamRecord:
    """The SSE frames of one answer, kept so that several readers can follow it.

    The producer (the scripted assistant) appends whole frames; each HTTP
    response follows the record from its first frame, so a resumed stream
    replays the answer from the start. ``closed`` is set when the producer
    stops; ``complete`` only when it wrote ``[DONE]``.
    """

    def __init__(self, chat_id: str) -> None:
        self.chat_id = chat_id
        self.frames: list[bytes] = []
        self.closed = False
        self.complete = False
        self.ended_at: float | None = None
        self._changed = trio.Event()

    def append(self, frame: bytes) -> None:
        """Add one frame (``data: ...\\n\\n``) and wake the readers."""
        self.frames.append(frame)
        self._wake()

    def close(self, *, complete: bool) -> None:
        """Mark the answer as ended (``complete``: it ended with ``[DONE]``)."""
        if not self.closed:
            self.closed = True
            self.complete = complete
            self.ended_at = trio.current_time()
            self._wake()

    async def wait_changed(self, seen: int) -> None:
        """Return once there are more than ``seen`` frames or the record closed."""
        while len(self.frames) <= seen and not self.closed:
            await self._changed.wait()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = trio.Event()


@dataclass
class PendingApproval:
    """A kai-agent tool call whose stream waits for ``POST /api/chat/{id}/approval``."""

    tool_call_id: str
    tool_name: str
    event: trio.Event = field(default_factory=trio.Event)
    approved: bool | None = None
    reason: str | None = None
    superseded: bool = False
    updated_input: dict[str, Any] | None = None
    answers: dict[str, Any] | None = None

    def decide(
        self,
        approved: bool,
        reason: str | None,
        updated_input: dict[str, Any] | None = None,
        answers: dict[str, Any] | None = None,
    ) -> None:
        """Record the user's answer and let the waiting stream continue.

        ``updated_input`` replaces the tool's input; ``answers`` (the user's
        answers to the tool's questions) are given to the tool in its input.
        """
        self.approved = approved
        self.reason = reason
        self.updated_input = updated_input
        self.answers = answers
        self.event.set()

    def supersede(self) -> None:
        """End the wait without an answer (a new message was sent)."""
        self.superseded = True
        self.event.set()


@dataclass
class ChatRecord:
    """One chat as the backend stores it."""

    id: str
    user_id: str
    title: str
    created_at: datetime
    updated_at: datetime
    visibility: str = "private"
    branch_id: int | None = None
    # kai-agent: ``toolRestrictions`` of the chat's first message (later ones are ignored)
    tool_restrictions: dict[str, Any] | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    # assistant message id -> how that message continues once its approvals are answered
    continuations: dict[str, Any] = field(default_factory=dict)
    # kai-agent: tool call id -> the wait of the running stream
    waiting: dict[str, PendingApproval] = field(default_factory=dict)
    last_stream: StreamRecord | None = None

    def summary(self) -> dict[str, Any]:
        """The chat as ``GET /api/history`` lists it."""
        return {
            "id": self.id,
            "title": self.title,
            "createdAt": iso(self.created_at),
            "visibility": self.visibility,
            "userId": self.user_id,
        }

    def detail(self) -> dict[str, Any]:
        """The chat as ``GET /api/chat/{id}`` returns it (with the branch, if any)."""
        detail: dict[str, Any] = {**self.summary(), "updatedAt": iso(self.updated_at)}
        if self.branch_id is not None:
            detail["branchId"] = self.branch_id
        detail["messages"] = self.messages
        return detail

    def restriction(self, tool_name: str, read_only: bool) -> str | None:
        """Why ``toolRestrictions`` forbid this tool in this chat, or None."""
        rules = self.tool_restrictions or {}
        allowed, disallowed = rules.get("allowedTools"), rules.get("disallowedTools")
        if allowed is not None and tool_name not in allowed:
            return f"Tool {tool_name} is not in this chat's allowed tools."
        if disallowed is not None and tool_name in disallowed:
            return f"Tool {tool_name} is disallowed in this chat."
        if rules.get("readOnlyMode") and not read_only:
            return f"Tool {tool_name} is not read-only; this chat is in read-only mode."
        return None

    def message(self, message_id: str) -> dict[str, Any] | None:
        """The stored message with this id, if any."""
        return next((m for m in self.messages if m["id"] == message_id), None)


@dataclass(frozen=True)
class RequestRecord:
    """One HTTP request the emulator answered (never with the token)."""

    method: str
    path: str
    query: str
    status: int


@dataclass
class EmulatorState:
    """Everything the emulated backend stores, open for tests to inspect and seed."""

    chats: dict[str, ChatRecord] = field(default_factory=dict)
    # (chat id, message id) -> is upvoted
    votes: dict[tuple[str, str], bool] = field(default_factory=dict)
    buckets: dict[str, dict[str, Any]] = field(default_factory=dict)
    # the jobs run_job created, oldest first
    jobs: list[dict[str, Any]] = field(default_factory=list)
    tables: list[dict[str, Any]] = field(
        default_factory=lambda: [
            {
                "id": "in.c-main.customers",
                "name": "customers",
                "bucket": "in.c-main",
                "rowsCount": 1200,
            },
            {"id": "in.c-main.orders", "name": "orders", "bucket": "in.c-main", "rowsCount": 5400},
            {
                "id": "out.c-reports.daily_revenue",
                "name": "daily_revenue",
                "bucket": "out.c-reports",
                "rowsCount": 365,
            },
        ]
    )
    project_id: str = "1234"
    custom_instructions: str | None = None
    settings_created: datetime = field(default_factory=lambda: datetime.now(UTC))
    settings_updated: datetime = field(default_factory=lambda: datetime.now(UTC))
    # user id -> {"customInstructions": ..., "toolPermissions": {...}, "updatedAt": datetime}
    user_settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    messages_limit: int = 100
    # user id -> user messages sent
    messages_used: dict[str, int] = field(default_factory=dict)
    requests: list[RequestRecord] = field(default_factory=list)
    _last_created: datetime | None = None

    def now_for_new_chat(self) -> datetime:
        """A creation time strictly after every earlier chat's, so cursors are unambiguous."""
        now = datetime.now(UTC)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)  # JS dates hold ms
        if self._last_created is not None and now <= self._last_created:
            now = self._last_created + timedelta(milliseconds=1)
        self._last_created = now
        return now

    def tool_permission(self, user_id: str, tool_name: str) -> str:
        """``always_allow``, ``always_ask`` or ``blocked`` for this user's tool."""
        perms: dict[str, str] = self.user_settings.get(user_id, {}).get("toolPermissions", {})
        return perms.get(tool_name, "always_ask")

    def chats_of(self, user_id: str) -> list[ChatRecord]:
        """The user's chats, newest first."""
        mine = [c for c in self.chats.values() if c.user_id == user_id]
        return sorted(mine, key=lambda c: c.created_at, reverse=True)
