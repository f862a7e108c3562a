"""Reading the stored parts of a UI message (the AI SDK's ``message.parts``)."""

from __future__ import annotations

from typing import Any

__all__ = ["tool_name_of"]


def tool_name_of(part: dict[str, Any]) -> str | None:
    """The tool name of a stored tool part (``tool-<name>`` or ``dynamic-tool``).

    ``toolName`` when the part has one (a ``dynamic-tool`` always should),
    otherwise the name in its type; None for a part that names no tool.
    """
    name = part.get("toolName")
    if isinstance(name, str):
        return name
    kind = part.get("type")
    if isinstance(kind, str) and kind.startswith("tool-"):
        return kind[5:]
    return None
