"""Fold a chunk stream into the assistant's UI message, and into events.

:class:`MessageAssembler` does what the AI SDK's own client does with a UI
message stream (``processUIMessageStream``): it builds the message's parts
(text, reasoning, step starts, tool parts with their states and approvals,
sources, files, data parts replaced by id) and merges metadata. At the same
time it maps each chunk to the events of :mod:`kai_core.events`, filling in
what the wire leaves out (the tool name of an output chunk, the usage totals
on finish).

Every chunk yields at least one event, as kai-client yielded one per chunk:
chunks that carry nothing new for the caller (``start``, ``text-start``,
``text-end``, ``reasoning-start``/``-end``, ``finish-step``,
``tool-input-delta``) come out as :class:`UnknownEvent` with the chunk's JSON,
which is what kai-client made of them. (On kai-agent, a tool that waits adds
a :class:`ToolApprovalRequestEvent` after its ``tool-input-available``.)

It also offers the API of kai-client's ``SSEStreamParser``
(``process_event``, ``text``, ``tool_calls``, ``finished``, ...), so code
written against that keeps working, also when it feeds events built by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Final

import msgspec

from . import chunks as c
from ._parts import tool_name_of
from .events import (
    AbortEvent,
    DataEvent,
    ErrorEvent,
    Event,
    FileEvent,
    FinishEvent,
    MessageMetadataEvent,
    ReasoningEvent,
    SourceEvent,
    StepStartEvent,
    TextEvent,
    ToolApprovalRequestEvent,
    ToolCallEvent,
    ToolInputErrorEvent,
    ToolOutputDeniedEvent,
    ToolOutputErrorEvent,
    UnknownEvent,
    UsageEvent,
    UsageInfo,
)

__all__ = ["MessageAssembler", "SSEStreamParser", "merge_metadata", "parse_sse_event"]

# Events of the hot paths are copies of a template with the fields changed:
# ``msgspec.structs.replace`` is a C call, several times faster than calling
# the class (whose metaclass accepts kai-client's keywords, in Python).
_replace: Final = msgspec.structs.replace
_TEXT: Final = TextEvent(text="", state="streaming")
# (Called through the events' metaclass, which takes kai-client's keywords, a class
# costs ~1 µs per event; these come once or a few times per step.)
_STEP_START: Final = StepStartEvent()
_TOOL_CALL: Final = ToolCallEvent(tool_call_id="", state="")
_USAGE: Final = UsageEvent(usage=UsageInfo())
_NO_USAGE: Final = UsageInfo()
_REASONING: Final = ReasoningEvent(text="")
_PROTOCOL: Final = UnknownEvent(type="")
_LEGACY_TEXT_ID: Final = ""  # the text part of ``text`` chunks and id-less deltas
_BLOCK: Final = 1024  # the deltas a _TextPart joins into one string
_TERMINAL_TOOL_STATES = frozenset({"output-available", "output-error", "output-denied"})


class _TextPart:
    """A text or reasoning part whose text grows by deltas.

    Deltas are small strings (a few words); every 1,024 of them are joined
    into one, so a long answer costs about its length in memory rather than
    a Python object per delta, and joining stays linear.
    """

    __slots__ = ("kind", "blocks", "pieces", "state", "provider_metadata")

    def __init__(self, kind: str, provider_metadata: Any = None, text: str = "") -> None:
        self.kind = kind
        self.blocks: list[str] = []
        self.pieces: list[str] = [text] if text else []
        self.state = "streaming"
        self.provider_metadata = provider_metadata

    def add(self, delta: str) -> None:
        pieces = self.pieces
        pieces.append(delta)
        if len(pieces) >= _BLOCK:  # (inlined in MessageAssembler._text_delta)
            self.blocks.append("".join(pieces))
            pieces.clear()

    @property
    def text(self) -> str:
        return "".join(self.blocks) + "".join(self.pieces)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.kind, "text": self.text, "state": self.state}
        if self.provider_metadata is not None:
            out["providerMetadata"] = self.provider_metadata
        return out


def merge_metadata(base: Any, update: Any) -> Any:
    """Deep-merge ``update`` into ``base`` as the SDK merges message metadata."""
    if isinstance(base, dict) and isinstance(update, dict):
        merged = dict(base)
        for key, value in update.items():
            merged[key] = merge_metadata(merged.get(key), value)
        return merged
    return update if update is not None else base


def _wire_part(part: Any) -> dict[str, Any]:
    return part.to_dict() if isinstance(part, _TextPart) else dict(part)


class MessageAssembler:
    """Builds one assistant UI message from its chunks and maps chunks to events.

    :param message: an existing assistant message (a UI message dict, e.g. from
        ``get_chat``) that an approval continuation will extend: when a ``start``
        chunk repeats its id, new parts are appended to it.
    :param agent_waiting: kai-agent only: ``agent_waiting(tool_name)`` is true when
        that tool will wait for approval; its ``tool-input-available`` then also
        yields a :class:`ToolApprovalRequestEvent` with ``transport="agent"``.
    """

    def __init__(
        self,
        message: dict[str, Any] | None = None,
        *,
        agent_waiting: Callable[[str], bool] | None = None,
    ) -> None:
        self._agent_waiting = agent_waiting
        self._seed = message
        self.reset()

    # -- state ---------------------------------------------------------------

    def reset(self) -> None:
        """Forget everything (back to the message given at construction, if any)."""
        message = self._seed
        self.message_id: str | None = message.get("id") if message else None
        self._parts: list[Any] = []
        self._tool_parts: dict[str, dict[str, Any]] = {}
        self._metadata: Any = message.get("metadata") if message else None
        if message:
            for part in message.get("parts", []):
                part = dict(part)
                self._parts.append(part)
                call_id = part.get("toolCallId")
                if isinstance(call_id, str):
                    self._tool_parts[call_id] = part
        self._active_text: dict[str, _TextPart] = {}
        self._active_reasoning: dict[str, _TextPart] = {}
        self._tool_input_text: dict[str, list[str]] = {}
        self._data_parts: dict[tuple[str, str], dict[str, Any]] = {}
        self._tool_calls: dict[str, ToolCallEvent] = {}
        self._pending: dict[str, ToolApprovalRequestEvent] = {}
        self._usage = [0, 0, 0, 0, 0, 0]
        self._usage_seen = False  # a usage part or field arrived (else FinishEvent.usage is None)
        self._usage_total_given = False
        self._last_chunk: Any = None
        self.finished = False
        self.finish_reason: str | None = None
        self.error: str | None = None
        self.aborted = False
        self.abort_reason: str | None = None

    # -- public API ----------------------------------------------------------

    def feed(self, chunk: c.Chunk) -> list[Event]:
        """Fold one chunk into the message; return the events it maps to."""
        self._last_chunk = chunk
        return _HANDLERS[type(chunk)](self, chunk)

    def feed_into(self, chunks: Iterable[c.Chunk], events: list[Event]) -> None:
        """Fold ``chunks`` in order, adding their events to ``events``: what
        :meth:`feed` does for each, in one call (a stream folds a read's chunks so)."""
        handlers = _HANDLERS
        active = self._active_text
        add = events.append
        chunk = None
        for chunk in chunks:
            if type(chunk) is c.TextDeltaChunk:
                # The most frequent chunk, to a part that is open: _text_delta inlined.
                part = active.get(chunk.id)  # type: ignore[arg-type]
                if part is not None:
                    delta = chunk.delta
                    pieces = part.pieces
                    pieces.append(delta)
                    if len(pieces) >= _BLOCK:
                        part.blocks.append("".join(pieces))
                        pieces.clear()
                    add(_replace(_TEXT, text=delta, chunk=chunk))
                    continue
            self._last_chunk = chunk
            events.extend(handlers[type(chunk)](self, chunk))
            active = self._active_text  # a new message (``start``) replaces it
        if chunk is not None:
            self._last_chunk = chunk

    def process_event(self, event: Event) -> None:
        """kai-client's ``SSEStreamParser.process_event``: fold one event.

        An event from a kai stream folds the wire chunk it came from (events of
        the chunk just fed, a chunk can yield two, are not folded twice). An
        event built by hand, or taken from another source, is folded from its
        fields alone: text, tool calls, usage, finish, error and abort.
        """
        chunk = event.chunk
        if chunk is None:
            self._fold_event(event)
        elif chunk is not self._last_chunk:
            self.feed(chunk)

    def _fold_event(self, event: Event) -> None:
        """Fold an event that has no wire chunk (kai-client's rules, plus the parts)."""
        self._last_chunk = None
        if isinstance(event, (TextEvent, ReasoningEvent)):
            active = self._active_text if event.type == "text" else self._active_reasoning
            key = getattr(event, "id", None) or _LEGACY_TEXT_ID
            self._open_part(active, event.type, key).add(event.text)
        elif isinstance(event, StepStartEvent):
            self._parts.append({"type": "step-start"})
        elif isinstance(event, ToolCallEvent):
            part = self._tool_part(event.tool_call_id, event.tool_name, event.dynamic)
            part["state"] = event.state
            for key in ("input", "output", "approval"):
                if getattr(event, key) is not None:
                    part[key] = getattr(event, key)
            self._tool_calls[event.tool_call_id] = event
            if event.state in _TERMINAL_TOOL_STATES:
                self._settle(event.tool_call_id)
        elif isinstance(event, ToolApprovalRequestEvent):
            self._pending[event.tool_call_id] = event
        elif isinstance(event, (ToolOutputErrorEvent, ToolInputErrorEvent, ToolOutputDeniedEvent)):
            self._settle(event.tool_call_id)
        elif isinstance(event, UsageEvent):
            self._add_usage(event.usage)
        elif isinstance(event, FinishEvent):
            self.finished = True
            self.finish_reason = event.finish_reason
            if event.usage is not None:
                self._add_usage(event.usage)
        elif isinstance(event, ErrorEvent):
            self.error = event.message
        elif isinstance(event, AbortEvent):
            self.aborted = True
            self.abort_reason = event.reason

    def tool_name(self, tool_call_id: str) -> str | None:
        """The name of the tool behind ``tool_call_id``, if the message has that call."""
        part = self._tool_parts.get(tool_call_id)
        if part is None:
            return None
        return tool_name_of(part)

    @property
    def message(self) -> dict[str, Any]:
        """The assistant UI message as the SDK's client would hold it."""
        out: dict[str, Any] = {
            "id": self.message_id,
            "role": "assistant",
            "parts": [_wire_part(p) for p in self._parts],
        }
        if self._metadata is not None:
            out["metadata"] = self._metadata
        return out

    @property
    def parts(self) -> list[dict[str, Any]]:
        """The message's parts (a copy)."""
        return [_wire_part(p) for p in self._parts]

    @property
    def metadata(self) -> Any:
        """The message metadata merged so far."""
        return self._metadata

    @property
    def text(self) -> str:
        """All answer text received by this assembler, concatenated (the text
        of a message it was seeded with is not included)."""
        return "".join(p.text for p in self._parts if type(p) is _TextPart and p.kind == "text")

    @property
    def tool_calls(self) -> dict[str, ToolCallEvent]:
        """The latest :class:`ToolCallEvent` of each tool call, by id."""
        return dict(self._tool_calls)

    @property
    def pending_approvals(self) -> list[ToolApprovalRequestEvent]:
        """Approval requests whose tool has not produced an outcome yet."""
        return list(self._pending.values())

    @property
    def usage(self) -> UsageInfo:
        """Token usage summed over the steps seen."""
        p, comp, total, cr, cw, r = self._usage
        return UsageInfo(
            prompt_tokens=p,
            completion_tokens=comp,
            total_tokens=total if self._usage_total_given else p + comp,
            cache_read_tokens=cr,
            cache_write_tokens=cw,
            reasoning_tokens=r,
        )

    @property
    def prompt_tokens(self) -> int:
        """Prompt tokens summed over steps."""
        return self._usage[0]

    @property
    def completion_tokens(self) -> int:
        """Completion tokens summed over steps."""
        return self._usage[1]

    @property
    def total_tokens(self) -> int:
        """Total tokens (the server's figure when it sends one, else prompt + completion)."""
        return self.usage.total_tokens

    # -- chunk handlers --------------------------------------------------------

    def _start(self, chunk: c.StartChunk) -> list[Event]:
        if chunk.message_id is not None and chunk.message_id != self.message_id:
            if self._parts and self.message_id is not None:
                # A different message: start afresh, as the SDK does.
                self._seed = None
                self.reset()
                self._last_chunk = chunk
            self.message_id = chunk.message_id
        if chunk.message_metadata is not None:
            self._metadata = merge_metadata(self._metadata, chunk.message_metadata)
        return [_protocol_event(chunk)]

    def _start_step(self, chunk: c.StartStepChunk | c.LegacyStepStartChunk) -> list[Event]:
        self._parts.append({"type": "step-start"})
        return [_replace(_STEP_START, chunk=chunk)]

    def _finish_step(self, chunk: c.FinishStepChunk) -> list[Event]:
        self._active_text.clear()
        self._active_reasoning.clear()
        return [_protocol_event(chunk)]

    def _open_part(self, active: dict[str, _TextPart], kind: str, key: str) -> _TextPart:
        """The open text or reasoning part ``key``; opened now if it is not (a
        delta without its start keeps its text)."""
        part = active.get(key)
        if part is None:
            part = active[key] = _TextPart(kind)
            self._parts.append(part)
        return part

    def _text_start(self, chunk: c.TextStartChunk) -> list[Event]:
        part = _TextPart("text", chunk.provider_metadata)
        self._active_text[chunk.id] = part
        self._parts.append(part)
        return [_protocol_event(chunk)]

    def _text_delta(self, chunk: c.TextDeltaChunk) -> list[Event]:
        # The most frequent chunk: _open_part and _TextPart.add inlined (two calls less).
        key = chunk.id
        active = self._active_text
        if key is None:  # sloppy server: the part that is open, else one of its own
            key = next(reversed(active), _LEGACY_TEXT_ID)
        part = active.get(key)
        if part is None:
            part = self._open_part(active, "text", key)
        delta = chunk.delta
        pieces = part.pieces
        pieces.append(delta)
        if len(pieces) >= _BLOCK:
            part.blocks.append("".join(pieces))
            pieces.clear()
        return [_replace(_TEXT, text=delta, chunk=chunk)]

    def _legacy_text(self, chunk: c.LegacyTextChunk) -> list[Event]:
        self._open_part(self._active_text, "text", _LEGACY_TEXT_ID).add(chunk.text)
        return [TextEvent(text=chunk.text, state=chunk.state, chunk=chunk)]

    def _text_end(self, chunk: c.TextEndChunk) -> list[Event]:
        part = self._active_text.pop(chunk.id, None)
        if part is not None:
            part.state = "done"
            if chunk.provider_metadata is not None:
                part.provider_metadata = chunk.provider_metadata
        return [_protocol_event(chunk)]

    def _reasoning_start(self, chunk: c.ReasoningStartChunk) -> list[Event]:
        part = _TextPart("reasoning", chunk.provider_metadata)
        self._active_reasoning[chunk.id] = part
        self._parts.append(part)
        return [_protocol_event(chunk)]

    def _reasoning_delta(self, chunk: c.ReasoningDeltaChunk) -> list[Event]:
        self._open_part(self._active_reasoning, "reasoning", chunk.id).add(chunk.delta)
        return [_replace(_REASONING, text=chunk.delta, id=chunk.id, chunk=chunk)]

    def _reasoning_end(self, chunk: c.ReasoningEndChunk) -> list[Event]:
        part = self._active_reasoning.pop(chunk.id, None)
        if part is not None:
            part.state = "done"
        return [_protocol_event(chunk)]

    def _tool_part(
        self, tool_call_id: str, tool_name: str | None = None, dynamic: bool | None = None
    ) -> dict[str, Any]:
        part = self._tool_parts.get(tool_call_id)
        if part is None:
            if dynamic:
                part = {"type": "dynamic-tool", "toolName": tool_name, "toolCallId": tool_call_id}
            else:
                part = {"type": f"tool-{tool_name or 'unknown'}", "toolCallId": tool_call_id}
            self._tool_parts[tool_call_id] = part
            self._parts.append(part)
        return part

    @staticmethod
    def _copy_tool_fields(part: dict[str, Any], chunk: Any) -> None:
        if getattr(chunk, "provider_executed", None) is not None:
            part["providerExecuted"] = chunk.provider_executed
        if getattr(chunk, "title", None) is not None:
            part["title"] = chunk.title
        if getattr(chunk, "tool_metadata", None) is not None:
            part["toolMetadata"] = chunk.tool_metadata
        if getattr(chunk, "provider_metadata", None) is not None:
            part["callProviderMetadata"] = chunk.provider_metadata

    def _tool_event(self, part: dict[str, Any], chunk: Any, state: str) -> ToolCallEvent:
        event: ToolCallEvent = _replace(
            _TOOL_CALL,
            tool_call_id=part["toolCallId"],
            tool_name=tool_name_of(part),
            state=state,
            input=part.get("input"),
            output=part.get("output"),
            approval=part.get("approval"),
            dynamic=part["type"] == "dynamic-tool",
            preliminary=bool(part.get("preliminary")),
            chunk=chunk,
        )
        self._tool_calls[event.tool_call_id] = event
        return event

    def _tool_input_start(self, chunk: c.ToolInputStartChunk) -> list[Event]:
        part = self._tool_part(chunk.tool_call_id, chunk.tool_name, chunk.dynamic)
        part["state"] = "input-streaming"
        part["input"] = None
        self._copy_tool_fields(part, chunk)
        self._tool_input_text[chunk.tool_call_id] = []
        return [self._tool_event(part, chunk, "started")]

    def _tool_input_delta(self, chunk: c.ToolInputDeltaChunk) -> list[Event]:
        self._tool_input_text.setdefault(chunk.tool_call_id, []).append(chunk.input_text_delta)
        return [_protocol_event(chunk)]

    def _legacy_tool_call(self, chunk: c.LegacyToolCallChunk) -> list[Event]:
        part = self._tool_part(chunk.tool_call_id, chunk.tool_name)
        part["state"] = chunk.state
        for key in ("input", "output", "approval"):
            value = getattr(chunk, key)
            if value is not None:
                part[key] = value
        if chunk.state in _TERMINAL_TOOL_STATES:
            self._settle(chunk.tool_call_id)
        event = ToolCallEvent(
            tool_call_id=chunk.tool_call_id,
            tool_name=chunk.tool_name or tool_name_of(part),
            state=chunk.state,
            input=chunk.input,
            output=chunk.output,
            approval=chunk.approval if isinstance(chunk.approval, dict) else None,
            chunk=chunk,
        )
        self._tool_calls[event.tool_call_id] = event
        return [event]

    def partial_input(self, tool_call_id: str) -> str:
        """The tool input text streamed so far (for previews; not necessarily JSON yet)."""
        return "".join(self._tool_input_text.get(tool_call_id, ()))

    def _tool_input_available(self, chunk: c.ToolInputAvailableChunk) -> list[Event]:
        part = self._tool_part(chunk.tool_call_id, chunk.tool_name, chunk.dynamic)
        part["state"] = "input-available"
        part["input"] = chunk.input
        self._copy_tool_fields(part, chunk)
        self._tool_input_text.pop(chunk.tool_call_id, None)
        event = self._tool_event(part, chunk, "input-available")
        if self._agent_waiting is not None and self._agent_waiting(chunk.tool_name):
            request = ToolApprovalRequestEvent(
                approval_id=chunk.tool_call_id,
                tool_call_id=chunk.tool_call_id,
                tool_name=chunk.tool_name,
                input=chunk.input,
                transport="agent",
                chunk=chunk,
            )
            self._pending[chunk.tool_call_id] = request
            return [event, request]
        return [event]

    def _tool_input_error(self, chunk: c.ToolInputErrorChunk) -> list[Event]:
        part = self._tool_part(chunk.tool_call_id, chunk.tool_name, chunk.dynamic)
        part["state"] = "output-error"
        part["input"] = chunk.input
        part["errorText"] = chunk.error_text
        self._copy_tool_fields(part, chunk)
        self._tool_input_text.pop(chunk.tool_call_id, None)
        return [
            ToolInputErrorEvent(
                tool_call_id=chunk.tool_call_id,
                tool_name=chunk.tool_name,
                input=chunk.input,
                error_text=chunk.error_text,
                chunk=chunk,
            )
        ]

    def _tool_approval_request(self, chunk: c.ToolApprovalRequestChunk) -> list[Event]:
        part = self._tool_part(chunk.tool_call_id)
        approval: dict[str, Any] = {"id": chunk.approval_id}
        if chunk.approval_descriptor is not None:
            approval["descriptor"] = chunk.approval_descriptor
        if chunk.input_schema_input is not None:
            approval["inputSchemaInput"] = chunk.input_schema_input
        if chunk.signature is not None:
            approval["signature"] = chunk.signature
        part["state"] = "approval-requested"
        part["approval"] = approval
        request = ToolApprovalRequestEvent(
            approval_id=chunk.approval_id,
            tool_call_id=chunk.tool_call_id,
            tool_name=tool_name_of(part),
            input=part.get("input"),
            approval=dict(approval),
            transport="v6",
            chunk=chunk,
        )
        self._pending[chunk.tool_call_id] = request
        return [request]

    def _settle(self, tool_call_id: str) -> None:
        self._pending.pop(tool_call_id, None)

    def _tool_output_available(self, chunk: c.ToolOutputAvailableChunk) -> list[Event]:
        part = self._tool_part(chunk.tool_call_id, dynamic=chunk.dynamic)
        part["state"] = "output-available"
        part["output"] = chunk.output
        if chunk.preliminary:
            part["preliminary"] = True
        else:
            part.pop("preliminary", None)
        if chunk.provider_metadata is not None:
            part["resultProviderMetadata"] = chunk.provider_metadata
        approval = part.get("approval")
        if isinstance(approval, dict) and "approved" not in approval:
            part["approval"] = {**approval, "approved": True}
        self._settle(chunk.tool_call_id)
        return [self._tool_event(part, chunk, "output-available")]

    def _tool_output_error(self, chunk: c.ToolOutputErrorChunk) -> list[Event]:
        part = self._tool_part(chunk.tool_call_id, dynamic=chunk.dynamic)
        error_text = chunk.error_text if chunk.error_text is not None else "Unknown error"
        part["state"] = "output-error"
        part["errorText"] = error_text
        self._settle(chunk.tool_call_id)
        return [
            ToolOutputErrorEvent(
                tool_call_id=chunk.tool_call_id,
                tool_name=tool_name_of(part),
                error_text=error_text,
                chunk=chunk,
            )
        ]

    def _tool_output_denied(self, chunk: c.ToolOutputDeniedChunk) -> list[Event]:
        part = self._tool_part(chunk.tool_call_id)
        part["state"] = "output-denied"
        approval = part.get("approval")
        if isinstance(approval, dict) and "approved" not in approval:
            part["approval"] = {**approval, "approved": False}
        self._settle(chunk.tool_call_id)
        return [
            ToolOutputDeniedEvent(
                tool_call_id=chunk.tool_call_id, tool_name=tool_name_of(part), chunk=chunk
            )
        ]

    def _source_url(self, chunk: c.SourceUrlChunk) -> list[Event]:
        self._parts.append(msgspec.to_builtins(chunk) | {"type": "source-url"})
        return [
            SourceEvent(
                source_type="url",
                source_id=chunk.source_id,
                url=chunk.url,
                title=chunk.title,
                chunk=chunk,
            )
        ]

    def _source_document(self, chunk: c.SourceDocumentChunk) -> list[Event]:
        self._parts.append(msgspec.to_builtins(chunk) | {"type": "source-document"})
        return [
            SourceEvent(
                source_type="document",
                source_id=chunk.source_id,
                title=chunk.title,
                media_type=chunk.media_type,
                filename=chunk.filename,
                chunk=chunk,
            )
        ]

    def _file(self, chunk: c.FileChunk) -> list[Event]:
        self._parts.append(msgspec.to_builtins(chunk) | {"type": "file"})
        return [FileEvent(url=chunk.url, media_type=chunk.media_type, chunk=chunk)]

    def _data(self, chunk: c.DataChunk) -> list[Event]:
        if not chunk.transient:
            key = (chunk.type, chunk.id) if chunk.id is not None else None
            existing = self._data_parts.get(key) if key else None
            if existing is not None:
                existing["data"] = chunk.data
            else:
                part: dict[str, Any] = {"type": chunk.type}
                if chunk.id is not None:
                    part["id"] = chunk.id
                part["data"] = chunk.data
                self._parts.append(part)
                if key:
                    self._data_parts[key] = part
        if chunk.type == "data-usage":
            # An empty or odd ``data`` counts nothing, but is still a usage event.
            usage = _usage_from(chunk.data if isinstance(chunk.data, dict) else {})
            self._add_usage(usage)
            return [_replace(_USAGE, usage=usage, chunk=chunk)]
        return [
            DataEvent(
                type=chunk.type,
                data=chunk.data,
                id=chunk.id,
                transient=bool(chunk.transient),
                chunk=chunk,
            )
        ]

    def _add_usage(self, usage: UsageInfo) -> None:
        self._usage_seen = True
        acc = self._usage
        acc[0] += usage.prompt_tokens
        acc[1] += usage.completion_tokens
        acc[2] += usage.total_tokens or (usage.prompt_tokens + usage.completion_tokens)
        self._usage_total_given |= bool(usage.total_tokens)
        acc[3] += usage.cache_read_tokens
        acc[4] += usage.cache_write_tokens
        acc[5] += usage.reasoning_tokens

    def _finish(self, chunk: c.FinishChunk) -> list[Event]:
        self.finished = True
        # kai-client's default when a server leaves the reason out.
        self.finish_reason = chunk.finish_reason or "stop"
        if isinstance(chunk.usage, dict):  # older servers: the counts on the finish chunk
            self._add_usage(_usage_from(chunk.usage))
        if chunk.message_metadata is not None:
            self._metadata = merge_metadata(self._metadata, chunk.message_metadata)
        self._active_text.clear()
        self._active_reasoning.clear()
        return [
            FinishEvent(
                finish_reason=self.finish_reason,
                usage=self.usage if self._usage_seen else None,
                message_id=self.message_id,
                chunk=chunk,
            )
        ]

    def _error(self, chunk: c.ErrorChunk) -> list[Event]:
        message = chunk.error_text or chunk.message or "Unknown error"
        self.error = message
        return [ErrorEvent(message=message, code=chunk.code, chunk=chunk)]

    def _abort(self, chunk: c.AbortChunk) -> list[Event]:
        self.aborted = True
        self.abort_reason = chunk.reason
        return [AbortEvent(reason=chunk.reason, chunk=chunk)]

    def _message_metadata(self, chunk: c.MessageMetadataChunk) -> list[Event]:
        self._metadata = merge_metadata(self._metadata, chunk.message_metadata)
        return [MessageMetadataEvent(metadata=chunk.message_metadata, chunk=chunk)]

    def _unknown(self, chunk: c.UnknownChunk) -> list[Event]:
        try:
            data = chunk.data
        except msgspec.DecodeError:
            data = {}
        return [UnknownEvent(type=chunk.type, data=data, chunk=chunk)]


# One handler per chunk class, shared by every assembler: a per-instance dict
# of bound methods cost a dict per turn (replay builds one assembler per
# turn) and made each assembler a reference cycle only the GC could free.
_HANDLERS: Final[dict[type, Callable[[MessageAssembler, Any], list[Event]]]] = {
    c.TextDeltaChunk: MessageAssembler._text_delta,
    c.TextStartChunk: MessageAssembler._text_start,
    c.TextEndChunk: MessageAssembler._text_end,
    c.ReasoningStartChunk: MessageAssembler._reasoning_start,
    c.ReasoningDeltaChunk: MessageAssembler._reasoning_delta,
    c.ReasoningEndChunk: MessageAssembler._reasoning_end,
    c.StartChunk: MessageAssembler._start,
    c.StartStepChunk: MessageAssembler._start_step,
    c.FinishStepChunk: MessageAssembler._finish_step,
    c.ToolInputStartChunk: MessageAssembler._tool_input_start,
    c.ToolInputDeltaChunk: MessageAssembler._tool_input_delta,
    c.ToolInputAvailableChunk: MessageAssembler._tool_input_available,
    c.ToolInputErrorChunk: MessageAssembler._tool_input_error,
    c.ToolApprovalRequestChunk: MessageAssembler._tool_approval_request,
    c.ToolOutputAvailableChunk: MessageAssembler._tool_output_available,
    c.ToolOutputErrorChunk: MessageAssembler._tool_output_error,
    c.ToolOutputDeniedChunk: MessageAssembler._tool_output_denied,
    c.SourceUrlChunk: MessageAssembler._source_url,
    c.SourceDocumentChunk: MessageAssembler._source_document,
    c.FileChunk: MessageAssembler._file,
    c.DataChunk: MessageAssembler._data,
    c.FinishChunk: MessageAssembler._finish,
    c.ErrorChunk: MessageAssembler._error,
    c.AbortChunk: MessageAssembler._abort,
    c.MessageMetadataChunk: MessageAssembler._message_metadata,
    c.UnknownChunk: MessageAssembler._unknown,
    c.LegacyTextChunk: MessageAssembler._legacy_text,
    c.LegacyStepStartChunk: MessageAssembler._start_step,
    c.LegacyToolCallChunk: MessageAssembler._legacy_tool_call,
}

SSEStreamParser = MessageAssembler
"""kai-client's name for the stateful stream parser."""


def _protocol_event(chunk: c.Chunk) -> Event:
    """The event of a chunk with nothing new for the caller: its JSON, as kai-client gave it."""
    data: dict[str, Any] = msgspec.to_builtins(chunk)
    return _replace(_PROTOCOL, type=chunk.type, data=data, chunk=chunk)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _usage_from(data: dict[str, Any]) -> UsageInfo:
    info: UsageInfo = _replace(
        _NO_USAGE,
        prompt_tokens=_int(data.get("promptTokens")),
        completion_tokens=_int(data.get("completionTokens")),
        total_tokens=_int(data.get("totalTokens")),
        cache_read_tokens=_int(data.get("cacheReadTokens")),
        cache_write_tokens=_int(data.get("cacheWriteTokens")),
        reasoning_tokens=_int(data.get("reasoningTokens")),
    )
    return info


def parse_sse_event(data: dict[str, Any] | str | bytes) -> Event:
    """kai-client's ``parse_sse_event``: one chunk → its event.

    :param data: the chunk as a decoded JSON object (kai-client's argument),
        or its JSON text, or a whole SSE line (``data: {...}``).
    :returns: the chunk's event, as :meth:`MessageAssembler.feed` on a fresh
        assembler gives it: every format above (current, older and sloppy
        ones) is read; a type it does not know is an :class:`UnknownEvent`.
    :raises KaiStreamError: when the payload is not a JSON object (or has a
        ``type`` that is not a string, or a known type with wrong fields).
    """
    if isinstance(data, dict):
        payload: bytes | str = _json_encoder.encode(data)
    else:
        payload = data.strip()
        prefix: Any = b"data:" if isinstance(payload, bytes) else "data:"
        if payload.startswith(prefix):
            payload = payload[5:].lstrip()
    return MessageAssembler().feed(c.decode_chunk(payload))[0]


_json_encoder: Final = msgspec.json.Encoder()
