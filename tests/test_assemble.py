"""The fixtures decode into the pinned event sequences and UI messages."""

from __future__ import annotations

import msgspec
import pytest

from kai_core.assemble import MessageAssembler, SSEStreamParser
from kai_core.chunks import decode_chunk
from kai_core.events import (
    ToolApprovalRequestEvent,
    ToolCallEvent,
    UnknownEvent,
    event_to_dict,
)

from .assemble_support import EXPECTED, assemble
from .conftest import fixture_payloads


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_event_sequence(name: str) -> None:
    _, events = assemble(name, every=True)
    typed = [e.type for e in events if not isinstance(e, UnknownEvent)]
    assert typed == EXPECTED[name]
    # One event per wire chunk, in order: the rest are UnknownEvents carrying their JSON.
    assert [e.chunk for e in events] == [decode_chunk(p) for p in fixture_payloads(name)]
    for event in events:
        assert event.chunk is not None
        assert event_to_dict(event)["type"] == event.type


def test_hello_text_usage_and_finish() -> None:
    a, events = assemble("hello.sse")
    assert a.text == "Hello! I'm Kai, the Keboola AI assistant (reference server). How can I help?"
    assert a.finished and a.finish_reason == "stop"
    assert (a.prompt_tokens, a.completion_tokens, a.total_tokens) == (33, 19, 52)
    assert events[-1].usage.total_tokens == 52
    assert a.message["parts"] == [
        {"type": "step-start"},
        {"type": "text", "text": a.text, "state": "done"},
    ]


def test_finish_step_is_not_the_end() -> None:
    a, events = assemble("tables.sse")
    assert sum(e.type == "finish" for e in events) == 1
    assert events[-1].type == "finish" and a.finished
    # The first step's finish-step ends neither the text nor the message: the
    # answer of the step after the tool call is there too.
    assert a.text == (
        "Let me list your tables."
        "You have 3 tables: in.c-main.customers (1200 rows), in.c-main.orders (5400 rows),"
        " out.c-reports.daily_revenue (365 rows)."
    )
    assert [p["type"] for p in a.message["parts"]] == [
        "step-start",
        "text",
        "tool-list_tables",
        "step-start",
        "text",
    ]


def test_output_event_carries_tool_name_and_input() -> None:
    _, events = assemble("tables.sse")
    out = [e for e in events if isinstance(e, ToolCallEvent) and e.state == "output-available"]
    assert len(out) == 1
    assert out[0].tool_name == "list_tables"
    assert out[0].input == {}
    assert out[0].output["count"] == 3


def test_read_only_tool_is_not_an_approval() -> None:
    a, events = assemble("tables.sse")
    assert not any(isinstance(e, ToolApprovalRequestEvent) for e in events)
    assert a.pending_approvals == []


def test_approval_request_keeps_whole_approval_object() -> None:
    a, events = assemble("bucket-request.sse")
    (req,) = [e for e in events if isinstance(e, ToolApprovalRequestEvent)]
    assert req.tool_name == "create_bucket"
    assert req.input == {"name": "b1", "stage": "in"}
    assert req.approval == {
        "id": "aitxt-000000000000000000000007",
        "inputSchemaInput": {"name": "b1"},
    }
    assert a.pending_approvals == [req]
    assert a.finish_reason == "tool-calls"
    (part,) = [p for p in a.message["parts"] if p["type"] == "tool-create_bucket"]
    assert part["state"] == "approval-requested"


def test_approval_continuation_extends_the_same_message() -> None:
    first, _ = assemble("bucket-request.sse")
    message = first.message
    (part,) = [p for p in message["parts"] if p["type"] == "tool-create_bucket"]
    part["state"] = "approval-responded"
    part["approval"] = {**part["approval"], "approved": True}
    cont, events = assemble("bucket-approved.sse", MessageAssembler(message))
    assert cont.message["id"] == message["id"]
    assert events[0].tool_name == "create_bucket"
    parts = cont.message["parts"]
    tool = [p for p in parts if p["type"] == "tool-create_bucket"]
    assert len(tool) == 1 and tool[0]["state"] == "output-available"
    assert tool[0]["approval"]["approved"] is True
    assert parts[-1] == {
        "type": "text",
        "text": "Done: bucket in.c-b1 was created.",
        "state": "done",
    }


def test_denied_continuation() -> None:
    first, _ = assemble("bucket-request.sse")
    cont, events = assemble("bucket-denied.sse", MessageAssembler(first.message))
    assert events[0].type == "tool-output-denied"
    # bucket-denied.sse belongs to another request (call_000003); the part is created by id.
    assert events[0].tool_call_id == "call_000003"


def test_error_keeps_partial_text_streaming_and_error_text() -> None:
    a, events = assemble("boom.sse")
    assert a.error == "Simulated model failure (boom)"
    assert event_to_dict(events[3]) == {
        "type": "error",
        "message": "Simulated model failure (boom)",
        "code": None,
    }
    assert a.message["parts"][1]["state"] == "streaming"
    assert a.finish_reason == "error"


def test_abort_has_no_finish() -> None:
    a, events = assemble("abort.sse")
    assert a.aborted and not a.finished
    assert events[-1].reason == "This operation was aborted"


def test_invalid_tool_input() -> None:
    a, events = assemble("invalid-tool-input.sse")
    assert events[2].tool_name == "list_tables" and events[2].input == {"limit": "ten"}
    assert events[3].tool_name == "list_tables"
    assert "expected number" in events[3].error_text


def test_dynamic_tool_parts() -> None:
    a, events = assemble("dynamic-tool.sse")
    (part,) = [p for p in a.message["parts"] if p["type"] == "dynamic-tool"]
    assert part["toolName"] == "get_project_info" and part["state"] == "output-available"
    assert events[5].dynamic and events[5].tool_name == "get_project_info"


def test_metadata_merged() -> None:
    a, _ = assemble("metadata.sse")
    assert a.metadata == {
        "createdAt": "2026-01-01T00:00:43.000Z",
        "model": "chat-model",
        "steps": 1,
        "totalUsage": {"inputTokens": 35, "outputTokens": 19},
    }


def test_sources_files_reasoning_parts() -> None:
    a, _ = assemble("sources.sse")
    assert [p["type"] for p in a.message["parts"][:3]] == [
        "step-start",
        "source-url",
        "source-document",
    ]
    a, events = assemble("image.sse")
    assert events[1].media_type == "image/png"
    assert a.message["parts"][1]["type"] == "file"
    a, _ = assemble("think.sse")
    assert a.message["parts"][1]["type"] == "reasoning"
    assert a.message["parts"][1]["text"].startswith("The user wants")


def test_transient_data_not_stored_but_custom_data_replaced_by_id() -> None:
    a = MessageAssembler()
    for payload in [
        '{"type":"start","messageId":"m1"}',
        '{"type":"data-progress","id":"p","data":{"pct":10}}',
        '{"type":"data-progress","id":"p","data":{"pct":90}}',
        '{"type":"data-note","data":"hi","transient":true}',
        '{"type":"reset-step","x":1}',
    ]:
        events = a.feed(decode_chunk(payload))
    assert a.message["parts"] == [{"type": "data-progress", "id": "p", "data": {"pct": 90}}]
    assert events[0].type == "reset-step" and events[0].data == {"type": "reset-step", "x": 1}


def test_agent_waiting_tool_yields_agent_approval_request() -> None:
    a = MessageAssembler(agent_waiting=lambda name: name == "create_bucket")
    events = []
    for payload in fixture_payloads("bucket-request.sse")[:-4]:  # stop before the v6 request
        events.extend(a.feed(decode_chunk(payload)))
    req = events[-1]
    assert isinstance(req, ToolApprovalRequestEvent)
    assert req.transport == "agent" and req.approval_id == "call_000002"
    assert a.pending_approvals == [req]


def test_kai_client_parser_api() -> None:
    source, events = assemble("tables.sse")
    parser = SSEStreamParser()
    for event in events:
        parser.process_event(event)
    assert parser.text == source.text
    assert parser.finished and parser.finish_reason == "stop"
    assert parser.total_tokens == source.total_tokens
    assert set(parser.tool_calls) == {"call_000001"}
    parser.reset()
    assert parser.text == "" and not parser.finished and parser.tool_calls == {}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_feed_into_folds_as_feed_does(name: str) -> None:
    # The stream folds a read's chunks in one call; the message and events must
    # be feed's, chunk for chunk, whatever the fixture holds.
    chunks = [decode_chunk(p) for p in fixture_payloads(name)]
    one, batch = MessageAssembler(), MessageAssembler()
    expected = [e for chunk in chunks for e in one.feed(chunk)]
    events: list[object] = []
    for i in range(0, len(chunks), 3):
        batch.feed_into(chunks[i : i + 3], events)  # type: ignore[arg-type]
    assert events == expected
    assert batch.message == one.message and batch.usage == one.usage


def test_feed_into_follows_a_new_message_and_deltas_without_a_start() -> None:
    # A ``start`` with another id starts a new message (the open parts go); a
    # delta to a part never opened, or without an id, still lands somewhere.
    wire = [
        {"type": "start", "messageId": "m1"},
        {"type": "text-start", "id": "t1"},
        {"type": "text-delta", "id": "t1", "delta": "one "},
        {"type": "start", "messageId": "m2"},
        {"type": "text-delta", "id": "t1", "delta": "two "},
        {"type": "text-delta", "delta": "three "},
        {"type": "text-delta", "id": "t9", "delta": "four"},
    ]
    chunks = [decode_chunk(msgspec.json.encode(w)) for w in wire]
    one, batch = MessageAssembler(), MessageAssembler()
    expected = [e for chunk in chunks for e in one.feed(chunk)]
    events: list[object] = []
    batch.feed_into(chunks, events)  # type: ignore[arg-type]
    assert events == expected
    assert batch.message == one.message
    assert batch.message["id"] == "m2" and batch.text == "two three four"


def test_feed_into_keeps_long_texts_whole() -> None:
    # Past 1,024 deltas a part joins them into blocks; the text stays the same.
    wire = [{"type": "text-start", "id": "t"}] + [
        {"type": "text-delta", "id": "t", "delta": f"{i} "} for i in range(2500)
    ]
    chunks = [decode_chunk(msgspec.json.encode(w)) for w in wire]
    batch = MessageAssembler()
    batch.feed_into(chunks, [])
    assert batch.text == "".join(f"{i} " for i in range(2500))
