"""Checking that the bytes of a stream are UTF-8.

The log stores chunks as text, and a chunk that is not UTF-8 is a malformed
chunk (``stream:malformed_chunk``), not something to store with replacement
characters. Checking each payload costs a decode per chunk; checking each
read, with an incremental decoder that carries a character split across
reads, costs one per read, and nothing at all for ASCII. Only once a read
fails is the check made per payload, to find the bad chunk (the decoder
cannot tell where the next read starts after an error).

:class:`Utf8Check` holds that state for one connection; :func:`check_payload`
is the per-payload check.
"""

from __future__ import annotations

import codecs

from ..exceptions import KaiStreamError

__all__ = ["Utf8Check", "check_payload"]

_decoder = codecs.getincrementaldecoder("utf-8")


class Utf8Check:
    """Whether the reads of one connection are UTF-8 so far (a new one per connection).

    :attr:`per_payload` turns True at the first read that is not valid UTF-8
    (after the reads before it), and stays True.
    """

    __slots__ = ("_utf8", "per_payload")

    def __init__(self) -> None:
        self._utf8 = _decoder("strict")
        self.per_payload = False

    def needs_payload_check(self, data: bytes) -> bool:
        """Check one read; True if its payloads must be checked one by one.

        That is when this read, after the ones before it, is not valid UTF-8,
        or an earlier read was not: call :func:`check_payload` on its payloads
        that are not ASCII.
        """
        if self.per_payload:
            return True
        utf8 = self._utf8
        # An ASCII read needs no check, unless a character was cut before it.
        if data.isascii() and not utf8.getstate()[0]:
            return False
        try:
            utf8.decode(data)
        except UnicodeDecodeError:
            self.per_payload = True
            return True
        return False


def check_payload(payload: bytes) -> None:
    """Raise ``stream:malformed_chunk`` for a payload that is not valid UTF-8."""
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        text = payload[:120].decode("utf-8", "replace")
        raise KaiStreamError(
            f"the server sent a chunk that is not valid UTF-8: {text}",
            code="stream:malformed_chunk",
            cause=f"invalid byte at position {exc.start}",
        ) from None
