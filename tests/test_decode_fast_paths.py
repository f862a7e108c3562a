"""The fast paths of the log-off hot loop (issue 16) agree with the general paths.

Each fast path here skips work for the common shape of the AI SDK's stream;
each test compares it with the general code it stands in for, on inputs that
take the fast path, inputs that must fall back, and random ones.
"""

from __future__ import annotations

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from kai_core._masking import MASK, TokenMask

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


def test_a_payload_without_backslash_is_returned_as_is() -> None:
    mask = TokenMask(TOKEN)
    data = b'{"type":"text-delta","delta":"hi"}'
    assert mask.escaped(data) is data
    escaped = b'{"type":"text-delta","delta":"kai-secret-DEADBEEF\\u002f42"}'
    assert mask.escaped(escaped) == b'{"type":"text-delta","delta":"***"}'
