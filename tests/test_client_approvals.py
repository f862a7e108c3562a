"""Building the v6 approval answer: the whole approval object goes back."""

from __future__ import annotations

import msgspec
import pytest

from kai_core._approvals import answer_parts
from kai_core.api import ChatDetail
from kai_core.exceptions import KaiError

from .raw_server import Conn, Request, client_for, fixture, raw_server

APPROVAL = {
    "id": "aitxt-1",
    "descriptor": {"title": "Create bucket"},
    "inputSchemaInput": {"name": "b1"},
    "signature": "sig-abc",
}


def chat(*messages: dict[str, object]) -> ChatDetail:
    return msgspec.convert({"id": "c1", "messages": list(messages)}, ChatDetail)


def tool_part(approval_id: str, state: str = "approval-requested") -> dict[str, object]:
    return {
        "type": "tool-create_bucket",
        "toolCallId": f"call-{approval_id}",
        "state": state,
        "input": {"name": "b1", "stage": "in"},
        "approval": {**APPROVAL, "id": approval_id},
    }


def test_echoes_every_approval_field_and_adds_the_answer() -> None:
    detail = chat(
        {"id": "u1", "role": "user", "parts": [{"type": "text", "text": "go"}]},
        {"id": "a1", "role": "assistant", "parts": [{"type": "step-start"}, tool_part("x")]},
    )
    message, parts = answer_parts(detail, {"x": (False, "Not now")})
    assert message.id == "a1"
    assert parts[0] == {"type": "step-start"}
    assert parts[1]["state"] == "approval-responded"
    assert parts[1]["approval"] == {**APPROVAL, "id": "x", "approved": False, "reason": "Not now"}
    assert parts[1]["input"] == {"name": "b1", "stage": "in"}
    # the stored message is not modified
    assert detail.messages[1].parts[1]["state"] == "approval-requested"


def test_newest_assistant_message_wins_and_no_reason_is_left_out() -> None:
    detail = chat(
        {"id": "a1", "role": "assistant", "parts": [tool_part("x", "output-available")]},
        {"id": "a2", "role": "assistant", "parts": [tool_part("x"), tool_part("y")]},
    )
    message, parts = answer_parts(detail, {"x": (True, None), "y": (True, "ok")})
    assert message.id == "a2"
    assert "reason" not in parts[0]["approval"] and parts[0]["approval"]["approved"] is True
    assert parts[1]["approval"]["reason"] == "ok"


def test_errors() -> None:
    detail = chat(
        {"id": "a1", "role": "assistant", "parts": [tool_part("x")]},
        {"id": "a2", "role": "assistant", "parts": [tool_part("y", "output-denied")]},
    )
    with pytest.raises(KaiError) as info:
        answer_parts(detail, {"z": (True, None)})
    assert info.value.code == "approval:not_found"
    with pytest.raises(KaiError) as info:
        answer_parts(detail, {"x": (True, None), "y": (True, None)})
    assert info.value.code == "approval:not_found"
    with pytest.raises(KaiError) as info:
        answer_parts(detail, {"y": (True, None)})
    assert info.value.code == "approval:already_answered"
    with pytest.raises(ValueError):
        answer_parts(detail, {})


async def test_the_repost_body_on_the_wire() -> None:
    stored = {
        "id": "c1",
        "messages": [
            {"id": "a1", "role": "assistant", "parts": [tool_part("aitxt-1")], "metadata": {"m": 1}}
        ],
    }

    async def handler(conn: Conn, request: Request) -> None:
        if request.method == "GET":
            await conn.simple(
                200, msgspec.json.encode(stored), {"content-type": "application/json"}
            )
        else:
            await conn.start()
            await conn.piece(fixture("bucket-approved.sse"))
            await conn.end()

    async with raw_server(handler) as server, client_for(server, backend="assistant") as client:
        events = [e async for e in client.approve_tool("c1", "aitxt-1", branch_id=3)]
    assert events[-1].type == "finish"
    get, post = server.requests
    assert (get.method, get.path) == ("GET", "/api/chat/c1")
    body = msgspec.json.decode(post.body)
    assert body == {
        "id": "c1",
        "message": {
            "id": "a1",
            "role": "assistant",
            "parts": [
                {
                    **tool_part("aitxt-1"),
                    "state": "approval-responded",
                    "approval": {**APPROVAL, "id": "aitxt-1", "approved": True},
                }
            ],
        },
        "selectedChatModel": "chat-model",
        "selectedVisibilityType": "private",
        "branchId": 3,
    }
