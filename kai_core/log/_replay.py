"""Replay: a recorded chat back as the very events its live stream yielded.

Server chunk records are decoded with the same decoder and folded by the
same :class:`~kai_core.assemble.MessageAssembler` as live (see
:mod:`._fold` for how turns, approvals and resumes are followed). Client
records yield nothing of their own, except approval decisions, which the
session yielded too (``decisions=True``).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Iterator, Sequence
from typing import Any, Final

import msgspec
import trio

from ..events import Event
from ._fold import ChatFold
from ._frames import frame_bodies, frame_types
from ._records import APPROVAL, StoredEvent

__all__ = [
    "REPLAY_COLUMNS",
    "Replay",
    "ReplayStep",
    "replay_rows",
    "replay_steps",
    "replay_timed",
]

_decode: Final = msgspec.json.Decoder()
_CHECKPOINT_EVERY: Final = 512
_APPROVAL_TYPE: Final = f'"{APPROVAL}"'  # how it shows in a frame's JSON types


class ReplayStep(msgspec.Struct, frozen=True):
    """One stored record and the events it stands for (often none, for client records)."""

    record: StoredEvent
    events: list[Event]


def _add_agent_decision(found: dict[str, list[dict[str, Any]]], raw: str | bytes) -> None:
    try:
        body = _decode.decode(raw)
    except msgspec.DecodeError:
        return
    if isinstance(body, dict) and body.get("transport") == "agent":
        call_id = body.get("tool_call_id")
        if isinstance(call_id, str):
            found.setdefault(call_id, []).append(body)


def _agent_decisions(records: Sequence[StoredEvent]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for ev in records:
        if ev.origin == "client" and ev.type == APPROVAL:
            _add_agent_decision(found, ev.body)
    return found


def replay_steps(records: Sequence[StoredEvent], *, decisions: bool = True) -> Iterator[ReplayStep]:
    """Fold one chat's records (in ``seq`` order) into replay steps."""
    if not records:
        return
    fold = ChatFold(
        records[0].chat_id,
        agent_decisions=_agent_decisions(records),
        decisions=decisions,
        project=False,
    )
    for ev in records:
        yield ReplayStep(ev, fold.feed(ev))


REPLAY_COLUMNS: Final = "seq, n, turn, ts, CASE origin WHEN 'client' THEN types END, body, sizes"
"""What replay reads of a chat's frames. Replay needs the record types of
client frames only: NULL marks a frame of server chunks, and leaving their
types unread makes each row cheaper to fetch."""


def replay_rows(
    chat_id: str, rows: Sequence[tuple[Any, ...]], *, decisions: bool = True
) -> Iterator[tuple[float, list[Event]]]:
    """The fast path of :func:`replay_steps`: one chat's frames as
    :data:`REPLAY_COLUMNS`, in ``seq`` order, in; ``(ts, events)`` out, one pair
    per frame (its records share their time)."""
    agent: dict[str, list[dict[str, Any]]] = {}
    for _, n, _, _, types, body, sizes in rows:
        if types is not None and _APPROVAL_TYPE in types:
            kinds = frame_types(n, types)
            for i, data in enumerate(frame_bodies(n, body, sizes)):
                if kinds[i] == APPROVAL:
                    _add_agent_decision(agent, data)
    fold = ChatFold(chat_id, agent_decisions=agent, decisions=decisions, project=False)
    feed = fold.feed_frame
    for seq, n, turn, ts, types, body, sizes in rows:
        origin = "server" if types is None else "client"
        yield ts, feed(seq, n, turn, ts, origin, types, body, sizes)


async def replay_timed(
    read: Callable[[], tuple[str, Sequence[tuple[Any, ...]]]],
    *,
    speed: float | None = None,
    max_delay: float | None = None,
    decisions: bool = True,
) -> AsyncGenerator[Event, None]:
    """Yield a chat's events, instantly or at the recorded pace.

    :param read: reads ``(chat_id, rows)`` (run in a worker thread).
    :param speed: None for instant replay; otherwise recorded time gaps are
        divided by ``speed`` (2.0 = twice as fast) and slept with ``trio.sleep``.
    :param max_delay: the longest pause between two records, in replay seconds.
    """
    if speed is not None and speed <= 0:
        raise ValueError("speed must be positive")
    chat_id, rows = await trio.to_thread.run_sync(read)
    previous: float | None = None
    count = 0
    for ts, events in replay_rows(chat_id, rows, decisions=decisions):
        if not events:
            continue
        if speed is not None:
            if previous is not None:
                delay = (ts - previous) / speed
                if max_delay is not None:
                    delay = min(delay, max_delay)
                if delay > 0:
                    await trio.sleep(delay)
            previous = ts
        for event in events:
            yield event
            count += 1
            if speed is None and count % _CHECKPOINT_EVERY == 0:
                await trio.lowlevel.checkpoint()


class Replay:
    """A timed replay: iterate it (``async for``), ideally inside ``async with``,
    which closes it when the block ends, also on an early exit."""

    def __init__(self, events: AsyncGenerator[Event, None]) -> None:
        self._events = events

    def __aiter__(self) -> Replay:
        return self

    async def __anext__(self) -> Event:
        return await self._events.__anext__()

    async def aclose(self) -> None:
        """Stop the replay."""
        await self._events.aclose()

    async def __aenter__(self) -> Replay:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
