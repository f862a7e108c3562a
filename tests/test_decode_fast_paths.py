"""The fast paths of the log-off hot loop (issue 16) agree with the general paths.

Each fast path here skips work for the common shape of the AI SDK's stream;
each test compares it with the general code it stands in for, on inputs that
take the fast path, inputs that must fall back, and random ones.
"""

from __future__ import annotations

import gc

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kai_core import assemble as a
from kai_core._h1 import ChunkedBody
from kai_core._masking import MASK, TokenMask
from kai_core._stream import _TOOL_SETTLED, _TOOL_TRACKED, _decode_other
from kai_core.chunks import DECODE_ERRORS, decode_chunk, decode_known_chunk
from kai_core.events import StepStartEvent, ToolCallEvent, UsageEvent, UsageInfo
from kai_core.exceptions import KaiStreamError
from kai_core.sse import SSEDecoder

from .conftest import FIXTURES
from .test_h1_chunked import CHUNKED, agree
from .test_h1_chunked import split as split_reads
from .test_sse import ours, reference_payloads, split_at

TOKEN = "kai-secret-DEADBEEF/42"


def escaped_general(mask: TokenMask, data: bytes) -> bytes:
    """``TokenMask.escaped`` before its backslash pre-check (the general path)."""
    if not any(escape in data for escape in mask._escapes):
        return data
    try:
        plain = msgspec.json.encode(msgspec.json.decode(data))
    except Exception:
        return data
    if mask.token not in plain:
        return data
    return plain.replace(mask.token, MASK)


def _json_escape(text: str, which: list[bool]) -> str:
    """``text`` as a JSON string body, the characters picked by ``which`` escaped."""
    out = []
    for char, escape in zip(text, which + [False] * len(text), strict=False):
        if escape:
            out.append("\\/" if char == "/" else f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return "".join(out)


_pieces = st.sampled_from(
    ["hello", " ", "\\n", "\\\\", "\\u00e9", "\\/", "é", TOKEN, '\\"', "\\u", "\\", "u0041"]
)


@settings(max_examples=300, deadline=None)
@given(
    before=st.lists(_pieces, max_size=6).map("".join),
    after=st.lists(_pieces, max_size=6).map("".join),
    which=st.lists(st.booleans(), max_size=len(TOKEN)),
    valid=st.booleans(),
)
def test_token_mask_escaped_agrees_with_the_general_path(
    before: str, after: str, which: list[bool], valid: bool
) -> None:
    mask = TokenMask(TOKEN)
    text = before + _json_escape(TOKEN, which) + after
    data = b'{"type":"text-delta","delta":"' + text.encode() + b'"}' if valid else text.encode()
    assert mask.escaped(data) == escaped_general(mask, data)


def test_a_payload_without_backslash_is_returned_as_is() -> None:
    mask = TokenMask(TOKEN)
    data = b'{"type":"text-delta","delta":"hi"}'
    assert mask.escaped(data) is data
    escaped = b'{"type":"text-delta","delta":"kai-secret-DEADBEEF\\u002f42"}'
    assert mask.escaped(escaped) == b'{"type":"text-delta","delta":"***"}'


# -- SSEDecoder.feed_bytes: a run of "data: <json>\n\n" events split in one call ----------

_SIMPLE_EVENTS = [
    b'data: {"type":"text-delta","id":"t","delta":"hi "}\n\n',
    b'data: {"type":"start"}\n\n',
    b"data: \n\n",  # an empty payload
    b"data: [DONE]\n\n",
    b'data: {"delta":"data: x"}\n\n',  # the prefix inside a payload
    'data: {"delta":"é€😀"}\n\n'.encode(),
]
# Events the fast path must hand to the general path (the whole read falls back).
_OTHER_EVENTS = [
    b": keep-alive\n\n",
    b"data: a\ndata: b\n\n",  # multi-line data
    b"event: x\ndata: y\n\n",
    b"id: 1\ndata: y\n\n",
    b"data:nospace\n\n",
    b"data: x\r\n\r\n",  # CRLF
    b"data: x\r\rdata: y\r\r",  # CR
    b"\n",  # a stray blank line: "\n\n\n"
    b"data: x\n",  # a line, its event ended by the next blank line
    b"datum: x\n\n",
    b"retry: 5\n\n",
]

sse_streams = st.lists(
    st.one_of(
        st.sampled_from(_SIMPLE_EVENTS),
        st.sampled_from(_SIMPLE_EVENTS),
        st.sampled_from(_OTHER_EVENTS),
        st.binary(max_size=6),
    ),
    max_size=25,
).map(b"".join)


@settings(max_examples=500, deadline=None)
@given(data=sse_streams, cuts=st.lists(st.integers(min_value=0, max_value=600), max_size=10))
def test_sse_fast_path_agrees_with_httpx_sse_however_the_reads_split(
    data: bytes, cuts: list[int]
) -> None:
    expected = reference_payloads([data])
    assert ours([data]) == expected
    assert ours(split_at(data, cuts)) == expected


@settings(max_examples=300, deadline=None)
@given(
    events=st.lists(st.sampled_from(_SIMPLE_EVENTS), min_size=1, max_size=30),
    cuts=st.lists(st.integers(min_value=0, max_value=1500), max_size=6),
    tail=st.sampled_from([b"", b"da", b"data: {", b"data: x\n", b"data: x\n\n"]),
)
def test_sse_fast_path_on_simple_streams_gives_every_payload(
    events: list[bytes], cuts: list[int], tail: bytes
) -> None:
    data = b"".join(events) + tail
    decoder = SSEDecoder()
    got: list[bytes] = []
    for read in split_at(data, cuts):
        got.extend(decoder.feed_bytes(read))
    want = [e[6:-2] for e in events] + ([b"x"] if tail == b"data: x\n\n" else [])
    assert got == want
    assert decoder.has_pending == (tail not in (b"", b"data: x\n\n"))


def test_sse_fast_path_falls_back_for_a_comment_or_multi_line_data() -> None:
    decoder = SSEDecoder()
    assert decoder.feed_bytes(b"data: a\n\n: ping\n\ndata: b\n\n") == [b"a", b"b"]
    assert decoder.feed_bytes(b"data: a\n\ndata: b\ndata: c\n\ndata: d") == [b"a", b"b\nc"]
    assert decoder.feed_bytes(b"\n\n") == [b"d"]


def test_sse_fast_path_keeps_the_event_size_bound() -> None:
    # Complete events longer than the bound are refused as on the general path.
    decoder = SSEDecoder(max_event_size=14)
    with pytest.raises(KaiStreamError):
        decoder.feed_bytes(b"data: 1\n\ndata: 123456789\n\n")
    decoder = SSEDecoder(max_event_size=15)
    assert decoder.feed_bytes(b"data: 123456789\n\ndata: 1\n\n") == [b"123456789", b"1"]
    # ... and so is a tail that already exceeds it.
    decoder = SSEDecoder(max_event_size=15)
    with pytest.raises(KaiStreamError):
        decoder.feed_bytes(b"data: 1\n\ndata: 1234567890123")


# -- ChunkedBody: many small whole chunks taken in one go ---------------------------------

_plain_payloads = st.one_of(
    st.sampled_from(
        [b'data: {"type":"text-delta","delta":"hi "}\n\n', b"x", b"\r\n", b"ab\r\n1\r\n"]
    ),
    st.binary(min_size=1, max_size=40),
)
# Size lines the one-go path takes (plain hex) and ones it leaves to the general path.
_size_line = st.one_of(
    st.just("{:x}"),
    st.just("{:x}"),
    st.just("{:x}"),
    st.sampled_from(["{:X}", "{:04x}", "{:020x}", "{:021x}", "{:x};a=b", "{:x} ", "{:x}\t"]),
)
_bad_size = st.sampled_from([b"+5", b" 5", b"0x5", b"5_0", b"zz", b"", b"-1", b"5\n", b"5\r"])


@st.composite
def small_chunked(draw: st.DrawFn) -> bytes:
    """Many small chunks, mostly with plain size lines; sometimes a wrong one."""
    out = b""
    for p in draw(st.lists(_plain_payloads, max_size=40)):
        fmt = draw(_size_line)
        size = len(p) + draw(st.sampled_from([0, 0, 0, 0, 0, 0, 1, -1]))
        line = fmt.format(max(size, 0)).encode()
        if draw(st.integers(0, 30)) == 0:
            line = draw(_bad_size)
        out += line + b"\r\n" + p + b"\r\n"
    out += b"0\r\n" + draw(st.sampled_from([b"\r\n", b"X-A: 1\r\n\r\n"]))
    # Whatever follows is no part of the body, chunk-like or not.
    return out + draw(st.sampled_from([b"", b"5\r\nhello\r\n0\r\n\r\n", b"junk"]))


@settings(max_examples=600, deadline=None)
@given(body=small_chunked(), cuts=st.lists(st.integers(min_value=0), max_size=6))
def test_many_small_chunks_read_like_h11(body: bytes, cuts: list[int]) -> None:
    agree(CHUNKED, ChunkedBody(), split_reads(body, cuts) or [body])


def test_the_one_go_path_takes_whole_chunks_and_leaves_the_rest() -> None:
    body = ChunkedBody()
    # Three whole chunks, the fourth cut in its data, then its end and the last chunk.
    assert body.feed(b"3\r\nabc\r\n2\r\nde\r\n1\r\nf\r\n4\r\ngh") == b"abcdefgh"
    assert body.feed(b"ij\r\n0\r\n\r\n") == b"ij"
    assert body.done
    # A size that does not match its data: the general path says where it breaks.
    assert agree(CHUNKED, ChunkedBody(), [b"3\r\nabc\r\n2\r\nd\r\n1\r\nf\r\n"]) == "error"


# -- EventStream._feed: known chunks decoded in one C call, the rest by decode_chunk -------

_payloads = st.one_of(
    st.sampled_from(
        [
            b'{"type":"text-delta","id":"t","delta":"hi"}',
            b'{"type":"text-delta","delta":"no id"}',
            b'{"type":"text-delta","id":"t","delta":5}',  # a known type, a wrong field
            b'{"type":"data-usage","data":{"promptTokens":1}}',
            b'{"type":"data-x","id":"a","data":null,"transient":true}',
            b'{"type":"data-x","transient":"no"}',
            b'{"type":"from-the-future","x":1}',
            b'{"no":"type"}',
            b'{"type":5}',
            b"[1,2]",
            b"not json",
            b"   ",
            b"\t\n",
            b'{"type":"start"} trailing',
            b"\xff\xfe",
            b"[" * 2000,
        ]
    ),
    st.builds(
        lambda kind, rest: b'{"type":"' + kind.encode() + b'"' + rest + b"}",
        st.sampled_from(["start", "finish", "tool-input-available", "error", "abort", "data-y"]),
        st.sampled_from([b"", b',"x":1', b',"toolCallId":"c","toolName":"t","input":{}']),
    ),
    st.binary(max_size=30),
)


def _feed_decode(payload: bytes) -> object:
    """What EventStream._feed does with one payload (its decode step)."""
    try:
        return decode_known_chunk(payload)
    except DECODE_ERRORS as exc:
        return _decode_other(payload, exc)


def _general_decode(payload: bytes) -> object:
    try:
        return decode_chunk(payload)
    except KaiStreamError:
        if payload.strip():
            raise
        return None


@settings(max_examples=400, deadline=None)
@given(payload=_payloads)
def test_the_feed_decodes_a_payload_as_decode_chunk_does(payload: bytes) -> None:
    try:
        expected = _general_decode(payload)
    except KaiStreamError as exc:
        with pytest.raises(KaiStreamError) as info:
            _feed_decode(payload)
        assert (info.value.code, info.value.message) == (exc.code, exc.message)
        return
    assert _feed_decode(payload) == expected


def test_the_feed_decodes_every_fixture_payload_as_decode_chunk_does() -> None:
    for path in sorted(FIXTURES.glob("*.sse")):
        for payload in SSEDecoder().feed_bytes(path.read_bytes()):
            if payload != b"[DONE]":
                assert _feed_decode(payload) == _general_decode(payload), path.name


def test_the_tool_chunks_tracked_are_those_track_tool_looks_at() -> None:
    assert {cls.type for cls in _TOOL_TRACKED} == _TOOL_SETTLED | {"tool-input-available"}


# -- MessageAssembler: events copied from templates are the events the classes build -----


def test_template_events_equal_the_events_their_classes_build() -> None:
    chunk = decode_chunk(b'{"type":"start-step"}')
    assert msgspec.structs.replace(a._STEP_START, chunk=chunk) == StepStartEvent(chunk=chunk)
    fields = {"tool_call_id": "c", "tool_name": "t", "state": "started", "input": {"a": 1}}
    assert msgspec.structs.replace(a._TOOL_CALL, **fields) == ToolCallEvent(**fields)
    usage = a._usage_from({"promptTokens": 3, "totalTokens": True, "reasoningTokens": 2})
    assert usage == UsageInfo(prompt_tokens=3, reasoning_tokens=2)
    assert msgspec.structs.replace(a._USAGE, usage=usage) == UsageEvent(usage=usage)
    for event in (a._STEP_START, a._TOOL_CALL, a._USAGE):
        assert not gc.is_tracked(event)
