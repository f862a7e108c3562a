"""Requests and responses of the Kai HTTP API as msgspec Structs.

Field names are snake_case in Python and camelCase on the wire
(``rename="camel"``), as in kai-client's models. Responses tolerate keys they
do not know (msgspec skips them) and most fields are optional, so a newer
server never breaks the client; dates stay ISO-8601 strings, exactly as the
server sent them. Requests leave out ``None`` fields, as kai-client does.

:func:`decode_response` decodes a response body with one reusable decoder per
type (the decoders are built once, at import).

Code written for kai-client's pydantic models keeps working: the models take
kai-client's keywords (``ChatRequest(selectedChatModel=...)``,
``TextPart(type="text", text=...)``) and have ``model_dump()``,
``model_dump(by_alias=True)``, ``model_dump_json()`` and ``model_validate()``.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal, TypeAlias, TypeVar

import msgspec

from ._compat import KaiClientInit, ModelMethods
from .exceptions import KaiError

__all__ = [
    "AgentSettings",
    "ApprovalRequest",
    "ApprovalResponse",
    "Chat",
    "ChatDetail",
    "ChatRequest",
    "ErrorBody",
    "ErrorResponse",
    "HistoryResponse",
    "InfoResponse",
    "McpConnection",
    "Message",
    "MessageMetadata",
    "MessageRequest",
    "MessageRole",
    "PingResponse",
    "RequestContext",
    "StepStartPart",
    "StorageIndex",
    "StorageService",
    "Suggestion",
    "SuggestionsRequest",
    "SuggestionsResponse",
    "TextPart",
    "ToolCallPart",
    "ToolCallState",
    "TokenInfo",
    "TokenOwner",
    "ToolInfo",
    "ToolRestrictions",
    "ToolResultPart",
    "ToolsListResponse",
    "UsageResponse",
    "UserAgentSettings",
    "Visibility",
    "VisibilityType",
    "Vote",
    "VoteRequest",
    "VoteType",
    "decode_response",
    "encode_request",
]

Visibility: TypeAlias = Literal["private", "public"]
_Vote: TypeAlias = Literal["up", "down"]


class VisibilityType(enum.StrEnum):
    """A chat's visibility (kai-client's enum; plain strings work too)."""

    PRIVATE = "private"
    PUBLIC = "public"


class VoteType(enum.StrEnum):
    """A vote (kai-client's enum; ``"up"``/``"down"`` work too)."""

    UP = "up"
    DOWN = "down"


class MessageRole(enum.StrEnum):
    """Who wrote a message."""

    USER = "user"
    ASSISTANT = "assistant"


class ToolCallState(enum.StrEnum):
    """The states of a tool call, in events (``started``) and in message parts."""

    STARTED = "started"
    INPUT_STREAMING = "input-streaming"
    INPUT_AVAILABLE = "input-available"
    APPROVAL_REQUESTED = "approval-requested"
    APPROVAL_RESPONDED = "approval-responded"
    OUTPUT_AVAILABLE = "output-available"
    OUTPUT_ERROR = "output-error"
    OUTPUT_DENIED = "output-denied"


class _Wire(
    ModelMethods, msgspec.Struct, rename="camel", omit_defaults=True, metaclass=KaiClientInit
):
    """Base: camelCase on the wire; fields left at their default are not sent."""


# ---------------------------------------------------------------- message parts


class _Part(
    ModelMethods,
    msgspec.Struct,
    rename="camel",
    omit_defaults=True,
    tag_field="type",
    metaclass=KaiClientInit,
):
    """A typed message part (kai-client's models); ``type`` is always sent."""

    # As for events: each part's ``type`` is a class attribute, which type
    # checkers see as a ``Literal`` field (``TextPart(type="text", ...)`` checks).


class TextPart(_Part, tag="text"):
    """A text part of a message."""

    text: str
    state: str | None = None
    if TYPE_CHECKING:  # last: a field with a default, for type checkers only
        type: Literal["text"] = "text"
    else:
        type: ClassVar[str] = "text"


class StepStartPart(_Part, tag="step-start"):
    """The start of a step in an assistant message."""

    if TYPE_CHECKING:
        type: Literal["step-start"] = "step-start"
    else:
        type: ClassVar[str] = "step-start"


class ToolResultPart(_Part, tag="tool-result"):
    """Legacy (pre-v6 servers): a tool's result sent as a user message part."""

    tool_call_id: str
    tool_name: str
    result: Any
    if TYPE_CHECKING:  # last: a field with a default, for type checkers only
        type: Literal["tool-result"] = "tool-result"
    else:
        type: ClassVar[str] = "tool-result"


class ToolCallPart(_Wire):
    """A tool call part of a stored message; ``type`` is ``tool-<name>``.

    Parts of :attr:`Message.parts` are the wire dicts; this model is for code
    that builds or checks parts the way kai-client's did
    (``ToolCallPart.model_validate(part)``).
    """

    type: str
    tool_call_id: str
    state: str
    input: Any = None
    output: Any = None
    tool_name: str | None = None


# --------------------------------------------------------------------- requests


class RequestContext(_Wire):
    """Where in the Keboola UI the user was when asking (``metadata.requestContext``)."""

    path: str | None = None


class MessageMetadata(_Wire):
    """Metadata of a user message: ``hidden`` is always sent, as kai-client sends it."""

    hidden: bool
    request_context: RequestContext | None = None


class MessageRequest(_Wire):
    """A UI message sent in ``POST /api/chat``: a user message, or the assistant
    message sent back with an approval answered."""

    id: str
    role: Literal["user", "assistant"]
    parts: list[Any]  # wire dicts, or TextPart / ToolResultPart / ... models
    metadata: MessageMetadata | None = None


class ToolRestrictions(_Wire):
    """Which tools the agent may use in a chat (kai-agent, ``toolRestrictions``).

    All three are optional. The server keeps the restrictions of a chat's
    first message and ignores them on later ones.
    """

    allowed_tools: list[str] | None = None
    disallowed_tools: list[str] | None = None
    read_only_mode: bool | None = None


class ChatRequest(_Wire):
    """The body of ``POST /api/chat`` (every field but ``branch_id`` is always sent)."""

    id: str
    message: MessageRequest
    selected_chat_model: str
    selected_visibility_type: str
    branch_id: int | None = None
    tool_restrictions: ToolRestrictions | None = None


class VoteRequest(_Wire):
    """The body of ``PATCH /api/vote``."""

    chat_id: str
    message_id: str
    type: _Vote


class ApprovalRequest(_Wire):
    """The body of ``POST /api/chat/{id}/approval`` (kai-agent)."""

    tool_use_id: str
    approved: bool
    reason: str | None = None
    updated_input: dict[str, Any] | None = None
    answers: dict[str, Any] | None = None


class SuggestionsRequest(_Wire):
    """The body of ``POST /api/suggestions``."""

    context: str
    data: dict[str, Any]


# -------------------------------------------------------------------- responses


class PingResponse(_Wire):
    """``GET /ping``: the server's time."""

    timestamp: str


class McpConnection(_Wire):
    """One MCP server the Kai server is connected to (an item of ``connected_mcp``)."""

    name: str = ""
    status: str = ""
    url: str | None = None


class InfoResponse(_Wire):
    """``GET /api``: what the server is and which MCP servers it reaches.

    ``connected_mcp`` is a list of ``{name | url, status}`` objects, or a
    single such object (both occur).
    """

    timestamp: str = ""
    uptime: float = 0.0
    app_name: str = ""
    app_version: str = ""
    server_version: str = ""
    connected_mcp: list[Any] | dict[str, Any] = msgspec.field(default_factory=list)


class Message(_Wire):
    """A stored UI message of a chat; ``parts`` are the wire dicts, unchanged."""

    id: str
    role: str
    parts: list[dict[str, Any]] = msgspec.field(default_factory=list)
    created_at: str | None = None
    metadata: Any = None


class Chat(_Wire):
    """A chat as history lists it."""

    id: str
    title: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    visibility: str | None = None
    user_id: str | None = None


class ChatDetail(Chat):
    """``GET /api/chat/{id}``: the chat with its messages."""

    messages: list[Message] = msgspec.field(default_factory=list)


class HistoryResponse(_Wire):
    """``GET /api/history``: a page of chats, newest first."""

    chats: list[Chat] = msgspec.field(default_factory=list)
    has_more: bool = False


class Vote(_Wire):
    """A vote on a message, in either wire format.

    The server sends ``isUpvoted: bool`` (production) or ``type: "up"|"down"``
    (legacy); both :attr:`type` and :attr:`is_upvoted` are always filled in.
    """

    chat_id: str = ""
    message_id: str = ""
    type: _Vote | None = None
    is_upvoted: bool | None = None
    id: str | None = None
    created_at: str | None = None

    def __post_init__(self) -> None:
        if self.type is None:
            self.type = "up" if self.is_upvoted else "down"
        if self.is_upvoted is None:
            self.is_upvoted = self.type == "up"


class ErrorBody(_Wire):
    """An error response: ``code`` is ``<type>:<surface>``, ``cause`` a detail."""

    code: str = ""
    message: str = ""
    cause: Any = None


ErrorResponse = ErrorBody
"""kai-client's name for :class:`ErrorBody`."""


class ApprovalResponse(_Wire):
    """``POST /api/chat/{id}/approval`` (kai-agent)."""

    success: bool
    tool_use_id: str
    approved: bool


class UsageResponse(_Wire):
    """``GET /api/usage``: the user's message quota."""

    messages_used: int
    messages_limit: int
    reset_date: str | None = None


class AgentSettings(_Wire):
    """``GET|PATCH /api/settings``: project-level settings."""

    project_id: str = ""
    custom_instructions: str | None = None
    created_at: str | None = None
    updated_at: str | None = None


class UserAgentSettings(_Wire):
    """``GET|PATCH /api/settings/user``: the user's settings.

    ``tool_permissions`` maps a tool name to ``always_allow``, ``always_ask``
    or ``blocked``.
    """

    project_id: str = ""
    user_id: str = ""
    custom_instructions: str | None = None
    tool_permissions: dict[str, str] | None = None
    created_at: str | None = None
    updated_at: str | None = None


class ToolInfo(_Wire):
    """A tool the agent can call; read-only tools never wait for approval."""

    name: str
    description: str = ""
    read_only: bool = False


class ToolsListResponse(_Wire):
    """``GET /api/settings/tools``."""

    tools: list[ToolInfo] = msgspec.field(default_factory=list)


class Suggestion(_Wire):
    """A suggested prompt."""

    id: str
    label: str = ""
    prompt: str = ""
    priority: int | str = 0
    category: str = ""
    reasoning: str = ""


class SuggestionsResponse(_Wire):
    """``POST /api/suggestions``."""

    suggestions: list[Suggestion] = msgspec.field(default_factory=list)
    suggestion_session_id: str | None = None


class StorageService(msgspec.Struct):
    """One entry of the Storage API's ``services`` list."""

    id: str = ""
    url: str | None = None


class TokenOwner(_Wire):
    """The project a Storage API token belongs to."""

    id: int | str | None = None
    name: str = ""


class TokenInfo(_Wire):
    """``GET {storage_api_url}/v2/storage/tokens/verify``: only what ``kai verify`` shows."""

    description: str = ""
    is_master_token: bool = False
    owner: TokenOwner = msgspec.field(default_factory=TokenOwner)


class StorageIndex(msgspec.Struct):
    """``GET {storage_api_url}/v2/storage``: only the part discovery needs."""

    services: list[StorageService] = msgspec.field(default_factory=list)


# ------------------------------------------------------------------ en/decoding

_T = TypeVar("_T")

_ENCODER: Final = msgspec.json.Encoder()
_DECODERS: Final[dict[type, msgspec.json.Decoder[Any]]] = {
    cls: msgspec.json.Decoder(cls)
    for cls in (
        PingResponse,
        InfoResponse,
        Chat,
        ChatDetail,
        HistoryResponse,
        Vote,
        ErrorBody,
        ApprovalResponse,
        UsageResponse,
        AgentSettings,
        UserAgentSettings,
        ToolInfo,
        ToolsListResponse,
        SuggestionsResponse,
        StorageIndex,
        TokenInfo,
    )
}
_DECODERS[list[Vote]] = msgspec.json.Decoder(list[Vote])


def decode_response(cls: type[_T], content: bytes | str, what: str = "") -> _T:
    """Decode a response body into ``cls``.

    :raises KaiError: ``response:invalid`` when the body is not JSON of that shape.
    """
    decoder = _DECODERS.get(cls)
    try:
        if decoder is None:
            result: _T = msgspec.json.decode(content, type=cls)
            return result
        decoded: _T = decoder.decode(content)
        return decoded
    except (msgspec.DecodeError, RecursionError) as exc:
        # RecursionError: JSON nested deeper than msgspec follows (~1000 levels).
        name = what or getattr(cls, "__name__", str(cls))
        raise KaiError(
            f"the server answered with an unexpected body for {name}: {exc}",
            code="response:invalid",
        ) from exc


def encode_request(request: msgspec.Struct | dict[str, Any]) -> bytes:
    """Encode a request body as compact JSON (``None`` fields left out for Structs)."""
    return _ENCODER.encode(request)
