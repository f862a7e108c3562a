"""The parts of EventStream, one at a time: no socket, no server, no trio run.

Each part (:mod:`kai_core._stream_parts`) takes bytes or payloads and gives
payloads, records or errors back; the streams built on them are tested in
``test_client_stream.py`` and ``test_reliability_*.py``.
"""

from __future__ import annotations

import collections
import json
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kai_core._stream_parts.log_writer import LogWriter
from kai_core._stream_parts.masking import StreamMask
from kai_core._stream_parts.resume import ResumeCheck
from kai_core._stream_parts.utf8 import Utf8Check, check_payload
from kai_core.events import Event, TextEvent
from kai_core.exceptions import KaiLogError, KaiStreamError
from kai_core.records import LogRecord
from kai_core.sse import SSEDecoder


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


# -- masking the token -------------------------------------------------------------

TOKEN = "kai-secret-7c1f9e-DEADBEEF"


def _escaped(at: int) -> bytes:
    return (TOKEN[:at] + f"\\u{ord(TOKEN[at]):04x}" + TOKEN[at + 1 :]).encode()


ECHO = (
    b'data: {"type":"start","messageId":"m"}\n\n'
    b'data: {"type":"text-delta","id":"t","delta":"raw ' + TOKEN.encode() + b'"}\n\n'
    b'data: {"type":"text-delta","id":"t","delta":"a line\\nand \\"quotes\\""}\n\n'
    b'data: {"type":"text-delta","id":"t","delta":"escaped ' + _escaped(5) + b'"}\n\n'
    b'data: {"type":"text-delta","id":"t","delta":"twice ' + TOKEN.encode() * 2 + b'"}\n\n'
    b'data: {"type":"finish","finishReason":"stop"}\n\n'
)
MASKED = [
    b'{"type":"start","messageId":"m"}',
    b'{"type":"text-delta","id":"t","delta":"raw ***"}',
    b'{"type":"text-delta","id":"t","delta":"a line\\nand \\"quotes\\""}',
    b'{"type":"text-delta","id":"t","delta":"escaped ***"}',
    b'{"type":"text-delta","id":"t","delta":"twice ******"}',
    b'{"type":"finish","finishReason":"stop"}',
]


def masked(reads: Sequence[bytes], token: str = TOKEN) -> list[bytes]:
    mask = StreamMask.for_secret(token)
    assert mask is not None
    decoder = SSEDecoder()
    return [p for r in reads for p in mask.feed(decoder, r)]


def test_no_mask_without_a_real_token() -> None:
    assert StreamMask.for_secret(None) is None
    assert StreamMask.for_secret("") is None
    assert StreamMask.for_secret("1234567") is None  # shorter than a real token
    assert StreamMask.for_secret("12345678") is not None


def test_the_token_is_masked_raw_and_escaped_in_one_read() -> None:
    assert masked([ECHO]) == MASKED


def test_a_token_split_across_reads_is_masked() -> None:
    at = ECHO.index(TOKEN.encode()) + 10
    assert masked([ECHO[:at], ECHO[at:]]) == MASKED


def test_a_token_in_an_event_that_ends_reads_later_is_masked() -> None:
    # The read that ends the event has no byte of the token: the mask must
    # remember that the decoder holds an event that had it.
    head = b'data: {"type":"text-delta","id":"t","delta":"' + TOKEN.encode()
    reads = [head, b" and then some more text", b'"}\n\n']
    assert masked(reads) == [
        b'{"type":"text-delta","id":"t","delta":"*** and then some more text"}'
    ]


def test_an_escaped_token_whose_backslash_came_reads_earlier_is_masked() -> None:
    # Only reads with a backslash are looked at for escapes, so the mask must
    # remember that the decoder holds an event that had one.
    escaped = _escaped(20)
    at = escaped.index(b"\\") + 1
    head = b'data: {"type":"text-delta","id":"t","delta":"' + escaped[:at]
    reads = [head, escaped[at:], b" and more", b'"}\n\n']
    assert masked(reads) == [b'{"type":"text-delta","id":"t","delta":"*** and more"}']


def test_payloads_without_the_token_keep_their_bytes() -> None:
    data = b'data: {"type":"text-delta","id":"t","delta":"a\\u00e9 kai-secret"}\n\n'
    assert masked([data]) == [data[6:-2]]


@given(cuts=st.lists(st.integers(min_value=0, max_value=len(ECHO)), max_size=12))
def test_any_split_of_the_reads_masks_the_same(cuts: list[int]) -> None:
    assert masked(split_at(ECHO, cuts)) == MASKED


def test_a_reset_mask_starts_like_a_new_one() -> None:
    mask = StreamMask.for_secret(TOKEN)
    assert mask is not None
    # Cut mid-event with the token in it (the decoder is dropped, as on a resume) ...
    mask.feed(SSEDecoder(), ECHO[: ECHO.index(TOKEN.encode()) + 5])
    mask.reset()
    decoder = SSEDecoder()
    assert [p for r in split_at(ECHO, [30, 90]) for p in mask.feed(decoder, r)] == MASKED


def test_the_decoders_errors_come_through() -> None:
    mask = StreamMask.for_secret(TOKEN)
    assert mask is not None
    with pytest.raises(KaiStreamError):
        mask.feed(SSEDecoder(max_event_size=10), b"data: " + b"x" * 20)


# -- resume check -----------------------------------------------------------------

CHUNKS = [b'{"type":"start"}', b'{"type":"text-delta","delta":"a"}', b'{"type":"finish"}']


def delivered(*reads: list[bytes]) -> ResumeCheck:
    """A check that has seen these reads' payloads delivered."""
    check = ResumeCheck()
    for payloads in reads:
        check.advance(check.position + len(payloads), payloads)
    return check


def test_nothing_to_check_before_a_resume_or_after_an_empty_stream() -> None:
    check = ResumeCheck()
    assert check.pending == 0
    check.start_replay()
    assert check.pending == 0


def test_a_faithful_replay_is_dropped_and_the_rest_let_through() -> None:
    check = delivered(CHUNKS[:1], CHUNKS[1:2])
    check.start_replay()
    assert check.pending == 2
    assert check.drop_replayed([CHUNKS[0]]) == []
    assert check.pending == 1
    assert check.drop_replayed([b"  ", CHUNKS[1], CHUNKS[2], b"[DONE]"]) == [CHUNKS[2], b"[DONE]"]
    assert check.pending == 0


def test_a_replay_of_something_else_is_refused() -> None:
    check = delivered(CHUNKS[:2])
    check.start_replay()
    with pytest.raises(KaiStreamError) as info:
        check.drop_replayed([CHUNKS[0], b'{"type":"text-delta","delta":"b"}', CHUNKS[2]])
    assert info.value.code == "stream:resume_mismatch"
    assert info.value.message == (
        "the resumed stream does not repeat the 2 chunks already delivered, "
        "so it cannot be continued; the chat can be reloaded with get_chat"
    )
    assert check.pending == 0  # no more checking: the stream fails here


def test_the_same_chunks_in_another_order_are_refused() -> None:
    check = delivered(CHUNKS[:2])
    check.start_replay()
    with pytest.raises(KaiStreamError, match="repeat the 2 chunks"):
        check.drop_replayed([CHUNKS[1], CHUNKS[0]])


def test_a_replay_that_ends_early_is_refused() -> None:
    check = delivered(CHUNKS)
    check.start_replay()
    with pytest.raises(KaiStreamError) as info:
        check.drop_replayed([CHUNKS[0], b"[DONE]"])  # two of the three chunks missing
    assert info.value.code == "stream:resume_mismatch"
    assert check.pending == 0  # no more checking: the stream fails here


def test_a_second_resume_checks_everything_delivered_by_then() -> None:
    check = delivered(CHUNKS[:1])
    check.start_replay()
    assert check.drop_replayed(CHUNKS[:2]) == [CHUNKS[1]]
    check.advance(2, [CHUNKS[1]])
    check.start_replay()
    assert check.pending == 2
    assert check.drop_replayed(CHUNKS) == [CHUNKS[2]]


_payloads = st.lists(
    st.binary(min_size=1, max_size=12).filter(lambda p: p.strip() and p != b"[DONE]"),
    min_size=1,
    max_size=12,
)


@given(
    payloads=_payloads,
    first=st.lists(st.integers(min_value=0, max_value=12), max_size=4),
    again=st.lists(st.integers(min_value=0, max_value=12), max_size=4),
    extra=st.lists(st.binary(min_size=1, max_size=5), max_size=3),
)
def test_any_grouping_of_reads_checks_the_same(
    payloads: list[bytes], first: list[int], again: list[int], extra: list[bytes]
) -> None:
    # However the delivered chunks and the replayed ones were grouped in reads.
    points = sorted({min(c, len(payloads)) for c in first})
    groups = [payloads[a:b] for a, b in zip([0, *points], [*points, len(payloads)], strict=True)]
    check = delivered(*groups)
    check.start_replay()
    replayed = payloads + extra
    points = sorted({min(c, len(replayed)) for c in again})
    out: list[bytes] = []
    for a, b in zip([0, *points], [*points, len(replayed)], strict=True):
        part = replayed[a:b]
        out += check.drop_replayed(part) if check.pending else part
    assert out == extra and check.pending == 0


@given(payloads=_payloads, index=st.integers(min_value=0), other=st.binary(min_size=1))
def test_any_changed_chunk_is_refused(payloads: list[bytes], index: int, other: bytes) -> None:
    index %= len(payloads)
    changed = [*payloads]
    changed[index] = other + b"!"  # not whitespace, and not the same payload
    if changed[index] == payloads[index]:
        changed[index] += b"!"
    check = delivered(payloads)
    check.start_replay()
    with pytest.raises(KaiStreamError):
        check.drop_replayed(changed)


# -- log writer -------------------------------------------------------------------


class Sink:
    """A log that records its appends, and fails from the ``fail_at``-th one on."""

    def __init__(self, fail_at: int | None = None, queue: collections.deque[Event] | None = None):
        self.appends: list[list[LogRecord]] = []
        self.calls = 0
        self.fail_at = fail_at
        self.queue = queue
        self.queued_at_append: list[int] = []

    def append(self, records: Sequence[LogRecord]) -> object:
        self.calls += 1
        if self.queue is not None:
            self.queued_at_append.append(len(self.queue))
        if self.fail_at is not None and self.calls >= self.fail_at:
            raise KaiLogError("disk full", code="log:write")
        self.appends.append(list(records))
        return None


def test_records_carry_the_chat_the_turn_and_exact_bodies() -> None:
    writer = LogWriter(Sink(), "chat-1", "turn-1")
    server = writer.server("text-delta", b'{"type":"text-delta", "delta":"x"}')
    assert server == LogRecord(
        chat_id="chat-1",
        turn="turn-1",
        origin="server",
        type="text-delta",
        body=b'{"type":"text-delta", "delta":"x"}',
    )
    writer.turn = "turn-2"  # a resumed stream
    [client] = writer.client("cancelled", {"events_delivered": 3})
    assert (client.turn, client.origin, client.type) == ("turn-2", "client", "cancelled")
    assert client.body == b'{"events_delivered":3}'
    [error] = writer.stream_error(KaiStreamError("the stream was cut", code="stream:cut"))
    assert (error.origin, error.type) == ("client", "stream-error")
    assert error.body == b'{"code":"stream:cut","message":"the stream was cut"}'


def test_without_a_log_no_records_are_made_and_events_still_flow() -> None:
    writer = LogWriter(None, "chat-1", "turn-1")
    assert writer.client("resume", {"skipped": 1}) == []
    assert writer.stream_error(KaiStreamError("x", code="stream:cut")) == []
    writer.append_before_request([writer.server("start", b"{}")])
    queue: collections.deque[Event] = collections.deque()
    writer.commit([writer.server("start", b"{}")], [TextEvent(text="hi")], queue)
    assert list(queue) == [TextEvent(text="hi")]


def test_the_records_are_appended_before_the_events_are_queued() -> None:
    queue: collections.deque[Event] = collections.deque()
    sink = Sink(queue=queue)
    writer = LogWriter(sink, "chat-1", "turn-1")
    events: list[Event] = [TextEvent(text="a"), TextEvent(text="b")]
    records = [writer.server("text-delta", b"1"), writer.server("text-delta", b"2")]
    writer.commit(records, events, queue)
    assert sink.appends == [records]  # one append for the burst
    assert sink.queued_at_append == [0]  # nothing was queued when it was written
    assert list(queue) == events


def test_no_records_no_append() -> None:
    sink = Sink()
    writer = LogWriter(sink, "chat-1", "turn-1")
    queue: collections.deque[Event] = collections.deque()
    writer.commit([], [TextEvent(text="a")], queue)
    writer.append([])
    assert sink.calls == 0 and len(queue) == 1


def test_a_failing_log_is_reported_once_and_stops_logging_not_the_answer() -> None:
    reported: list[KaiLogError] = []
    sink = Sink(fail_at=2)
    writer = LogWriter(sink, "chat-1", "turn-1", reported.append)
    queue: collections.deque[Event] = collections.deque()
    writer.commit([writer.server("start", b"{}")], [TextEvent(text="a")], queue)
    assert writer.error is None and writer.sink is sink
    writer.commit([writer.server("text-delta", b"{}")], [TextEvent(text="b")], queue)
    assert [e.text for e in queue if isinstance(e, TextEvent)] == ["a", "b"]
    assert writer.error is not None and reported == [writer.error]
    assert writer.sink is None
    writer.log("cancelled", {"events_delivered": 2})
    writer.commit([writer.server("finish", b"{}")], [TextEvent(text="c")], queue)
    assert sink.calls == 2 and len(reported) == 1  # no more appends, no more reports
    assert len(queue) == 3


def test_a_failing_log_before_the_request_is_an_error() -> None:
    reported: list[KaiLogError] = []
    sink = Sink(fail_at=1)
    writer = LogWriter(sink, "chat-1", "turn-1", reported.append)
    question = LogRecord(chat_id="chat-1", turn="turn-1", origin="client", type="x", body=b"{}")
    with pytest.raises(KaiLogError):
        writer.append_before_request([question])
    assert reported == [] and writer.error is None


def test_other_failures_of_the_log_are_not_swallowed() -> None:
    class Broken:
        def append(self, records: Sequence[LogRecord]) -> object:
            raise RuntimeError("a bug, not a full disk")

    writer = LogWriter(Broken(), "chat-1", "turn-1")
    with pytest.raises(RuntimeError):
        writer.log("cancelled", {"events_delivered": 0})


def test_client_bodies_are_compact_json() -> None:
    writer = LogWriter(Sink(), "c", "t")
    [record] = writer.client("resume", {"skipped": 12})
    assert json.loads(record.body) == {"skipped": 12} and b" " not in record.body
