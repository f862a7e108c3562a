"""Printing results: JSON in kai-client's shapes, and short text forms."""

from __future__ import annotations

import json
from typing import Any

import click
import msgspec

from kai_core.sanitize import for_terminal_json

__all__ = ["echo_json", "local_time", "to_snake", "with_iso_times"]


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


def local_time(ts: float | None) -> str:
    """Seconds since the epoch as a local date-time a person reads: ``2026-05-04 17:03``."""
    if ts is None:
        return "-"
    from datetime import datetime

    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


def with_iso_times(data: dict[str, Any], *keys: str) -> dict[str, Any]:
    """``data`` plus ``<key>_iso`` (ISO 8601, local offset) beside each epoch-seconds ``key``.

    JSON output keeps the epoch seconds scripts already read, and adds the
    ISO form people and other tools parse.
    """
    from datetime import datetime

    for key in keys:
        ts = data.get(key)
        if isinstance(ts, (int, float)):
            data[f"{key}_iso"] = datetime.fromtimestamp(ts).astimezone().isoformat()
    return data
