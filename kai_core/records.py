"""What the log stores: records in, stored events out, and the record type names.

A :class:`LogRecord` is what a writer hands to :meth:`EventLog.append`; a
:class:`StoredEvent` is the same record read back, with its ``seq`` (the
log position) and its ``ts`` filled in.

``origin="server"`` records are wire chunks: ``type`` is the chunk's wire
type and ``body`` the payload exactly as received. ``origin="client"``
records are facts of this side; their type names are the constants below.
"""

from __future__ import annotations

from typing import Final, Literal, TypeAlias

import msgspec

__all__ = [
    "APPROVAL",
    "CANCELLED",
    "CLIENT_RECORD_TYPES",
    "DELETE_CHAT",
    "IMPORTED_MESSAGE",
    "RESUME",
    "STREAM_ERROR",
    "USER_MESSAGE",
    "VOTE",
    "LogRecord",
    "Origin",
    "StoredEvent",
]

Origin: TypeAlias = Literal["server", "client"]

USER_MESSAGE: Final = "user-message"
"""``{"message": <UI user message>, "server": <base url>, "backend": str|null}``, before the request leaves."""
APPROVAL: Final = "approval"
"""``{"approval_id", "tool_call_id", "tool_name", "approved", "reason", "decided_by", "transport"}``."""
VOTE: Final = "vote"
"""``{"message_id", "type": "up"|"down"}``."""
DELETE_CHAT: Final = "delete-chat"
"""``{}``: the chat was deleted on the server (the local copy stays until ``forget``)."""
RESUME: Final = "resume"
"""``{"skipped": n}``: a resumed stream; n chunks were skipped as already delivered."""
CANCELLED: Final = "cancelled"
"""``{"events_delivered": n}``: the caller stopped reading the answer."""
STREAM_ERROR: Final = "stream-error"
"""``{"code": str|null, "message": str}``: the transport failed."""
IMPORTED_MESSAGE: Final = "imported-message"
"""``{"message": <UI message as GET /api/chat returned it>, "title"?: str}``."""

CLIENT_RECORD_TYPES: Final[frozenset[str]] = frozenset(
    {
        USER_MESSAGE,
        APPROVAL,
        VOTE,
        DELETE_CHAT,
        RESUME,
        CANCELLED,
        STREAM_ERROR,
        IMPORTED_MESSAGE,
    }
)
"""Every client-side record type this version writes (readers keep unknown ones)."""


# gc=False (here and below): text, bytes and numbers form no reference cycle, and
# untracked records cost the garbage collector nothing (a burst holds thousands).
class LogRecord(msgspec.Struct, frozen=True, gc=False):
    """One record to append.

    :param chat_id: the chat it belongs to.
    :param turn: the request/response exchange it belongs to (``uuid4().hex``).
    :param origin: ``"server"`` for a wire chunk, ``"client"`` for our own facts.
    :param type: the chunk's wire type, or a client record type (``USER_MESSAGE``, ...).
    :param body: exact JSON text (UTF-8); a server chunk's payload exactly as received.
    :param ts: seconds since the epoch; None means "now" at append time.
    """

    chat_id: str
    turn: str
    origin: Origin
    type: str
    body: bytes
    ts: float | None = None


class StoredEvent(msgspec.Struct, frozen=True, gc=False):
    """A record as the log holds it: ``seq`` is its position, ``ts`` is always set."""

    seq: int
    chat_id: str
    turn: str
    ts: float
    origin: Origin
    type: str
    body: bytes
