"""An incremental Server-Sent Events decoder over bytes.

It follows the WHATWG "event stream interpretation" rules
(https://html.spec.whatwg.org/multipage/server-sent-events.html) for what the
Kai stream needs: lines end at CRLF, LF or CR (also when a CRLF is split
across two reads); a UTF-8 byte order mark at the very start is dropped;
lines starting with ``:`` are comments; ``data:`` takes one optional space
after the colon; several ``data`` lines of one event are joined with
``"\\n"``; a blank line dispatches the event if it had any ``data`` line;
``event``, ``id``, ``retry`` and unknown fields are ignored (the AI SDK never
sends them: the chunk kind is inside the JSON).

It is the hot path of every answer, so it works on ``bytes`` (no text
decoding of the whole stream, no per-character work): a read is split into
lines with ``bytes.split`` and only ``data`` lines are kept.
:meth:`SSEDecoder.feed_bytes` returns the exact payload bytes (what the event
log stores and what :func:`~kai_core.chunks.decode_chunk` reads);
:meth:`SSEDecoder.feed` returns them as text, decoded like ``httpx-sse``
does (UTF-8, invalid bytes replaced).

The size of an event is bounded (``max_event_size``, 16 MiB by default): a
server that never ends a line or an event cannot make the client buffer
without limit; it gets :class:`~kai_core.exceptions.KaiStreamError` with code
``stream:too_large`` instead.
"""

from __future__ import annotations

from typing import Final

from .exceptions import KaiStreamError

__all__ = ["DEFAULT_MAX_EVENT_SIZE", "SSEDecoder"]

DEFAULT_MAX_EVENT_SIZE: Final = 16 * 1024 * 1024
"""Default bound, in bytes, on one event (its lines up to the blank line)."""

_BOM: Final = b"\xef\xbb\xbf"


class SSEDecoder:
    """Turns the bytes of an event stream, in reads of any size, into ``data`` payloads.

    :param max_event_size: the most bytes one event may take (all its lines,
        comments included, up to the blank line ending it); beyond it :meth:`feed` raises
        :class:`~kai_core.exceptions.KaiStreamError` (``stream:too_large``).

    Example::

        decoder = SSEDecoder()
        decoder.feed(b'data: {"type":"start"}\\n\\nda')   # ['{"type":"start"}']
        decoder.feed(b"ta: [DONE]\\n\\n")                 # ['[DONE]']
    """

    __slots__ = ("_max", "_pending", "_pending_size", "_skip_lf", "_started", "multiline")

    def __init__(self, max_event_size: int = DEFAULT_MAX_EVENT_SIZE) -> None:
        if max_event_size <= 0:
            raise ValueError("max_event_size must be positive")
        self._max = max_event_size
        # The bytes of the event being received (after the last blank line),
        # kept as the reads that brought them: joined once, when the event ends.
        self._pending: list[bytes] = []
        self._pending_size = 0
        # The last read ended with CR: a LF starting the next read belongs to it.
        self._skip_lf = False
        # False until the first bytes are seen (the BOM is only dropped there).
        self._started = False
        self.multiline = False
        """True once a payload of several ``data`` lines (so with a newline) was
        returned; until then none has a newline (the event log's frames rely on it)."""

    @property
    def max_event_size(self) -> int:
        """The bound on the bytes of one event (its lines, comments included)."""
        return self._max

    @property
    def has_pending(self) -> bool:
        """True while bytes of an event that has not ended yet are buffered."""
        return bool(self._pending)

    def feed(self, data: bytes) -> list[str]:
        """Decode one read; return the data of every event it completes, as text."""
        return [p.decode("utf-8", "replace") for p in self.feed_bytes(data)]

    def feed_bytes(self, data: bytes) -> list[bytes]:  # noqa: C901 - hot path: one call per read, kept in one piece
        """Decode one read; return the exact data bytes of every event it completes."""
        if not self._started:
            data = b"".join(self._pending) + data
            self._pending.clear()
            if len(data) < 3 and _BOM.startswith(data):
                # Too short to tell whether the stream opens with a BOM.
                if data:
                    self._pending.append(data)
                return []
            self._started = True
            if data.startswith(_BOM):
                data = data[3:]
        if self._skip_lf and data:
            self._skip_lf = False
            if data[0] == 0x0A:
                data = data[1:]
        if not data:
            return []
        if 0x0D in data:
            # Normalise CRLF and CR to LF; a CR ending this read may be the
            # first half of a CRLF split across reads.
            self._skip_lf = data[-1] == 0x0D
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        pending = self._pending
        if pending:
            # Events end at a blank line, i.e. "\n\n"; one may straddle the reads.
            if b"\n\n" not in data and not (data[0] == 0x0A and pending[-1][-1] == 0x0A):
                return self._keep(data)
            data = b"".join(pending) + data
            pending.clear()
            self._pending_size = 0
        elif b"\n\n" not in data:
            return self._keep(data)
        # The fast path, for what the AI SDK sends: complete events that are each
        # one "data: <json>" line, then maybe the start of the next one. Split on
        # the separator with the next event's prefix, the payloads come out of one
        # C call with nothing to strip; they are the general path's exactly when
        # no payload holds a newline (the only newlines before the last blank line
        # are then the separators'), and when no event can exceed the bound (the
        # region is shorter). (Joining and a memchr take a quarter of a count.)
        end = data.rfind(b"\n\n")
        if data[:6] == b"data: " and end <= self._max:
            payloads = data[6:end].split(b"\n\ndata: ")
            if 0x0A not in b"".join(payloads):
                tail = data[end + 2 :]
                if tail:
                    self._keep(tail)
                return payloads
        events = data.split(b"\n\n")
        tail = events.pop()
        if tail:
            self._keep(tail)
        out: list[bytes] = []
        limit = self._max
        for event in events:
            if len(event) > limit:
                raise self._too_large()
            # The Kai stream: one "data: <json>" line per event.
            # (An int membership test is a plain memchr, several times faster than b"\n".)
            if event[:6] == b"data: " and 0x0A not in event:
                out.append(event[6:])
            elif event:
                self._decode_event(event, out)
        return out

    def _keep(self, data: bytes) -> list[bytes]:
        """Buffer bytes of an event that has not ended yet."""
        self._pending_size += len(data)
        if self._pending_size > self._max:
            raise self._too_large()
        self._pending.append(data)
        return []

    def _decode_event(self, event: bytes, out: list[bytes]) -> None:
        """The general case: several lines, comments, other fields, blank lines."""
        data: list[bytes] | None = None
        for line in event.split(b"\n"):
            if not line:
                # A blank line inside the block ("\n\n\n"): dispatch what we have.
                if data is not None:
                    self._dispatch(data, out)
                    data = None
            elif line.startswith(b"data"):
                if len(line) == 4:
                    value = b""
                elif line[4] == 0x3A:  # ":"
                    value = line[6:] if line[5:6] == b" " else line[5:]
                else:
                    continue  # another field, such as "datum"
                if data is None:
                    data = [value]
                else:
                    data.append(value)
            # Comments (":...") and every other field are ignored.
        if data is not None:
            self._dispatch(data, out)

    def _dispatch(self, data: list[bytes], out: list[bytes]) -> None:
        if len(data) > 1:
            self.multiline = True
        out.append(b"\n".join(data))

    def _too_large(self) -> KaiStreamError:
        return KaiStreamError(
            f"the stream sent an event larger than {self._max} bytes",
            code="stream:too_large",
        )
