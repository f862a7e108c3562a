"""kai-client 0.13's request extras against the emulator over loopback.

``branch_id`` (``branchId``), ``tool_restrictions`` (``toolRestrictions``,
first message wins) and ``submit_approval(..., updated_input, answers)``:
the client sends them, the emulator honours them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from kai_core import KaiBadRequestError, KaiClient, ToolRestrictions
from kai_core.events import Event, ToolApprovalRequestEvent, ToolCallEvent, ToolOutputErrorEvent
from kai_core.testing import CallTool, Emulator, Say, Step, Tool, open_emulator


@asynccontextmanager
async def agent() -> AsyncIterator[tuple[Emulator, KaiClient]]:
    async with open_emulator(backend="agent") as emulator:
        client = await KaiClient.from_storage_api(emulator.token, emulator.storage_api_url)
        async with client:
            yield emulator, client


async def collect(stream: Any) -> list[Event]:
    return [event async for event in stream]


async def test_branch_id_is_sent_and_kept_with_the_chat() -> None:
    async with agent() as (emulator, client):
        chat_id = client.new_chat_id()
        await collect(client.send_message(chat_id, "hello", branch_id=4711))
        chats = emulator.app.state.chats
        assert chats[chat_id].branch_id == 4711
        _, text = await client.chat("hello again", chat_id=chat_id, branch_id=4712)
        assert text and chats[chat_id].branch_id == 4712
        plain = client.new_chat_id()
        await collect(client.send_message(plain, "hello"))
        assert chats[plain].branch_id is None and chats[plain].tool_restrictions is None


def tool_errors(events: list[Event]) -> list[str]:
    return [e.error_text for e in events if isinstance(e, ToolOutputErrorEvent)]


async def test_tool_restrictions_are_honoured_and_the_first_message_wins() -> None:
    async with agent() as (_, client):
        read_only = client.new_chat_id()
        events = await collect(
            client.send_message(
                read_only,
                "create a bucket called b1",
                tool_restrictions=ToolRestrictions(read_only_mode=True),
            )
        )
        assert tool_errors(events) == [
            "Tool create_bucket is not read-only; this chat is in read-only mode."
        ]
        # Later restrictions of the same chat are ignored: still read-only.
        again = await collect(
            client.send_message(
                read_only,
                "create a bucket called b2",
                tool_restrictions=ToolRestrictions(allowed_tools=["create_bucket"]),
            )
        )
        assert tool_errors(again) == [
            "Tool create_bucket is not read-only; this chat is in read-only mode."
        ]

        denied = client.new_chat_id()
        listed = await collect(
            client.stream_message(
                denied,
                "list my tables",
                tool_restrictions=ToolRestrictions(disallowed_tools=["list_tables"]),
            )
        )
        assert tool_errors(listed) == ["Tool list_tables is disallowed in this chat."]

        allowed = client.new_chat_id()
        fine = await collect(
            client.send_message(
                allowed,
                "list my tables",
                tool_restrictions=ToolRestrictions(allowed_tools=["list_tables"]),
            )
        )
        assert tool_errors(fine) == []
        assert any(isinstance(e, ToolCallEvent) and e.state == "output-available" for e in fine)


async def test_malformed_tool_restrictions_are_a_bad_request() -> None:
    async with agent() as (_, client):
        bad = ToolRestrictions(allowed_tools="list_tables")  # type: ignore[arg-type]
        with pytest.raises(KaiBadRequestError, match="allowedTools must be a list"):
            await collect(client.send_message(client.new_chat_id(), "hi", tool_restrictions=bad))


async def test_submit_approval_sends_updated_input_and_answers() -> None:
    async with agent() as (emulator, client):
        emulator.add_tool(Tool("ask", "Ask the user.", False, lambda i, _s: i))
        emulator.script(
            lambda _t: [Step([Say("Asking."), CallTool("ask", {"question": "which?"})])],
            trigger="ask me",
        )
        chat_id = client.new_chat_id()
        events: list[Event] = []
        async with client.stream_message(chat_id, "ask me") as stream:
            async for event in stream:
                events.append(event)
                if isinstance(event, ToolApprovalRequestEvent):
                    # The stream waits open for this answer (kai-agent).
                    await client.submit_approval(
                        chat_id,
                        event.tool_call_id,
                        True,
                        updated_input={"question": "which table?"},
                        answers={"which table?": "orders"},
                    )
        (output,) = [e for e in events if isinstance(e, ToolCallEvent) and e.output is not None]
        assert output.output == {"question": "which table?", "answers": {"which table?": "orders"}}
