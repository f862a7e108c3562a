"""Live against the emulator, then replayed from the log: the same events.

Every built-in emulator scenario is run through a real :class:`Session`
(loopback HTTP, the real client, approvals decided by a policy callback) on
both backends, with the client logging into an :class:`EventLog`. Replaying
each chat from the log must yield exactly the events the session yielded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kai_core.events import Event, TextEvent
from kai_core.log import EventLog
from kai_core.policy import ApprovalDecision, ApprovalRequest
from kai_core.testing import open_emulator

PROMPTS = [
    "hello",
    "list my tables",
    "create a bucket called b1",
    "create two buckets called x1 and x2",
    "tell me about my project",
    "fail please",
    "boom",
    "abort",
    "think about it",
    "anything else",
]


async def _approve_unless_x2(request: ApprovalRequest) -> ApprovalDecision:
    if "x2" in str(request.input):
        return ApprovalDecision.reject("not that one")
    return ApprovalDecision.approve()


@pytest.fixture
async def recorded(
    tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[EventLog, dict[str, list[Event]]]]:
    from kai_core.client import KaiClient
    from kai_core.session import Session

    backend = request.param
    live: dict[str, list[Event]] = {}
    with EventLog(tmp_path / "kai.db") as log:
        async with open_emulator(backend=backend) as emulator:
            async with KaiClient(
                storage_api_token=emulator.token,
                storage_api_url=emulator.storage_api_url,
                base_url=emulator.base_url,
                backend=emulator.backend,
                log=log,
            ) as client:
                for prompt in PROMPTS:
                    session = Session(client, ask=_approve_unless_x2)
                    events = live.setdefault(session.chat_id, [])
                    async for event in session.send(prompt):
                        events.append(event)
        yield log, live


@pytest.mark.parametrize("recorded", ["assistant", "agent"], indirect=True)
async def test_every_scenario_replays_as_it_streamed(
    recorded: tuple[EventLog, dict[str, list[Event]]],
) -> None:
    log, live = recorded
    assert len(live) == len(PROMPTS)
    kinds = {e.type for events in live.values() for e in events}
    assert {"tool-approval-request", "approval-decision", "tool-output-denied"} <= kinds
    for chat_id, events in live.items():
        replayed = list(log.replay_events(chat_id))
        assert [e.type for e in replayed] == [e.type for e in events], chat_id
        assert replayed == events, chat_id
        text = "".join(e.text for e in events if isinstance(e, TextEvent))
        assert "".join(e.text for e in replayed if isinstance(e, TextEvent)) == text
    # and the projections hold the answers
    assert log.search("bucket")
    assert len(log.chats()) == len(PROMPTS)
