"""Every non-streaming endpoint of the emulated backend, with its errors (protocol.md C.2, C.4)."""

from __future__ import annotations

import uuid
from datetime import datetime

import httpx
import pytest

from kai_core.testing import Emulator

from .emulator_support import chat_body, http, post_chat, send


def iso_ok(value: str) -> bool:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) is not None


async def test_ping_and_info_need_no_token(kai_emulator: Emulator) -> None:
    async with httpx.AsyncClient(base_url=kai_emulator.base_url) as client:
        ping = await client.get("/ping")
        info = await client.get("/api")
    assert ping.status_code == 200 and iso_ok(ping.json()["timestamp"])
    body = info.json()
    assert {
        "timestamp",
        "uptime",
        "appName",
        "appVersion",
        "serverVersion",
        "connectedMcp",
    } <= body.keys()
    assert body["connectedMcp"][0]["status"] == "connected"


@pytest.mark.parametrize("backend", ["agent", "assistant"])
async def test_discovery_lists_the_backend_on_the_same_server(backend: str) -> None:
    from kai_core.testing import open_emulator

    async with open_emulator(backend=backend) as emulator:  # type: ignore[arg-type]
        async with httpx.AsyncClient(base_url=emulator.storage_api_url) as client:
            denied = await client.get("/v2/storage")
            services = (await client.get("/v2/storage", headers={"x-storageapi-token": "t"})).json()
    assert denied.status_code == 401 and denied.json()["code"] == "unauthorized:chat"
    ids = [s["id"] for s in services["services"]]
    assert f"kai-{backend}" in ids and len(ids) == 2  # plus one unrelated service
    ours = next(s for s in services["services"] if s["id"] == f"kai-{backend}")
    assert ours["url"] == emulator.base_url


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/history"),
        ("GET", f"/api/chat/{uuid.uuid4()}"),
        ("DELETE", f"/api/chat?id={uuid.uuid4()}"),
        ("GET", f"/api/vote?chatId={uuid.uuid4()}"),
        ("GET", "/api/usage"),
        ("GET", "/api/settings"),
        ("GET", "/api/settings/user"),
        ("GET", "/api/settings/tools"),
    ],
)
async def test_auth_is_required(kai_emulator: Emulator, method: str, path: str) -> None:
    async with httpx.AsyncClient(base_url=kai_emulator.base_url) as client:
        missing = await client.request(method, path)
        blank = await client.request(method, path, headers={"x-storageapi-token": ""})
    for response in (missing, blank):
        assert response.status_code == 401
        assert response.json()["code"] == "unauthorized:chat"
        assert response.json()["message"]


async def test_post_chat_needs_a_token(kai_emulator: Emulator) -> None:
    async with httpx.AsyncClient(base_url=kai_emulator.base_url) as client:
        response = await client.post("/api/chat", json=chat_body("hello"))
    assert response.status_code == 401 and response.json()["code"] == "unauthorized:chat"


@pytest.mark.kai_emulator(token="secret-token")
async def test_configured_token_is_the_only_one_accepted(kai_emulator: Emulator) -> None:
    assert kai_emulator.token == "secret-token"
    async with httpx.AsyncClient(base_url=kai_emulator.base_url) as client:
        wrong = await client.get("/api/history", headers={"x-storageapi-token": "other"})
        right = await client.get("/api/history", headers={"x-storageapi-token": "secret-token"})
    assert wrong.status_code == 401 and "secret-token" not in wrong.text
    assert right.status_code == 200


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: b.update(id="not-a-uuid"),
        lambda b: b["message"].update(id="nope"),
        lambda b: b["message"].update(parts=[{"type": "text", "text": "  "}]),
        lambda b: b["message"].update(
            parts=[
                {"type": "tool-result", "toolCallId": "x", "toolName": "y", "result": "confirmed"}
            ]
        ),
        lambda b: b["message"].update(role="system"),
        lambda b: b.pop("message"),
        lambda b: b.update(selectedVisibilityType="secret"),
    ],
)
async def test_invalid_chat_bodies_are_bad_requests(kai_emulator: Emulator, mutate: object) -> None:
    body = chat_body("hello")
    mutate(body)  # type: ignore[operator]
    async with http(kai_emulator) as client:
        response, _ = await post_chat(client, body)
    assert response.status_code == 400
    assert response.json()["code"] == "bad_request:api"


async def test_non_json_body_is_a_bad_request(kai_emulator: Emulator) -> None:
    async with http(kai_emulator) as client:
        response = await client.post("/api/chat", content=b"{nope")
    assert response.status_code == 400 and response.json()["code"] == "bad_request:api"


async def test_get_and_delete_chat(kai_emulator: Emulator) -> None:
    async with http(kai_emulator) as client:
        body = chat_body("hello")
        await send(client, "hello", body["id"])
        unknown = await client.get(f"/api/chat/{uuid.uuid4()}")
        no_id = await client.delete("/api/chat")
        delete_unknown = await client.delete("/api/chat", params={"id": str(uuid.uuid4())})
        other_user = await client.get(
            f"/api/chat/{body['id']}", headers={"x-storageapi-token": "someone-else"}
        )
        other_delete = await client.delete(
            "/api/chat", params={"id": body["id"]}, headers={"x-storageapi-token": "someone-else"}
        )
        deleted = await client.delete("/api/chat", params={"id": body["id"]})
        gone = await client.get(f"/api/chat/{body['id']}")
    assert unknown.status_code == 404 and unknown.json()["code"] == "not_found:chat"
    assert no_id.status_code == 400 and no_id.json()["code"] == "bad_request:api"
    assert delete_unknown.status_code == 403 and delete_unknown.json()["code"] == "forbidden:chat"
    assert other_user.status_code == 403 and other_user.json()["code"] == "forbidden:chat"
    assert other_delete.status_code == 403
    assert deleted.status_code == 200 and deleted.json()["id"] == body["id"]
    assert gone.status_code == 404
    assert body["id"] not in kai_emulator.state.chats


async def test_posting_to_another_users_chat_is_forbidden(kai_emulator: Emulator) -> None:
    async with http(kai_emulator) as client:
        body = chat_body("hello")
        await send(client, "hello", body["id"])
        other = chat_body("hi again", body["id"])
        response = await client.post("/api/chat", json=other, headers={"x-storageapi-token": "x"})
    assert response.status_code == 403 and response.json()["code"] == "forbidden:chat"


async def test_history_pages_like_the_template(kai_emulator: Emulator) -> None:
    async with http(kai_emulator) as client:
        ids = []
        for n in range(5):
            body = chat_body(f"chat number {n}")
            await send(client, f"chat number {n}", body["id"])
            ids.append(body["id"])
        newest_first = list(reversed(ids))

        async def page(**params: object) -> httpx.Response:
            return await client.get("/api/history", params=params)

        first = (await page(limit=2)).json()
        older = (await page(limit=2, ending_before=first["chats"][-1]["id"])).json()
        last = (await page(limit=2, ending_before=older["chats"][-1]["id"])).json()
        newer = (await page(limit=10, starting_after=ids[1])).json()
        both = await page(starting_after=ids[0], ending_before=ids[1])
        unknown = await page(ending_before=str(uuid.uuid4()))
        default = (await page()).json()
        other_user = (await client.get("/api/history", headers={"x-storageapi-token": "x"})).json()
    assert [c["id"] for c in first["chats"]] == newest_first[:2] and first["hasMore"] is True
    assert [c["id"] for c in older["chats"]] == newest_first[2:4] and older["hasMore"] is True
    assert [c["id"] for c in last["chats"]] == newest_first[4:] and last["hasMore"] is False
    assert [c["id"] for c in newer["chats"]] == newest_first[:3] and newer["hasMore"] is False
    assert both.status_code == 400 and both.json()["code"] == "bad_request:api"
    assert unknown.status_code == 400 and unknown.json()["code"] == ""
    assert len(default["chats"]) == 5 and default["hasMore"] is False
    chat = first["chats"][0]
    assert set(chat) == {"id", "title", "createdAt", "visibility", "userId"}
    assert chat["title"] == "chat number 4" and iso_ok(chat["createdAt"])
    assert other_user == {"chats": [], "hasMore": False}


async def test_votes(kai_emulator: Emulator) -> None:
    async with http(kai_emulator) as client:
        body = chat_body("hello")
        await send(client, "hello", body["id"])
        chat = (await client.get(f"/api/chat/{body['id']}")).json()
        answer_id = chat["messages"][1]["id"]
        voted = await client.patch(
            "/api/vote", json={"chatId": body["id"], "messageId": answer_id, "type": "up"}
        )
        votes = (await client.get("/api/vote", params={"chatId": body["id"]})).json()
        down = await client.patch(
            "/api/vote", json={"chatId": body["id"], "messageId": answer_id, "type": "down"}
        )
        votes_after = (await client.get("/api/vote", params={"chatId": body["id"]})).json()
        unknown_patch = await client.patch(
            "/api/vote", json={"chatId": str(uuid.uuid4()), "messageId": answer_id, "type": "up"}
        )
        bad_patch = await client.patch(
            "/api/vote", json={"chatId": body["id"], "messageId": answer_id, "type": "meh"}
        )
        no_chat = await client.get("/api/vote")
        unknown_get = await client.get("/api/vote", params={"chatId": str(uuid.uuid4())})
        foreign = await client.get(
            "/api/vote", params={"chatId": body["id"]}, headers={"x-storageapi-token": "x"}
        )
    assert voted.status_code == 200 and voted.text == "Message voted"
    assert voted.headers["content-type"].startswith("text/plain")
    assert votes == [{"chatId": body["id"], "messageId": answer_id, "isUpvoted": True}]
    assert down.status_code == 200
    assert votes_after == [{"chatId": body["id"], "messageId": answer_id, "isUpvoted": False}]
    assert unknown_patch.status_code == 404 and unknown_patch.json()["code"] == "not_found:vote"
    assert bad_patch.status_code == 400 and bad_patch.json()["code"] == "bad_request:api"
    assert no_chat.status_code == 400
    assert unknown_get.status_code == 404 and unknown_get.json()["code"] == "not_found:chat"
    assert foreign.status_code == 403 and foreign.json()["code"] == "forbidden:vote"


async def test_usage_counts_messages_and_enforces_the_limit(kai_emulator: Emulator) -> None:
    kai_emulator.state.messages_limit = 2
    async with http(kai_emulator) as client:
        await send(client, "hello")
        usage = (await client.get("/api/usage")).json()
        await send(client, "hello")
        over, _ = await post_chat(client, chat_body("hello"))
    assert usage["messagesUsed"] == 1 and usage["messagesLimit"] == 2 and iso_ok(usage["resetDate"])
    assert over.status_code == 429 and over.json()["code"] == "rate_limit:chat"


async def test_project_settings(kai_emulator: Emulator) -> None:
    async with http(kai_emulator) as client:
        initial = (await client.get("/api/settings")).json()
        updated = (
            await client.patch("/api/settings", json={"customInstructions": "Be brief."})
        ).json()
        cleared = (await client.patch("/api/settings", json={"customInstructions": None})).json()
        bad = await client.patch("/api/settings", json={"customInstructions": 3})
    assert {"projectId", "createdAt", "updatedAt"} <= initial.keys()
    assert "customInstructions" not in initial
    assert updated["customInstructions"] == "Be brief."
    assert "customInstructions" not in cleared
    assert bad.status_code == 400 and bad.json()["code"] == "bad_request:api"


async def test_user_settings_merge_tool_permissions(kai_emulator: Emulator) -> None:
    async with http(kai_emulator) as client:
        initial = (await client.get("/api/settings/user")).json()
        one = await client.patch(
            "/api/settings/user", json={"toolPermissions": {"create_bucket": "always_allow"}}
        )
        two = await client.patch(
            "/api/settings/user", json={"toolPermissions": {"run_query": "blocked"}}
        )
        reset = await client.patch("/api/settings/user", json={"toolPermissions": None})
        bad = await client.patch("/api/settings/user", json={"toolPermissions": {"x": "sometimes"}})
        empty = await client.patch("/api/settings/user", json={})
        instructions = await client.patch("/api/settings/user", json={"customInstructions": "Hi"})
    assert initial["toolPermissions"] == {} and initial["userId"].startswith("user-")
    assert one.json()["toolPermissions"] == {"create_bucket": "always_allow"}
    assert two.json()["toolPermissions"] == {
        "create_bucket": "always_allow",
        "run_query": "blocked",
    }
    assert reset.json()["toolPermissions"] == {}
    assert bad.status_code == 400 and empty.status_code == 400
    assert instructions.json()["customInstructions"] == "Hi"


async def test_tools_list(kai_emulator: Emulator) -> None:
    async with http(kai_emulator) as client:
        tools = (await client.get("/api/settings/tools")).json()["tools"]
    by_name = {t["name"]: t for t in tools}
    assert by_name["list_tables"]["readOnly"] is True
    assert by_name["create_bucket"]["readOnly"] is False
    assert len(tools) >= 4
    assert all(set(t) == {"name", "description", "readOnly"} for t in tools)


async def test_suggestions(kai_emulator: Emulator) -> None:
    async with http(kai_emulator) as client:
        ok = await client.post("/api/suggestions", json={"context": "dashboard", "data": {"a": 1}})
        again = await client.post(
            "/api/suggestions", json={"context": "dashboard", "data": {"a": 1}}
        )
        bad = await client.post("/api/suggestions", json={"context": "kitchen", "data": {}})
    body = ok.json()
    assert body == again.json()  # deterministic
    assert body["suggestionSessionId"]
    assert body["suggestions"] and set(body["suggestions"][0]) == {
        "id",
        "label",
        "prompt",
        "priority",
        "category",
        "reasoning",
    }
    assert bad.status_code == 400 and bad.json()["code"] == "bad_request:api"


async def test_requests_are_recorded_without_the_token(kai_emulator: Emulator) -> None:
    async with http(kai_emulator) as client:
        await client.get("/api/history", params={"limit": 3})
    record = kai_emulator.state.requests[-1]
    assert (record.method, record.path, record.query, record.status) == (
        "GET",
        "/api/history",
        "limit=3",
        200,
    )
    assert kai_emulator.token not in repr(kai_emulator.state.requests)
