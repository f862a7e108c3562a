"""Driving one exchange for the line-oriented front ends (``kai chat``, ``kai demo``).

The renderer comes guarded (:meth:`Runtime.guarded_renderer`): if the plugin
raises it is reported once and plain output takes over, so the answer still
reaches the user and the stream and the log go on.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import click

from kai_core.events import AbortEvent, ApprovalDecisionEvent, ErrorEvent
from kai_core.policy import AnswerInfo, ApprovalDecision, ApprovalRequest, VoteDecision
from kai_core.render import Renderer
from kai_core.sanitize import for_terminal

__all__ = [
    "AnswerRenderer",
    "ask_on_terminal",
    "ask_vote_on_terminal",
    "converse",
    "stdin_is_terminal",
    "vote_after_answer",
]


def stdin_is_terminal() -> bool:
    """True when someone can answer a question on stdin."""
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (ValueError, OSError):
        return False


class AnswerRenderer(Renderer):
    """Forwards to a renderer, with :meth:`end` acting once per answer.

    The session asks for a vote after the answer's last event but before
    :func:`converse` sees the stream end; :func:`vote_after_answer` ends the
    answer's output first (else a live markdown display would still be open,
    half drawn, under the question), and the later :meth:`end` is a no-op.
    """

    def __init__(self, inner: Renderer) -> None:
        super().__init__(inner.stream, color=inner.color)
        self.inner = inner
        self._open = False

    def begin(self, text: str | None) -> None:
        """Forward; an answer is open until :meth:`end`."""
        self._open = True
        self.inner.begin(text)

    def event(self, event: Any) -> None:
        """Forward."""
        self.inner.event(event)

    def notice(self, text: str) -> None:
        """Forward."""
        self.inner.notice(text)

    def end(self) -> None:
        """Forward, once per answer."""
        if self._open:
            self._open = False
            self.inner.end()


def vote_after_answer(
    renderer: AnswerRenderer,
) -> Callable[[AnswerInfo], Awaitable[VoteDecision | None]]:
    """The session's ``ask_vote``: finish showing the answer, then ask on the terminal."""

    async def ask(answer: AnswerInfo) -> VoteDecision | None:
        renderer.end()
        return await ask_vote_on_terminal(answer)

    return ask


NO_TERMINAL_HINT = (
    "no terminal to ask about {tool}, so it was rejected; "
    "approve it with --auto-approve or a --policy rule"
)
"""The CLI's hint (stderr) when a tool was rejected because nobody could be asked."""


async def converse(session: Any, text: str, renderer: Renderer) -> int:
    """Send ``text``, render the answer; return 0, or 10 if it ended with an error or abort."""
    status = 0
    renderer.begin(text)
    try:
        async for event in session.send(text):
            renderer.event(event)
            if isinstance(event, (ErrorEvent, AbortEvent)):
                status = 10
            elif isinstance(event, ApprovalDecisionEvent) and event.decided_by == "no-terminal":
                tool = for_terminal(event.tool_name or event.tool_call_id)
                click.echo(f"kai: {NO_TERMINAL_HINT.format(tool=tool)}", err=True)
    finally:
        renderer.end()
    return status


async def ask_on_terminal(request: ApprovalRequest) -> ApprovalDecision | None:
    """Ask y/N on the terminal (default No); runs the blocking prompt in a thread."""
    import trio

    def prompt() -> bool:
        click.echo(f"\nTool {request.tool_name} needs your approval. Input:", err=True)
        click.echo(json.dumps(request.input, indent=2, ensure_ascii=False, default=str), err=True)
        try:
            return click.confirm("Approve this tool call?", default=False, err=True)
        except (click.exceptions.Abort, EOFError):
            return False

    approved = await trio.to_thread.run_sync(prompt, abandon_on_cancel=True)
    if approved:
        return ApprovalDecision.approve(decided_by="user")
    return ApprovalDecision.reject("denied by the user", decided_by="user")


async def ask_vote_on_terminal(answer: AnswerInfo) -> VoteDecision | None:
    """Ask for a vote after an answer: u(p), d(own) or Enter to skip."""
    import trio

    def prompt() -> str:
        try:
            reply: str = click.prompt(
                "Vote on this answer? [u/d/Enter to skip]", default="", show_default=False, err=True
            )
        except (click.exceptions.Abort, EOFError):
            return ""
        return reply.strip().lower()

    reply = await trio.to_thread.run_sync(prompt, abandon_on_cancel=True)
    if reply in ("u", "up", "+"):
        return VoteDecision.up()
    if reply in ("d", "down", "-"):
        return VoteDecision.down()
    return None
