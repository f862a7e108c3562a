"""Printing results: JSON in kai-client's shapes, and short text forms."""

from __future__ import annotations

import json
from typing import Any

import click
import msgspec

from kai_core.sanitize import for_terminal_json

__all__ = ["echo_json", "to_snake"]


def to_snake(value: Any) -> Any:
    """Structs to plain data with their Python (snake_case) field names, as
    kai-client's pydantic ``model_dump()`` prints them."""
    if isinstance(value, msgspec.Struct):
        return {name: to_snake(getattr(value, name)) for name in value.__struct_fields__}
    if isinstance(value, dict):
        return {k: to_snake(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_snake(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def echo_json(value: Any) -> None:
    """One line of JSON on stdout (nothing in it a terminal would act on)."""
    click.echo(for_terminal_json(json.dumps(to_snake(value), default=str, ensure_ascii=False)))
