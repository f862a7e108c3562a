"""Read-side Structs: what the projections return (the CLI prints them as JSON)."""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["LocalChat", "LocalChatDetail", "LocalMessage", "LocalToolCall", "LogStats"]


class LocalChat(msgspec.Struct, frozen=True):
    """A chat as the log knows it (``history --local``).

    ``title`` is the server's when the chat was imported, else the first
    words the user sent. ``deleted_ts`` is set when the chat was deleted on
    the server (the local copy stays until ``forget``).
    """

    id: str
    title: str | None
    first_ts: float
    last_ts: float
    message_count: int
    prompt_tokens: int
    completion_tokens: int
    server: str | None = None
    backend: str | None = None
    deleted_ts: float | None = None
    last_seq: int = 0


class LocalMessage(msgspec.Struct, frozen=True):
    """One message: a user message as sent, or an assistant message as assembled.

    ``parts`` and ``metadata`` are the UI message's, exactly as
    :class:`~kai_core.assemble.MessageAssembler` builds them (or as the server
    returned them, for ``imported`` messages); ``text`` joins the text parts.
    """

    seq: int
    id: str
    chat_id: str
    role: str
    ts: float
    text: str
    parts: list[dict[str, Any]]
    metadata: Any = None
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    imported: bool = False


class LocalToolCall(msgspec.Struct, frozen=True):
    """A tool call, its input and outcome, and the approval decision if one was made."""

    chat_id: str
    tool_call_id: str
    message_id: str
    tool_name: str | None
    state: str | None
    input: Any = None
    output: Any = None
    error_text: str | None = None
    approval_id: str | None = None
    approved: bool | None = None
    decided_by: str | None = None
    reason: str | None = None


class LocalChatDetail(msgspec.Struct, frozen=True):
    """A chat with its messages (in order), tool calls and votes (message id -> up/down)."""

    chat: LocalChat
    messages: list[LocalMessage]
    tool_calls: list[LocalToolCall]
    votes: dict[str, str]


class LogStats(msgspec.Struct, frozen=True):
    """Counts and size of a log file."""

    path: str
    size_bytes: int
    events: int
    server_events: int
    client_events: int
    chats: int
    messages: int
    tool_calls: int
    first_ts: float | None
    last_ts: float | None
    last_seq: int
