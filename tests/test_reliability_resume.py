"""A stream cut mid-answer: resumed without the caller doing anything, or a clear error.

kai-assistant replays a running (or just finished) answer from its first
chunk at ``GET /api/chat/{id}/stream``; the client skips the chunks it
already delivered (checking that they are the same) and goes on. Each cut
run is compared with an uncut run of the same scenario: no event twice,
none missing, and the log holds every chunk exactly once plus a ``resume``
record. Where there is nothing to resume (204, 404, kai-agent) the error
says so and how much arrived; the log keeps it and ``get_chat`` reloads the
chat.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from kai_core.events import ApprovalDecisionEvent, Event, FinishEvent, TextEvent
from kai_core.exceptions import KaiStreamError
from kai_core.log import EventLog
from kai_core.policy import ApprovalDecision, ApprovalRequest
from kai_core.session import Session
from kai_core.testing import Emulator, Say

from .raw_server import Conn, Request, client_for, fixture, raw_server
from .reliability_support import (
    client_records,
    connected,
    frame_payloads,
    integrity_ok,
    normalised,
    requests_to,
    server_payloads,
)

pytestmark = pytest.mark.reliability


async def drain(stream: object) -> list[Event]:
    return [event async for event in stream]  # type: ignore[attr-defined]


@pytest.mark.parametrize("scenario", ["hello", "list my tables", "think"])
async def test_a_cut_anywhere_is_resumed_with_nothing_lost_or_repeated(
    scenario: str, tmp_path: Path
) -> None:
    log = EventLog(tmp_path / "kai.db")
    with trio.fail_after(60):
        async with connected("assistant", log=log) as (emulator, client):
            uncut_chat = client.new_chat_id()
            uncut = await drain(client.send_message(uncut_chat, scenario))
            chunks = len(frame_payloads(emulator, uncut_chat))
            assert isinstance(uncut[-1], FinishEvent)
            for cut in range(chunks + 1):  # the last: everything but [DONE]
                emulator.faults.drop_connection(after=cut)
                chat_id = client.new_chat_id()
                async with client.send_message(chat_id, scenario) as stream:
                    events = await drain(stream)
                    assert stream.resumes == 1, cut
                    assert stream.finished
                # The same events as the uncut run: none twice, none missing.
                assert normalised(events) == normalised(uncut), cut
                # Sent once; resumed once.
                assert requests_to(emulator, "GET", f"/api/chat/{chat_id}/stream") == 1
                # The log: every chunk of the answer exactly once, in order, and the resume.
                assert server_payloads(log, chat_id) == frame_payloads(emulator, chat_id), cut
                assert client_records(log, chat_id, "resume") == [{"skipped": cut}]
                assert client_records(log, chat_id, "stream-error") == []
                # Replaying the log gives what the live stream gave.
                assert normalised(log.replay_events(chat_id)) == normalised(events)
            posts = requests_to(emulator, "POST", "/api/chat")
            assert posts == chunks + 2  # one POST per run: a chat message is never sent twice
    integrity_ok(tmp_path / "kai.db")


async def _approve(request: ApprovalRequest) -> ApprovalDecision:
    return ApprovalDecision.approve(decided_by="test")


async def _session_run(
    session: Session, text: str, emulator: Emulator | None = None, cut: int = 0
) -> list[Event]:
    """Run one exchange through the session; cut the continuation when ``emulator`` is given."""
    events = []
    async for event in session.send(text):
        events.append(event)
        if emulator is not None and isinstance(event, ApprovalDecisionEvent):
            emulator.faults.drop_connection(after=cut)  # the continuation stream
    return events


async def _cut_continuation(
    cut: int, log: EventLog
) -> tuple[list[Event], list[Event], Session, Session, list[dict[str, object]]]:
    """The same approved bucket twice: uncut, then with its continuation cut after ``cut``."""
    with trio.fail_after(30):
        async with connected("assistant", log=log) as (emulator, client):
            text = "create a bucket called ref"
            reference = Session(client, ask=_approve)
            expected = await _session_run(reference, text)
            emulator.state.buckets.clear()  # the same bucket again, for the same answer
            session = Session(client, ask=_approve)
            got = await _session_run(session, text, emulator, cut)
            chat_id = session.chat_id
            assert requests_to(emulator, "GET", f"/api/chat/{chat_id}/stream") == 1
            server = await client.get_chat(chat_id)
    return expected, got, reference, session, server.messages[-1].parts


@pytest.mark.parametrize("cut", [1, 3, 6])
async def test_an_approval_continuation_cut_is_resumed(cut: int, tmp_path: Path) -> None:
    log = EventLog(tmp_path / "kai.db")
    expected, got, _, session, server_parts = await _cut_continuation(cut, log)
    assert normalised(got) == normalised(expected)
    assert client_records(log, session.chat_id, "resume") == [{"skipped": cut}]
    assert "in.c-ref" in str(server_parts)
    integrity_ok(tmp_path / "kai.db")


@pytest.mark.parametrize("cut", [1, 6])
async def test_the_log_rebuilds_a_resumed_continuation(cut: int, tmp_path: Path) -> None:
    log = EventLog(tmp_path / "kai.db")
    expected, got, reference, session, server_parts = await _cut_continuation(cut, log)
    # The replayed log shows what the live session showed, and the message it
    # rebuilds is the server's.
    assert normalised(log.replay_events(reference.chat_id)) == normalised(expected)
    assert normalised(log.replay_events(session.chat_id)) == normalised(got)
    local = log.get_chat(session.chat_id)
    assert local is not None
    assert local.messages[-1].parts == server_parts


async def test_resumes_that_bring_nothing_new_are_bounded(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "kai.db")
    with trio.fail_after(30):
        async with connected("assistant", log=log, resume_attempts=2) as (emulator, client):
            emulator.faults.drop_connection(after=4, times=None)  # every stream, resumed ones too
            chat_id = client.new_chat_id()
            got: list[Event] = []
            with pytest.raises(KaiStreamError) as info:
                async for event in client.send_message(chat_id, "hello"):
                    got.append(event)
            error = info.value
            assert error.code == "stream:cut"
            assert error.events_delivered == len(got) > 0
            assert "resuming it 2 times in a row brought nothing new" in str(error)
            assert "get_chat" in str(error)
            assert requests_to(emulator, "GET", f"/api/chat/{chat_id}/stream") == 2
            assert requests_to(emulator, "POST", "/api/chat") == 1
            # The log keeps what arrived, once, then says why it stopped.
            assert server_payloads(log, chat_id) == frame_payloads(emulator, chat_id)[:4]
            assert len(client_records(log, chat_id, "resume")) == 2
            (stream_error,) = client_records(log, chat_id, "stream-error")
            assert stream_error["code"] == "stream:cut"
            # The server finished the answer: the chat can be reloaded.
            emulator.faults.reset()
            detail = await client.get_chat(chat_id)
            assert detail.messages[-1].role == "assistant"
    integrity_ok(tmp_path / "kai.db")


async def test_nothing_to_resume_204_is_a_clear_error_and_get_chat_reloads(
    tmp_path: Path,
) -> None:
    log = EventLog(tmp_path / "kai.db")
    with trio.fail_after(30):
        async with connected("assistant", log=log, resume_window=0.0) as (emulator, client):
            emulator.faults.drop_connection(after=5)
            chat_id = client.new_chat_id()
            got: list[Event] = []
            with pytest.raises(KaiStreamError) as info:
                async for event in client.send_message(chat_id, "hello"):
                    got.append(event)
            assert info.value.code == "stream:cut"
            assert f"cut after {len(got)} events" in str(info.value)
            assert "nothing to resume (204)" in str(info.value)
            assert server_payloads(log, chat_id) == frame_payloads(emulator, chat_id)[:5]
            detail = await client.get_chat(chat_id)
            text = "".join(p.get("text", "") for p in detail.messages[-1].parts)
            assert text.startswith("".join(e.text for e in got if isinstance(e, TextEvent)))
    integrity_ok(tmp_path / "kai.db")


async def test_no_stream_to_resume_404_is_a_clear_error(tmp_path: Path) -> None:
    # A kai-agent server taken for kai-assistant answers the resume with 404.
    log = EventLog(tmp_path / "kai.db")
    async with connected("agent", log=log) as (emulator, client):
        client.backend = type(client.backend).ASSISTANT  # type: ignore[union-attr]
        emulator.faults.drop_connection(after=3)
        chat_id = client.new_chat_id()
        with pytest.raises(KaiStreamError) as info:
            await drain(client.send_message(chat_id, "hello"))
        assert "no stream to resume (404)" in str(info.value)
        assert info.value.events_delivered > 0
        assert len(server_payloads(log, chat_id)) == 3


async def test_kai_agent_has_no_resume(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "kai.db")
    async with connected("agent", log=log) as (emulator, client):
        emulator.faults.drop_connection(after=6)
        chat_id = client.new_chat_id()
        got: list[Event] = []
        with pytest.raises(KaiStreamError) as info:
            async for event in client.send_message(chat_id, "hello"):
                got.append(event)
        assert "kai-agent cannot resume a stream" in str(info.value)
        assert info.value.events_delivered == len(got)
        assert requests_to(emulator, "GET", f"/api/chat/{chat_id}/stream") == 0
        assert server_payloads(log, chat_id) == frame_payloads(emulator, chat_id)[:6]
        detail = await client.get_chat(chat_id)
        assert detail.messages[0].role == "user"
    integrity_ok(tmp_path / "kai.db")


# -- against a raw server: resumes that make progress, and a replay that differs --------


def _payload_frames(name: str) -> list[bytes]:
    return [b for b in fixture(name).split(b"\n\n") if b.strip()]


async def test_every_resume_that_brings_something_new_counts_anew() -> None:
    frames = _payload_frames("hello.sse")  # ends with [DONE]
    stops = iter([3, 6, 9, len(frames)])  # POST, then three resumes

    async def handler(conn: Conn, request: Request) -> None:
        stop = next(stops)
        await conn.start()
        await conn.piece(b"".join(f + b"\n\n" for f in frames[:stop]))
        if stop == len(frames):
            await conn.end()
        # else: close mid-body (no final chunk): the client sees a cut

    async with raw_server(handler) as server:
        async with client_for(server, backend="assistant", resume_attempts=1) as client:
            with trio.fail_after(10):
                async with client.send_message("c1", "hello") as stream:
                    events = await drain(stream)
                    assert stream.resumes == 3
    assert events == await _play_once(frames)
    assert [r.method for r in server.requests] == ["POST", "GET", "GET", "GET"]
    assert server.requests[1].path == "/api/chat/c1/stream"


async def _play_once(frames: list[bytes]) -> list[Event]:
    """The events of the frames played uncut."""

    async def handler(conn: Conn, request: Request) -> None:
        await conn.start()
        await conn.piece(b"".join(f + b"\n\n" for f in frames))
        await conn.end()

    async with raw_server(handler) as server, client_for(server) as client:
        return await drain(client.send_message("c1", "hello"))


async def test_a_resumed_stream_that_replays_something_else_is_refused(tmp_path: Path) -> None:
    frames = _payload_frames("hello.sse")
    other = [f.replace(b"Hello", b"Howdy") for f in frames]
    assert other != frames
    calls = 0

    async def handler(conn: Conn, request: Request) -> None:
        nonlocal calls
        calls += 1
        await conn.start()
        if calls == 1:
            await conn.piece(b"".join(f + b"\n\n" for f in frames[:-3]))
            return  # cut
        await conn.piece(b"".join(f + b"\n\n" for f in other))
        await conn.end()

    log = EventLog(tmp_path / "kai.db")
    async with raw_server(handler) as server:
        async with client_for(server, backend="assistant", log=log) as client:
            got: list[Event] = []
            with pytest.raises(KaiStreamError) as info:
                async for event in client.send_message("c1", "hello"):
                    got.append(event)
    assert info.value.code == "stream:resume_mismatch"
    assert "get_chat" in str(info.value)
    assert not any("Howdy" in getattr(e, "text", "") for e in got)
    assert client_records(log, "c1", "stream-error")[-1]["code"] == "stream:resume_mismatch"


async def test_a_cut_that_leaves_half_an_event_is_resumed_cleanly() -> None:
    frames = _payload_frames("hello.sse")
    calls = 0

    async def handler(conn: Conn, request: Request) -> None:
        nonlocal calls
        calls += 1
        await conn.start()
        data = b"".join(f + b"\n\n" for f in frames)
        if calls == 1:
            await conn.piece(data[: len(data) // 2 + 7])  # cut in the middle of an event
            return
        await conn.piece(data)
        await conn.end()

    async with raw_server(handler) as server:
        async with client_for(server, backend="assistant") as client:
            events = await drain(client.send_message("c1", "hello"))
    assert events == await _play_once(frames)


async def test_resuming_is_off_with_zero_attempts() -> None:
    async with connected("assistant", resume_attempts=0) as (emulator, client):
        emulator.faults.drop_connection(after=2)
        with pytest.raises(KaiStreamError) as info:
            await drain(client.send_message(client.new_chat_id(), "hello"))
        assert "resuming is turned off" in str(info.value)


async def test_a_long_answer_is_resumed_after_it_finished_server_side() -> None:
    # The server kept generating after the cut; the resume replays the stored frames.
    async with connected("assistant") as (emulator, client):
        emulator.script(lambda text: [Say(*(f"part {n}. " for n in range(200)))], trigger="long")
        emulator.faults.drop_connection(after=50)
        chat_id = client.new_chat_id()
        events = await drain(client.send_message(chat_id, "long"))
        text = "".join(e.text for e in events if isinstance(e, TextEvent))
        assert text == "".join(f"part {n}. " for n in range(200))
