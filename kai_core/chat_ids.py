"""Chat ids people can type: a full id, or a prefix of at least four characters.

Every front end that takes a chat id (the ``kai`` commands, an MCP server,
an audit command) resolves it here, so a prefix means the same everywhere:

* a full UUID is taken as it is, known or not (a new chat may be started
  with it, and the server is the judge of what it holds);
* a word that is the whole id of a chat the log (or the server) holds is
  that chat, whatever its shape: logs imported from other tools and old
  test runs hold ids that are not UUIDs;
* a shorter word must be at least :data:`MIN_PREFIX` characters of an id;
  it is matched against the chats of the event log, newest activity first,
  and, when the log knows none, against the server's recent history;
* one match is the answer; several raise :class:`AmbiguousChatIdError`,
  which lists them with their titles; none raises :class:`UnknownChatIdError`.

:func:`match_chat_id` is the pure part (a word and the chats to look in);
:func:`resolve_chat_id` adds the log and the server.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Protocol

from .exceptions import KaiError, KaiNotFoundError

if TYPE_CHECKING:
    from .client import KaiClient
    from .log import EventLog

__all__ = [
    "MIN_PREFIX",
    "SERVER_LOOKUP",
    "AmbiguousChatIdError",
    "ChatLike",
    "UnknownChatIdError",
    "is_full_chat_id",
    "match_chat_id",
    "most_recent_chat_id",
    "resolve_chat_id",
]

MIN_PREFIX = 4
"""The shortest prefix accepted: shorter ones match too much to be meant."""

SERVER_LOOKUP = 100
"""How many of the server's most recent chats a prefix is matched against."""

_SHOWN = 10  # candidates listed in the error of an ambiguous prefix


class ChatLike(Protocol):
    """What matching needs of a chat: a local chat or a server's history entry."""

    @property
    def id(self) -> str: ...

    @property
    def title(self) -> str | None: ...


class AmbiguousChatIdError(KaiError):
    """A prefix that matches several chats; :attr:`candidates` are ``(id, title)``."""

    def __init__(self, prefix: str, candidates: Sequence[tuple[str, str | None]]) -> None:
        lines = [f"{cid}  {title or '(no title)'}" for cid, title in candidates[:_SHOWN]]
        if len(candidates) > _SHOWN:
            lines.append(f"... and {len(candidates) - _SHOWN} more")
        listing = "".join(f"\n  {line}" for line in lines)
        super().__init__(
            f"{prefix!r} matches {len(candidates)} chats; type more of the id:{listing}",
            code="chat_id:ambiguous",
        )
        self.prefix = prefix
        self.candidates = list(candidates)


class UnknownChatIdError(KaiNotFoundError):
    """A prefix that matches no chat (in the log, nor on the server when asked)."""

    def __init__(self, prefix: str, where: str) -> None:
        super().__init__(f"no chat id starts with {prefix!r} in {where}", code="not_found:chat_id")
        self.prefix = prefix


def is_full_chat_id(word: str) -> bool:
    """True when ``word`` is a whole chat id (a UUID)."""
    try:
        uuid.UUID(word)
    except ValueError:
        return False
    return True


def _check_prefix(word: str) -> str:
    prefix = word.strip().lower()
    if len(prefix) < MIN_PREFIX or any(ch not in "0123456789abcdef-" for ch in prefix):
        raise KaiError(
            f"{word!r} is not a chat id (a UUID), nor a prefix of one (at least "
            f"{MIN_PREFIX} characters of the id, as `kai history` shows it)",
            code="chat_id:bad_prefix",
        )
    return prefix


def match_chat_id(word: str, chats: Iterable[ChatLike]) -> str | None:
    """The one chat of ``chats`` whose id is ``word`` or starts with it; None if none.

    An id held verbatim wins over prefixes, whatever its shape.

    :raises AmbiguousChatIdError: several ids start with ``word``.
    :raises KaiError: ``word`` is too short to be a prefix (code ``chat_id:bad_prefix``).
    """
    if is_full_chat_id(word):
        return word.strip()
    chats = list(chats)
    if any(chat.id == word.strip() for chat in chats):
        return word.strip()
    prefix = _check_prefix(word)
    found: dict[str, str | None] = {}
    for chat in chats:
        if chat.id.lower().startswith(prefix):
            found.setdefault(chat.id, chat.title)
    if len(found) > 1:
        raise AmbiguousChatIdError(word, list(found.items()))
    return next(iter(found), None)


async def resolve_chat_id(
    word: str, *, log: EventLog | None, client: KaiClient | None = None
) -> str:
    """The chat id ``word`` stands for (see the module docs).

    :param log: the event log to look in first (None: none).
    :param client: when given, the server's :data:`SERVER_LOOKUP` most recent
        chats are looked in when the log knows no match.
    :raises AmbiguousChatIdError: several chats match.
    :raises UnknownChatIdError: none does.
    """
    if is_full_chat_id(word):
        return word.strip()
    if log is not None:
        import trio

        local = await trio.to_thread.run_sync(log.chats)
        found = match_chat_id(word, local)
        if found is not None:
            return found
    else:
        _check_prefix(word)
    if client is None:
        raise UnknownChatIdError(word, "the event log" if log is not None else "no event log")
    history = await client.get_history(limit=SERVER_LOOKUP)
    found = match_chat_id(word, history.chats)
    if found is None:
        server = f"the server's {SERVER_LOOKUP} latest chats"
        raise UnknownChatIdError(word, f"the event log, nor in {server}" if log else server)
    return found


async def most_recent_chat_id(log: EventLog) -> str | None:
    """The chat of the log with the latest activity; None for an empty log."""
    import trio

    chats = await trio.to_thread.run_sync(lambda: log.chats(limit=1))
    return chats[0].id if chats else None
