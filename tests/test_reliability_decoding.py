"""Property tests of the whole decoding path: SSE, chunks, assembler, log.

The bytes go through the real :class:`~kai_core.client.KaiClient` stream
(``reliability_support.run``: an httpx transport hands them over in the given reads, no sockets, so
hypothesis can try hundreds of streams a second). The properties:

* any bytes, in any reads, either give events or raise ``KaiStreamError``:
  never another exception, and the error counts the events delivered;
* any split of a valid stream gives the same events as the whole stream;
* the log holds exactly the payloads of the chunks behind the delivered events;
* the named bad inputs: invalid UTF-8, truncated JSON, wrong types for known
  fields, unknown chunk types, a missing ``[DONE]``.
"""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
import trio
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from kai_core.chunks import KNOWN_CHUNK_TYPES
from kai_core.events import Event, UnknownEvent, event_to_dict
from kai_core.log import EventLog

from .conftest import FIXTURES
from .reliability_support import client_records, run, server_payloads, split_at

pytestmark = pytest.mark.reliability

SSE_FILES = sorted(FIXTURES.glob("*.sse"))
# -- any bytes ----------------------------------------------------------------------

_json_bits = st.sampled_from(
    [
        b'{"type":"text-delta","id":"t","delta":"hi"}',
        b'{"type":"text-start","id":"t"}',
        b'{"type":"start","messageId":"m"}',
        b'{"type":"finish","finishReason":"stop"}',
        b'{"type":"tool-input-available","toolCallId":"c","toolName":"x","input":{}}',
        b'{"type":"tool-output-available","toolCallId":"c","output":1}',
        b'{"type":"tool-approval-request","approvalId":"a","toolCallId":"c"}',
        b'{"type":"data-usage","data":{"promptTokens":1}}',
        b'{"type":"weird-new-thing","x":[1,2]}',
        # older and sloppy formats, read leniently
        b'{"type":"error","message":"x","code":"c"}',
        b'{"type":"text-delta","delta":"no id"}',
        b'{"foo":"no type"}',
        b'{"type":"text","text":"old"}',
        b'{"type":"tool-call","toolCallId":"c","state":"output-available","output":[1]}',
        b'{"type":"finish","usage":{"promptTokens":2}}',
        b'{"type":"tool-call","state":{}}',
        b'{"type":"text-delta","id":1,"delta":5}',
        b'{"type":5}',
        b"[1,2,3]",
        b'"just a string"',
        b'{"type":"text-delta","id":"t","delta":"\xff\xfe"}',
        b'{"type":"text-delta","id":"t","delta":"ok","junk":"\xc3"}',
        b'{"type":"text-del',
        b"[DONE]",
        b"",
        b"   ",
    ]
)
_line = st.one_of(
    st.builds(lambda j: b"data: " + j, _json_bits),
    st.builds(lambda j: b"data:" + j, _json_bits),
    st.sampled_from([b": keep-alive", b"event: x", b"id: 3", b"retry: 10", b"data", b":"]),
    st.binary(max_size=40),
)
_newline = st.sampled_from([b"\n", b"\n\n", b"\r\n", b"\r\n\r\n", b"\r", b""])
_sse_like = st.lists(st.tuples(_line, _newline), max_size=25).map(
    lambda pairs: b"".join(line + nl for line, nl in pairs)
)


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    data=st.one_of(_sse_like, st.binary(max_size=400)),
    cuts=st.lists(st.integers(min_value=0, max_value=500), max_size=8),
    bom=st.booleans(),
)
@example(data=b'data: {"type":"text-delta","id":"t","delta":"\xff"}\n\n', cuts=[], bom=False)
@example(
    data=b'data: {"type":"text-delta","id":"t","delta":"x","junk":"\xc3"}\n\n', cuts=[], bom=False
)
@example(data=b"data: [DONE]\n\n", cuts=[3], bom=True)
def test_any_bytes_decode_or_raise_kai_stream_error(
    data: bytes, cuts: list[int], bom: bool
) -> None:
    if bom:
        data = b"\xef\xbb\xbf" + data
    outcome = run(split_at(data, cuts))
    # Whatever came out can be shown (the JSON renderer's shape) without failing.
    msgspec.json.encode([event_to_dict(e) for e in outcome.events])
    # The same bytes in one read end the same way.
    whole = run([data])
    assert outcome.events == whole.events
    assert (outcome.error is None) == (whole.error is None)
    if outcome.error is not None:
        assert outcome.error.code == whole.error.code  # type: ignore[union-attr]


# -- any split of a valid stream ----------------------------------------------------


@pytest.mark.parametrize("path", SSE_FILES, ids=lambda p: p.stem)
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(cuts=st.lists(st.integers(min_value=0, max_value=20_000), max_size=30))
def test_any_split_of_a_fixture_gives_the_same_events(path: Path, cuts: list[int]) -> None:
    data = path.read_bytes()
    whole = run([data])
    split = run(split_at(data, cuts))
    assert split.events == whole.events
    assert (split.error is None) == (whole.error is None)


def _chunk_payloads() -> st.SearchStrategy[list[bytes]]:
    text = st.text(max_size=12)
    one = st.one_of(
        st.builds(lambda d: {"type": "text-delta", "id": "t", "delta": d}, text),
        st.builds(lambda d: {"type": "reasoning-delta", "id": "r", "delta": d}, text),
        st.builds(lambda d: {"type": "data-note", "data": {"note": d}}, text),
        st.builds(lambda d: {"type": "some-future-chunk", "value": d}, text),
        st.just({"type": "start-step"}),
        st.just({"type": "finish-step"}),
        st.sampled_from([b"", b" ", b"\t  "]),  # an event of whitespace only: no chunk
        # JSON over several data lines: a payload with newlines (logged with its sizes)
        st.sampled_from([b'{"type":\n"start-step"}', b'{\n"type":"data-note",\n"data":1}']),
    )
    body = st.lists(one, max_size=30)
    return body.map(
        lambda items: [
            x if isinstance(x, bytes) else msgspec.json.encode(x)
            for x in [
                {"type": "start", "messageId": "m1"},
                {"type": "text-start", "id": "t"},
                {"type": "reasoning-start", "id": "r"},
                *items,
                {"type": "text-end", "id": "t"},
                {"type": "reasoning-end", "id": "r"},
                {"type": "finish", "finishReason": "stop"},
            ]
        ]
    )


@pytest.fixture(scope="module")
def shared_log(tmp_path_factory: pytest.TempPathFactory) -> EventLog:
    return EventLog(tmp_path_factory.mktemp("log") / "kai.db", synchronous="normal")


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    payloads=_chunk_payloads(),
    cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=20),
    crlf=st.booleans(),
)
def test_generated_streams_split_anywhere_are_delivered_and_logged_exactly(
    shared_log: EventLog, payloads: list[bytes], cuts: list[int], crlf: bool
) -> None:
    nl = b"\r\n" if crlf else b"\n"
    lines = [b"data: " + p.replace(b"\n", nl + b"data: ") for p in payloads]
    data = b"".join(line + nl + nl for line in lines) + b"data: [DONE]" + nl + nl
    whole = run([data])
    split = run(split_at(data, cuts), log=shared_log)
    assert whole.error is None and split.error is None
    assert split.events == whole.events
    unknown = [e for e in split.events if e.type == "some-future-chunk"]
    assert all(isinstance(e, UnknownEvent) for e in unknown)
    assert len(unknown) == sum(b"some-future-chunk" in p for p in payloads)
    chunks = [p for p in payloads if p.strip()]
    assert len(split.events) == len(chunks)  # one event per chunk
    # Every chunk logged once, byte for byte, in order.
    assert server_payloads(shared_log, split.chat_id) == chunks


# -- the named bad inputs, with the log -----------------------------------------------

HELLO = (FIXTURES / "hello.sse").read_bytes()
_GOOD = b'data: {"type":"start","messageId":"m"}\n\ndata: {"type":"start-step"}\n\n'

BAD = {
    "invalid-utf8-in-text": b'data: {"type":"text-delta","id":"t","delta":"caf\xe9"}\n\n',
    "invalid-utf8-in-ignored-field": b'data: {"type":"start-step","x":"\xff"}\n\n',
    "invalid-utf8-in-unknown-chunk": b'data: {"type":"new-thing","x":"\xed\xa0\x80"}\n\n',
    "truncated-json": b'data: {"type":"text-delta","id":"t","del\n\n',
    "wrong-types": b'data: {"type":"text-delta","id":1,"delta":["x"]}\n\n',
    "type-not-a-string": b'data: {"type":7}\n\n',
    "not-an-object": b"data: [1,2]\n\n",
}


@pytest.mark.parametrize("bad", list(BAD), ids=list(BAD))
def test_a_bad_chunk_is_a_clear_stream_error_and_the_log_stays_sound(
    bad: str, tmp_path: Path
) -> None:
    log = EventLog(tmp_path / "kai.db")
    outcome = run([_GOOD + BAD[bad] + b"data: [DONE]\n\n"], log=log)
    assert outcome.error is not None
    assert outcome.error.code == "stream:malformed_chunk"
    # The start and the step-start:
    assert outcome.error.events_delivered == len(outcome.events) == 2
    # The log took the good chunks and the error; it was never switched off.
    assert len(server_payloads(log, outcome.chat_id)) == 2
    assert client_records(log, outcome.chat_id, "stream-error")[0]["code"] == (
        "stream:malformed_chunk"
    )


def test_unknown_chunk_types_are_delivered_and_logged(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "kai.db")
    data = HELLO.replace(
        b'data: {"type":"finish-step"}',
        b'data: {"type":"brand-new","payload":{"a":[1,"\xc3\xa9"]}}\n\ndata: {"type":"finish-step"}',
    )
    outcome = run([data], log=log)
    assert outcome.error is None
    unknown = [e for e in outcome.events if isinstance(e, UnknownEvent)]
    (new,) = [e for e in unknown if e.type not in KNOWN_CHUNK_TYPES]
    assert new.chunk.type == "brand-new" and new.data["payload"] == {"a": [1, "é"]}
    assert b"brand-new" in b"".join(server_payloads(log, outcome.chat_id))


def test_a_clean_end_after_finish_without_done_is_complete(tmp_path: Path) -> None:
    # kai-client accepted it: the answer is whole once ``finish`` arrived.
    log = EventLog(tmp_path / "kai.db")
    outcome = run([HELLO.replace(b"data: [DONE]\n\n", b"")], log=log)
    assert outcome.error is None
    assert outcome.events[-1].type == "finish"
    assert client_records(log, outcome.chat_id, "stream-error") == []


def test_a_missing_finish_is_a_cut(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "kai.db")
    outcome = run([HELLO[: HELLO.index(b'data: {"type":"finish"')]], log=log)
    assert outcome.error is not None and outcome.error.code == "stream:cut"
    assert outcome.events[-1].type == "data-usage"  # every event arrived before the error
    # A backend not named is asked to resume; this server replays the same cut stream.
    assert "resuming it 2 times in a row brought nothing new" in str(outcome.error)
    assert client_records(log, outcome.chat_id, "stream-error")[0]["code"] == "stream:cut"


SLOPPY = b"".join(
    b"data: " + p + b"\n\n"
    for p in [
        b'{"type":"start","messageId":"m"}',
        b'{"type":"step-start"}',
        b'{"type":"text","text":"Hello "}',
        b'{"type":"text-delta","delta":"there"}',
        b'{"type":"tool-call","toolCallId":"c","toolName":"t","state":"input-available","input":{}}',
        b'{"type":"tool-output-error","toolCallId":"c"}',
        b'{"type":"error","message":"went wrong","code":"internal"}',
        b'{"no":"type"}',
        b'{"type":"data-usage"}',
        b'{"type":"finish","usage":{"promptTokens":5,"completionTokens":2}}',
    ]
)  # and no [DONE]: complete after its finish


def test_a_sloppy_stream_is_delivered_logged_and_replayed_alike(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "kai.db")
    outcome = run([SLOPPY], log=log)
    assert outcome.error is None
    assert [e.type for e in outcome.events] == [
        "start", "step-start", "text", "text", "tool-call", "tool-output-error", "error", "",
        "data-usage", "finish",
    ]  # fmt: skip
    text = "".join(e.text for e in outcome.events if e.type == "text")  # type: ignore[union-attr]
    assert text == "Hello there"
    assert outcome.events[5].error_text == "Unknown error"  # type: ignore[union-attr]
    assert outcome.events[6].message == "went wrong"  # type: ignore[union-attr]
    finish = outcome.events[-1]
    assert finish.finish_reason == "stop"  # type: ignore[union-attr]
    assert finish.usage.total_tokens == 7  # type: ignore[union-attr]

    async def replayed() -> list[Event]:
        async with log.replay(outcome.chat_id) as events:
            return [event async for event in events]

    again = [e for e in trio.run(replayed) if e.type != "approval-decision"]
    assert [event_to_dict(e) for e in again] == [event_to_dict(e) for e in outcome.events]
