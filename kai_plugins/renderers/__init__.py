"""The built-in renderers: ``plain``, ``markdown`` and ``json``.

This module is the ``renderers`` plugin of the ``kai`` entry-point group.
:func:`kai_core.render.default_renderer_name` picks ``markdown`` on a
terminal and ``plain`` otherwise.
"""

from __future__ import annotations

from typing import Any

from kai_core.hookspecs import hookimpl
from kai_core.render import default_renderer_name

from .jsonl import JsonRenderer
from .markdown import MarkdownRenderer
from .plain import PlainRenderer

__all__ = [
    "JsonRenderer",
    "MarkdownRenderer",
    "PlainRenderer",
    "default_renderer_name",
    "kai_register_renderers",
]


@hookimpl
def kai_register_renderers() -> dict[str, Any]:
    """Offer ``plain``, ``markdown`` and ``json``."""
    return {"plain": PlainRenderer, "markdown": MarkdownRenderer, "json": JsonRenderer}
