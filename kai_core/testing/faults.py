"""Fault knobs of the emulated backend, settable at any time from a test or ``kai serve``.

Counts (``*_times``) are "how many more times": ``None`` means every time,
``0`` means off. Stream faults count SSE responses (the answer to ``POST
/api/chat`` and a resumed stream); request faults count requests.

Example::

    emulator.faults.drop_connection(after=3)      # next stream: cut after 3 chunks
    emulator.faults.rate_limit(times=2, retry_after=1)
    emulator.faults.chunk_delay = 0.05            # every chunk, until reset()
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["Faults", "StreamFaults"]


@dataclass(frozen=True)
class StreamFaults:
    """The stream faults one SSE response took when it started."""

    drop_after: int | None = None
    malformed_at: int | None = None
    keepalive: float | None = None


@dataclass
class Faults:
    """The knobs. Every field may be changed while the emulator runs.

    :ivar drop_after: cut the connection (no ``[DONE]``, no chunked-body end)
        after this many ``data:`` chunks.
    :ivar drop_times: how many SSE responses to cut (None: all).
    :ivar malformed_at: write a payload that is not JSON before chunk number
        ``malformed_at`` (0-based; past the end: just before ``[DONE]``).
    :ivar malformed_times: how many SSE responses get it (None: all).
    :ivar chunk_delay: seconds the assistant waits before each chunk.
    :ivar keepalive: when set, write ``: stream-open`` first and ``: keep-alive``
        after each such idle period, as ``keepAliveMs`` does.
    :ivar rate_limited: the next this many requests answer 429 ``rate_limit:chat``
        with ``Retry-After: retry_after``.
    :ivar unavailable: the next this many requests answer ``unavailable_status``
        (503 ``offline:chat``).
    :ivar scope: which requests the two above hit: ``"chat"`` (``POST /api/chat``
        only) or ``"all"`` (every authenticated request).
    """

    drop_after: int | None = None
    drop_times: int | None = None
    malformed_at: int | None = None
    malformed_times: int | None = None
    chunk_delay: float = 0.0
    keepalive: float | None = None
    rate_limited: int = 0
    retry_after: int = 1
    unavailable: int = 0
    unavailable_status: int = 503
    scope: Literal["chat", "all"] = "chat"

    def drop_connection(self, after: int, times: int | None = 1) -> None:
        """Cut the next ``times`` streams (None: every stream) after ``after`` chunks."""
        self.drop_after, self.drop_times = after, times

    def inject_malformed(self, at: int, times: int | None = 1) -> None:
        """Put a malformed chunk at position ``at`` of the next ``times`` streams."""
        self.malformed_at, self.malformed_times = at, times

    def rate_limit(self, times: int = 1, retry_after: int = 1) -> None:
        """Answer the next ``times`` requests with 429 and ``Retry-After``."""
        self.rate_limited, self.retry_after = times, retry_after

    def fail(self, times: int = 1, status: int = 503) -> None:
        """Answer the next ``times`` requests with a server error."""
        self.unavailable, self.unavailable_status = times, status

    def reset(self) -> None:
        """Turn every fault off."""
        fresh = Faults()
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(fresh, name))

    def take_stream(self) -> StreamFaults:
        """The faults for one new SSE response (counting it against the ``*_times``)."""
        drop = self.drop_after if self.drop_after is not None and self.drop_times != 0 else None
        if drop is not None and self.drop_times is not None:
            self.drop_times -= 1
        bad = (
            self.malformed_at
            if self.malformed_at is not None and self.malformed_times != 0
            else None
        )
        if bad is not None and self.malformed_times is not None:
            self.malformed_times -= 1
        return StreamFaults(drop_after=drop, malformed_at=bad, keepalive=self.keepalive)

    def take_request(self, is_chat: bool) -> Literal["rate_limit", "unavailable"] | None:
        """Which request fault (if any) hits one request, counting it."""
        if self.scope == "chat" and not is_chat:
            return None
        if self.rate_limited > 0:
            self.rate_limited -= 1
            return "rate_limit"
        if self.unavailable > 0:
            self.unavailable -= 1
            return "unavailable"
        return None
