"""Chat ids on the command line: a full id, or a prefix of at least 4 characters.

The word is checked when the command line is parsed (:data:`ChatId`) and
resolved when the command runs (:func:`resolve`), against the event log and,
for commands that talk to the server, its recent history
(:mod:`kai_core.chat_ids`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from kai_core.chat_ids import MIN_PREFIX, is_full_chat_id

if TYPE_CHECKING:
    from kai_core.client import KaiClient

    from .runtime import Runtime

__all__ = ["ChatId", "most_recent", "resolve"]

_ID_CHARACTERS = frozenset("0123456789abcdefABCDEF-")


class _ChatIdType(click.ParamType):
    """A click parameter type: a chat id (a UUID) or a prefix of one."""

    name = "CHAT_ID"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> str:
        text = str(value).strip()
        if is_full_chat_id(text):
            return text
        if len(text) < MIN_PREFIX or not set(text) <= _ID_CHARACTERS:
            self.fail(
                f"{text!r} is not a chat id (a UUID), nor a prefix of one (at least "
                f"{MIN_PREFIX} characters of an id, see `kai history`)",
                param,
                ctx,
            )
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
