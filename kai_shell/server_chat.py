"""Opening and deleting a chat on the server, worded from what the server can tell.

The backend answers ``DELETE`` of a chat it does not hold with
``forbidden:chat`` ("belongs to another user"), the same as for another
user's chat (protocol.md C.4); a ``GET`` tells the two apart
(``not_found:chat`` for an unknown one). So a refused delete is followed by a
look, and a chat the server does not know is said to be so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kai_core.exceptions import KaiForbiddenError, KaiNotFoundError

if TYPE_CHECKING:
    from kai_core.api import ChatDetail
    from kai_core.client import KaiClient

__all__ = ["delete_chat", "get_chat", "no_such_chat"]


def no_such_chat(chat_id: str) -> KaiNotFoundError:
    """The error for a chat the server does not hold."""
    return KaiNotFoundError(f"no chat {chat_id} on the server", code="not_found:chat")


async def get_chat(client: KaiClient, chat_id: str) -> ChatDetail:
    """The chat from the server; an unknown one raises :func:`no_such_chat`."""
    try:
        return await client.get_chat(chat_id)
    except KaiNotFoundError:
        raise no_such_chat(chat_id) from None


async def delete_chat(client: KaiClient, chat_id: str) -> None:
    """Delete the chat on the server; an unknown one raises :func:`no_such_chat`."""
    try:
        await client.delete_chat(chat_id)
    except KaiForbiddenError:
        await get_chat(client, chat_id)  # raises no_such_chat when it is not there
        raise
