"""What the log says when a stream fails or is cancelled before its response arrives.

The request opens inside trio machinery that may run a nursery (the
happy-eyeballs connect of ``trio.open_tcp_stream``): a cancellation or an
error then reaches the stream wrapped in an exception group. The log must say
``cancelled`` (or the error) all the same: seen as a flaky
``test_cancelled_stream_is_logged`` on a loaded machine, when the deadline
fell during the connect.
"""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from kai_core._stream import EventStream, StreamPlan
from kai_core.assemble import MessageAssembler
from kai_core.exceptions import KaiConnectionError
from kai_core.log import EventLog, LogRecord

CHAT = "00000000-0000-4000-8000-000000000001"


def _stream(log: EventLog, failure: BaseException) -> EventStream:
    async def open_response() -> object:
        raise failure

    async def prepare(turn: str) -> StreamPlan:
        question = LogRecord(
            chat_id=CHAT, turn=turn, origin="client", type="user-message", body=b"{}"
        )
        return StreamPlan(open_response, MessageAssembler(), [question])  # type: ignore[arg-type]

    return EventStream(prepare, chat_id=CHAT, log=log, max_event_size=1 << 20)


@pytest.mark.parametrize("grouped", [False, True])
async def test_an_interrupt_while_connecting_is_logged(tmp_path: Path, grouped: bool) -> None:
    interrupt: BaseException = KeyboardInterrupt()
    if grouped:
        interrupt = BaseExceptionGroup("from a nursery", [interrupt, KeyboardInterrupt()])
    with EventLog(tmp_path / "kai.db") as log:
        with pytest.raises(type(interrupt)):
            async for _ in _stream(log, interrupt):
                pass
        last = log.events(CHAT)[-1]
    assert last.type == "cancelled"
    assert msgspec.json.decode(last.body) == {"events_delivered": 0}


@pytest.mark.parametrize("grouped", [False, True])
async def test_an_error_while_connecting_is_logged(tmp_path: Path, grouped: bool) -> None:
    error: BaseException = KaiConnectionError("connection refused")
    if grouped:
        error = ExceptionGroup("from a nursery", [error])
    with EventLog(tmp_path / "kai.db") as log:
        with pytest.raises(type(error)):
            async for _ in _stream(log, error):
                pass
        types = [event.type for event in log.events(CHAT)]
    assert types == ["user-message", "stream-error"]
