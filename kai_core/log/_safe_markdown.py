"""Markdown from the server as HTML that cannot carry markup or script of its own.

Kai answers in CommonMark with GitHub tables. The text comes from a server
(and, through tool outputs, from whatever the tools read), so it is treated
as hostile: `markdown-it-py <https://markdown-it-py.readthedocs.io/>`_
parses it with raw HTML off (``<script>`` stays text and is escaped), every
text and attribute is escaped by its renderer, and on top of that:

* links keep only ``http``, ``https`` and ``mailto`` targets (``javascript:``,
  ``data:``, ``file:`` and relative links stay plain text);
* images are not parsed (an image would load from the network when the page
  opens); ``![alt](url)`` becomes ``!`` and a link;
* headings move down two levels (the page owns ``<h1>`` and ``<h2>``);
* table alignment becomes a class, not a ``style`` attribute, so the page's
  Content-Security-Policy can forbid inline styles;
* a code block's language is reduced to letters, digits, ``+``, ``-``, ``_``.

markdown-it-py (kai's ``html`` extra, part of ``cli``) is imported at the
first rendering, not with the log; without it, rendering raises
:class:`~kai_core._extras.MissingExtraError` naming the extra.
"""

from __future__ import annotations

import re
from functools import cache
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.token import Token

__all__ = ["markdown_to_html"]

_SAFE_SCHEMES: Final = ("http://", "https://", "mailto:")
_ALIGN: Final = re.compile(r"text-align:(left|center|right)")
_NOT_LANGUAGE: Final = re.compile(r"[^\w+-]")
_HEADING_SHIFT: Final = 2


def _safe_link(url: str) -> bool:
    # An allow-list: whatever a browser might run or fetch on its own is out.
    return url.strip().lower().startswith(_SAFE_SCHEMES)


@cache
def _parser() -> MarkdownIt:
    from .._extras import require

    require("html", "an HTML export")
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"]).disable("image")
    md.validateLink = _safe_link  # type: ignore[method-assign]
    return md


def _tidy(tokens: list[Token]) -> None:
    dropping_link = False
    for token in tokens:
        if token.type in ("heading_open", "heading_close"):
            level = min(6, int(token.tag[1]) + _HEADING_SHIFT)
            token.tag = f"h{level}"
        elif token.type in ("th_open", "td_open"):
            style = token.attrs.pop("style", None)
            match = _ALIGN.fullmatch(str(style)) if style is not None else None
            if match:
                token.attrSet("class", f"align-{match.group(1)}")
        elif token.type == "link_open":
            # markdown-it skips validateLink for an empty target ("[x]()"), so
            # the allow-list is applied again here; a dropped link keeps its text.
            dropping_link = not _safe_link(str(token.attrGet("href") or ""))
            token.hidden = dropping_link
        elif token.type == "link_close":
            token.hidden = dropping_link  # links do not nest in CommonMark
        elif token.type == "fence":
            words = token.info.split(maxsplit=1)  # none when the info is blank
            token.info = _NOT_LANGUAGE.sub("", words[0]) if words else ""
        if token.children:
            _tidy(token.children)


def markdown_to_html(text: str) -> str:
    """``text`` (CommonMark with tables) as an HTML fragment safe to embed in a page."""
    md = _parser()
    tokens = md.parse(text)
    _tidy(tokens)
    html: str = md.renderer.render(tokens, md.options, {})
    return html
