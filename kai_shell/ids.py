"""Chat ids on the command line: a full id, or a prefix of at least 4 characters.

The word is checked when the command line is parsed (:data:`ChatId`) and
resolved when the command runs (:func:`resolve`), against the event log and,
for commands that talk to the server, its recent history
(:mod:`kai_core.chat_ids`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from kai_core.client import KaiClient

    from .runtime import Runtime

__all__ = ["ChatId", "most_recent", "resolve"]


class _ChatIdType(click.ParamType):  # type: ignore[type-arg]  # generic in click 8.2+, not 8.1
    """A click parameter type: a chat id (a UUID) or a prefix of one."""

    name = "CHAT_ID"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> str:
        # Only the obviously wrong is refused here: whether a word is a
        # prefix, or the whole id of a chat the log holds (which need not be
        # a UUID), is for :func:`resolve` to say, with the log at hand.
        text = str(value).strip()
        if not text or any(ch.isspace() or not ch.isprintable() for ch in text):
            self.fail(f"{text!r} is not a chat id (see `kai history`)", param, ctx)
        return text


ChatId = _ChatIdType()


async def resolve(runtime: Runtime, word: str, client: KaiClient | None = None) -> str:
    """The chat id ``word`` stands for: the log first, then ``client``'s history."""
    from kai_core.chat_ids import resolve_chat_id

    log = None if runtime.options.no_log else runtime.log
    return await resolve_chat_id(word, log=log, client=client)


async def most_recent(runtime: Runtime) -> str:
    """The chat with the latest activity in the log (for ``-c`` and a bare ``replay``)."""
    from kai_core.chat_ids import most_recent_chat_id

    from .runtime import UsageError

    log = runtime.log
    if log is None:
        raise UsageError("finding the most recent chat needs the event log; drop --no-log")
    found = await most_recent_chat_id(log)
    if found is None:
        raise UsageError(f"no chat recorded yet in {log.path}")
    return found
