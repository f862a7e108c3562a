"""Replay yields exactly what the live stream yielded, instantly or at the recorded pace."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import aclosing
from pathlib import Path

import pytest
import trio
import trio.testing

from kai_core.assemble import MessageAssembler
from kai_core.chunks import decode_chunk
from kai_core.events import ApprovalDecisionEvent, Event, TextEvent
from kai_core.log import EventLog

from .log_common import Recorder, new_log, payloads


@pytest.fixture
def log(tmp_path: Path) -> Iterator[EventLog]:
    """A fresh event log, closed after the test."""
    with new_log(tmp_path) as opened:
        yield opened


FIXTURES = [
    "hello.sse",
    "tables.sse",
    "boom.sse",
    "abort.sse",
    "think.sse",
    "sources.sse",
    "image.sse",
    "metadata.sse",
    "invalid-tool-input.sse",
    "dynamic-tool.sse",
    "keepalive.sse",
    "slow-dropped.sse",
]


@pytest.mark.parametrize("read_size", [1, 4, 100])
def test_replay_equals_live_for_every_fixture(log: EventLog, read_size: int) -> None:
    rec = Recorder(log, read_size=read_size)
    for name in FIXTURES:
        rec.send(f"please {name}", name)
    replayed = list(log.replay_events(rec.chat_id))
    assert replayed == rec.live


def test_replay_v6_approval_flow(log: EventLog) -> None:
    rec = Recorder(log)
    rec.send("create a bucket called b1", "bucket-request.sse")
    rec.answer_v6(True, None, "bucket-approved.sse")
    rec.send("again please", "bucket-request.sse")
    rec.answer_v6(False, "Not now", "bucket-denied.sse")
    replayed = list(log.replay_events(rec.chat_id))
    assert replayed == rec.live
    assert sum(isinstance(e, ApprovalDecisionEvent) for e in replayed) == 2
    without = list(log.replay_events(rec.chat_id, decisions=False))
    assert without == [e for e in rec.live if not isinstance(e, ApprovalDecisionEvent)]


def test_replay_agent_approval_flow(log: EventLog) -> None:
    rec = Recorder(log, read_size=2)
    turn = rec.user("create a bucket")
    rec.assembler = MessageAssembler(agent_waiting=lambda name: name == "create_bucket")
    chunks = [p for p in payloads("bucket-request.sse") if b"approval-request" not in p]
    rec.stream(chunks, turn=turn, agent_decide={"call_000002": (True, None)})
    replayed = list(log.replay_events(rec.chat_id))
    assert [e.type for e in replayed] == [e.type for e in rec.live]
    assert replayed == rec.live
    assert "approval-decision" in [e.type for e in replayed]


def test_replayed_chat_renders_the_same_text(log: EventLog) -> None:
    rec = Recorder(log)
    rec.send("list my tables", "tables.sse")
    live_text = "".join(e.text for e in rec.live if isinstance(e, TextEvent))
    replay_text = "".join(
        e.text for e in log.replay_events(rec.chat_id) if isinstance(e, TextEvent)
    )
    assert replay_text == live_text and "3 tables" in live_text
    steps = list(log.replay_steps(rec.chat_id))
    assert steps[0].record.type == "user-message" and steps[0].events == []


def test_unknown_chat_replays_nothing(log: EventLog) -> None:
    assert list(log.replay_events("nope")) == []
    assert not log.has_chat("nope")


async def test_async_replay_instant(log: EventLog) -> None:
    rec = Recorder(log)
    rec.send("hello", "hello.sse")
    got: list[Event] = []
    async with log.replay(rec.chat_id) as events:
        async for event in events:
            got.append(event)
    assert got == rec.live
    async with aclosing(log.replay(rec.chat_id)) as events:  # or as a plain async iterator
        first = [event async for event in events][:1]
    assert first == rec.live[:1]
    async with log.replay(rec.chat_id) as events:
        async for _ in events:
            break  # leaving early closes it


async def test_async_replay_keeps_recorded_pace(
    log: EventLog,
    autojump_clock: trio.testing.MockClock,
) -> None:
    rec = Recorder(log, read_size=1)  # each read is 0.25 s after the previous record
    rec.send("hello", "hello.sse")
    records_with_events = [s for s in log.replay_steps(rec.chat_id) if s.events]
    span = records_with_events[-1].record.ts - records_with_events[0].record.ts
    start = trio.current_time()
    got = []
    async with aclosing(log.replay(rec.chat_id, speed=2.0)) as events:
        async for event in events:
            got.append((trio.current_time() - start, event))
    assert [e for _, e in got] == rec.live
    assert got[-1][0] == pytest.approx(span / 2.0)
    start = trio.current_time()
    async with aclosing(log.replay(rec.chat_id, speed=1.0, max_delay=0.1)) as events:
        async for _ in events:
            pass
    assert trio.current_time() - start == pytest.approx(0.1 * (len(records_with_events) - 1))


async def test_bad_speed(log: EventLog) -> None:
    with pytest.raises(ValueError):
        async with aclosing(log.replay("x", speed=0)) as events:
            async for _ in events:
                pass


def test_replay_resumed_stream(log: EventLog) -> None:
    rec = Recorder(log, read_size=2)
    chunks = payloads("tables.sse")
    cut = next(i for i, p in enumerate(chunks) if b"data-usage" in p) + 1  # after step 1's usage
    turn = rec.user("list my tables")
    rec.stream(chunks[:cut], turn=turn)
    rec.client_record(turn, "stream-error", {"code": "stream:cut", "message": "cut"})
    # The client resumes: the server sends the whole answer again, the first
    # `cut` chunks are folded into a fresh assembler but not logged or yielded.
    resumed = uuid.uuid4().hex
    rec.client_record(resumed, "resume", {"skipped": cut})
    fresh = MessageAssembler()
    for p in chunks[:cut]:
        fresh.feed(decode_chunk(p))
    rec.stream(chunks[cut:], turn=resumed, assembler=fresh)
    assert list(log.replay_events(rec.chat_id)) == rec.live
    detail = log.get_chat(rec.chat_id)
    assert detail is not None
    whole = MessageAssembler()
    for p in chunks:
        whole.feed(decode_chunk(p))
    (answer,) = [m for m in detail.messages if m.role == "assistant"]
    assert answer.parts == whole.message["parts"]
    assert (answer.prompt_tokens, answer.completion_tokens) == (
        whole.prompt_tokens,
        whole.completion_tokens,
    )
