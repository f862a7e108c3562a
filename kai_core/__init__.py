"""kai_core: the Kai (Keboola AI Assistant) API on trio, event-sourced.

The public names are importable from here; each is loaded on first use
(PEP 562), so ``import kai_core`` stays cheap and a CLI that only prints its
version never imports httpx or sqlite. Type checkers see ordinary imports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> submodule that defines it
_EXPORTS: dict[str, str] = {
    # client
    "KaiClient": "client",
    "EventStream": "client",
    "ToolPolicy": "client",
    "KaiBackend": "discovery",
    "discover": "discovery",
    "SSEDecoder": "sse",
    # wire chunks
    "Chunk": "chunks",
    "decode_chunk": "chunks",
    "encode_chunk": "chunks",
    "UnknownChunk": "chunks",
    "DataChunk": "chunks",
    # events and assembly
    "Event": "events",
    "TextEvent": "events",
    "ReasoningEvent": "events",
    "StepStartEvent": "events",
    "ToolCallEvent": "events",
    "ToolApprovalRequestEvent": "events",
    "ToolOutputErrorEvent": "events",
    "ToolInputErrorEvent": "events",
    "ToolOutputDeniedEvent": "events",
    "SourceEvent": "events",
    "FileEvent": "events",
    "UsageEvent": "events",
    "UsageInfo": "events",
    "DataEvent": "events",
    "FinishEvent": "events",
    "ErrorEvent": "events",
    "AbortEvent": "events",
    "MessageMetadataEvent": "events",
    "ApprovalDecisionEvent": "events",
    "UnknownEvent": "events",
    "event_to_dict": "events",
    "event_to_json": "events",
    "MessageAssembler": "assemble",
    "SSEStreamParser": "assemble",
    "parse_sse_event": "assemble",
    "SSEEvent": "events",
    # requests and responses (kai-client's models)
    "ChatRequest": "api",
    "MessageRequest": "api",
    "MessageMetadata": "api",
    "RequestContext": "api",
    "VoteRequest": "api",
    "ToolRestrictions": "api",
    "TextPart": "api",
    "StepStartPart": "api",
    "ToolCallPart": "api",
    "ToolResultPart": "api",
    "PingResponse": "api",
    "InfoResponse": "api",
    "McpConnection": "api",
    "Chat": "api",
    "ChatDetail": "api",
    "Message": "api",
    "HistoryResponse": "api",
    "Vote": "api",
    "ErrorResponse": "api",
    "ApprovalResponse": "api",
    "UsageResponse": "api",
    "AgentSettings": "api",
    "UserAgentSettings": "api",
    "ToolInfo": "api",
    "ToolsListResponse": "api",
    "Suggestion": "api",
    "SuggestionsResponse": "api",
    "VoteType": "api",
    "VisibilityType": "api",
    "MessageRole": "api",
    "ToolCallState": "api",
    # exceptions
    "KaiError": "exceptions",
    "KaiAuthenticationError": "exceptions",
    "KaiForbiddenError": "exceptions",
    "KaiNotFoundError": "exceptions",
    "KaiRateLimitError": "exceptions",
    "KaiBadRequestError": "exceptions",
    "KaiStreamError": "exceptions",
    "KaiConnectionError": "exceptions",
    "KaiTimeoutError": "exceptions",
    "KaiLogError": "exceptions",
    "ERROR_CODE_MAP": "exceptions",
    "raise_for_error_response": "exceptions",
    # the log
    "EventLog": "log",
    "LogRecord": "log",
    "StoredEvent": "log",
    "SearchHit": "log",
    "default_log_path": "log",
    # sessions and plugins
    "Session": "session",
    "Plugins": "plugins",
    "hookimpl": "hookspecs",
    "hookspec": "hookspecs",
    "ApprovalRequest": "policy",
    "ApprovalContext": "policy",
    "ApprovalDecision": "policy",
    "AnswerInfo": "policy",
    "VoteDecision": "policy",
    "Renderer": "render",
    "for_terminal": "sanitize",
    "for_terminal_json": "sanitize",
    "ObservedLog": "observe",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'kai_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"kai_core.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:
    from .api import AgentSettings as AgentSettings
    from .api import ApprovalResponse as ApprovalResponse
    from .api import Chat as Chat
    from .api import ChatDetail as ChatDetail
    from .api import ChatRequest as ChatRequest
    from .api import ErrorResponse as ErrorResponse
    from .api import HistoryResponse as HistoryResponse
    from .api import InfoResponse as InfoResponse
    from .api import McpConnection as McpConnection
    from .api import Message as Message
    from .api import MessageMetadata as MessageMetadata
    from .api import MessageRequest as MessageRequest
    from .api import MessageRole as MessageRole
    from .api import PingResponse as PingResponse
    from .api import RequestContext as RequestContext
    from .api import StepStartPart as StepStartPart
    from .api import Suggestion as Suggestion
    from .api import SuggestionsResponse as SuggestionsResponse
    from .api import TextPart as TextPart
    from .api import ToolCallPart as ToolCallPart
    from .api import ToolCallState as ToolCallState
    from .api import ToolInfo as ToolInfo
    from .api import ToolRestrictions as ToolRestrictions
    from .api import ToolResultPart as ToolResultPart
    from .api import ToolsListResponse as ToolsListResponse
    from .api import UsageResponse as UsageResponse
    from .api import UserAgentSettings as UserAgentSettings
    from .api import VisibilityType as VisibilityType
    from .api import Vote as Vote
    from .api import VoteRequest as VoteRequest
    from .api import VoteType as VoteType
    from .assemble import MessageAssembler as MessageAssembler
    from .assemble import SSEStreamParser as SSEStreamParser
    from .assemble import parse_sse_event as parse_sse_event
    from .chunks import Chunk as Chunk
    from .chunks import DataChunk as DataChunk
    from .chunks import UnknownChunk as UnknownChunk
    from .chunks import decode_chunk as decode_chunk
    from .chunks import encode_chunk as encode_chunk
    from .client import EventStream as EventStream
    from .client import KaiClient as KaiClient
    from .client import ToolPolicy as ToolPolicy
    from .discovery import KaiBackend as KaiBackend
    from .discovery import discover as discover
    from .events import AbortEvent as AbortEvent
    from .events import ApprovalDecisionEvent as ApprovalDecisionEvent
    from .events import DataEvent as DataEvent
    from .events import ErrorEvent as ErrorEvent
    from .events import Event as Event
    from .events import FileEvent as FileEvent
    from .events import FinishEvent as FinishEvent
    from .events import MessageMetadataEvent as MessageMetadataEvent
    from .events import ReasoningEvent as ReasoningEvent
    from .events import SourceEvent as SourceEvent
    from .events import SSEEvent as SSEEvent
    from .events import StepStartEvent as StepStartEvent
    from .events import TextEvent as TextEvent
    from .events import ToolApprovalRequestEvent as ToolApprovalRequestEvent
    from .events import ToolCallEvent as ToolCallEvent
    from .events import ToolInputErrorEvent as ToolInputErrorEvent
    from .events import ToolOutputDeniedEvent as ToolOutputDeniedEvent
    from .events import ToolOutputErrorEvent as ToolOutputErrorEvent
    from .events import UnknownEvent as UnknownEvent
    from .events import UsageEvent as UsageEvent
    from .events import UsageInfo as UsageInfo
    from .events import event_to_dict as event_to_dict
    from .events import event_to_json as event_to_json
    from .exceptions import ERROR_CODE_MAP as ERROR_CODE_MAP
    from .exceptions import KaiAuthenticationError as KaiAuthenticationError
    from .exceptions import KaiBadRequestError as KaiBadRequestError
    from .exceptions import KaiConnectionError as KaiConnectionError
    from .exceptions import KaiError as KaiError
    from .exceptions import KaiForbiddenError as KaiForbiddenError
    from .exceptions import KaiLogError as KaiLogError
    from .exceptions import KaiNotFoundError as KaiNotFoundError
    from .exceptions import KaiRateLimitError as KaiRateLimitError
    from .exceptions import KaiStreamError as KaiStreamError
    from .exceptions import KaiTimeoutError as KaiTimeoutError
    from .exceptions import raise_for_error_response as raise_for_error_response
    from .hookspecs import hookimpl as hookimpl
    from .hookspecs import hookspec as hookspec
    from .log import EventLog as EventLog
    from .log import LogRecord as LogRecord
    from .log import SearchHit as SearchHit
    from .log import StoredEvent as StoredEvent
    from .log import default_log_path as default_log_path
    from .observe import ObservedLog as ObservedLog
    from .plugins import Plugins as Plugins
    from .policy import AnswerInfo as AnswerInfo
    from .policy import ApprovalContext as ApprovalContext
    from .policy import ApprovalDecision as ApprovalDecision
    from .policy import ApprovalRequest as ApprovalRequest
    from .policy import VoteDecision as VoteDecision
    from .render import Renderer as Renderer
    from .sanitize import for_terminal as for_terminal
    from .sanitize import for_terminal_json as for_terminal_json
    from .session import Session as Session
    from .sse import SSEDecoder as SSEDecoder
