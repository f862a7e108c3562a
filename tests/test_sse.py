"""The SSE decoder: golden fixtures, any read split, and equivalence with httpx-sse."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest
from httpx_sse._decoders import SSEDecoder as RefDecoder
from httpx_sse._decoders import SSELineDecoder as RefLineDecoder
from hypothesis import example, given, settings
from hypothesis import strategies as st

from kai_core.exceptions import KaiStreamError
from kai_core.sse import DEFAULT_MAX_EVENT_SIZE, SSEDecoder

from .conftest import FIXTURES

SSE_FILES = sorted(FIXTURES.glob("*.sse"))


def reference_payloads(reads: list[bytes]) -> list[str]:
    """What httpx-sse yields for these reads: its text decoding, line splitting and
    event decoding, keeping the events that had a ``data`` line.

    httpx-sse (unlike WHATWG) also dispatches an event that only had ``event``/
    ``id``/``retry`` fields, with empty data; our decoder does not, so those are
    filtered here by looking whether the reference had gathered any data line.
    """
    text_decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    lines = RefLineDecoder()
    events = RefDecoder()
    out: list[str] = []
    first = True

    def handle(line: str) -> None:
        had_data = bool(events._data)
        sse = events.decode(line.rstrip("\n"))
        if sse is not None and had_data:
            out.append(sse.data)

    texts = [text_decoder.decode(r) for r in reads] + [text_decoder.decode(b"", final=True)]
    for text in texts:
        if first and text:
            # WHATWG drops one BOM at the start of the stream; httpx-sse does not.
            text = text.removeprefix("\ufeff")
            first = False
        if not text:
            continue
        for line in lines.decode(text):
            handle(line)
    for line in lines.flush():
        handle(line)
    return out


def ours(reads: list[bytes], max_event_size: int = DEFAULT_MAX_EVENT_SIZE) -> list[str]:
    decoder = SSEDecoder(max_event_size)
    out: list[str] = []
    for r in reads:
        out.extend(decoder.feed(r))
    return out


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(data)) for c in cuts})
    reads, start = [], 0
    for p in points:
        reads.append(data[start:p])
        start = p
    reads.append(data[start:])
    return reads


TOKENS = [
    b"data:",
    b"data: ",
    b"data",
    b"data:  two spaces",
    b"datum: no",
    b"dat",
    b"a: ",
    b":",
    b": comment",
    b" ",
    b"\n",
    b"\r",
    b"\r\n",
    b"\n\n",
    b"event: x",
    b"event",
    b"id: 1",
    b"id: a\x00b",
    b"retry: 5",
    b"retry: x",
    b"x",
    b'{"type":"text-delta","delta":"h\\u00e9"}',
    b"[DONE]",
    b"\xef\xbb\xbf",
    b"\xef\xbb",
    b"\xff",
    b"\xe2\x82",
    "é€😀".encode(),
    b"\x00",
]

stream_bytes = st.one_of(
    st.lists(st.sampled_from(TOKENS), max_size=40).map(b"".join),
    st.binary(max_size=200),
    st.lists(st.one_of(st.sampled_from(TOKENS), st.binary(max_size=8)), max_size=30).map(b"".join),
)


@pytest.mark.parametrize("path", SSE_FILES, ids=lambda p: p.name)
def test_fixture_whole(path: Path) -> None:
    data = path.read_bytes()
    expected = [line[6:] for line in data.decode().split("\n") if line.startswith("data: ")]
    assert ours([data]) == expected
    assert ours([data]) == reference_payloads([data])


@pytest.mark.parametrize("path", SSE_FILES, ids=lambda p: p.name)
def test_fixture_any_split(path: Path) -> None:
    data = path.read_bytes()
    whole = ours([data])
    # every single cut point, and byte-by-byte
    for cut in range(len(data) + 1):
        assert ours([data[:cut], data[cut:]]) == whole
    assert ours([data[i : i + 1] for i in range(len(data))]) == whole


@pytest.mark.parametrize("path", SSE_FILES, ids=lambda p: p.name)
def test_fixture_bytes_are_exact(path: Path) -> None:
    data = path.read_bytes()
    decoder = SSEDecoder()
    payloads = decoder.feed_bytes(data)
    for p in payloads:
        assert b"data: " + p + b"\n\n" in data


@settings(max_examples=600, deadline=None)
@given(data=stream_bytes, cuts=st.lists(st.integers(min_value=0, max_value=220), max_size=8))
@example(data=b"data: x\r", cuts=[])
@example(data=b"data: x\r\r", cuts=[8])
@example(data=b"data: x\r\n\r\n", cuts=[8])
@example(data=b"data: x\r\n\r\n", cuts=[9])
@example(data=b"\xef\xbb\xbfdata: x\n\n", cuts=[1, 2])
@example(data=b"\xef\xbb\xbf\xef\xbb\xbfdata: x\n\n", cuts=[])
@example(data=b"data\n\n", cuts=[])
@example(data=b"id: 1\n\ndata: a\n\n\n", cuts=[])
@example(data=b"data: a\ndata\ndata: c\n\n", cuts=[3])
def test_equivalent_to_httpx_sse(data: bytes, cuts: list[int]) -> None:
    reads = split_at(data, cuts)
    expected = reference_payloads([data])
    assert ours([data]) == expected
    assert ours(reads) == expected
    assert reference_payloads(reads) == expected


@settings(max_examples=200, deadline=None)
@given(data=stream_bytes, cuts=st.lists(st.integers(min_value=0, max_value=220), max_size=8))
def test_bytes_and_text_agree(data: bytes, cuts: list[int]) -> None:
    decoder = SSEDecoder()
    raw: list[bytes] = []
    for r in split_at(data, cuts):
        raw.extend(decoder.feed_bytes(r))
    assert [p.decode("utf-8", "replace") for p in raw] == ours([data])


def test_multiline_data_and_fields() -> None:
    stream = b": hi\nevent: e\nid: 7\nretry: 10\ndata: a\ndata:b\ndata\n\n"
    assert ours([stream]) == ["a\nb\n"]


def test_event_without_data_is_not_dispatched() -> None:
    assert ours([b"event: ping\n\nid: 3\n\n: keep-alive\n\n"]) == []


def test_incomplete_event_at_end_is_dropped() -> None:
    assert ours([b"data: a\n\ndata: b\n"]) == ["a"]


def test_line_too_large() -> None:
    decoder = SSEDecoder(max_event_size=10)
    with pytest.raises(KaiStreamError) as info:
        decoder.feed(b"data: 0123456789")
    assert info.value.code == "stream:too_large"


def test_event_too_large_over_many_lines() -> None:
    decoder = SSEDecoder(max_event_size=30)
    decoder.feed(b"data: 1234\ndata: 1234\n")
    with pytest.raises(KaiStreamError) as info:
        decoder.feed(b"data: 1234\n")
    assert info.value.code == "stream:too_large"


def test_event_at_the_limit_passes() -> None:
    decoder = SSEDecoder(max_event_size=15)
    assert decoder.feed(b"data: 123456789\n\n") == ["123456789"]
    assert decoder.feed(b"data: 12345") == []
    assert decoder.feed(b"6789\n\n") == ["123456789"]


def test_complete_event_too_large_in_one_read() -> None:
    decoder = SSEDecoder(max_event_size=14)
    with pytest.raises(KaiStreamError):
        decoder.feed(b"data: 123456789\n\n")


def test_comment_only_lines_count_towards_the_bound() -> None:
    decoder = SSEDecoder(max_event_size=100)
    for _ in range(7):  # 13 bytes each
        decoder.feed(b": keep-alive\n")
    with pytest.raises(KaiStreamError):
        decoder.feed(b": keep-alive\n")


def test_keepalive_comments_with_blank_lines_never_accumulate() -> None:
    decoder = SSEDecoder(max_event_size=100)
    for _ in range(1000):
        assert decoder.feed(b": keep-alive\n\n") == []
    assert decoder.feed(b"data: x\n\n") == ["x"]


def test_bad_max() -> None:
    with pytest.raises(ValueError):
        SSEDecoder(0)


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
