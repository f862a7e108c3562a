"""The events a caller receives: kai-client's vocabulary, made complete.

Every wire chunk maps to one event (two for a kai-agent tool that waits for
approval; the table is in ``docs/events.md``). Events are frozen msgspec Structs; each has a ``type``
(the same strings kai-client uses: ``text``, ``tool-call``, ...) and
``chunk``, the chunk it came from. :func:`event_to_dict` gives the JSON shape
kai-client's ``--json-output`` prints (snake_case fields, ``null`` for absent
values), so scripts written for it keep working.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal, TypeAlias

import msgspec

from ._compat import KaiClientInit, ModelMethods
from .chunks import Chunk

__all__ = [
    "AbortEvent",
    "ApprovalDecisionEvent",
    "DataEvent",
    "ErrorEvent",
    "Event",
    "SSEEvent",
    "FileEvent",
    "FinishEvent",
    "MessageMetadataEvent",
    "ReasoningEvent",
    "SourceEvent",
    "StepStartEvent",
    "TextEvent",
    "ToolApprovalRequestEvent",
    "ToolCallEvent",
    "ToolInputErrorEvent",
    "ToolOutputDeniedEvent",
    "ToolOutputErrorEvent",
    "UnknownEvent",
    "UsageEvent",
    "UsageInfo",
    "event_to_dict",
    "event_to_json",
]

ToolCallState: TypeAlias = Literal["started", "input-available", "output-available"]
ApprovalTransport: TypeAlias = Literal["v6", "agent"]
DataType: TypeAlias = Literal["data-*"]
"""What type checkers see as :attr:`DataEvent.type` (at run time: the wire's ``data-<name>``)."""
UnknownType: TypeAlias = Literal[
    "start",
    "text-start",
    "text-end",
    "reasoning-start",
    "reasoning-end",
    "finish-step",
    "tool-input-delta",
    "unknown",
]
"""What type checkers see as :attr:`UnknownEvent.type`: the protocol chunks that bring
the caller nothing new, and ``"unknown"`` standing for any type this client does not
know (at run time: the wire's type)."""


class _Event(
    ModelMethods, msgspec.Struct, frozen=True, kw_only=True, gc=False, metaclass=KaiClientInit
):
    """Base of every event: ``chunk`` is the wire chunk the event came from (None
    for an event built by hand).

    Built as kai-client builds its events too: ``TextEvent(type="text",
    text="hi")``, ``ToolCallEvent(toolCallId=..., ...)``.
    """

    # Each event's ``type`` is a class attribute (no per-event storage, not
    # encoded as a field). Type checkers see it as a ``Literal`` field instead:
    # that is what makes ``if event.type == "text": event.text`` narrow the
    # :data:`Event` union, and ``TextEvent(type="text", ...)`` (kai-client's
    # spelling) check.
    chunk: Chunk | None = None


class UsageInfo(ModelMethods, msgspec.Struct, frozen=True, metaclass=KaiClientInit):
    """Token counts, from Kai's ``data-usage`` parts (summed over steps on finish).

    ``UsageInfo(promptTokens=1)`` (kai-client's aliases) works too.
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0


class TextEvent(_Event, frozen=True, kw_only=True):
    """A piece of the answer's text (one ``text-delta``)."""

    if TYPE_CHECKING:
        type: Literal["text"] = "text"
    else:
        type: ClassVar[str] = "text"
    text: str
    state: str | None = None


class ReasoningEvent(_Event, frozen=True, kw_only=True):
    """A piece of the model's reasoning (one ``reasoning-delta``)."""

    if TYPE_CHECKING:
        type: Literal["reasoning"] = "reasoning"
    else:
        type: ClassVar[str] = "reasoning"
    text: str
    id: str | None = None


class StepStartEvent(_Event, frozen=True, kw_only=True):
    """A new model step begins (``start-step``)."""

    if TYPE_CHECKING:
        type: Literal["step-start"] = "step-start"
    else:
        type: ClassVar[str] = "step-start"


class ToolCallEvent(_Event, frozen=True, kw_only=True):
    """A tool call changed state: ``started``, ``input-available`` or ``output-available``.

    ``tool_name`` is always set, also for output chunks (which carry no name on
    the wire): it is looked up by ``tool_call_id``.
    """

    if TYPE_CHECKING:
        type: Literal["tool-call"] = "tool-call"
    else:
        type: ClassVar[str] = "tool-call"
    tool_call_id: str
    tool_name: str | None = None
    state: str
    input: Any = None
    output: Any = None
    approval: dict[str, Any] | None = None
    dynamic: bool = False
    preliminary: bool = False


class ToolApprovalRequestEvent(_Event, frozen=True, kw_only=True):
    """A tool waits for the user's decision.

    ``transport`` says how to answer: ``"v6"`` (kai-assistant, or any
    ``tool-approval-request`` chunk): re-POST the assistant message with the
    part answered (:meth:`KaiClient.approve_tool`); ``"agent"`` (kai-agent):
    the stream stays open until :meth:`KaiClient.submit_approval` answers it;
    ``approval_id`` is then the tool call id.
    ``approval`` is the wire approval object to echo back (v6 only).
    """

    if TYPE_CHECKING:
        type: Literal["tool-approval-request"] = "tool-approval-request"
    else:
        type: ClassVar[str] = "tool-approval-request"
    approval_id: str
    tool_call_id: str
    tool_name: str | None = None
    input: Any = None
    approval: dict[str, Any] | None = None
    transport: ApprovalTransport = "v6"


class ToolOutputErrorEvent(_Event, frozen=True, kw_only=True):
    """A tool failed while running."""

    if TYPE_CHECKING:
        type: Literal["tool-output-error"] = "tool-output-error"
    else:
        type: ClassVar[str] = "tool-output-error"
    tool_call_id: str
    error_text: str
    tool_name: str | None = None


class ToolInputErrorEvent(_Event, frozen=True, kw_only=True):
    """The model called an unknown tool or gave input failing the tool's schema."""

    if TYPE_CHECKING:
        type: Literal["tool-input-error"] = "tool-input-error"
    else:
        type: ClassVar[str] = "tool-input-error"
    tool_call_id: str
    error_text: str
    tool_name: str | None = None
    input: Any = None


class ToolOutputDeniedEvent(_Event, frozen=True, kw_only=True):
    """The tool was denied by the user and did not run."""

    if TYPE_CHECKING:
        type: Literal["tool-output-denied"] = "tool-output-denied"
    else:
        type: ClassVar[str] = "tool-output-denied"
    tool_call_id: str
    tool_name: str | None = None


class SourceEvent(_Event, frozen=True, kw_only=True):
    """A source the answer cites: ``source_type`` is ``url`` or ``document``."""

    if TYPE_CHECKING:
        type: Literal["source"] = "source"
    else:
        type: ClassVar[str] = "source"
    source_type: str
    source_id: str
    url: str | None = None
    title: str | None = None
    media_type: str | None = None
    filename: str | None = None


class FileEvent(_Event, frozen=True, kw_only=True):
    """A generated file (often a ``data:`` URL)."""

    if TYPE_CHECKING:
        type: Literal["file"] = "file"
    else:
        type: ClassVar[str] = "file"
    url: str
    media_type: str


class UsageEvent(_Event, frozen=True, kw_only=True):
    """Token usage of one step (Kai's ``data-usage`` part)."""

    if TYPE_CHECKING:
        type: Literal["data-usage"] = "data-usage"
    else:
        type: ClassVar[str] = "data-usage"
    usage: UsageInfo


class DataEvent(_Event, frozen=True, kw_only=True):
    """A custom ``data-<name>`` part other than usage; ``type`` is the wire type."""

    if TYPE_CHECKING:
        # The wire type is any ``data-<name>``: a ``str`` here would stop
        # ``event.type == "text"`` from narrowing the union (a str could be
        # "text"), so type checkers see a marker literal. Test a data part with
        # ``isinstance(event, DataEvent)`` and :attr:`name`.
        def __init__(
            self,
            *,
            type: str,
            data: Any = None,
            id: str | None = None,
            transient: bool = False,
            chunk: Chunk | None = None,
        ) -> None: ...

        @property
        def type(self) -> DataType: ...
    else:
        type: str
    data: Any = None
    id: str | None = None
    transient: bool = False

    @property
    def name(self) -> str:
        """The part name after ``data-``."""
        return self.type[5:]


class FinishEvent(_Event, frozen=True, kw_only=True):
    """The answer is complete. ``usage`` sums the steps of this response."""

    if TYPE_CHECKING:
        type: Literal["finish"] = "finish"
    else:
        type: ClassVar[str] = "finish"
    finish_reason: str | None = None
    usage: UsageInfo | None = None
    message_id: str | None = None


class ErrorEvent(_Event, frozen=True, kw_only=True):
    """The server reported an error in the stream; ``message`` is its ``errorText``."""

    if TYPE_CHECKING:
        type: Literal["error"] = "error"
    else:
        type: ClassVar[str] = "error"
    message: str
    code: str | None = None


class AbortEvent(_Event, frozen=True, kw_only=True):
    """The server aborted the answer."""

    if TYPE_CHECKING:
        type: Literal["abort"] = "abort"
    else:
        type: ClassVar[str] = "abort"
    reason: str | None = None


class ApprovalDecisionEvent(_Event, frozen=True, kw_only=True):
    """A decision on a tool approval request, made on this side (not a wire chunk).

    ``decided_by`` names the policy plugin, ``user``, ``rule`` (a permission
    rule, whose text is ``rule``), ``server`` (Kai's own setting),
    ``auto-approve``, or ``no-terminal`` when nobody could be asked and the
    tool was rejected.
    """

    if TYPE_CHECKING:
        type: Literal["approval-decision"] = "approval-decision"
    else:
        type: ClassVar[str] = "approval-decision"
    approval_id: str
    tool_call_id: str
    tool_name: str | None = None
    approved: bool
    reason: str | None = None
    decided_by: str
    rule: str | None = None


class MessageMetadataEvent(_Event, frozen=True, kw_only=True):
    """Metadata for the message (merged into ``message.metadata``)."""

    if TYPE_CHECKING:
        type: Literal["message-metadata"] = "message-metadata"
    else:
        type: ClassVar[str] = "message-metadata"
    metadata: Any = None


class UnknownEvent(_Event, frozen=True, kw_only=True):
    """A chunk with no typed event; ``data`` is its JSON object, ``type`` its wire type.

    Either a type this client does not know (``type not in
    kai_core.chunks.KNOWN_CHUNK_TYPES``), or a protocol chunk that brings the
    caller nothing new (``start``, ``text-start``, ``text-end``,
    ``reasoning-start``, ``reasoning-end``, ``finish-step``,
    ``tool-input-delta``): kai-client yielded those as ``UnknownEvent`` too.
    """

    if TYPE_CHECKING:
        # As for DataEvent: the protocol chunks' types, and a marker for the
        # types this client does not know (test those with ``isinstance``).
        def __init__(
            self, *, type: str, data: dict[str, Any] = ..., chunk: Chunk | None = None
        ) -> None: ...

        @property
        def type(self) -> UnknownType: ...
    else:
        type: str
    data: dict[str, Any] = msgspec.field(default_factory=dict)


Event: TypeAlias = (
    TextEvent
    | ReasoningEvent
    | StepStartEvent
    | ToolCallEvent
    | ToolApprovalRequestEvent
    | ToolOutputErrorEvent
    | ToolInputErrorEvent
    | ToolOutputDeniedEvent
    | SourceEvent
    | FileEvent
    | UsageEvent
    | DataEvent
    | FinishEvent
    | ErrorEvent
    | AbortEvent
    | MessageMetadataEvent
    | ApprovalDecisionEvent
    | UnknownEvent
)
"""Any event a stream, a replay or an assembler yields."""

SSEEvent: TypeAlias = Event
"""kai-client's name for :data:`Event`."""

_fields_cache: dict[type, tuple[str, ...]] = {}
_json: Final = msgspec.json.Encoder()


def event_to_dict(event: Event) -> dict[str, Any]:
    """The event as kai-client's ``--json-output`` prints it: ``type`` first, no ``chunk``."""
    cls = type(event)
    names = _fields_cache.get(cls)
    if names is None:
        names = tuple(f for f in cls.__struct_fields__ if f not in ("chunk", "type"))
        _fields_cache[cls] = names
    out: dict[str, Any] = {"type": event.type}
    for name in names:
        out[name] = msgspec.to_builtins(getattr(event, name))
    return out


def event_to_json(event: Event) -> bytes:
    """:func:`event_to_dict` encoded as one line of compact JSON."""
    return _json.encode(event_to_dict(event))
