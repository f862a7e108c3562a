"""Decoding stored server chunks, a frame at a time.

A frame of server records (see :mod:`._frames`) holds the chunks' exact
payloads as JSON lines, so the known chunks among them decode in one
msgspec call. The result is always exactly what :func:`~kai_core.chunks.decode_chunk`
gives for each payload, as the live stream decoded it.
"""

from __future__ import annotations

from typing import Final

import msgspec

from ..chunks import Chunk, DataChunk, KnownChunk, decode_chunk
from ..exceptions import KaiStreamError
from ._frames import frame_bodies

__all__ = ["decode_frame", "decode_one"]

_lines_decoder: Final = msgspec.json.Decoder(KnownChunk)
_data_decoder: Final = msgspec.json.Decoder(DataChunk)
_DATA_TYPE: Final = b'"data-'  # a data-* chunk is no KnownChunk: decoded on its own
_SEP: Final = b"\n"


def decode_one(body: str | bytes) -> Chunk | None:
    """:func:`~kai_core.chunks.decode_chunk`, None for a payload it refuses."""
    try:
        return decode_chunk(body)
    except KaiStreamError:
        return None  # the live stream failed on it too; nothing was yielded


def _decode_data(body: bytes) -> Chunk | None:
    """:func:`decode_chunk` for a body that likely is a ``data-*`` chunk: tried
    as one first (what decode_chunk ends with for those, after two failed tries)."""
    try:
        chunk = _data_decoder.decode(body)
    except (msgspec.MsgspecError, UnicodeDecodeError):
        return decode_one(body)
    # No known chunk type starts with "data-": decode_chunk gives this very chunk.
    return chunk if chunk.type.startswith("data-") else decode_one(body)


def decode_frame(n: int, body: bytes, sizes: bytes | None) -> list[Chunk | None]:
    """The chunks of a frame of server records, in order (None where one does not decode).

    A frame of chunks is JSON lines: the known chunks decode in one decoder
    call per stretch of lines; ``data-*`` chunks (no known type) and
    anything unusual (an unknown or malformed chunk, a blank or multi-line
    body) go body by body, exactly as live.
    """
    if n == 1:
        return [decode_one(body)]
    if sizes is None:
        try:
            chunks = _decode_lines(body)
        except (msgspec.MsgspecError, UnicodeDecodeError):
            pass
        else:
            if len(chunks) == n:  # else a blank body was skipped
                return chunks
    return [decode_one(b) for b in frame_bodies(n, body, sizes)]


def _decode_lines(body: bytes) -> list[Chunk | None]:
    """Decode JSON lines of known chunks, each line with ``"data-`` on its own."""
    out: list[Chunk | None] = []
    pos = 0
    size = len(body)
    while True:
        hit = body.find(_DATA_TYPE, pos)
        if hit < 0:
            out += _lines_decoder.decode_lines(body[pos:] if pos else body)
            return out
        begin = body.rfind(_SEP, pos, hit) + 1 or pos
        end = body.find(_SEP, hit)
        if end < 0:
            end = size
        if begin > pos:
            out += _lines_decoder.decode_lines(body[pos : begin - 1])
        out.append(_decode_data(body[begin:end]))
        if end == size:
            return out
        pos = end + 1
