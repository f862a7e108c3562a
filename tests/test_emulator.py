"""The emulated backend over real loopback HTTP (raw httpx, not our client).

Its bytes must look like the real AI SDK's: the same headers, framing, chunk
order and fields as the captured fixtures. The helpers are in
``emulator_support.py``.
"""

from __future__ import annotations

import uuid

import pytest

from kai_core.testing import Emulator

from .conftest import FIXTURES
from .emulator_support import (
    approval_repost,
    chat_body,
    chunk_dicts,
    fixture_payloads,
    http,
    pending_approvals,
    post_chat,
    send,
    shape,
    types,
)

# -- the fixtures' shape ----------------------------------------------------------------------


def fixture_headers() -> dict[str, str]:
    lines = (FIXTURES / "hello.headers").read_text().strip().splitlines()[1:]
    return {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}


@pytest.mark.parametrize(
    ("text", "fixture"),
    [
        ("hello", "hello.sse"),
        ("list my tables", "tables.sse"),
        ("What tables do I have?", "tables.sse"),
        ("create a bucket called b1", "bucket-request.sse"),
        ("boom", "boom.sse"),
        ("abort", "abort.sse"),
        ("think", "think.sse"),
        ("tell me about my project", "dynamic-tool.sse"),
    ],
)
@pytest.mark.kai_emulator(backend="assistant")
async def test_answers_have_the_fixtures_shape(
    kai_emulator: Emulator, text: str, fixture: str
) -> None:
    async with http(kai_emulator) as client:
        response, payloads = await post_chat(client, chat_body(text))
    expected_headers = fixture_headers()
    for name in (
        "content-type",
        "cache-control",
        "connection",
        "x-vercel-ai-ui-message-stream",
        "x-accel-buffering",
    ):
        assert response.headers[name] == expected_headers[name]
    assert response.headers["transfer-encoding"] == "chunked"
    assert "server" not in response.headers
    assert shape(payloads) == shape(fixture_payloads(fixture))
    chunks = chunk_dicts(payloads)
    assert uuid.UUID(chunks[0]["messageId"])


@pytest.mark.parametrize(
    "answer", [(True, None, "bucket-approved.sse"), (False, "Not now", "bucket-denied.sse")]
)
@pytest.mark.kai_emulator(backend="assistant")
async def test_v6_approval_continuation_has_the_fixtures_shape(
    kai_emulator: Emulator, answer: tuple[bool, str | None, str]
) -> None:
    approved, reason, fixture = answer
    async with http(kai_emulator) as client:
        body = chat_body("create a bucket called b1")
        first = chunk_dicts(await send(client, "create a bucket called b1", body["id"]))
        request = next(c for c in first if c["type"] == "tool-approval-request")
        assert request["approvalId"].startswith("aitxt-") and len(request["approvalId"]) == 30
        assert request["toolCallId"].startswith("call_")
        chat = (await client.get(f"/api/chat/{body['id']}")).json()
        assert pending_approvals(chat) == [request["approvalId"]]
        repost = approval_repost(chat, {request["approvalId"]: (approved, reason)})
        response, payloads = await post_chat(client, repost)
        assert response.status_code == 200
        assert shape(payloads) == shape(fixture_payloads(fixture))
        chunks = chunk_dicts(payloads)
        assert chunks[0]["messageId"] == repost["message"]["id"]  # same message continues
        assert chunks[1]["toolCallId"] == request["toolCallId"]
        stored = (await client.get(f"/api/chat/{body['id']}")).json()
    message = stored["messages"][-1]
    assert [m["role"] for m in stored["messages"]] == ["user", "assistant"]
    tool = next(p for p in message["parts"] if p["type"] == "tool-create_bucket")
    assert tool["state"] == ("output-available" if approved else "output-denied")
    assert tool["approval"]["id"] == request["approvalId"]
    assert tool["approval"]["approved"] is approved
    assert tool["approval"]["inputSchemaInput"] == {"name": "b1"}
    assert [p["type"] for p in message["parts"]] == [
        "step-start",
        "text",
        "tool-create_bucket",
        "step-start",
        "text",
    ]
    assert ("in.c-b1" in kai_emulator.state.buckets) is approved


async def test_stored_messages_are_ui_messages(kai_emulator: Emulator) -> None:
    async with http(kai_emulator) as client:
        body = chat_body("list my tables")
        await send(client, "list my tables", body["id"])
        chat = (await client.get(f"/api/chat/{body['id']}")).json()
    assert chat["id"] == body["id"]
    assert chat["title"] == "list my tables"
    assert {"createdAt", "updatedAt", "visibility", "userId"} <= chat.keys()
    user, assistant = chat["messages"]
    assert user["role"] == "user" and user["parts"] == [{"type": "text", "text": "list my tables"}]
    assert assistant["role"] == "assistant"
    parts = assistant["parts"]
    assert [p["type"] for p in parts] == [
        "step-start",
        "text",
        "tool-list_tables",
        "step-start",
        "text",
    ]
    assert all(p["state"] == "done" for p in parts if p["type"] == "text")
    tool = parts[2]
    assert tool["state"] == "output-available" and tool["input"] == {}
    assert tool["output"]["count"] == 3 and tool["toolCallId"].startswith("call_")
    assert parts[4]["text"].startswith("You have 3 tables")


async def test_plain_text_answer_is_deterministic(kai_emulator: Emulator) -> None:
    async with http(kai_emulator) as client:
        first = await send(client, "What is Keboola?")
        second = await send(client, "What is Keboola?")

    def texts(payloads: list[str]) -> list[str]:
        return [c["delta"] for c in chunk_dicts(payloads) if c["type"] == "text-delta"]

    assert texts(first) == texts(second)
    assert len(texts(first)) > 2
    assert types(first)[-3:] == ["data-usage", "finish", "[DONE]"]


async def test_failing_tool_reports_unmasked_error(kai_emulator: Emulator) -> None:
    async with http(kai_emulator) as client:
        chunks = chunk_dicts(await send(client, "please fail"))
    error = next(c for c in chunks if c["type"] == "tool-output-error")
    assert error["errorText"] == "Query failed: table in.c-main.missing does not exist"
    assert "toolName" not in error
    assert chunks[-1] == {"type": "finish", "finishReason": "stop"}
