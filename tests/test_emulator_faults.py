"""Fault knobs, keep-alives, resume and verbatim scripts of the emulated backend."""

from __future__ import annotations

import httpx
import pytest
import trio
import trio.testing

from kai_core.chunks import StartChunk, TextDeltaChunk, TextEndChunk, TextStartChunk, decode_chunk
from kai_core.exceptions import KaiStreamError
from kai_core.testing import Emulator

from .emulator_support import (
    chat_body,
    chunk_dicts,
    fixture_payloads,
    http,
    parse_frames,
    send,
    shape,
    types,
)


async def read_raw(
    client: httpx.AsyncClient, body: dict[str, object]
) -> tuple[bytes, Exception | None]:
    """POST and read what arrives, keeping what came before a cut connection."""
    received = b""
    with trio.fail_after(10):
        async with client.stream("POST", "/api/chat", json=body) as response:
            try:
                async for data in response.aiter_raw():
                    received += data
            except httpx.HTTPError as exc:
                return received, exc
    return received, None


async def test_drop_connection_after_n_chunks(kai_emulator: Emulator) -> None:
    kai_emulator.faults.drop_connection(after=3)
    async with http(kai_emulator) as client:
        raw, error = await read_raw(client, chat_body("hello"))
        again = await send(client, "hello")  # only the next stream was cut
    assert isinstance(error, httpx.RemoteProtocolError)
    payloads = parse_frames(raw)
    assert types(payloads) == ["start", "start-step", "text-start"]
    assert types(again)[-1] == "[DONE]"


async def test_drop_every_stream_until_reset(kai_emulator: Emulator) -> None:
    kai_emulator.faults.drop_connection(after=1, times=None)
    async with http(kai_emulator) as client:
        first = await read_raw(client, chat_body("hello"))
        second = await read_raw(client, chat_body("hello"))
        kai_emulator.faults.reset()
        third = await read_raw(client, chat_body("hello"))
    assert first[1] is not None and second[1] is not None and third[1] is None


async def test_dropped_answer_is_still_stored_complete(kai_emulator: Emulator) -> None:
    kai_emulator.faults.drop_connection(after=2)
    async with http(kai_emulator) as client:
        body = chat_body("list my tables")
        await read_raw(client, body)
        record = kai_emulator.state.chats[body["id"]].last_stream
        assert record is not None
        with trio.fail_after(5):
            while not record.closed:
                await record.wait_changed(len(record.frames))
        chat = (await client.get(f"/api/chat/{body['id']}")).json()
    assert chat["messages"][-1]["parts"][-1]["text"].startswith("You have 3 tables")


async def test_malformed_chunk_at_position(kai_emulator: Emulator) -> None:
    kai_emulator.faults.inject_malformed(at=2)
    async with http(kai_emulator) as client:
        raw, error = await read_raw(client, chat_body("hello"))
        clean, _ = await read_raw(client, chat_body("hello"))
    assert error is None
    payloads = parse_frames(raw)
    with pytest.raises(KaiStreamError):
        decode_chunk(payloads[2])
    rest = payloads[:2] + payloads[3:]
    assert shape(rest) == shape(fixture_payloads("hello.sse"))
    chunk_dicts(parse_frames(clean))  # the next stream is clean again


async def test_chunk_delay_slows_every_chunk(
    kai_emulator: Emulator, autojump_clock: trio.testing.MockClock
) -> None:
    kai_emulator.faults.chunk_delay = 0.02
    async with http(kai_emulator) as client:
        started = trio.current_time()
        payloads = await send(client, "hello")
        elapsed = trio.current_time() - started
    # The mock clock moves only when every task waits: the delays are all there is.
    assert elapsed == pytest.approx(0.02 * (len(payloads) - 1))


async def test_rate_limit_then_recover(kai_emulator: Emulator) -> None:
    kai_emulator.faults.rate_limit(times=2, retry_after=7)
    async with http(kai_emulator) as client:
        history = await client.get("/api/history")  # scope "chat": other routes are not hit
        first = await client.post("/api/chat", json=chat_body("hello"))
        second = await client.post("/api/chat", json=chat_body("hello"))
        third = await send(client, "hello")
    assert history.status_code == 200
    for response in (first, second):
        assert response.status_code == 429
        assert response.headers["retry-after"] == "7"
        assert response.json()["code"] == "rate_limit:chat"
    assert types(third)[-1] == "[DONE]"


async def test_server_errors_on_every_route_with_scope_all(kai_emulator: Emulator) -> None:
    kai_emulator.faults.fail(times=2)
    kai_emulator.faults.scope = "all"
    async with http(kai_emulator) as client:
        first = await client.get("/api/history")
        second = await client.post("/api/chat", json=chat_body("hello"))
        third = await client.get("/api/history")
        ping = await client.get("/ping")
    assert first.status_code == second.status_code == 503
    assert first.json()["code"] == second.json()["code"] == "offline:chat"
    assert third.status_code == 200 and ping.status_code == 200


async def test_keepalive_comments_like_the_sdk(
    kai_emulator: Emulator, autojump_clock: trio.testing.MockClock
) -> None:
    kai_emulator.faults.keepalive = 0.03
    async with http(kai_emulator) as client:
        raw, _ = await read_raw(client, chat_body("slow answer please"))
    payloads = parse_frames(raw)
    assert payloads[0] == ": stream-open"
    assert ": keep-alive" in payloads
    assert set(p for p in payloads if p.startswith(": ")) == {": stream-open", ": keep-alive"}
    texts = [c["delta"] for c in chunk_dicts(payloads) if c["type"] == "text-delta"]
    assert texts[:2] == ["Slow chunk 1. ", "Slow chunk 2. "] and len(texts) == 12


# -- resume (kai-assistant) -----------------------------------------------------------------------


@pytest.mark.kai_emulator(backend="assistant")
async def test_resume_replays_a_cut_answer_from_the_start(
    kai_emulator: Emulator, autojump_clock: trio.testing.MockClock
) -> None:
    kai_emulator.faults.drop_connection(after=4)
    async with http(kai_emulator) as client:
        body = chat_body("slow answer please")
        raw, error = await read_raw(client, body)
        assert error is not None
        with trio.fail_after(10):
            response = await client.get(f"/api/chat/{body['id']}/stream")
        unknown = await client.get("/api/chat/00000000-0000-4000-8000-000000000000/stream")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    replay = parse_frames(response.content)
    assert replay[:4] == parse_frames(raw)
    assert types(replay)[-2:] == ["finish", "[DONE]"]
    assert unknown.status_code == 404 and unknown.json()["code"] == "not_found:chat"


@pytest.mark.kai_emulator(backend="assistant", resume_window=0)
async def test_resume_without_a_running_answer_is_204(kai_emulator: Emulator) -> None:
    async with http(kai_emulator) as client:
        body = chat_body("hello")
        await send(client, "hello", body["id"])
        await trio.testing.wait_all_tasks_blocked()  # the emulator has ended the answer
        response = await client.get(f"/api/chat/{body['id']}/stream")
    assert response.status_code == 204 and response.content == b""


# -- verbatim scripts ---------------------------------------------------------------------------


async def test_verbatim_chunk_script_is_written_as_given(kai_emulator: Emulator) -> None:
    message_id = "00000000-0000-4000-8000-000000000042"
    kai_emulator.script(
        lambda text: [
            StartChunk(message_id=message_id),
            TextStartChunk(id="t"),
            TextDeltaChunk(id="t", delta=text.upper()),
            TextEndChunk(id="t"),
        ],
        trigger="shout",
    )
    async with http(kai_emulator) as client:
        body = chat_body("shout this")
        raw, _ = await read_raw(client, body)
        chat = (await client.get(f"/api/chat/{body['id']}")).json()
    assert raw == (
        b'data: {"type":"start","messageId":"00000000-0000-4000-8000-000000000042"}\n\n'
        b'data: {"type":"text-start","id":"t"}\n\n'
        b'data: {"type":"text-delta","id":"t","delta":"SHOUT THIS"}\n\n'
        b'data: {"type":"text-end","id":"t"}\n\n'
        b"data: [DONE]\n\n"
    )
    assert chat["messages"][-1] == {
        "id": message_id,
        "role": "assistant",
        "parts": [{"type": "text", "text": "SHOUT THIS", "state": "done"}],
        "createdAt": chat["messages"][-1]["createdAt"],
    }
    kai_emulator.unscript()
    assert not kai_emulator.app.scenarios
