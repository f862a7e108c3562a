"""The body de-chunker of our HTTP/1.1 reader against h11, the parser httpx uses.

Random bodies, random chunkings, random read splits: for each read, our
decoder gives exactly the payload bytes h11 gives as ``Data`` events for it,
and ends where h11 sees ``EndOfMessage``. Broken framing (bad sizes, a wrong
CRLF, bad trailers, an early EOF) is an error for both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import h11
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from kai_core._h1 import BodyError, ChunkedBody, CloseBody, LengthBody

Body = ChunkedBody | LengthBody | CloseBody


def h11_client(headers: list[tuple[str, str]]) -> h11.Connection:
    """An h11 client that sent a GET and has read a 200 response head with these headers."""
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method="GET", target="/", headers=[("Host", "t")]))
    conn.send(h11.EndOfMessage())
    head = "".join(f"{k}: {v}\r\n" for k, v in headers)
    conn.receive_data(f"HTTP/1.1 200 OK\r\n{head}\r\n".encode())
    assert isinstance(conn.next_event(), h11.Response)
    return conn


def h11_feed(conn: h11.Connection, data: bytes) -> tuple[bytes, str]:
    """What h11 gives for one read (b"" = EOF): its data, and "more", "end" or "error"."""
    out = b""
    try:
        conn.receive_data(data)
        while True:
            event = conn.next_event()
            if isinstance(event, h11.Data):
                out += event.data
            elif event is h11.NEED_DATA:
                return out, "more"
            else:  # EndOfMessage
                return out, "end"
    except h11.RemoteProtocolError:
        return out, "error"


def ours_feed(body: Body, data: bytes) -> tuple[bytes, str]:
    try:
        if data:
            out = body.feed(data)
        else:
            out = b""
            body.eof()
    except BodyError:
        return b"", "error"
    if body.error is not None:
        return out, "error"  # the payload before the break
    return out, "end" if body.done else "more"


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    reads, start = [], 0
    for p in points:
        reads.append(data[start:p])
        start = p
    reads.append(data[start:])
    return [r for r in reads if r]


def outcome(
    feed: Callable[[Any, bytes], tuple[bytes, str]], body: object, reads: list[bytes]
) -> list[tuple[bytes, str]]:
    """Per read, EOF last: (data, state), up to the end of the body or an error."""
    got = []
    for read in [*reads, b""]:
        data, state = feed(body, read)
        got.append((data, state))
        if state != "more":
            break
    return got


def agree(headers: list[tuple[str, str]], fresh: Body, reads: list[bytes]) -> str:
    """Check that ours gives what h11 gives, read by read; return how the body ended."""
    theirs = outcome(h11_feed, h11_client(headers), reads)
    ours = outcome(ours_feed, fresh, reads)
    assert ours == theirs
    return ours[-1][1]


# -- valid chunked bodies ----------------------------------------------------------

_hex = st.sampled_from(["{:x}", "{:X}", "{:04x}", "{:020x}"])
_ext = st.sampled_from(["", ";a=b", ";name", ';q="x y"', ";a;b=c", ";x=\r"])
_ows = st.sampled_from(["", " ", "\t", "  \t"])
_trailers = st.sampled_from(
    [
        b"\r\n",
        b"\n",
        b"X-A: 1\r\n\r\n",
        b"X-A: 1\r\nX-B:\t2 3 \r\n\r\n",
        b"X-A: 1\n\n",
        b"X-A: 1\r\n \tmore\r\n\r\n",
    ]
)


@st.composite
def chunked(draw: st.DrawFn) -> bytes:
    payloads = draw(st.lists(st.binary(min_size=1, max_size=300), max_size=12))
    out = b""
    for p in payloads:
        size = draw(_hex).format(len(p)).encode()
        out += size + draw(_ext).encode() + draw(_ows).encode() + b"\r\n" + p + b"\r\n"
    out += b"0" + draw(_ext).encode() + draw(_ows).encode() + b"\r\n" + draw(_trailers)
    return out


CHUNKED = [("Transfer-Encoding", "chunked")]


@settings(max_examples=400)
@given(
    body=chunked(),
    cuts=st.lists(st.integers(min_value=0), max_size=30),
    after=st.binary(max_size=20),
)
@example(body=b"5\r\nhello\r\n0\r\n\r\n", cuts=list(range(20)), after=b"")
def test_valid_bodies_read_like_h11(body: bytes, cuts: list[int], after: bytes) -> None:
    # Bytes after the end (a next response, garbage) are not part of this body.
    assert agree(CHUNKED, ChunkedBody(), split(body + after, cuts)) == "end"


@given(body=chunked(), cuts=st.lists(st.integers(min_value=0), max_size=10), data=st.data())
def test_eof_before_the_end_is_an_error(body: bytes, cuts: list[int], data: st.DataObject) -> None:
    cut = data.draw(st.integers(min_value=0, max_value=len(body) - 1))
    assert agree(CHUNKED, ChunkedBody(), split(body[:cut], cuts)) == "error"


# -- broken framing ------------------------------------------------------------------

_bad_size = st.sampled_from(
    [b"zz", b"0x5", b"", b" 5", b"+5", b"-5", b"5_0", b"1" * 21, b"5 x", b"5\n", b"\xff", b"5;a\nb"]
)


@given(
    good=st.lists(st.binary(min_size=1, max_size=50), max_size=4),
    bad=_bad_size,
    cuts=st.lists(st.integers(min_value=0), max_size=10),
)
def test_bad_chunk_size_lines_are_errors(good: list[bytes], bad: bytes, cuts: list[int]) -> None:
    body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in good)
    body += bad + b"\r\nhello\r\n0\r\n\r\n"
    assert agree(CHUNKED, ChunkedBody(), split(body, cuts)) == "error"


@given(
    payload=st.binary(min_size=1, max_size=50),
    footer=st.sampled_from([b"XY", b"\rX", b"\n\r", b"  ", b"\r\r", b"X\n"]),
    cuts=st.lists(st.integers(min_value=0), max_size=10),
)
def test_a_wrong_crlf_after_chunk_data_is_an_error(
    payload: bytes, footer: bytes, cuts: list[int]
) -> None:
    body = b"%x\r\n%s%s0\r\n\r\n" % (len(payload), payload, footer)
    assert agree(CHUNKED, ChunkedBody(), split(body, cuts)) == "error"


@given(
    trailer=st.sampled_from(
        [
            b"no colon\r\n\r\n",
            b" X: 1\r\n\r\n",
            b"X Y: 1\r\n\r\n",
            b"X: \x00\r\n\r\n",
            b"X: a\rb\r\n\r\n",
            b": v\r\n\r\n",
        ]
    ),
    cuts=st.lists(st.integers(min_value=0), max_size=10),
)
def test_bad_trailers_are_errors(trailer: bytes, cuts: list[int]) -> None:
    body = b"5\r\nhello\r\n0\r\n" + trailer
    assert agree(CHUNKED, ChunkedBody(), split(body, cuts)) == "error"


def test_a_size_line_that_never_ends_is_an_error() -> None:
    body = ChunkedBody()
    with pytest.raises(BodyError, match="too long"):
        for _ in range(100):
            body.feed(b"5;" + b"x" * 1000)


def test_data_of_a_chunk_is_given_out_before_the_chunk_is_complete() -> None:
    body = ChunkedBody()
    assert body.feed(b"9\r\nhel") == b"hel"
    assert body.feed(b"lo") == b"lo"
    assert body.feed(b" you\r") == b" you"
    assert body.feed(b"\n0\r") == b""
    assert not body.done
    assert body.feed(b"\n\r\nignored") == b""
    assert body.done


# -- Content-Length and close-delimited ----------------------------------------------


@given(
    payload=st.binary(max_size=500),
    after=st.binary(max_size=20),
    cuts=st.lists(st.integers(min_value=0), max_size=20),
    data=st.data(),
)
def test_content_length_bodies_read_like_h11(
    payload: bytes, after: bytes, cuts: list[int], data: st.DataObject
) -> None:
    headers = [("Content-Length", str(len(payload)))]
    assert agree(headers, LengthBody(len(payload)), split(payload + after, cuts)) == "end"
    if payload:
        cut = data.draw(st.integers(min_value=0, max_value=len(payload) - 1))
        assert agree(headers, LengthBody(len(payload)), split(payload[:cut], cuts)) == "error"


@given(payload=st.binary(max_size=500), cuts=st.lists(st.integers(min_value=0), max_size=20))
def test_close_delimited_bodies_read_like_h11(payload: bytes, cuts: list[int]) -> None:
    assert agree([], CloseBody(), split(payload, cuts)) == "end"


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
    agree(CHUNKED, ChunkedBody(), split(body, cuts) or [body])


def test_the_one_go_path_takes_whole_chunks_and_leaves_the_rest() -> None:
    body = ChunkedBody()
    # Three whole chunks, the fourth cut in its data, then its end and the last chunk.
    assert body.feed(b"3\r\nabc\r\n2\r\nde\r\n1\r\nf\r\n4\r\ngh") == b"abcdefgh"
    assert body.feed(b"ij\r\n0\r\n\r\n") == b"ij"
    assert body.done
    # A size that does not match its data: the general path says where it breaks.
    assert agree(CHUNKED, ChunkedBody(), [b"3\r\nabc\r\n2\r\nd\r\n1\r\nf\r\n"]) == "error"
