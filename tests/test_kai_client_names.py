"""Code written for kai-client runs on kai_core with an import change.

Events and models are built as kai-client builds them, its parser folds
events built by hand, its names exist, and the chunk formats its tests show
(older and sloppy ones) decode into the same events.
"""

from __future__ import annotations

import json

import msgspec
import pytest

import kai_core
from kai_core import (
    ERROR_CODE_MAP,
    ChatRequest,
    ErrorEvent,
    FinishEvent,
    InfoResponse,
    KaiAuthenticationError,
    KaiBadRequestError,
    KaiError,
    KaiNotFoundError,
    KaiStreamError,
    MessageMetadata,
    MessageRequest,
    RequestContext,
    SSEStreamParser,
    StepStartEvent,
    TextEvent,
    TextPart,
    ToolApprovalRequestEvent,
    ToolCallEvent,
    ToolCallPart,
    ToolOutputErrorEvent,
    ToolRestrictions,
    ToolResultPart,
    UnknownEvent,
    UsageEvent,
    UsageInfo,
    VisibilityType,
    VoteType,
    parse_sse_event,
    raise_for_error_response,
)
from kai_core.chunks import KNOWN_CHUNK_TYPES, decode_chunk
from kai_core.exceptions import error_from_response

# -- 1. events construct like kai-client's ------------------------------------------------

KAI_CLIENT_EVENTS = [
    (TextEvent, {"text": "hi"}),
    (StepStartEvent, {}),
    (ToolCallEvent, {"toolCallId": "c1", "toolName": "t", "state": "input-available"}),
    (ToolApprovalRequestEvent, {"approvalId": "a1", "toolCallId": "c1"}),
    (UsageEvent, {"usage": UsageInfo(promptTokens=1)}),
    (FinishEvent, {"finishReason": "stop"}),
    (ErrorEvent, {"message": "boom"}),
    (ToolOutputErrorEvent, {"toolCallId": "c1", "errorText": "failed"}),
]


@pytest.mark.parametrize("cls, fields", KAI_CLIENT_EVENTS, ids=lambda x: getattr(x, "type", ""))
def test_events_take_kai_client_type_and_aliases(cls: type, fields: dict) -> None:
    event = cls(type=cls.type, **fields)
    assert event.type == cls.type and event.chunk is None
    assert event == cls(**{_snake(k): v for k, v in fields.items()})


def test_a_different_type_is_a_type_error_naming_both() -> None:
    with pytest.raises(TypeError, match=r"TextEvent has type 'text'; type='finish'"):
        TextEvent(type="finish", text="hi")
    with pytest.raises(TypeError, match="nope"):  # a keyword it has no alias for
        TextEvent(text="hi", nope=1)


def test_kai_client_field_names_and_defaults() -> None:
    assert TextEvent(text="x").state is None
    call = ToolCallEvent(tool_call_id="c", state="started")
    assert (call.tool_name, call.input, call.output, call.approval) == (None, None, None, None)
    assert ErrorEvent(message="m").code is None
    assert FinishEvent().usage is None
    assert UsageInfo() == UsageInfo(0, 0, 0, 0, 0, 0)
    assert UnknownEvent(type="custom").data == {}
    assert TextEvent(text="hi").model_dump() == {"type": "text", "text": "hi", "state": None}


def test_events_dump_and_validate_with_kai_client_aliases() -> None:
    event = UsageEvent.model_validate(
        {"type": "data-usage", "usage": {"promptTokens": 100, "completionTokens": 50}}
    )
    assert event.usage == UsageInfo(prompt_tokens=100, completion_tokens=50)
    failed = ToolOutputErrorEvent(toolCallId="c", errorText="no")
    assert failed.model_dump(by_alias=True) == {
        "type": "tool-output-error", "toolCallId": "c", "errorText": "no", "toolName": None,
    }  # fmt: skip
    assert UsageInfo.model_validate({"promptTokens": 7, "extra": 1}).prompt_tokens == 7
    with pytest.raises(TypeError, match="FinishEvent has type 'finish'"):
        FinishEvent.model_validate({"type": "text", "finishReason": "stop"})


def test_finish_usage_is_none_when_no_usage_arrived() -> None:
    assert parse_sse_event({"type": "finish", "finishReason": "stop"}).usage is None
    parser = SSEStreamParser()
    parser.feed(decode_chunk(b'{"type":"data-usage","data":{"promptTokens":1}}'))
    (finish,) = parser.feed(decode_chunk(b'{"type":"finish"}'))
    assert finish.usage == UsageInfo(1, 0, 1)


# -- 2. the parser folds any event -------------------------------------------------------


def test_process_event_folds_hand_built_events() -> None:
    parser = SSEStreamParser()
    for event in [
        StepStartEvent(type="step-start"),
        TextEvent(type="text", text="Let me check "),
        ToolCallEvent(
            type="tool-call", toolCallId="c1", toolName="list", state="input-available", input={}
        ),
        ToolCallEvent(
            type="tool-call", toolCallId="c1", toolName="list", state="output-available", output=[1]
        ),
        TextEvent(type="text", text="done."),
        UsageEvent(type="data-usage", usage=UsageInfo(promptTokens=300, completionTokens=80)),
        ErrorEvent(type="error", message="ignored by the totals"),
        UnknownEvent(type="custom", data={}),
        FinishEvent(type="finish", finishReason="stop", usage=UsageInfo(promptTokens=100)),
    ]:
        parser.process_event(event)
    assert parser.text == "Let me check done."
    assert parser.tool_calls["c1"].state == "output-available"
    assert parser.tool_calls["c1"].output == [1]
    assert parser.finished and parser.finish_reason == "stop"
    assert (parser.prompt_tokens, parser.completion_tokens, parser.total_tokens) == (400, 80, 480)
    assert [p["type"] for p in parser.parts] == ["step-start", "text", "tool-list"]
    parser.reset()
    assert (parser.text, parser.tool_calls, parser.finished, parser.total_tokens) == (
        "",
        {},
        False,
        0,
    )


def test_process_event_of_a_kai_stream_still_folds_its_chunks_once() -> None:
    source = SSEStreamParser()
    events = []
    for payload in [
        b'{"type":"start","messageId":"m"}',
        b'{"type":"text-start","id":"t"}',
        b'{"type":"text-delta","id":"t","delta":"hi"}',
        b'{"type":"data-usage","data":{"promptTokens":3,"completionTokens":2}}',
        b'{"type":"finish","finishReason":"stop"}',
    ]:
        events += source.feed(decode_chunk(payload))
    copy = SSEStreamParser()
    for event in events:
        copy.process_event(event)  # the FinishEvent's summed usage is not added again
    assert (copy.text, copy.total_tokens, copy.message) == ("hi", 5, source.message)


# -- 3. kai-client's names ----------------------------------------------------------------

# kai-client 0.12's ``__all__`` (plus ToolRestrictions, exported after 0.12), minus
# ``__version__``: what kai_core exports, and what it leaves out on purpose.
KAI_CLIENT_NAMES = {
    "KaiClient", "KaiError", "KaiAuthenticationError", "KaiForbiddenError", "KaiNotFoundError",
    "KaiRateLimitError", "KaiBadRequestError", "KaiStreamError", "KaiConnectionError",
    "KaiTimeoutError", "ChatRequest", "MessageRequest", "VoteRequest", "TextPart",
    "ToolResultPart", "ToolApprovalResponsePart", "ToolCallPart", "ToolRestrictions",
    "MessageMetadata", "RequestContext", "PingResponse", "InfoResponse", "McpConnection", "Chat",
    "ChatDetail", "Message", "HistoryResponse", "Vote", "ErrorResponse", "ApprovalResponse",
    "UsageResponse", "AgentSettings", "UserAgentSettings", "ToolInfo", "ToolsListResponse",
    "Suggestion", "SuggestionsResponse", "SSEEvent", "TextEvent", "StepStartEvent",
    "ToolApproval", "ToolApprovalRequestEvent", "ToolCallEvent", "ToolOutputErrorEvent",
    "UsageEvent", "UsageInfo", "FinishEvent", "ErrorEvent", "UnknownEvent", "SSEStreamParser",
    "parse_sse_stream", "parse_sse_event", "VisibilityType", "VoteType", "MessageRole",
    "SSEEventType", "FinishReason", "ToolCallState",
}  # fmt: skip
NOT_EXPORTED = {
    # the wire's approval object is kept whole, as a dict (signatures, descriptors)
    "ToolApproval",
    # the legacy approval part: kai answers v6 approvals by echoing the whole part
    "ToolApprovalResponsePart",
    # an asyncio parser of an httpx response: kai reads streams with SSEDecoder under trio
    "parse_sse_stream",
    # kai-client's values disagree with the wire ("tool_calls"; 7 of 24 chunk types)
    "FinishReason",
    "SSEEventType",
}


def test_kai_client_names_exist_in_kai_core() -> None:
    exported = KAI_CLIENT_NAMES - NOT_EXPORTED
    assert exported <= set(kai_core.__all__), exported - set(kai_core.__all__)
    assert not NOT_EXPORTED & set(kai_core.__all__)
    assert len(exported) == 53
    assert VoteType.UP == "up" and VisibilityType.PRIVATE == "private"
    assert kai_core.ErrorResponse is kai_core.api.ErrorBody


def test_request_models_take_kai_client_keywords_and_encode_to_the_wire() -> None:
    request = ChatRequest(
        id="chat-1",
        message=MessageRequest(
            id="m-1",
            role="user",
            parts=[TextPart(type="text", text="Hello")],
            metadata=MessageMetadata(hidden=True, request_context=RequestContext(path="/x")),
        ),
        selectedChatModel="chat-model",
        selectedVisibilityType=VisibilityType.PRIVATE,
        toolRestrictions=ToolRestrictions(allowed_tools=["get_tables"], read_only_mode=True),
    )
    assert request.selected_chat_model == "chat-model" and request.branch_id is None
    assert request.message.parts[0].text == "Hello"
    assert json.loads(request.model_dump_json(by_alias=True, exclude_none=True)) == {
        "id": "chat-1",
        "message": {
            "id": "m-1",
            "role": "user",
            "parts": [{"type": "text", "text": "Hello", "state": None}],
            "metadata": {"hidden": True, "requestContext": {"path": "/x"}},
        },
        "selectedChatModel": "chat-model",
        "selectedVisibilityType": "private",
        "toolRestrictions": {
            "allowedTools": ["get_tables"],
            "disallowedTools": None,
            "readOnlyMode": True,
        },
    }


def test_part_models_dump_and_validate() -> None:
    part = ToolResultPart(type="tool-result", toolCallId="c", toolName="t", result="ok")
    assert part.model_dump(by_alias=True) == {
        "type": "tool-result", "toolCallId": "c", "toolName": "t", "result": "ok",
    }  # fmt: skip
    assert part.model_dump()["tool_call_id"] == "c"
    wire = {
        "type": "tool-get_tables",
        "toolCallId": "c",
        "state": "output-available",
        "output": [1],
    }
    call = ToolCallPart.model_validate(wire)
    assert (call.tool_call_id, call.output, call.input) == ("c", [1], None)
    with pytest.raises(TypeError):
        TextPart(type="step-start", text="x")


def test_response_models_dump_and_validate() -> None:
    info = InfoResponse.model_validate(
        {"timestamp": "t", "uptime": 1.5, "appName": "kai", "appVersion": "1", "serverVersion": "2"}
    )
    assert info.app_name == "kai" and info.model_dump()["server_version"] == "2"
    assert info.model_dump(by_alias=True)["appName"] == "kai"
    assert json.loads(info.model_dump_json())["uptime"] == 1.5
    assert InfoResponse.model_validate({"app_name": "snake"}).app_name == "snake"
    with pytest.raises(ValueError):  # msgspec.ValidationError, as pydantic's is a ValueError
        InfoResponse.model_validate({"uptime": "soon"})


def test_raise_for_error_response_and_the_code_map() -> None:
    with pytest.raises(KaiAuthenticationError) as caught:
        raise_for_error_response({"code": "unauthorized:chat", "message": "no", "cause": "why"})
    assert (caught.value.code, caught.value.message, caught.value.cause) == (
        "unauthorized:chat", "no", "why",
    )  # fmt: skip
    with pytest.raises(KaiNotFoundError):  # by type, as kai-client's prefix fallback
        raise_for_error_response({"code": "not_found:stream", "message": "gone"})
    with pytest.raises(KaiError) as plain:
        raise_for_error_response({})
    assert type(plain.value) is KaiError and plain.value.message == "Unknown error"
    assert ERROR_CODE_MAP["bad_request:api"] is KaiBadRequestError


# -- 7 (part). kai-agent's nested error body ------------------------------------------------


@pytest.mark.parametrize(
    "status, kind, cls",
    [(404, "not_found", KaiNotFoundError), (400, "bad_request", KaiBadRequestError),
     (500, "internal", KaiError)],
)  # fmt: skip
def test_kai_agent_nested_error_body(status: int, kind: str, cls: type) -> None:
    body = {
        "error": {"type": kind, "surface": "chat", "message": "It failed.", "exceptionId": "ex-42"}
    }
    error = error_from_response(status, body)
    assert type(error) is cls
    assert (error.code, error.message, error.cause) == (f"{kind}:chat", "It failed.", "ex-42")
    assert str(error) == f"[{kind}:chat] It failed. (cause: ex-42)"


# -- 4 and 5. older and sloppy chunk formats ------------------------------------------------


def test_older_production_formats_decode_into_the_same_events() -> None:
    text = parse_sse_event({"type": "text", "text": "Hello", "state": "done"})
    assert isinstance(text, TextEvent) and (text.text, text.state) == ("Hello", "done")
    assert isinstance(parse_sse_event({"type": "step-start"}), StepStartEvent)
    for state, field in [("input-available", "input"), ("output-available", "output")]:
        event = parse_sse_event(
            {"type": "tool-call", "toolCallId": "c", "toolName": "get_tables", "state": state,
             field: {"tables": ["a"]}}
        )  # fmt: skip
        assert isinstance(event, ToolCallEvent)
        assert (event.tool_call_id, event.tool_name, event.state) == ("c", "get_tables", state)
        assert getattr(event, field) == {"tables": ["a"]}


@pytest.mark.parametrize("name", ["create_config", "run_job", "docs_query", "search_internet"])
def test_every_tool_name_parses(name: str) -> None:
    started = parse_sse_event({"type": "tool-input-start", "toolCallId": "c", "toolName": name})
    assert isinstance(started, ToolCallEvent) and started.tool_name == name
    assert started.state == "started" and started.input is None


def test_sloppy_server_chunks_are_read_as_kai_client_read_them() -> None:
    error = parse_sse_event({"type": "error", "message": "went wrong", "code": "internal"})
    assert isinstance(error, ErrorEvent) and (error.message, error.code) == (
        "went wrong",
        "internal",
    )
    assert parse_sse_event({"type": "error"}).message == "Unknown error"
    delta = parse_sse_event({"type": "text-delta", "delta": "no id"})
    assert isinstance(delta, TextEvent) and delta.text == "no id"
    failed = parse_sse_event({"type": "tool-output-error", "toolCallId": "c"})
    assert isinstance(failed, ToolOutputErrorEvent) and failed.error_text == "Unknown error"
    finish = parse_sse_event({"type": "finish"})
    assert isinstance(finish, FinishEvent) and finish.finish_reason == "stop"
    with_usage = parse_sse_event(
        {"type": "finish", "usage": {"promptTokens": 150, "completionTokens": 50}}
    )
    assert with_usage.usage == UsageInfo(150, 50, 200)
    empty = parse_sse_event({"type": "data-usage"})
    assert isinstance(empty, UsageEvent) and empty.usage == UsageInfo()
    untyped = parse_sse_event({"foo": "bar"})
    assert isinstance(untyped, UnknownEvent) and (untyped.type, untyped.data) == (
        "",
        {"foo": "bar"},
    )


def test_sse_lines_and_payloads_parse_too() -> None:
    assert parse_sse_event('data: {"type":"text","text":"a"}').text == "a"
    assert parse_sse_event(b'data:{"type":"text-delta","id":"t","delta":"b"}').text == "b"
    assert parse_sse_event('{"type":"custom","x":1}').data == {"type": "custom", "x": 1}


@pytest.mark.parametrize(
    "payload",
    [b"not json", b"data: {", b'{"type":"text-delta","delta":', b"[1, 2]", b'"text"',
     b'{"type": 7}', b'{"type":"text-delta","delta":["x"]}', b'{"type":"error","message":5}',
     b'{"type":"tool-call","state":{}}', b'{"type":"finish","finishReason":1}', b"\xff\xfe"],
)  # fmt: skip
def test_leniency_never_accepts_bytes_that_are_not_a_chunk(payload: bytes) -> None:
    with pytest.raises(KaiStreamError) as caught:
        parse_sse_event(payload)
    assert caught.value.code == "stream:malformed_chunk"


def test_protocol_chunks_come_out_as_unknown_events_with_their_json() -> None:
    for kind in ["start", "text-start", "text-end", "finish-step", "step-end"]:
        event = parse_sse_event({"type": kind, "id": "some-id"})
        assert isinstance(event, UnknownEvent) and event.type == kind
        assert event.data["type"] == kind
    assert "step-end" not in KNOWN_CHUNK_TYPES  # truly unknown, yet the same event


def _snake(name: str) -> str:
    return "".join(f"_{ch.lower()}" if ch.isupper() else ch for ch in name)


def test_msgspec_still_rejects_wrong_types_on_events() -> None:
    # The metaclass translates keywords only; the Struct's own checks still apply.
    with pytest.raises(TypeError):
        TextEvent()
    assert msgspec.structs.replace(TextEvent(text="a"), text="b").text == "b"


def test_usage_carries_cache_and_reasoning_tokens() -> None:
    parser = SSEStreamParser()
    data = (
        b'{"type":"data-usage","data":{"promptTokens":10,"completionTokens":4,"totalTokens":14,'
        b'"cacheReadTokens":6,"cacheWriteTokens":2,"reasoningTokens":3}}'
    )
    (usage,) = parser.feed(decode_chunk(data))
    assert usage.usage == UsageInfo(10, 4, 14, 6, 2, 3)
    (finish,) = parser.feed(
        decode_chunk(b'{"type":"finish","usage":{"promptTokens":1,"cacheReadTokens":1}}')
    )
    assert finish.usage == UsageInfo(11, 4, 15, 7, 2, 3)
    assert usage.model_dump()["usage"]["cache_write_tokens"] == 2
