"""The fast paths of the log-off hot loop (issue 16) agree with the general paths.

Each fast path here skips work for the common shape of the AI SDK's stream;
each test compares it with the general code it stands in for, on inputs that
take the fast path, inputs that must fall back, and random ones. (The SSE
decoder's and the chunked reader's fast paths are tested beside their
oracles, in ``test_sse.py`` and ``test_h1_chunked.py``.)
"""

from __future__ import annotations

import gc

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kai_core import assemble as a
from kai_core._masking import MASK, TokenMask
from kai_core._stream import _TOOL_SETTLED, _TOOL_TRACKED, _decode_other
from kai_core.chunks import DECODE_ERRORS, decode_chunk, decode_known_chunk
from kai_core.events import StepStartEvent, ToolCallEvent, UsageEvent, UsageInfo
from kai_core.exceptions import KaiStreamError
from kai_core.sse import SSEDecoder

from .conftest import FIXTURES

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


@settings(max_examples=200, deadline=None)
@given(text=st.lists(_pieces, max_size=8).map("".join), slash=st.booleans())
def test_has_escape_finds_what_a_substring_search_finds(text: str, slash: bool) -> None:
    # A read is looked at payload by payload only when it has such an escape.
    mask = TokenMask(TOKEN if slash else TOKEN.replace("/", "-"))
    data = text.encode()
    assert mask.has_escape(data) == any(e in data for e in mask._escapes)


def test_a_payload_without_backslash_is_returned_as_is() -> None:
    mask = TokenMask(TOKEN)
    data = b'{"type":"text-delta","delta":"hi"}'
    assert mask.escaped(data) is data
    escaped = b'{"type":"text-delta","delta":"kai-secret-DEADBEEF\\u002f42"}'
    assert mask.escaped(escaped) == b'{"type":"text-delta","delta":"***"}'


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
