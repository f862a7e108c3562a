"""Tool approvals on both backends: the v6 re-POST (kai-assistant) and the waiting stream (kai-agent)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import trio
import trio.testing

from kai_core.testing import CallTool, Emulator, Say, Step, open_emulator

from .emulator_support import (
    approval_repost,
    chat_body,
    chunk_dicts,
    http,
    pending_approvals,
    post_chat,
    send,
    types,
)


class StreamReader:
    """Reads an SSE response chunk by chunk, so a test can act while the stream is open."""

    def __init__(self, response: httpx.Response) -> None:
        self._bytes = response.aiter_bytes()
        self._buffer = b""
        self.seen: list[dict[str, Any] | str] = []

    async def next(self) -> dict[str, Any] | str | None:
        """The next chunk (a dict), ``"[DONE]"``, or None at the end of the body."""
        while b"\n\n" not in self._buffer:
            try:
                self._buffer += await self._bytes.__anext__()
            except StopAsyncIteration:
                return None
        frame, self._buffer = self._buffer.split(b"\n\n", 1)
        text = frame.decode()
        if text.startswith(": "):
            return await self.next()
        payload = text.removeprefix("data: ")
        item: dict[str, Any] | str = payload if payload == "[DONE]" else json.loads(payload)
        self.seen.append(item)
        return item

    async def until(self, kind: str) -> dict[str, Any]:
        """Read up to and including the next chunk of this type."""
        while True:
            item = await self.next()
            assert item is not None, f"stream ended before {kind}: {self.seen}"
            if isinstance(item, dict) and item["type"] == kind:
                return item

    async def rest(self) -> list[dict[str, Any] | str]:
        """Read to the end; returns what was read by this call."""
        start = len(self.seen)
        while await self.next() is not None:
            pass
        return self.seen[start:]


# -- kai-agent --------------------------------------------------------------------------------


async def test_agent_stream_waits_for_the_approval_and_continues(kai_emulator: Emulator) -> None:
    body = chat_body("create a bucket called b7")
    async with (
        http(kai_emulator) as client,
        client.stream("POST", "/api/chat", json=body) as response,
    ):
        reader = StreamReader(response)
        with trio.fail_after(5):
            announced = await reader.until("tool-input-available")
        assert announced["toolName"] == "create_bucket"
        assert announced["input"] == {"name": "b7", "stage": "in"}
        call_id = announced["toolCallId"]
        # The stream stays open: the call waits, nothing else is sent.
        chat = kai_emulator.state.chats[body["id"]]
        assert list(chat.waiting) == [call_id]
        record = chat.last_stream
        assert record is not None
        written = len(record.frames)
        await trio.testing.wait_all_tasks_blocked()  # the emulator waits, in this trio run
        assert len(record.frames) == written and not record.closed
        assert "in.c-b7" not in kai_emulator.state.buckets
        stored = (await client.get(f"/api/chat/{body['id']}")).json()
        assert stored["messages"][-1]["parts"][-1]["state"] == "input-available"

        wrong = await client.post(
            f"/api/chat/{body['id']}/approval", json={"toolUseId": "call_999999", "approved": True}
        )
        assert wrong.status_code == 400 and wrong.json()["code"] == "bad_request:approval"
        answer = await client.post(
            f"/api/chat/{body['id']}/approval", json={"toolUseId": call_id, "approved": True}
        )
        assert answer.status_code == 200
        assert answer.json() == {"success": True, "toolUseId": call_id, "approved": True}
        with trio.fail_after(5):
            rest = await reader.rest()
    assert [x if isinstance(x, str) else x["type"] for x in rest] == [
        "tool-output-available",
        "finish-step",
        "data-usage",
        "start-step",
        "text-start",
        "text-delta",
        "text-delta",
        "text-end",
        "finish-step",
        "data-usage",
        "finish",
        "[DONE]",
    ]
    assert "tool-approval-request" not in [x["type"] for x in reader.seen if isinstance(x, dict)]
    assert kai_emulator.state.buckets["in.c-b7"]["created"] is True
    assert not kai_emulator.state.chats[body["id"]].waiting
    # Answering again: nothing waits any more (non-fatal 400 for clients).
    async with http(kai_emulator) as client:
        again = await client.post(
            f"/api/chat/{body['id']}/approval", json={"toolUseId": call_id, "approved": True}
        )
        stored = (await client.get(f"/api/chat/{body['id']}")).json()
    assert again.status_code == 400 and again.json()["code"] == "bad_request:approval"
    tool = next(p for p in stored["messages"][-1]["parts"] if p["type"] == "tool-create_bucket")
    assert tool["state"] == "output-available" and tool["output"]["id"] == "in.c-b7"


async def test_agent_denial_sends_output_denied(kai_emulator: Emulator) -> None:
    body = chat_body("create a bucket called nope")
    async with (
        http(kai_emulator) as client,
        client.stream("POST", "/api/chat", json=body) as response,
    ):
        reader = StreamReader(response)
        with trio.fail_after(5):
            call_id = (await reader.until("tool-input-available"))["toolCallId"]
            answer = await client.post(
                f"/api/chat/{body['id']}/approval",
                json={"toolUseId": call_id, "approved": False, "reason": "Not now"},
            )
            assert answer.json()["approved"] is False
            rest = await reader.rest()
    assert rest[0] == {"type": "tool-output-denied", "toolCallId": call_id}
    text = "".join(x["delta"] for x in rest if isinstance(x, dict) and x["type"] == "text-delta")
    assert text == "Understood, I did not run create_bucket (Not now)."
    assert not kai_emulator.state.buckets


async def test_agent_two_waiting_tools_answered_in_any_order(kai_emulator: Emulator) -> None:
    body = chat_body("create two buckets called left and right")
    async with (
        http(kai_emulator) as client,
        client.stream("POST", "/api/chat", json=body) as response,
    ):
        reader = StreamReader(response)
        with trio.fail_after(5):
            first = (await reader.until("tool-input-available"))["toolCallId"]
            second = (await reader.until("tool-input-available"))["toolCallId"]
            url = f"/api/chat/{body['id']}/approval"
            assert (
                await client.post(url, json={"toolUseId": second, "approved": False})
            ).is_success
            assert (await client.post(url, json={"toolUseId": first, "approved": True})).is_success
            rest = await reader.rest()
    outputs = [x for x in rest if isinstance(x, dict) and x["type"].startswith("tool-output")]
    assert [(o["type"], o["toolCallId"]) for o in outputs] == [
        ("tool-output-available", first),
        ("tool-output-denied", second),
    ]
    assert list(kai_emulator.state.buckets) == ["in.c-left"]


async def test_agent_permissions_skip_or_block_the_wait(kai_emulator: Emulator) -> None:
    async with http(kai_emulator) as client:
        await client.patch(
            "/api/settings/user", json={"toolPermissions": {"create_bucket": "always_allow"}}
        )
        allowed = chunk_dicts(await send(client, "create a bucket called fast"))
        await client.patch(
            "/api/settings/user", json={"toolPermissions": {"create_bucket": "blocked"}}
        )
        blocked = chunk_dicts(await send(client, "create a bucket called never"))
    assert any(c["type"] == "tool-output-available" for c in allowed)
    assert "in.c-fast" in kai_emulator.state.buckets
    error = next(c for c in blocked if c["type"] == "tool-output-error")
    assert "blocked" in error["errorText"]
    assert "in.c-never" not in kai_emulator.state.buckets
    assert blocked[-1]["type"] == "finish"


async def test_agent_new_message_ends_the_waiting_stream(kai_emulator: Emulator) -> None:
    body = chat_body("create a bucket called b1")
    async with (
        http(kai_emulator) as client,
        client.stream("POST", "/api/chat", json=body) as response,
    ):
        reader = StreamReader(response)
        with trio.fail_after(5):
            await reader.until("tool-input-available")
            follow_up = await send(client, "hello", body["id"])
            rest = await reader.rest()
    assert rest == [{"type": "abort", "reason": "A new message was sent"}, "[DONE]"]
    assert types(follow_up)[-2:] == ["finish", "[DONE]"]


async def test_agent_has_no_v6_repost_and_no_resume(kai_emulator: Emulator) -> None:
    async with http(kai_emulator) as client:
        body = chat_body("hello")
        await send(client, "hello", body["id"])
        chat = (await client.get(f"/api/chat/{body['id']}")).json()
        repost = approval_repost(chat, {})
        response, _ = await post_chat(client, repost)
        resume = await client.get(f"/api/chat/{body['id']}/stream")
    assert response.status_code == 400 and response.json()["code"] == "bad_request:api"
    assert resume.status_code == 404 and resume.json()["code"] == "not_found:stream"


async def test_leaving_the_emulator_does_not_hang_on_a_waiting_stream(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # On the mock clock a shutdown that waited (a grace period, a timeout) shows
    # as virtual seconds, whatever the machine's load.
    cut: list[Exception] = []

    async def read_waiting_stream(emulator: Emulator, task_status: trio.TaskStatus[None]) -> None:
        async with http(emulator) as client:
            body = chat_body("create a bucket called b1")
            async with client.stream("POST", "/api/chat", json=body) as response:
                reader = StreamReader(response)
                await reader.until("tool-input-available")
                task_status.started()
                try:
                    await reader.rest()
                except httpx.HTTPError as exc:
                    cut.append(exc)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            async with open_emulator() as emulator:
                await nursery.start(read_waiting_stream, emulator)
                stopping = trio.current_time()
            elapsed = trio.current_time() - stopping
    assert elapsed < 1.5
    assert cut  # the client saw the stream end without [DONE]


# -- kai-assistant (v6) -----------------------------------------------------------------------


@pytest.mark.kai_emulator(backend="assistant")
async def test_v6_two_approvals_answered_in_one_repost(kai_emulator: Emulator) -> None:
    async with http(kai_emulator) as client:
        body = chat_body("two buckets please")
        first = chunk_dicts(await send(client, "two buckets please", body["id"]))
        requests = [c for c in first if c["type"] == "tool-approval-request"]
        assert len(requests) == 2 and first[-1] == {"type": "finish", "finishReason": "tool-calls"}
        chat = (await client.get(f"/api/chat/{body['id']}")).json()
        assert len(pending_approvals(chat)) == 2
        partial = approval_repost(chat, {requests[0]["approvalId"]: (True, None)})
        response, missing = await post_chat(client, partial)
        assert response.status_code == 200
        assert chunk_dicts(missing)[1] == {
            "type": "error",
            "errorText": f"Tool result is missing for tool call {requests[1]['toolCallId']}.",
        }
        assert not kai_emulator.state.buckets
        full = approval_repost(
            chat,
            {requests[0]["approvalId"]: (True, None), requests[1]["approvalId"]: (False, "No")},
        )
        response, payloads = await post_chat(client, full)
    chunks = chunk_dicts(payloads)
    assert [c["type"] for c in chunks[:3]] == [
        "start",
        "tool-output-available",
        "tool-output-denied",
    ]
    text = "".join(c["delta"] for c in chunks if c["type"] == "text-delta")
    assert text == "Done: bucket in.c-b1 was created. Understood, I did not run create_bucket (No)."
    assert list(kai_emulator.state.buckets) == ["in.c-b1"]


@pytest.mark.kai_emulator(backend="assistant")
async def test_v6_new_message_while_approval_pending_is_an_error(kai_emulator: Emulator) -> None:
    async with http(kai_emulator) as client:
        body = chat_body("create a bucket called b1")
        first = chunk_dicts(await send(client, "create a bucket called b1", body["id"]))
        call_id = next(c for c in first if c["type"] == "tool-approval-request")["toolCallId"]
        payloads = await send(client, "never mind, hello", body["id"])
        chat = (await client.get(f"/api/chat/{body['id']}")).json()
    assert types(payloads) == ["start", "error", "[DONE]"]
    assert (
        chunk_dicts(payloads)[1]["errorText"] == f"Tool result is missing for tool call {call_id}."
    )
    assert [m["role"] for m in chat["messages"]] == ["user", "assistant", "user"]
    assert len(pending_approvals(chat)) == 1


@pytest.mark.kai_emulator(backend="assistant")
async def test_v6_replayed_approval_runs_the_tool_again(kai_emulator: Emulator) -> None:
    async with http(kai_emulator) as client:
        body = chat_body("create a bucket called b1")
        first = chunk_dicts(await send(client, "create a bucket called b1", body["id"]))
        approval_id = next(c for c in first if c["type"] == "tool-approval-request")["approvalId"]
        chat = (await client.get(f"/api/chat/{body['id']}")).json()
        repost = approval_repost(chat, {approval_id: (True, None)})
        await post_chat(client, repost)
        _, again = await post_chat(client, repost)
    error = next(c for c in chunk_dicts(again) if c["type"] == "tool-output-error")
    assert error["errorText"] == "Bucket in.c-b1 already exists"


@pytest.mark.kai_emulator(backend="assistant")
async def test_v6_repost_of_unknown_message_is_a_bad_request(kai_emulator: Emulator) -> None:
    async with http(kai_emulator) as client:
        body = chat_body("hello")
        await send(client, "hello", body["id"])
        chat = (await client.get(f"/api/chat/{body['id']}")).json()
        response, _ = await post_chat(client, approval_repost(chat, {}))
    assert response.status_code == 400 and response.json()["code"] == "bad_request:api"


# -- scripting ----------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["agent", "assistant"])
async def test_scripted_scenario_with_tool_runs_on_both_backends(backend: str) -> None:
    async with open_emulator(backend=backend) as emulator:  # type: ignore[arg-type]
        emulator.script(
            lambda text: [
                Step(
                    [Say("Looking."), CallTool("list_tables")],
                    after=lambda results: [Step([Say(f"Found {results[0].output['count']}.")])],
                )
            ],
            trigger="count them",
        )
        async with http(emulator) as client:
            chunks = chunk_dicts(await send(client, "please COUNT THEM"))
    text = "".join(c["delta"] for c in chunks if c["type"] == "text-delta")
    assert text == "Looking.Found 3."
