"""Testing your own code against the emulated Kai, with kai's pytest fixtures.

    uv run pytest docs/examples/test_with_emulator.py

The ``kai_emulator`` and ``kai_client`` fixtures come with kai (its pytest
plugin is registered when kai is installed); async tests need pytest-trio
with ``trio_mode = true`` in your pytest configuration.
"""

from __future__ import annotations

import pytest

from kai_core import KaiClient, KaiStreamError, Session
from kai_core.testing import CallTool, Emulator, Say, Step, ToolResult


async def count_tables(client: KaiClient) -> str:
    """The code under test: it asks Kai a question and returns the answer."""
    _chat_id, answer = await client.chat("How many tables do I have?")
    return answer


async def test_scripted_answer(kai_emulator: Emulator, kai_client: KaiClient) -> None:
    kai_emulator.script(lambda text: [Say("You have 3 tables.")], trigger="how many tables")
    assert await count_tables(kai_client) == "You have 3 tables."
    assert len(kai_emulator.state.chats) == 1


@pytest.mark.kai_emulator(backend="assistant")  # play the legacy backend for this test
async def test_a_write_tool_is_rejected_when_nobody_decides(
    kai_emulator: Emulator, kai_client: KaiClient
) -> None:
    def respond(text: str) -> list[Step]:
        def after(results: list[ToolResult]) -> list[Step]:
            return [Step([Say(f"The tool ended as: {results[0].status}.")])]

        return [Step([Say("Creating it."), CallTool("create_bucket", {"name": "x"})], after=after)]

    kai_emulator.script(respond, trigger="make bucket x")
    session = Session(kai_client)  # no approval policies and nobody to ask
    events = [event async for event in session.send("make bucket x")]

    decision = next(e for e in events if e.type == "approval-decision")
    assert not decision.approved and decision.decided_by == "no-terminal"
    assert "".join(e.text for e in events if e.type == "text").endswith("ended as: denied.")
    assert kai_emulator.state.buckets == {}


async def test_a_cut_stream_raises_after_what_arrived(
    kai_emulator: Emulator, kai_client: KaiClient
) -> None:
    kai_emulator.faults.drop_connection(after=3)  # the next answer stops after 3 chunks
    received = []
    with pytest.raises(KaiStreamError) as failure:
        async for event in kai_client.send_message(kai_client.new_chat_id(), "hello"):
            received.append(event)
    assert failure.value.code == "stream:cut"
    assert failure.value.events_delivered == len(received)
