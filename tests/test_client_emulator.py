"""Every KaiClient method against the emulated backend, over loopback, on both backends."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

import msgspec
import pytest
import trio
import trio.testing

from kai_core.client import KaiClient
from kai_core.discovery import KaiBackend
from kai_core.events import (
    Event,
    FinishEvent,
    TextEvent,
    ToolApprovalRequestEvent,
    ToolCallEvent,
    ToolOutputDeniedEvent,
)
from kai_core.exceptions import (
    KaiAuthenticationError,
    KaiBadRequestError,
    KaiConnectionError,
    KaiError,
    KaiForbiddenError,
    KaiNotFoundError,
    KaiRateLimitError,
    KaiStreamError,
    KaiTimeoutError,
)
from kai_core.log import EventLog
from kai_core.testing import Emulator, open_emulator

Backend = Literal["agent", "assistant"]
SECRET = "sapi-777-very-secret-token"


@asynccontextmanager
async def connected(
    backend: Backend = "assistant", *, token: str | None = SECRET, **options: Any
) -> AsyncIterator[tuple[Emulator, KaiClient]]:
    emulator_options = {k: options.pop(k) for k in ("resume_window",) if k in options}
    async with open_emulator(backend=backend, token=token, **emulator_options) as emulator:
        client = await KaiClient.from_storage_api(
            emulator.token, emulator.storage_api_url, **options
        )
        async with client:
            yield emulator, client


def no_secret(*values: object) -> None:
    for value in values:
        assert SECRET not in str(value)
        assert SECRET not in repr(value)


async def drain(stream: AsyncIterator[Event]) -> list[Event]:
    return [event async for event in stream]


def text_of(events: list[Event]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextEvent))


# -- plain requests ---------------------------------------------------------------


@pytest.mark.parametrize("backend", ["agent", "assistant"])
async def test_discovery_ping_info(backend: Backend) -> None:
    async with connected(backend) as (emulator, client):
        assert client.base_url == emulator.base_url
        assert client.backend == f"kai-{backend}"
        no_secret(client)
        assert (await client.ping()).timestamp
        info = await client.info()
        assert info.app_name and info.connected_mcp


async def test_discovery_wrong_service() -> None:
    async with open_emulator(backend="assistant") as emulator:
        with pytest.raises(KaiError) as info:
            await KaiClient.from_storage_api(
                emulator.token, emulator.storage_api_url, service=KaiBackend.AGENT
            )
    assert info.value.code == "discovery:service_not_found"


@pytest.mark.parametrize("backend", ["agent", "assistant"])
async def test_chat_returns_id_and_full_text(backend: Backend) -> None:
    async with connected(backend) as (emulator, client):
        chat_id, text = await client.chat("hello")
        assert text.startswith("Hello!")
        assert chat_id in emulator.state.chats
        chat_id2, _ = await client.chat("hi again", chat_id=chat_id)
        assert chat_id2 == chat_id
        detail = await client.get_chat(chat_id)
        assert [m.role for m in detail.messages] == ["user", "assistant"] * 2
        assert detail.messages[0].parts == [{"type": "text", "text": "hello"}]


@pytest.mark.parametrize("backend", ["agent", "assistant"])
async def test_read_only_tool_and_log(backend: Backend, tmp_path: Path) -> None:
    log = EventLog(tmp_path / "kai.db")
    async with connected(backend, log=log) as (_emulator, client):
        chat_id = client.new_chat_id()
        events = await drain(client.send_message(chat_id, "list my tables"))
    assert not [e for e in events if isinstance(e, ToolApprovalRequestEvent)]
    calls = [e for e in events if isinstance(e, ToolCallEvent)]
    assert [c.state for c in calls] == ["started", "input-available", "output-available"]
    assert calls[-1].tool_name == "list_tables"
    assert isinstance(events[-1], FinishEvent)
    records = log.events(chat_id)
    assert records[0].type == "user-message" and records[0].origin == "client"
    assert {r.turn for r in records} == {records[0].turn}
    assert [r.type for r in records if r.origin == "server"][0] == "start"
    assert SECRET.encode() not in b"".join(r.body for r in records)


async def test_history_pages_and_get_all_history_reaches_every_chat() -> None:
    async with connected() as (emulator, client):
        ids = [(await client.chat(f"question {n}"))[0] for n in range(23)]
        page = await client.get_history(limit=10)
        assert len(page.chats) == 10 and page.has_more
        assert [c.id for c in page.chats] == ids[::-1][:10]
        older = await client.get_history(limit=10, ending_before=page.chats[-1].id)
        assert [c.id for c in older.chats] == ids[::-1][10:20]
        newer = await client.get_history(limit=50, starting_after=ids[20])
        assert [c.id for c in newer.chats] == ids[::-1][:2]
        every = [chat.id async for chat in client.get_all_history(batch_size=5)]
        assert every == ids[::-1]
        assert len(emulator.state.chats) == 23
        with pytest.raises(KaiBadRequestError) as info:
            await client.get_history(starting_after=ids[0], ending_before=ids[1])
        assert info.value.code == "bad_request:api"


async def test_get_all_history_break_early_is_clean() -> None:
    async with connected() as (_emulator, client):
        for n in range(3):
            await client.chat(f"q{n}")
        async for _chat in client.get_all_history(batch_size=1):
            break


async def test_delete_chat(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "kai.db")
    async with connected(log=log) as (_emulator, client):
        chat_id, _ = await client.chat("hello")
        await client.delete_chat(chat_id)
        with pytest.raises(KaiNotFoundError) as info:
            await client.get_chat(chat_id)
        assert info.value.code == "not_found:chat"
        with pytest.raises(KaiForbiddenError):
            await client.delete_chat(chat_id)
    assert log.events(chat_id)[-1].type == "delete-chat"


async def test_votes(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "kai.db")
    async with connected(log=log) as (_emulator, client):
        chat_id, _ = await client.chat("hello")
        message_id = (await client.get_chat(chat_id)).messages[-1].id
        vote = await client.upvote(chat_id, message_id)
        assert (vote.type, vote.is_upvoted) == ("up", True)
        votes = await client.get_votes(chat_id)
        assert [(v.message_id, v.type, v.is_upvoted) for v in votes] == [(message_id, "up", True)]
        await client.downvote(chat_id, message_id)
        assert [v.type for v in await client.get_votes(chat_id)] == ["down"]
        with pytest.raises(ValueError):
            await client.vote(chat_id, message_id, "sideways")
    votes_logged = [msgspec.json.decode(r.body) for r in log.events(chat_id) if r.type == "vote"]
    assert votes_logged == [
        {"message_id": message_id, "type": "up"},
        {"message_id": message_id, "type": "down"},
    ]


@pytest.mark.parametrize("backend", ["agent", "assistant"])
async def test_usage_settings_tools_suggestions(backend: Backend) -> None:
    async with connected(backend) as (_emulator, client):
        await client.chat("hello")
        usage = await client.get_usage()
        assert usage.messages_used == 1 and usage.messages_limit > 1
        assert (await client.get_settings()).project_id
        updated = await client.update_settings(custom_instructions="Be brief.")
        assert updated.custom_instructions == "Be brief."
        assert (await client.update_settings(custom_instructions=None)).custom_instructions is None
        assert (await client.update_settings()).custom_instructions is None
        user = await client.get_user_settings()
        assert user.user_id
        user = await client.update_user_settings(tool_permissions={"create_bucket": "always_allow"})
        assert user.tool_permissions == {"create_bucket": "always_allow"}
        user = await client.update_user_settings(custom_instructions="Hi")
        assert user.custom_instructions == "Hi"
        with pytest.raises(ValueError):
            await client.update_user_settings()
        tools = {t.name: t.read_only for t in (await client.get_tools()).tools}
        assert tools["list_tables"] is True and tools["create_bucket"] is False
        suggestions = await client.get_suggestions("dashboard", {"page": "home"})
        assert suggestions.suggestions and suggestions.suggestions[0].prompt


# -- v6 approvals (kai-assistant) -------------------------------------------------


async def test_v6_approve_tool_continues_the_same_message(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "kai.db")
    async with connected("assistant", log=log) as (emulator, client):
        chat_id = client.new_chat_id()
        first = await drain(client.send_message(chat_id, "create a bucket called b1"))
        (request,) = [e for e in first if isinstance(e, ToolApprovalRequestEvent)]
        assert request.transport == "v6" and request.tool_name == "create_bucket"
        assert isinstance(first[-1], FinishEvent) and first[-1].finish_reason == "tool-calls"
        async with client.approve_tool(chat_id, request.approval_id) as events:
            rest = await drain(events)
            assert events.assembler is not None
            message = events.assembler.message
        outputs = [
            e for e in rest if isinstance(e, ToolCallEvent) and e.state == "output-available"
        ]
        assert outputs and outputs[0].output["id"] == "in.c-b1"
        assert "in.c-b1" in text_of(rest)
        assert "in.c-b1" in emulator.state.buckets
        # the continuation extended the message that asked
        detail = await client.get_chat(chat_id)
        assert detail.messages[-1].id == message["id"]
        part = next(p for p in detail.messages[-1].parts if p["type"] == "tool-create_bucket")
        assert part["approval"]["approved"] is True
        assert "inputSchemaInput" in part["approval"]
        with pytest.raises(KaiError) as info:
            await drain(client.approve_tool(chat_id, request.approval_id))
        assert info.value.code == "approval:already_answered"
    turns = {r.turn for r in log.events(chat_id)}
    assert len(turns) == 2


async def test_v6_reject_tool_with_reason() -> None:
    async with connected("assistant") as (emulator, client):
        chat_id = client.new_chat_id()
        first = await drain(client.send_message(chat_id, "create a bucket called b2"))
        (request,) = [e for e in first if isinstance(e, ToolApprovalRequestEvent)]
        rest = await drain(client.reject_tool(chat_id, request.approval_id, reason="Not now"))
        assert [e for e in rest if isinstance(e, ToolOutputDeniedEvent)]
        assert "in.c-b2" not in emulator.state.buckets
        part = next(
            p
            for p in (await client.get_chat(chat_id)).messages[-1].parts
            if p["type"] == "tool-create_bucket"
        )
        assert part["state"] == "output-denied"


async def test_v6_answer_approvals_answers_all_in_one_request() -> None:
    async with connected("assistant") as (emulator, client):
        chat_id = client.new_chat_id()
        first = await drain(client.send_message(chat_id, "two buckets please"))
        requests = [e for e in first if isinstance(e, ToolApprovalRequestEvent)]
        assert len(requests) == 2
        answers = {requests[0].approval_id: (True, None), requests[1].approval_id: (False, "no")}
        before = len(emulator.state.requests)
        rest = await drain(client.answer_approvals(chat_id, answers))
        posts = [r for r in emulator.state.requests[before:] if r.method == "POST"]
        assert len(posts) == 1
        assert [e for e in rest if isinstance(e, ToolOutputDeniedEvent)]
        assert [e for e in rest if isinstance(e, ToolCallEvent) and e.state == "output-available"]


async def test_v6_unknown_approval_on_either_backend() -> None:
    async with connected("assistant") as (_emulator, client):
        chat_id, _ = await client.chat("hello")
        with pytest.raises(KaiError) as info:
            await drain(client.approve_tool(chat_id, "aitxt-nope"))
        assert info.value.code == "approval:not_found"
    async with connected("agent") as (_emulator, client):
        # A v6 request can come from any backend; kai-agent's own chats hold none.
        chat_id, _ = await client.chat("hello")
        with pytest.raises(KaiError) as info:
            await drain(client.approve_tool(chat_id, "aitxt-nope"))
        assert info.value.code == "approval:not_found"


async def test_legacy_tool_result_is_refused_by_the_server(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "kai.db")
    async with connected("assistant", log=log) as (_emulator, client):
        chat_id, _ = await client.chat("hello")
        for stream in (
            client.confirm_tool(chat_id, "call_1", "create_bucket"),
            client.deny_tool(chat_id, "call_1", "create_bucket"),
            client.send_tool_result(chat_id, "call_1", "create_bucket", "ok"),
        ):
            with pytest.raises(KaiBadRequestError) as info:
                await drain(stream)
            assert "non-empty content" in str(info.value)
    records = log.events(chat_id)
    assert records[-1].type == "stream-error"
    body = msgspec.json.decode(records[-2].body)
    assert body["message"]["parts"][0]["type"] == "tool-result"


# -- kai-agent approvals ----------------------------------------------------------


@pytest.mark.parametrize(("approved", "reason"), [(True, None), (False, "not today")])
async def test_agent_approval_while_the_stream_waits(approved: bool, reason: str | None) -> None:
    async with connected("agent") as (emulator, client):
        chat_id = client.new_chat_id()
        events: list[Event] = []
        async with client.stream_message(chat_id, "create a bucket called b3") as stream:
            async for event in stream:
                events.append(event)
                if isinstance(event, ToolApprovalRequestEvent):
                    assert event.transport == "agent"
                    assert event.approval_id == event.tool_call_id
                    answer = await client.submit_approval(
                        chat_id, event.approval_id, approved, reason=reason
                    )
                    assert answer.success and answer.tool_use_id == event.tool_call_id
                    assert answer.approved is approved
        assert isinstance(events[-1], FinishEvent)
        assert ("in.c-b3" in emulator.state.buckets) is approved
        with pytest.raises(KaiBadRequestError):
            await client.submit_approval(chat_id, "call_nope", True)


async def test_agent_tool_policy_follows_permissions() -> None:
    async with connected("agent") as (_emulator, client):
        await client.update_user_settings(
            tool_permissions={"create_bucket": "always_allow", "list_tables": "always_ask"}
        )
        policy = await client.tool_policy()
        assert not policy.waits("create_bucket")
        assert policy.waits("list_tables")
        assert not policy.waits("get_project_info")
        assert policy.waits("some_unknown_tool")
        chat_id = client.new_chat_id()
        events = await drain(client.send_message(chat_id, "create a bucket called b4"))
        assert not [e for e in events if isinstance(e, ToolApprovalRequestEvent)]
        assert isinstance(events[-1], FinishEvent)


async def test_agent_tool_policy_fails_closed() -> None:
    async with connected("agent") as (emulator, client):
        emulator.faults.scope = "all"
        emulator.faults.fail(times=2, status=503)
        policy = await client.tool_policy()
        assert policy.read_only is None
        assert policy.waits("list_tables") and policy.waits("create_bucket")
        refreshed = await client.tool_policy(refresh=True)
        assert not refreshed.waits("list_tables")


# -- resume -----------------------------------------------------------------------


async def test_resume_replays_the_last_answer_and_skips(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "kai.db")
    async with connected("assistant", log=log) as (_emulator, client):
        chat_id = client.new_chat_id()
        live = await drain(client.send_message(chat_id, "hello"))
        again = await drain(client.resume_stream(chat_id))
        assert [e.type for e in again] == [e.type for e in live]
        assert text_of(again) == text_of(live)
        skipped = await drain(client.resume_stream(chat_id, skip=3))
        assert len(skipped) < len(live)
        assert skipped[-1].type == "finish"
    resumes = [msgspec.json.decode(r.body) for r in log.events(chat_id) if r.type == "resume"]
    assert resumes == [{"skipped": 0}, {"skipped": 3}]


async def test_resume_with_nothing_running_is_empty() -> None:
    async with connected("assistant", resume_window=0) as (_emulator, client):
        chat_id, _ = await client.chat("hello")
        async with client.resume_stream(chat_id) as events:
            assert await drain(events) == []
            assert events.finished


async def test_resume_on_agent_is_not_found() -> None:
    async with connected("agent") as (_emulator, client):
        with pytest.raises(KaiNotFoundError):
            await drain(client.resume_stream(client.new_chat_id()))


# -- errors -----------------------------------------------------------------------


async def test_unauthorized() -> None:
    async with open_emulator(token=SECRET) as emulator:
        wrong = "wrong-" + SECRET
        async with KaiClient(wrong, emulator.storage_api_url, emulator.base_url) as client:
            with pytest.raises(KaiAuthenticationError) as info:
                await client.get_history()
            assert info.value.code == "unauthorized:chat"
            no_secret(info.value, client)
            assert wrong not in str(info.value)
            with pytest.raises(KaiAuthenticationError):
                await drain(client.send_message(client.new_chat_id(), "hello"))


async def test_forbidden_other_users_chat() -> None:
    async with connected(token=None) as (emulator, client):
        chat_id, _ = await client.chat("hello")
        other = KaiClient("another-token", emulator.storage_api_url, emulator.base_url)
        async with other:
            with pytest.raises(KaiForbiddenError) as info:
                await other.get_chat(chat_id)
        assert info.value.code == "forbidden:chat"


async def test_bad_request_on_bad_chat_id() -> None:
    async with connected() as (_emulator, client):
        with pytest.raises(KaiBadRequestError) as info:
            await drain(client.send_message("not-a-uuid", "hello"))
        assert info.value.code == "bad_request:api"
        no_secret(info.value)


async def test_rate_limit_on_post_is_raised_with_retry_after() -> None:
    async with connected() as (emulator, client):
        emulator.faults.rate_limit(times=1, retry_after=9)
        with pytest.raises(KaiRateLimitError) as info:
            await drain(client.send_message(client.new_chat_id(), "hello"))
        assert info.value.retry_after == 9
        assert info.value.code == "rate_limit:chat"
        no_secret(info.value)


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_error_on_post_is_not_retried(status: int) -> None:
    async with connected() as (emulator, client):
        emulator.faults.fail(times=1, status=status)
        with pytest.raises(KaiError) as info:
            await drain(client.send_message(client.new_chat_id(), "hello"))
        assert info.value.code == "offline:chat"
        _, text = await client.chat("hello")  # the fault was used up
        assert text


async def test_get_retries_on_429_and_5xx_with_autojump(autojump_clock: trio.abc.Clock) -> None:
    async with connected() as (emulator, client):
        emulator.faults.scope = "all"
        emulator.faults.rate_limit(times=1, retry_after=5)
        start = trio.current_time()
        await client.get_history()
        assert trio.current_time() - start >= 5
        emulator.faults.fail(times=2, status=502)
        await client.get_usage()
        emulator.faults.fail(times=10, status=503)
        with pytest.raises(KaiError) as info:
            await client.get_usage()
        assert info.value.code == "offline:chat"


async def test_connection_refused_after_the_server_is_gone(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with open_emulator() as emulator:
        client = KaiClient(emulator.token, emulator.storage_api_url, emulator.base_url)
    async with client:
        with pytest.raises(KaiConnectionError) as info:
            await client.get_history()
        assert emulator.base_url in str(info.value)
        with pytest.raises(KaiConnectionError):
            await drain(client.send_message(client.new_chat_id(), "hello"))
        no_secret(info.value)


async def test_stream_read_timeout() -> None:
    async with connected(stream_read_timeout=0.2) as (emulator, client):
        emulator.faults.chunk_delay = 1.0
        with pytest.raises(KaiTimeoutError) as info:
            await drain(client.send_message(client.new_chat_id(), "hello"))
        assert info.value.code == "timeout:stream_read"


@pytest.mark.parametrize("backend", ["agent", "assistant"])
async def test_stream_cut_raises_after_delivering(backend: Backend, tmp_path: Path) -> None:
    log = EventLog(tmp_path / "kai.db")
    # resume_attempts=0: kai-assistant would resume the cut stream (tests/test_reliability_resume.py)
    async with connected(backend, log=log, resume_attempts=0) as (emulator, client):
        emulator.faults.drop_connection(after=4)
        chat_id = client.new_chat_id()
        got: list[Event] = []
        with pytest.raises(KaiStreamError) as info:
            async for event in client.send_message(chat_id, "hello"):
                got.append(event)
        assert info.value.code == "stream:cut"
        assert info.value.events_delivered == len(got)
        assert f"cut after {len(got)} events" in str(info.value)
    records = log.events(chat_id)
    assert [r.origin for r in records].count("server") == 4
    assert records[-1].type == "stream-error"


async def test_malformed_chunk() -> None:
    async with connected() as (emulator, client):
        emulator.faults.inject_malformed(at=2)
        with pytest.raises(KaiStreamError) as info:
            await drain(client.send_message(client.new_chat_id(), "hello"))
        assert info.value.events_delivered >= 1


@pytest.mark.filterwarnings("error")
async def test_break_early_releases_the_connection(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    log = EventLog(tmp_path / "kai.db")
    async with connected(log=log) as (emulator, client):
        emulator.faults.chunk_delay = 0.05
        chat_id = client.new_chat_id()
        async for event in client.send_message(chat_id, "hello"):
            assert event is not None
            break
        gc.collect()
        await trio.testing.wait_all_tasks_blocked()
        assert client._http.http._transport._pool.connections == []  # type: ignore[attr-defined]
        assert log.events(chat_id)[-1].type == "cancelled"
        # the client still works
        assert (await client.chat("hello"))[1]


@pytest.mark.filterwarnings("error")
async def test_cancelled_stream_is_logged(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "kai.db")
    async with connected(log=log) as (emulator, client):
        emulator.faults.chunk_delay = 0.05
        chat_id = client.new_chat_id()
        n = 0
        with trio.move_on_after(0.12):
            async for _event in client.send_message(chat_id, "hello"):
                n += 1
        last = log.events(chat_id)[-1]
        assert last.type == "cancelled"
        assert msgspec.json.decode(last.body) == {"events_delivered": n}
