"""Every chunk of the AI SDK v6 UI message stream as a frozen msgspec Struct.

A chunk is one SSE ``data:`` payload. Known chunk types form a tagged union
on ``type``; field names are snake_case in Python and camelCase on the wire
(``rename="camel"``); optional fields default to None and are left out when
encoded, as the SDK leaves them out. Field order follows the SDK, so that
:func:`encode_chunk` writes the same bytes as the real server.

Two kinds of chunk sit outside the union because their ``type`` is open:

* :class:`DataChunk` for every ``data-<name>`` chunk (``data-usage`` included);
* :class:`UnknownChunk` for any other type we do not know (for example the
  chunk types ``ai`` v7 adds). It keeps the payload's exact JSON: a newer
  server never makes this client fail or drop anything.

Older Kai servers (the formats kai-client also read) sent ``text``,
``step-start`` and ``tool-call`` chunks: they decode into the ``Legacy*``
chunks, which become the same events as their current counterparts. Where a
server may be sloppy the fields are lenient (an ``error`` with ``message``
instead of ``errorText``, a ``text-delta`` without ``id``, a
``tool-output-error`` without ``errorText``, ``usage`` in ``finish``).

:func:`decode_chunk` is the one entry point; it raises
:class:`~kai_core.exceptions.KaiStreamError` for a payload that is not JSON,
not an object, or a known type with fields of the wrong type.
"""

from __future__ import annotations

from typing import Any, ClassVar, Final, Literal, TypeAlias

import msgspec

from .exceptions import KaiStreamError

__all__ = [
    "KNOWN_CHUNK_TYPES",
    "AbortChunk",
    "Chunk",
    "DataChunk",
    "ErrorChunk",
    "FileChunk",
    "FinishChunk",
    "FinishStepChunk",
    "LegacyStepStartChunk",
    "LegacyTextChunk",
    "LegacyToolCallChunk",
    "MessageMetadataChunk",
    "ReasoningDeltaChunk",
    "ReasoningEndChunk",
    "ReasoningStartChunk",
    "SourceDocumentChunk",
    "SourceUrlChunk",
    "StartChunk",
    "StartStepChunk",
    "TextDeltaChunk",
    "TextEndChunk",
    "TextStartChunk",
    "ToolApprovalRequestChunk",
    "ToolInputAvailableChunk",
    "ToolInputDeltaChunk",
    "ToolInputErrorChunk",
    "ToolInputStartChunk",
    "ToolOutputAvailableChunk",
    "ToolOutputDeniedChunk",
    "ToolOutputErrorChunk",
    "UnknownChunk",
    "decode_chunk",
    "encode_chunk",
]

FinishReason: TypeAlias = Literal[
    "stop", "length", "content-filter", "tool-calls", "error", "other"
]
JSON: TypeAlias = Any


class _Chunk(
    msgspec.Struct,
    frozen=True,
    rename="camel",
    omit_defaults=True,
    tag_field="type",
    gc=False,  # chunks never form reference cycles; untracked, they cost the GC nothing
):
    """Base of the tagged union; ``type`` is the class tag."""

    type: ClassVar[str]
    """The wire ``type`` of this chunk: its class's tag (set below for each class)."""


class StartChunk(_Chunk, frozen=True, tag="start"):
    """Opens the assistant message; an approval continuation repeats its id."""

    message_metadata: JSON | None = None
    message_id: str | None = None


class StartStepChunk(_Chunk, frozen=True, tag="start-step"):
    """A new model step begins."""


class FinishStepChunk(_Chunk, frozen=True, tag="finish-step"):
    """A model step ends. Not the end of the message."""


class TextStartChunk(_Chunk, frozen=True, tag="text-start"):
    """Opens a text part."""

    id: str
    provider_metadata: JSON | None = None


class TextDeltaChunk(_Chunk, frozen=True, tag="text-delta", kw_only=True):
    """Appends ``delta`` to the text part ``id`` (a delta without ``id`` goes
    to the text part that is open, as kai-client accepted it)."""

    id: str | None = None
    delta: str
    provider_metadata: JSON | None = None


class TextEndChunk(_Chunk, frozen=True, tag="text-end"):
    """Closes a text part (not sent after an error or abort)."""

    id: str
    provider_metadata: JSON | None = None


class ReasoningStartChunk(_Chunk, frozen=True, tag="reasoning-start"):
    """Opens a reasoning part."""

    id: str
    provider_metadata: JSON | None = None


class ReasoningDeltaChunk(_Chunk, frozen=True, tag="reasoning-delta"):
    """Appends ``delta`` to the reasoning part ``id``."""

    id: str
    delta: str
    provider_metadata: JSON | None = None


class ReasoningEndChunk(_Chunk, frozen=True, tag="reasoning-end"):
    """Closes a reasoning part."""

    id: str
    provider_metadata: JSON | None = None


class ToolInputStartChunk(_Chunk, frozen=True, tag="tool-input-start"):
    """A tool call begins; its input streams next."""

    tool_call_id: str
    tool_name: str
    input_encoding: Literal["json", "text"] | None = None
    provider_executed: bool | None = None
    provider_metadata: JSON | None = None
    tool_metadata: JSON | None = None
    dynamic: bool | None = None
    title: str | None = None


class ToolInputDeltaChunk(_Chunk, frozen=True, tag="tool-input-delta"):
    """A fragment of the tool input's JSON text (not a JSON value)."""

    tool_call_id: str
    input_text_delta: str


class ToolInputAvailableChunk(_Chunk, frozen=True, tag="tool-input-available"):
    """The tool input is complete and valid. Sent for every tool call."""

    tool_call_id: str
    tool_name: str
    input: JSON
    provider_executed: bool | None = None
    provider_metadata: JSON | None = None
    tool_metadata: JSON | None = None
    dynamic: bool | None = None
    title: str | None = None


class ToolInputErrorChunk(_Chunk, frozen=True, tag="tool-input-error"):
    """Unknown tool, or input that fails the tool's schema."""

    tool_call_id: str
    tool_name: str
    input: JSON
    error_text: str
    provider_executed: bool | None = None
    provider_metadata: JSON | None = None
    tool_metadata: JSON | None = None
    dynamic: bool | None = None
    title: str | None = None


class ToolApprovalRequestChunk(_Chunk, frozen=True, tag="tool-approval-request"):
    """The tool needs the user's approval before it runs (the v6 flow)."""

    approval_id: str
    tool_call_id: str
    approval_descriptor: JSON | None = None
    input_schema_input: JSON | None = None
    signature: str | None = None


class ToolOutputAvailableChunk(_Chunk, frozen=True, tag="tool-output-available"):
    """The tool's result. Carries no tool name: look it up by call id."""

    tool_call_id: str
    output: JSON
    provider_executed: bool | None = None
    provider_metadata: JSON | None = None
    tool_metadata: JSON | None = None
    dynamic: bool | None = None
    preliminary: bool | None = None


class ToolOutputErrorChunk(_Chunk, frozen=True, tag="tool-output-error"):
    """The tool failed (``error_text`` may be missing: the event then says "Unknown error")."""

    tool_call_id: str
    error_text: str | None = None
    provider_executed: bool | None = None
    provider_metadata: JSON | None = None
    tool_metadata: JSON | None = None
    dynamic: bool | None = None


class ToolOutputDeniedChunk(_Chunk, frozen=True, tag="tool-output-denied"):
    """The user denied the tool; it did not run."""

    tool_call_id: str


class SourceUrlChunk(_Chunk, frozen=True, tag="source-url"):
    """A source the answer cites, by URL."""

    source_id: str
    url: str
    title: str | None = None
    provider_metadata: JSON | None = None


class SourceDocumentChunk(_Chunk, frozen=True, tag="source-document"):
    """A source the answer cites, by document."""

    source_id: str
    media_type: str
    title: str
    filename: str | None = None
    provider_metadata: JSON | None = None


class FileChunk(_Chunk, frozen=True, tag="file"):
    """A generated file, often as a ``data:`` URL."""

    media_type: str
    url: str
    provider_metadata: JSON | None = None


class FinishChunk(_Chunk, frozen=True, tag="finish"):
    """The message is complete (absent after an abort or a fatal error).

    ``usage`` is not sent by the SDK; older Kai servers put the token counts
    here (``{promptTokens, completionTokens, ...}``).
    """

    finish_reason: str | None = None
    message_metadata: JSON | None = None
    usage: JSON | None = None


class ErrorChunk(_Chunk, frozen=True, tag="error"):
    """An error during generation; ``error_text`` is what the server chose to say.

    Older servers sent ``message`` (and ``code``) instead of ``errorText``.
    """

    error_text: str | None = None
    message: str | None = None
    code: str | None = None


class AbortChunk(_Chunk, frozen=True, tag="abort"):
    """The server aborted the generation."""

    reason: str | None = None


class MessageMetadataChunk(_Chunk, frozen=True, tag="message-metadata"):
    """Metadata to merge (deeply) into the message's metadata."""

    message_metadata: JSON


class LegacyTextChunk(_Chunk, frozen=True, tag="text"):
    """Older Kai servers: a piece of the answer's text (now ``text-delta``)."""

    text: str = ""
    state: str | None = None


class LegacyStepStartChunk(_Chunk, frozen=True, tag="step-start"):
    """Older Kai servers: a new step begins (now ``start-step``)."""


class LegacyToolCallChunk(_Chunk, frozen=True, tag="tool-call"):
    """Older Kai servers: a tool call in one of its states (now ``tool-input-*``,
    ``tool-output-*``)."""

    tool_call_id: str = ""
    tool_name: str | None = None
    state: str = ""
    input: JSON | None = None
    output: JSON | None = None
    approval: JSON | None = None


class DataChunk(msgspec.Struct, frozen=True, omit_defaults=True, gc=False):
    """A custom ``data-<name>`` part, e.g. Kai's ``data-usage``.

    Non-transient data parts are stored in the message; a later one with the
    same ``type`` and ``id`` replaces the earlier one's ``data``.
    """

    type: str
    id: str | None = None
    data: JSON = None
    transient: bool | None = None

    @property
    def name(self) -> str:
        """The part name after ``data-``."""
        return self.type[5:]


class UnknownChunk(msgspec.Struct, frozen=True, gc=False):
    """A chunk type this client does not know; ``raw`` is its exact JSON."""

    type: str
    raw: bytes

    @property
    def data(self) -> dict[str, Any]:
        """The payload decoded as a JSON object."""
        value: dict[str, Any] = msgspec.json.decode(self.raw)
        return value


KnownChunk: TypeAlias = (
    StartChunk
    | StartStepChunk
    | FinishStepChunk
    | TextStartChunk
    | TextDeltaChunk
    | TextEndChunk
    | ReasoningStartChunk
    | ReasoningDeltaChunk
    | ReasoningEndChunk
    | ToolInputStartChunk
    | ToolInputDeltaChunk
    | ToolInputAvailableChunk
    | ToolInputErrorChunk
    | ToolApprovalRequestChunk
    | ToolOutputAvailableChunk
    | ToolOutputErrorChunk
    | ToolOutputDeniedChunk
    | SourceUrlChunk
    | SourceDocumentChunk
    | FileChunk
    | FinishChunk
    | ErrorChunk
    | AbortChunk
    | MessageMetadataChunk
    | LegacyTextChunk
    | LegacyStepStartChunk
    | LegacyToolCallChunk
)

Chunk: TypeAlias = KnownChunk | DataChunk | UnknownChunk
"""Any decoded chunk: a known one, a ``data-*`` one, or an unknown one."""

KNOWN_CHUNK_TYPES: Final[frozenset[str]] = frozenset(
    str(c.__struct_config__.tag) for c in KnownChunk.__args__
)

# ``chunk.type`` is read for every chunk on the hot paths (log records,
# dispatch): a plain class attribute, not a property reading
# ``__struct_config__`` (which builds a new config object on each access).
for _cls in KnownChunk.__args__:
    _cls.type = str(_cls.__struct_config__.tag)
del _cls


class _TypeOnly(msgspec.Struct):
    type: str = ""  # a JSON object without ``type`` is kept as an unknown chunk


# One reusable decoder per type, built once (msgspec's perf advice).
_known_decoder: Final[msgspec.json.Decoder[KnownChunk]] = msgspec.json.Decoder(KnownChunk)
_type_decoder: Final = msgspec.json.Decoder(_TypeOnly)
_data_decoder: Final = msgspec.json.Decoder(DataChunk)
_encoder: Final = msgspec.json.Encoder()

decode_known_chunk: Final = _known_decoder.decode
"""The hot loops' first try: a known chunk in one C call, no Python frame.

It raises one of :data:`DECODE_ERRORS` for anything else (a ``data-*`` or
unknown type, a malformed payload); :func:`decode_other_chunk` then says what
the payload is.
"""
DECODE_ERRORS: Final = (msgspec.DecodeError, UnicodeDecodeError, RecursionError)
"""What :data:`decode_known_chunk` raises for a payload that is no known chunk
(RecursionError: JSON nested deeper than msgspec follows, ~1000 levels)."""


def decode_chunk(payload: bytes | str) -> Chunk:
    """Decode one SSE ``data:`` payload into a chunk.

    :param payload: the JSON text of one chunk (without ``data:``).
    :returns: a known chunk, a :class:`DataChunk`, or an :class:`UnknownChunk`.
    :raises KaiStreamError: when the payload is not JSON, not an object, has a
        ``type`` that is not a string, or is a known type with fields of the
        wrong type. (An object without ``type`` is an :class:`UnknownChunk` of
        type ``""``, as kai-client kept it.)
    """
    try:
        return _known_decoder.decode(payload)
    except DECODE_ERRORS as exc:
        return decode_other_chunk(payload, exc)


def decode_other_chunk(payload: bytes | str, error: Exception) -> Chunk:
    """:func:`decode_chunk` for a payload :data:`decode_known_chunk` refused with ``error``.

    :raises KaiStreamError: as :func:`decode_chunk`.
    """
    if not isinstance(error, msgspec.ValidationError):
        raise _malformed(payload, error) from None
    first_error = error
    try:
        kind = _type_decoder.decode(payload).type
    except (msgspec.MsgspecError, UnicodeDecodeError, RecursionError):
        raise _malformed(payload, first_error) from None
    if kind in KNOWN_CHUNK_TYPES:
        raise _malformed(payload, first_error) from None  # (called while handling it)
    if kind.startswith("data-"):
        try:
            return _data_decoder.decode(payload)
        except (msgspec.MsgspecError, UnicodeDecodeError, RecursionError) as exc:
            raise _malformed(payload, exc) from None
    raw = payload.encode() if isinstance(payload, str) else bytes(payload)
    return UnknownChunk(type=kind, raw=raw)


def encode_chunk(chunk: Chunk) -> bytes:
    """Encode a chunk as the SDK writes it (compact JSON, ``type`` first)."""
    if isinstance(chunk, UnknownChunk):
        return chunk.raw
    return _encoder.encode(chunk)


def _malformed(payload: bytes | str, exc: Exception) -> KaiStreamError:
    text = payload if isinstance(payload, str) else bytes(payload).decode("utf-8", "replace")
    preview = text if len(text) <= 120 else text[:117] + "..."
    return KaiStreamError(
        f"the server sent a malformed chunk: {preview}",
        code="stream:malformed_chunk",
        cause=str(exc),
    )
