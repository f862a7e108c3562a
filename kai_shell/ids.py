"""Checking ids before anything is sent: the server wants UUIDs."""

from __future__ import annotations

import uuid

import click

__all__ = ["ChatId"]


class _ChatIdType(click.ParamType):  # type: ignore[type-arg]  # generic in click 8.2+, not 8.1
    """A click parameter type that accepts only a UUID (as Kai requires)."""

    name = "CHAT_ID"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> str:
        text = str(value).strip()
        try:
            uuid.UUID(text)
        except ValueError:
            self.fail(
                f"{text!r} is not a chat id (chat ids are UUIDs, see `kai history`)", param, ctx
            )
        return text


ChatId = _ChatIdType()
