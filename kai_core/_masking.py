"""Masking the Storage API token in JSON a server sends, however it is spelled.

A server that repeats the token can write it raw (``kai-secret-DEADBEEF``)
or with a character JSON-escaped (``kai-secret-DEADBEE\\u0046``): the bytes
differ, the decoded text is the same. Masking only the raw bytes would let
the escaped form reach the events, the terminal, the log's projections and
its search index. :class:`TokenMask` masks both: the raw bytes by a
substring replace, and, when the JSON holds an escape that could spell a
token character, the decoded text, by re-encoding the JSON (without
escapes) and replacing there. Only JSON that turns out to hold the token is
rewritten; every other payload keeps its exact bytes.
"""

from __future__ import annotations

import re
from typing import Final

import msgspec

__all__ = ["MASK", "MIN_SECRET", "TokenMask"]

MASK: Final = b"***"
MIN_SECRET: Final = 8
"""Tokens shorter than this are not real tokens and are left alone."""

_ENCODE = msgspec.json.Encoder()
_DECODE = msgspec.json.Decoder()


class TokenMask:
    """Masks one token in JSON bytes (see the module docstring).

    :param token: the Storage API token (8 or more characters).
    """

    def __init__(self, token: str) -> None:
        self.token = token.encode()
        # The escapes that can stand for a token character in JSON: \uXXXX for
        # any, and the short form of '/' (the others, \" \\ \b ..., are for
        # characters no token has).
        self._escapes = (b"\\u", b"\\/") if b"/" in self.token else (b"\\u",)
        # The same as a pattern, for a whole read: the regex engine looks for the
        # backslash first, where ``b"\\u" in data`` is slow on text full of "u".
        self._escape_pattern = re.compile(rb"\\[u/]" if b"/" in self.token else rb"\\u")

    def __call__(self, data: bytes) -> bytes:
        """``data`` with the token masked, raw and JSON-escaped."""
        if self.token in data:
            data = data.replace(self.token, MASK)
        return self.escaped(data)

    def has_escape(self, data: bytes) -> bool:
        """Whether ``data`` holds an escape that can spell a token character."""
        return self._escape_pattern.search(data) is not None

    def escaped(self, data: bytes) -> bytes:
        """``data`` with a JSON-escaped token masked (raw ones already are).

        :returns: ``data`` itself unless its decoded text holds the token;
            then the JSON re-encoded without escapes, the token masked.
        """
        # This runs for every payload. Every escape starts with a backslash, and
        # an int membership test is a plain memchr (~20 ns), where ``b"\\u" in
        # data`` costs ~180 ns (bytes.__contains__ first tries the needle as an
        # int and handles the TypeError): most payloads hold no backslash at all.
        if 0x5C not in data:
            return data
        for escape in self._escapes:  # a plain loop
            if escape in data:
                break
        else:
            return data
        try:
            plain = _ENCODE.encode(_DECODE.decode(data))
        except Exception:  # not JSON (or not JSON we can decode): nothing decodes it
            return data
        if self.token not in plain:
            return data
        return plain.replace(self.token, MASK)
