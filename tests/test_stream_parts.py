"""The parts of EventStream, one at a time: no socket, no server, no trio run.

Each part (:mod:`kai_core._stream_parts`) takes bytes or payloads and gives
payloads, records or errors back; the streams built on them are tested in
``test_client_stream.py`` and ``test_reliability_*.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kai_core._stream_parts.utf8 import Utf8Check, check_payload
from kai_core.exceptions import KaiStreamError


def split_at(data: bytes, cuts: Sequence[int]) -> list[bytes]:
    """``data`` cut into reads at these positions."""
    points = sorted({min(c, len(data)) for c in cuts})
    reads, start = [], 0
    for p in points:
        reads.append(data[start:p])
        start = p
    reads.append(data[start:])
    return reads


# -- UTF-8 -------------------------------------------------------------------------


def needs_check(reads: Sequence[bytes]) -> list[bool]:
    check = Utf8Check()
    return [check.needs_payload_check(r) for r in reads]


def test_ascii_reads_need_no_payload_check() -> None:
    assert needs_check([b'data: {"a":1}\n\n', b"data: x\n\n"]) == [False, False]


def test_a_character_split_across_reads_is_valid() -> None:
    euro = "€".encode()  # three bytes
    assert needs_check([b"data: " + euro[:1], euro[1:2], euro[2:] + b"\n\n"]) == [False] * 3


def test_an_ascii_read_after_half_a_character_is_checked() -> None:
    # The ASCII shortcut must not skip the read that shows the character was cut short.
    assert needs_check([b"data: \xe2\x82", b"x\n\n"]) == [False, True]


def test_after_a_bad_read_every_read_is_checked_per_payload() -> None:
    check = Utf8Check()
    assert check.needs_payload_check(b"data: \xff\n\n")
    assert check.per_payload
    assert check.needs_payload_check(b"data: fine\n\n")
    assert check.needs_payload_check("data: é\n\n".encode())


@given(text=st.text(), cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=8))
def test_any_split_of_valid_utf8_needs_no_payload_check(text: str, cuts: list[int]) -> None:
    assert not any(needs_check(split_at(text.encode(), cuts)))


@given(
    before=st.text(),
    after=st.text(),
    cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=8),
)
def test_an_invalid_byte_is_caught_and_the_check_stays_per_payload(
    before: str, after: str, cuts: list[int]
) -> None:
    data = before.encode() + b"\xff" + after.encode()
    flags = needs_check(split_at(data, cuts))
    first = flags.index(True)  # raises if no read was flagged
    assert all(flags[first:])


def test_check_payload_passes_utf8_and_names_the_bad_byte() -> None:
    check_payload('{"delta":"été"}'.encode())
    with pytest.raises(KaiStreamError) as info:
        check_payload(b'{"delta":"\xc3t"}')
    error = info.value
    assert error.code == "stream:malformed_chunk"
    assert error.cause == "invalid byte at position 10"
    assert error.message == 'the server sent a chunk that is not valid UTF-8: {"delta":"\ufffdt"}'
