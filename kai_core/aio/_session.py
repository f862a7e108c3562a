"""``kai_core.aio.Session``: :class:`kai_core.Session` for asyncio code.

The session runs on the client's trio thread (policies, plugins, logging,
answering the server, as for trio); only ``ask`` and ``ask_vote`` are asyncio
coroutine functions, run on the client's event loop while the trio side waits.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import trio

from .. import session as _trio
from ._portal import Portal
from ._stream import EventStream

if TYPE_CHECKING:
    from ..events import ToolApprovalRequestEvent
    from ..plugins import Plugins
    from ..policy import AnswerInfo, ApprovalDecision, ApprovalRequest, VoteDecision
    from ._client import KaiClient

__all__ = ["Session"]

A = TypeVar("A")
R = TypeVar("R")


class Session:
    """A conversation with Kai on one chat, under asyncio: :class:`kai_core.Session`.

    :param client: an open :class:`kai_core.aio.KaiClient`.
    :param chat_id: the chat to continue; a new one when None.
    :param plugins: the plugin manager whose approval and voting hooks apply
        (hooks run on the client's trio thread).
    :param ask: ``async def ask(request) -> ApprovalDecision | None``, asked
        on the event loop about a tool no policy decided; None (or no
        ``ask``): the tool is rejected (fail closed).
    :param ask_vote: ``async def ask_vote(answer) -> VoteDecision | None``.
    """

    def __init__(
        self,
        client: KaiClient,
        *,
        chat_id: str | None = None,
        plugins: Plugins | None = None,
        ask: Callable[[ApprovalRequest], Awaitable[ApprovalDecision | None]] | None = None,
        ask_vote: Callable[[AnswerInfo], Awaitable[VoteDecision | None]] | None = None,
    ) -> None:
        self.client = client
        portal = client._portal
        self._portal = portal
        self._session = _trio.Session(
            client.trio_client,
            chat_id=chat_id,
            plugins=plugins,
            ask=_from_trio(portal, ask) if ask is not None else None,
            ask_vote=_from_trio(portal, ask_vote) if ask_vote is not None else None,
        )

    @property
    def chat_id(self) -> str:
        """The chat this session talks in."""
        return self._session.chat_id

    @property
    def plugins(self) -> Plugins:
        """The plugin manager whose hooks apply."""
        return self._session.plugins

    @property
    def last_answer(self) -> AnswerInfo | None:
        """What the last finished answer said (text, tools, errors)."""
        return self._session.last_answer

    @property
    def last_message_id(self) -> str | None:
        """The id of the last answer's message."""
        return self._session.last_message_id

    @property
    def pending(self) -> dict[str, ToolApprovalRequestEvent]:
        """Approval requests not answered yet, by tool call id."""
        return self._session.pending

    def send(self, text: str, **options: Any) -> EventStream:
        """Send ``text``; every event of the answer, approvals and decisions included.

        Like :meth:`kai_core.Session.send`: each waiting tool is decided (the
        policies, then ``ask``), the decision logged and sent, and the answer
        read on; the decisions come as ``ApprovalDecisionEvent``.
        """
        return EventStream(self._portal, self._session.send(text, **options))

    @asynccontextmanager
    async def stream(self, text: str, **options: Any) -> AsyncIterator[EventStream]:
        """``async with session.stream(text) as events: async for e in events: ...``"""
        events = self.send(text, **options)
        try:
            yield events
        finally:
            await events.aclose()

    def decide_pending(self, tool_call_id: str, decision: ApprovalDecision) -> EventStream:
        """Answer a call left pending after its answer was stopped; what follows.

        Like :meth:`kai_core.Session.decide_pending`: the decision is logged and
        sent (kai-assistant: with the other pending calls of the message, once
        all are decided), then the continuation streams, if there is one.

        :raises KeyError: no pending call ``tool_call_id``.
        """
        return EventStream(self._portal, self._session.decide_pending(tool_call_id, decision))

    async def decide(self, event: ToolApprovalRequestEvent) -> ApprovalDecision:
        """Ask the policies, then the user; fail closed. Does not log or answer."""
        return await self._portal.call(lambda: self._session.decide(event))


def _from_trio(portal: Portal, ask: Callable[[A], Awaitable[R]]) -> Callable[[A], Awaitable[R]]:
    """``ask`` made callable from the trio thread: it runs on the portal's event loop."""

    async def on_loop(arg: A) -> R:
        loop = portal.loop
        assert loop is not None  # the session runs only once the client is in use

        async def run() -> R:
            return await ask(arg)

        future: concurrent.futures.Future[R] = asyncio.run_coroutine_threadsafe(run(), loop)
        token = trio.lowlevel.current_trio_token()
        done = trio.Event()
        future.add_done_callback(lambda _: _set_soon(token, done))
        try:
            await done.wait()
        except BaseException:
            future.cancel()  # the answer was stopped: stop asking too
            raise
        return future.result()

    return on_loop


def _set_soon(token: trio.lowlevel.TrioToken, done: trio.Event) -> None:
    try:
        token.run_sync_soon(done.set)
    except trio.RunFinishedError:
        pass
