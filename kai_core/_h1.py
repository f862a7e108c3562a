"""Our own reader for the body of a streamed HTTP/1.1 answer.

httpx (over httpcore and h11) costs ~12 µs per HTTP chunk of a response
body: seven async-generator layers and h11's event machinery per chunk. An
answer stream sends one HTTP chunk per SSE event or close to it, so that was
most of a client's time. Here httpx still sends the request and reads the
status and headers (TLS, proxies, timeouts, errors stay httpx's); only the
body of a successful streamed answer is read by us, per socket read
(``network_stream.read(65536)``), de-chunked in one tight loop, and handed
on as the payload bytes of that read.

:func:`body_reader` takes over only when the response came from httpx's
default transport over HTTP/1.1, with an identity encoding and a chunked,
``Content-Length`` or close-delimited body; otherwise it returns None and
the caller reads ``response.aiter_bytes()`` as before (custom and in-process
transports, HTTP/2, compressed bodies). Failures surface as the httpx
exceptions the httpx path raised: ``httpx.RemoteProtocolError`` for a
malformed or cut body, ``httpx.ReadTimeout`` for silence, ``httpx.ReadError``
for a broken socket.

h11 never sees the body, so it never sees the body end: closing the response
(``response.aclose()``) closes the connection instead of returning it to the
pool. A streamed answer's connection is never reused.
"""

from __future__ import annotations

import re
from typing import Any, Final

# Imported by the client only when it reads a body, after httpx's default
# transport has loaded httpcore and h11 anyway.
import h11
import httpcore
import httpx

__all__ = ["BodyError", "ChunkedBody", "CloseBody", "LengthBody", "body_reader"]

_READ_SIZE: Final = 65536  # what httpcore reads at a time, too
_MAX_LINE: Final = 16 * 1024  # a chunk-size line (with extensions) longer than this is an error

# The chunk-size line as h11 accepts it: 1-20 hex digits, optional extensions
# (not parsed), trailing spaces or tabs (some servers send them), CRLF.
_SIZE_LINE: Final = re.compile(rb"([0-9A-Fa-f]{1,20})(?:;[^\n]*)?[ \t]*\r\n")
# The CRLF ending a chunk's data, then the next size line.
_NEXT_CHUNK: Final = re.compile(rb"\r\n([0-9A-Fa-f]{1,20})(?:;[^\n]*)?[ \t]*\r\n")
# A trailer field line: a token, a colon and a value without NUL, CR, LF, VT
# or FF (h11's lenient header-field grammar, whose OWS and value merge to this).
_TRAILER: Final = re.compile(rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+:[^\x00\n\r\x0b\x0c]*")
_FOLDED: Final = re.compile(rb"[ \t][^\x00\n\r\x0b\x0c]*")  # an obsolete continuation line
_END_OF_TRAILERS: Final = re.compile(rb"\n\r?\n")
# Chunks smaller than this are taken many at once (``_whole_chunks``): that
# scans the read for CRLFs (~1 ns a byte), which costs less than the one-by-one
# loop's ~0.5 µs per chunk only while chunks are small.
_SMALL_CHUNK: Final = 512


class BodyError(Exception):
    """The body's framing is broken (the reader raises it as ``httpx.RemoteProtocolError``)."""


class ChunkedBody:
    """De-chunks a ``Transfer-Encoding: chunked`` body fed in reads of any size.

    Accepts what h11 accepts: chunk-size lines with extensions and trailing
    whitespace, chunk data followed by CRLF, the last chunk ``0``, then
    trailer fields up to a blank line. Data of a chunk is given out as soon
    as it arrives, whether or not the chunk is complete.

    Example::

        body = ChunkedBody()
        body.feed(b"5\\r\\nhel")           # b"hel"
        body.feed(b"lo\\r\\n0\\r\\n\\r\\n")     # b"lo"; body.done is now True
    """

    __slots__ = ("_crlf", "_held", "_left", "_trailers", "done", "error")

    def __init__(self) -> None:
        self._left = 0  # bytes of the current chunk's data still to come
        self._crlf = 0  # bytes of the CRLF after the chunk's data still to come (0-2)
        self._held = b""  # an incomplete size line (or trailer block) from the last read
        self._trailers = False  # past the last chunk: reading trailer fields
        self.done = False
        self.error: BodyError | None = None
        """Set once the framing broke; raised by the next :meth:`feed` or :meth:`eof`."""

    def feed(self, data: bytes) -> bytes:
        """The payload bytes in ``data`` (the next bytes of the body).

        When the framing breaks in ``data``, the payload before the break is
        returned and :attr:`error` set (as h11 gives the data before it raises).

        :raises BodyError: the framing broke, here with no payload before it, or earlier.
        """
        if self.error is not None:
            raise self.error
        if self.done:
            return b""
        if self._held:
            data = self._held + data
            self._held = b""
        out: list[bytes] = []
        try:
            self._parse(data, out)
        except BodyError as exc:
            self.error = exc
            if not out:
                raise
        if not out:
            return b""
        return out[0] if len(out) == 1 else b"".join(out)

    def _parse(self, data: bytes, out: list[bytes]) -> None:
        """Append the payload in ``data`` to ``out``; keep the state for the next read."""
        pos = 0
        end = len(data)
        left = self._left
        crlf = self._crlf
        try:
            while pos < end:
                if left:
                    stop = pos + left
                    if stop > end:
                        out.append(data[pos:] if pos else data)
                        left -= end - pos
                        break
                    out.append(data[pos:stop])
                    pos = stop
                    left = 0
                    crlf = 2
                    continue
                if crlf:
                    # The CRLF after a chunk's data; checked byte by byte as it arrives.
                    want = b"\r\n"[2 - crlf :]
                    got = data[pos : pos + crlf]
                    if not want.startswith(got):
                        raise BodyError(f"malformed chunk footer: {got!r} (expected {want!r})")
                    pos += len(got)
                    crlf -= len(got)
                    continue
                if self._trailers:
                    self._read_trailers(data, pos)
                    break
                # At a chunk-size line.
                match = _SIZE_LINE.match(data, pos)
                if match is None:
                    self._hold_size_line(data, pos)
                    break
                # Small chunks (one per SSE event is common): maybe many, all at once.
                taken = _whole_chunks(data, match, out)
                if taken:
                    pos = taken  # at the size line of the first chunk not taken
                    continue
                pos = match.end()
                left = int(match[1], 16)
                # The chunks one by one: one regex per chunk checks the CRLF after its
                # data and reads the next size.
                while True:
                    if not left:
                        self._trailers = True
                        break
                    if pos + left > end:
                        # Its data goes on past this read. (Checked first: a size of
                        # 20 hex digits is no position that ``re`` can take.)
                        break
                    follow = _NEXT_CHUNK.match(data, pos + left)
                    if follow is None:
                        break  # its CRLF goes on past this read (or is wrong)
                    out.append(data[pos : pos + left])
                    pos = follow.end()
                    left = int(follow[1], 16)
        finally:
            self._left = left
            self._crlf = crlf

    def _hold_size_line(self, data: bytes, pos: int) -> None:
        """No complete size line at ``pos``: keep it for the next read if it is cut
        by this one; raise if it is malformed or too long."""
        eol = data.find(b"\r\n", pos)
        if eol >= 0:
            raise BodyError(f"illegal chunk header: {data[pos : eol + 2][:80]!r}")
        if len(data) - pos > _MAX_LINE:
            raise BodyError("chunk size line too long")
        self._held = data[pos:]

    def _read_trailers(self, data: bytes, pos: int) -> None:
        """Read trailer fields (ignored) up to the blank line that ends the body."""
        if not data.startswith((b"\n", b"\r\n"), pos):
            match = _END_OF_TRAILERS.search(data, pos)
            if match is None:
                if len(data) - pos > _MAX_LINE:
                    raise BodyError("trailer fields too long")
                self._held = data[pos:]
                return
            lines = data[pos : match.start()].split(b"\n")
            for i, line in enumerate(lines):
                if line.endswith(b"\r"):
                    line = line[:-1]
                ok = _TRAILER.fullmatch(line) or (i and _FOLDED.fullmatch(line))
                if not ok:
                    raise BodyError(f"illegal trailer line: {line[:80]!r}")
        self.done = True  # what follows is not part of this body

    def eof(self) -> None:
        """The connection closed.

        :raises BodyError: before the end of the body.
        """
        if self.error is not None:
            raise self.error
        if not self.done:
            raise BodyError(
                "peer closed connection without sending complete message body "
                "(incomplete chunked read)"
            )


def _whole_chunks(data: bytes, size_line: re.Match[bytes], out: list[bytes]) -> int:
    """Take the whole chunks that follow one another from ``size_line`` in one go.

    The one-by-one loop of :meth:`ChunkedBody._parse` costs a regex match, an
    ``int`` and a slice per chunk in Python (~0.6 µs when each chunk is one
    SSE event); here one ``split`` at every CRLF cuts the read into size lines
    and chunk data, and C calls check all of them at once. They are the
    chunks the loop would take exactly when every size line is its piece's
    length in lowercase hex (no extension, whitespace, capitals or leading
    zeros: the general path reads those), so every piece of data is as long
    as its size says (data holding a CRLF is cut short), and none is 0 (the
    last chunk: trailers follow). Only tried when the first chunk is small
    (see :data:`_SMALL_CHUNK`).

    :returns: where the first chunk not taken starts (its size line); 0 when
        none was taken.
    """
    if int(size_line[1], 16) >= _SMALL_CHUNK:
        return 0
    pos = size_line.start()
    parts = data[pos:].split(b"\r\n")  # size, data, size, data, ..., the rest
    n = (len(parts) - 1) // 2  # the chunks whose size line and data both end in CRLF
    if not n:
        return 0
    pieces = parts[1 : 2 * n : 2]
    lengths = tuple(map(len, pieces))
    # The size lines as a server writes them for these pieces: lowercase hex
    # without leading zeros, built in one formatting call (parsing each size
    # costs twice as much). Equal, they are valid size lines of exactly these
    # lengths; any other spelling is left to the general path.
    if b"%x\n" * n % lengths != b"\n".join(parts[0 : 2 * n : 2]) + b"\n" or not all(lengths):
        return 0
    out.extend(pieces)
    return len(data) - len(b"\r\n".join(parts[2 * n :]))  # (one or two parts)


class LengthBody:
    """A body of ``Content-Length`` bytes (what follows them is not part of it)."""

    __slots__ = ("_left", "_length", "done")
    error: BodyError | None = None  # a length cannot be malformed

    def __init__(self, length: int) -> None:
        self._length = length
        self._left = length
        self.done = length == 0

    def feed(self, data: bytes) -> bytes:
        """The payload bytes in ``data``."""
        left = self._left
        if len(data) >= left:
            data = data[:left]
            self.done = True
        self._left = left - len(data)
        return data

    def eof(self) -> None:
        """The connection closed; :raises BodyError: before ``Content-Length`` bytes came."""
        if not self.done:
            raise BodyError(
                "peer closed connection without sending complete message body "
                f"(received {self._length - self._left} bytes, expected {self._length})"
            )


class CloseBody:
    """A body without length or chunking: it ends when the server closes the connection."""

    __slots__ = ("done",)
    error: BodyError | None = None

    def __init__(self) -> None:
        self.done = False

    def feed(self, data: bytes) -> bytes:
        """The payload bytes in ``data`` (all of them)."""
        return data

    def eof(self) -> None:
        """The connection closed: that is the end of the body."""
        self.done = True


Body = ChunkedBody | LengthBody | CloseBody


class BodyReader:
    """The payload bytes of a response body, one item per socket read.

    An async iterator of ``bytes`` in place of ``response.aiter_bytes()``:
    it ends at the end of the body and raises ``httpx.RemoteProtocolError``,
    ``httpx.ReadTimeout`` or ``httpx.ReadError`` as that would.
    Made by :func:`body_reader`; the caller closes the response.
    """

    __slots__ = ("_body", "_first", "_network", "_request", "_timeout")

    def __init__(
        self,
        network: Any,
        body: Body,
        first: bytes,
        eof: bool,
        timeout: float | None,
        request: httpx.Request,
    ) -> None:
        self._network = network
        self._body = body
        # Bytes that came with the headers; None once fed (b"" = the connection closed).
        self._first: bytes | None = first if first or eof else None
        self._timeout = timeout
        self._request = request

    def __aiter__(self) -> BodyReader:
        return self

    async def __anext__(self) -> bytes:
        body = self._body
        while not body.done:
            if body.error is not None:  # after the payload that came before it
                raise httpx.RemoteProtocolError(str(body.error), request=self._request)
            data = self._first
            if data is None:
                data = await self._read()
            else:
                self._first = None
            try:
                if not data:
                    body.eof()
                    break
                payload = body.feed(data)
            except BodyError as exc:
                raise httpx.RemoteProtocolError(str(exc), request=self._request) from None
            if payload:
                return payload
        raise StopAsyncIteration

    async def _read(self) -> bytes:
        try:
            data: bytes = await self._network.read(_READ_SIZE, timeout=self._timeout)
        except httpcore.TimeoutException as exc:
            raise httpx.ReadTimeout(str(exc), request=self._request) from exc
        except (httpcore.NetworkError, OSError) as exc:
            raise httpx.ReadError(str(exc), request=self._request) from exc
        return data


def body_reader(response: httpx.Response) -> BodyReader | None:
    """A :class:`BodyReader` for ``response``'s body, or None to read it with httpx.

    Only for a response of httpx's default transport over HTTP/1.1 whose body
    has not been touched yet: 2xx (not 204), not to ``HEAD``, no content
    encoding but identity. The bytes h11 received past the headers are read
    first. None whenever anything is not as expected.
    """
    if (
        response.extensions.get("http_version") != b"HTTP/1.1"
        or response.is_stream_consumed
        or response.is_closed
        or not 200 <= response.status_code < 300
        or response.status_code == 204
        or response.request.method == "HEAD"
    ):
        return None
    headers = response.headers
    encoding = headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        return None
    network = response.extensions.get("network_stream")
    if network is None or not callable(getattr(network, "read", None)):
        return None
    found = _h11_state(response, network)
    if found is None:
        return None
    first, closed = found
    # The framing h11 chose (it validated these headers): chunked beats Content-Length.
    body: Body
    if "transfer-encoding" in headers:
        if headers["transfer-encoding"].strip().lower() != "chunked":
            return None
        body = ChunkedBody()
    elif "content-length" in headers:
        lengths = {v.strip() for v in headers.get_list("content-length", split_commas=True)}
        if len(lengths) != 1:
            return None
        (length,) = lengths
        if not length.isdigit():
            return None
        body = LengthBody(int(length))
    else:
        body = CloseBody()
    timeout = response.request.extensions.get("timeout", {}).get("read")
    response.is_stream_consumed = True  # httpx must not read it too
    return BodyReader(network, body, first, closed, timeout, response.request)


def _h11_state(response: httpx.Response, network: Any) -> tuple[bytes, bool] | None:
    """The bytes h11 holds past the headers of ``response``, and whether it saw EOF.

    The one place that reaches into httpx and httpcore internals (httpx 0.28,
    httpcore 1.0): response.stream (httpx ``BoundAsyncStream``) ._stream
    (httpx ``AsyncResponseStream``) ._httpcore_stream (httpcore
    ``PoolByteStream``) ._stream (httpcore ``HTTP11ConnectionByteStream``)
    ._connection (``httpcore.AsyncHTTP11Connection``) ._h11_state
    (``h11.Connection``). Every step is checked, and the connection must be
    the one whose network stream the response names; None (read with httpx)
    when anything differs, e.g. after an upgrade of httpx or httpcore.
    ``tests/test_h1_reader.py`` fails if the real default transport no longer
    gets here, so such an upgrade is noticed rather than silently slower.
    """
    stream: Any = response.stream
    for name in ("_stream", "_httpcore_stream", "_stream"):
        stream = getattr(stream, name, None)
    connection = getattr(stream, "_connection", None)
    if not isinstance(connection, httpcore.AsyncHTTP11Connection):
        return None
    if getattr(connection, "_network_stream", None) is not network:
        return None
    state = getattr(connection, "_h11_state", None)
    if not isinstance(state, h11.Connection):
        return None
    if state.our_role is not h11.CLIENT or state.their_state is not h11.SEND_BODY:
        return None
    data, closed = state.trailing_data
    if not isinstance(data, bytes) or not isinstance(closed, bool):
        return None
    return data, closed
