"""What the shell knows right now, shared by the toolbar and the completer.

The prompt runs in a worker thread (see :mod:`kai_shell.repl`), and so do
the toolbar and the completer; the trio thread updates this state. Every
collection here is *replaced*, never mutated in place, so the prompt thread
always reads a whole snapshot without locks (a reference assignment is
atomic in CPython).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # At run time only :meth:`ShellState.see` needs them, and events exist by
    # then: kai-shell's first prompt is made without msgspec (issue 16).
    from kai_core.events import Event, ToolApprovalRequestEvent

__all__ = ["ChatEntry", "PendingApproval", "ShellState"]


@dataclass(frozen=True)
class ChatEntry:
    """A chat offered by completion: its id, title and when it was last active."""

    id: str
    title: str | None = None
    last_ts: float | None = None


@dataclass(frozen=True)
class PendingApproval:
    """A tool call that waits for a decision."""

    tool_call_id: str
    tool_name: str | None
    input: Any = None


@dataclass
class ShellState:
    """The shell's state as the toolbar and the completer see it.

    :param server: ``online``, ``offline`` or ``connecting``.
    :param server_note: why it is offline, or the backend and host when online.
    """

    chat_id: str | None = None
    chat_title: str | None = None
    server: str = "offline"
    server_note: str = ""
    busy: str | None = None  # "answering", "replaying", ... while a command runs
    tokens_in: int = 0
    tokens_out: int = 0
    chats: tuple[ChatEntry, ...] = ()
    tool_names: tuple[str, ...] = ()
    pending: tuple[PendingApproval, ...] = ()
    message_ids: tuple[str, ...] = ()
    last_answer: str = ""
    # usage of the answer that is streaming, not yet in the totals
    _open_in: int = field(default=0, repr=False)
    _open_out: int = field(default=0, repr=False)
    _answer: list[str] = field(default_factory=list, repr=False)

    @property
    def online(self) -> bool:
        """True when the server answered last time we asked."""
        return self.server == "online"

    def title_of(self, chat_id: str) -> str | None:
        """The title of a known chat."""
        for chat in self.chats:
            if chat.id == chat_id:
                return chat.title
        return None

    def add_tool_names(self, *names: str | None) -> None:
        """Remember tool names for completion."""
        known = set(self.tool_names)
        new = {n for n in names if n and n not in known}
        if new:
            self.tool_names = tuple(sorted(known | new))

    def set_pending(self, pending: dict[str, ToolApprovalRequestEvent]) -> None:
        """Mirror the session's pending approvals."""
        self.pending = tuple(
            PendingApproval(ev.tool_call_id, ev.tool_name, ev.input) for ev in pending.values()
        )

    def begin_answer(self) -> None:
        """A new answer starts: its text is collected for ``/copy``."""
        self._answer = []
        self._open_in = self._open_out = 0

    def see(self, event: Event) -> None:
        """Count tokens, collect the answer's text and remember tool names."""
        from kai_core.events import (
            FinishEvent,
            TextEvent,
            ToolApprovalRequestEvent,
            ToolCallEvent,
            UsageEvent,
        )

        if isinstance(event, TextEvent):
            self._answer.append(event.text)
            self.last_answer = "".join(self._answer)
        elif isinstance(event, UsageEvent):
            self._open_in += event.usage.prompt_tokens
            self._open_out += event.usage.completion_tokens
        elif isinstance(event, FinishEvent):
            # a finish carries the response's total: it replaces the step counts
            if event.usage is not None:
                self.tokens_in += event.usage.prompt_tokens
                self.tokens_out += event.usage.completion_tokens
            else:
                self.tokens_in += self._open_in
                self.tokens_out += self._open_out
            self._open_in = self._open_out = 0
            if event.message_id and event.message_id not in self.message_ids:
                self.message_ids = (*self.message_ids, event.message_id)
        elif isinstance(event, ToolCallEvent | ToolApprovalRequestEvent):
            self.add_tool_names(event.tool_name)

    def end_answer(self) -> None:
        """The answer ended (finished or stopped): usage without a finish still counts."""
        self.tokens_in += self._open_in
        self.tokens_out += self._open_out
        self._open_in = self._open_out = 0

    @property
    def tokens(self) -> tuple[int, int]:
        """Tokens used in this shell so far: ``(in, out)``."""
        return self.tokens_in + self._open_in, self.tokens_out + self._open_out

    def new_chat(self, chat_id: str, title: str | None = None) -> None:
        """Switch to another chat: its title, no pending approvals, no message ids."""
        self.chat_id = chat_id
        self.chat_title = title
        self.pending = ()
        self.message_ids = ()
