"""Masking the token in a stream, read by read.

:class:`~kai_core._masking.TokenMask` masks the token in one JSON payload.
A stream brings the token in reads cut anywhere: the token may be split
across two reads, or sit in an event whose end comes reads later. Searching
every payload for it would cost a search per chunk; :class:`StreamMask`
searches each read once (and the seam with the read before), remembers when
the SSE decoder still holds part of an event that had the token, and only
then replaces it in the payloads. The JSON-escaped spellings are left to
:meth:`TokenMask.escaped`, asked only about the payloads of a read that has
an escape that can spell a token character (``\\u``, and ``\\/`` for a token
with a slash), or while the decoder holds an event with a backslash from an
earlier read (the escape may be cut after it): most reads have neither.
"""

from __future__ import annotations

from .._masking import MASK, MIN_SECRET, TokenMask
from ..sse import SSEDecoder

__all__ = ["StreamMask"]


class StreamMask:
    """Masks the token in the payloads of one connection's reads.

    :param mask: the token's mask (8 characters or more: see :func:`for_secret`).
    """

    __slots__ = ("_escaped", "_has_escape", "_held", "_held_escape", "_keep", "_tail", "token")

    def __init__(self, mask: TokenMask) -> None:
        self.token = mask.token
        self._escaped = mask.escaped
        self._has_escape = mask.has_escape
        self._keep = len(self.token) - 1  # bytes of a read that may start a split token
        self._tail = b""  # the end of the last read, for a token split across reads
        self._held = False  # the decoder holds part of an event that had the token
        self._held_escape = False  # ... or one that had a backslash

    @classmethod
    def for_secret(cls, secret: str | None) -> StreamMask | None:
        """A mask for ``secret``; None when there is none, or it is too short to be a token."""
        if not secret or len(secret) < MIN_SECRET:
            return None
        return cls(TokenMask(secret))

    def reset(self) -> None:
        """Forget the reads so far (a new connection, with a fresh decoder)."""
        self._tail, self._held, self._held_escape = b"", False, False

    def feed(self, decoder: SSEDecoder, data: bytes) -> list[bytes]:
        """Decode one read with ``decoder``; its payloads, with the token masked.

        :raises KaiStreamError: as :meth:`SSEDecoder.feed_bytes` does.
        """
        token = self.token
        keep = self._keep
        tail = self._tail
        # Does this read have (part of) the token in it, or an event still holding it?
        # (bytes.find's search, several times faster than a regex for a literal.)
        seen = self._held or token in data or (bool(tail) and token in tail + data[:keep])
        self._tail = data[-keep:] if len(data) >= keep else (tail + data)[-keep:]
        payloads = decoder.feed_bytes(data)
        if seen:
            # A server that repeats the token must not get it into the log or output.
            payloads = [p.replace(token, MASK) for p in payloads]
            self._held = decoder.has_pending
        # ... nor spelled with a JSON escape (kai-secret-DEADBEE\u0046). The
        # backslash may have come in an earlier read of a payload ending here.
        if self._held_escape or 0x5C in data:
            # Most backslashes are a text's \n or \": only a read with an escape
            # that can spell a token character (or after such a backslash) has
            # its payloads looked at one by one.
            if self._held_escape or self._has_escape(data):
                escaped = self._escaped
                payloads = [escaped(p) for p in payloads]
            self._held_escape = decoder.has_pending and self._backslash_held(data)
        return payloads

    @staticmethod
    def _backslash_held(data: bytes) -> bool:
        """Whether the event the decoder holds may have a backslash (given one
        in ``data``, or held from before): one after this read's last blank
        line. With no blank line seen (none, or only ``\\r``-ended lines), it may."""
        end = data.rfind(b"\n\n")
        return end < 0 or data.find(0x5C, end) >= 0
