"""Completion for the shell: commands, chat ids with titles, pending tool calls, tools, paths.

The completer reads only the in-memory :class:`~.state.ShellState` (the chat
list is cached there by the trio thread), never the log or the network, so
it answers in microseconds, inline. File paths are the exception: listing a
directory can be slow (a network mount), so path completion runs in a worker
thread (prompt-toolkit's ``ThreadedCompleter``) and never holds up a key press.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Iterable, Iterator

from prompt_toolkit.completion import (
    CompleteEvent,
    Completer,
    Completion,
    PathCompleter,
    ThreadedCompleter,
)
from prompt_toolkit.document import Document

from kai_core.sanitize import for_terminal

from .commands import Arg, CommandRegistry, split_args
from .state import ShellState

__all__ = ["ShellCompleter"]


def _age(ts: float | None) -> str:
    if ts is None:
        return ""
    seconds = max(0.0, time.time() - ts)
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return "just now"


class ShellCompleter(Completer):
    """Completes ``/commands`` and then each argument by its kind.

    :param registry: the commands (their usage strings say what each argument is).
    :param state: where chat ids, tool names and pending approvals are cached.
    :param only: limit command completion to these names (the approval prompt
        offers ``/approve`` and ``/deny`` only).
    """

    def __init__(
        self,
        registry: CommandRegistry,
        state: ShellState,
        *,
        only: Iterable[str] | None = None,
    ) -> None:
        self.registry = registry
        self.state = state
        self.only = set(only) if only is not None else None
        self._paths = PathCompleter(expanduser=True)
        self._threaded = ThreadedCompleter(_Sync(self))

    async def get_completions_async(
        self, document: Document, complete_event: CompleteEvent
    ) -> AsyncGenerator[Completion, None]:
        if self._current_kind(document) == "path":
            async for completion in self._threaded.get_completions_async(document, complete_event):
                yield completion
        else:
            for completion in self.get_completions(document, complete_event):
                yield completion

    def completions_now(self, document: Document) -> list[Completion] | None:
        """Every completion for ``document``, computed inline; None for a file path.

        Tab uses this instead of prompt-toolkit's background completion, which
        drops a Tab that arrives while the completion for the keys typed just
        before it is still queued (typing fast, or a terminal delivering the
        keys in one read). Paths are left to the worker thread: listing a
        directory may block.
        """
        if self._current_kind(document) == "path":
            return None
        return list(self.get_completions(document, CompleteEvent(completion_requested=True)))

    def _current_kind(self, document: Document) -> str | None:
        text = document.text_before_cursor
        if not text.startswith("/") or " " not in text:
            return None
        command = self.registry.get(text.split(" ", 1)[0])
        if command is None:
            return None
        after = text.split(" ", 1)[1]
        words = split_args(after)
        index = len(words) if after == "" or after[-1].isspace() else len(words) - 1
        arg = self._arg_at(command.args, max(index, 0))
        return arg.kind if arg is not None else None

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterator[Completion]:
        text = document.text_before_cursor
        if not text.startswith("/") or "\n" in text:
            return
        if " " not in text:
            yield from self._commands(text[1:])
            return
        command = self.registry.get(text.split(" ", 1)[0])
        if command is None or not command.args:
            return
        after = text.split(" ", 1)[1]
        words = split_args(after)
        # the word being typed is empty right after a space
        current = "" if after == "" or after[-1].isspace() else words[-1] if words else ""
        index = len(words) if current == "" else len(words) - 1
        arg = self._arg_at(command.args, index)
        if arg is None:
            return
        yield from self._argument(arg, current)

    @staticmethod
    def _arg_at(args: tuple[Arg, ...], index: int) -> Arg | None:
        if index < len(args):
            return args[index]
        # a QUERY... argument goes on: every further word completes the same way
        return args[-1] if args and args[-1].rest else None

    def _commands(self, prefix: str) -> Iterator[Completion]:
        for command in self.registry:
            if self.only is not None and command.name not in self.only:
                continue
            for name in (command.name, *command.aliases):
                if name.startswith(prefix):
                    yield Completion(
                        f"/{name} " if command.args else f"/{name}",
                        start_position=-len(prefix) - 1,
                        display=f"/{name}",
                        display_meta=command.help,
                    )

    def _argument(self, arg: Arg, word: str) -> Iterator[Completion]:  # noqa: C901 - one branch per argument kind
        start = -len(word)
        if arg.kind == "choice":
            for choice in arg.choices:
                if choice.startswith(word):
                    yield Completion(choice, start_position=start)
        elif arg.kind == "chat":
            yield from self._chats(word)
        elif arg.kind == "tool_call":
            for pending in self.state.pending:
                if pending.tool_call_id.startswith(word):
                    yield Completion(
                        pending.tool_call_id,
                        start_position=start,
                        display_meta=pending.tool_name or "",
                    )
        elif arg.kind == "tool":
            for name in self.state.tool_names:
                if name.startswith(word):
                    yield Completion(name, start_position=start)
        elif arg.kind == "message":
            for message_id in reversed(self.state.message_ids):
                if message_id.startswith(word):
                    yield Completion(message_id, start_position=start)
        elif arg.kind == "command":
            for name in self.registry.names():
                if name.startswith(word.lstrip("/")):
                    yield Completion(name, start_position=-len(word.lstrip("/")))
        elif arg.kind == "path":
            sub = Document(word, len(word))
            yield from self._paths.get_completions(sub, CompleteEvent(completion_requested=True))

    def _chats(self, word: str) -> Iterator[Completion]:
        """Chat ids by prefix, and by a word of the title (which completes to the id)."""
        lowered = word.lower()
        by_title = []
        for chat in self.state.chats:
            title = chat.title or "(untitled)"
            meta = f"{for_terminal(title[:50])}  {_age(chat.last_ts)}".rstrip()
            completion = Completion(
                chat.id,
                start_position=-len(word),
                display=chat.id[:12] + ("…" if len(chat.id) > 12 else ""),
                display_meta=meta,
            )
            if chat.id.startswith(word):
                yield completion
            elif lowered and lowered in title.lower():
                by_title.append(completion)
        yield from by_title


class _Sync(Completer):
    """The shell completer's synchronous half (what the worker thread runs)."""

    def __init__(self, inner: ShellCompleter) -> None:
        self.inner = inner

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterator[Completion]:
        return self.inner.get_completions(document, complete_event)
