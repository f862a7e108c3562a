"""Colours for dark and light terminals.

The shell's colours were chosen for a dark background; on a light one its
yellows and pale greys are hard to read. The theme is, in order: ``--theme``,
``KAI_THEME``, then the terminal's own hint ``COLORFGBG`` ("foreground;background"
colour numbers, set by rxvt, Konsole, iTerm2 and others: a background of 7
or 15, white, means light), else dark.
"""

from __future__ import annotations

import os
from typing import Literal

__all__ = ["LINE_COLORS", "PROMPT_STYLES", "THEMES", "Theme", "choose_theme"]

Theme = Literal["dark", "light"]
THEMES: tuple[Theme, ...] = ("dark", "light")

_LIGHT_BACKGROUNDS = {7, 15}  # white, bright white (the 16 basic colours)


def choose_theme(explicit: str | None = None) -> Theme:
    """The theme to draw with (see the module docs)."""
    for wanted in (explicit, os.environ.get("KAI_THEME")):
        if wanted:
            return "light" if wanted.strip().lower() == "light" else "dark"
    fgbg = os.environ.get("COLORFGBG", "")
    background = fgbg.rsplit(";", 1)[-1].strip()
    if background.isdigit() and int(background) in _LIGHT_BACKGROUNDS:
        return "light"
    return "dark"


LINE_COLORS: dict[Theme, dict[str, str]] = {
    "dark": {"warn": "\x1b[33m", "error": "\x1b[31m", "dim": "\x1b[2m", "user": "\x1b[1;36m"},
    "light": {
        "warn": "\x1b[38;5;130m",  # dark orange: yellow is unreadable on white
        "error": "\x1b[38;5;124m",
        "dim": "\x1b[38;5;242m",  # a grey, not the faint attribute (near-white there)
        "user": "\x1b[1;38;5;25m",
    },
}
"""ANSI colours of the shell's own lines (warnings, errors, notes, your messages)."""

PROMPT_STYLES: dict[Theme, dict[str, str]] = {
    "dark": {
        "prompt": "bold #5fafff",
        "prompt.offline": "#ff8700",
        "prompt.pending": "#ffd700 bold",
        "prompt.continuation": "#8a8a8a",
        "bottom-toolbar": "noreverse bg:#303030 #d0d0d0",
        "bottom-toolbar.online": "bg:#303030 #5fd75f bold",
        "bottom-toolbar.offline": "bg:#303030 #ff8700 bold",
        "bottom-toolbar.connecting": "bg:#303030 #d7d75f",
        "bottom-toolbar.dim": "bg:#303030 #8a8a8a",
        "bottom-toolbar.pending": "bg:#303030 #ffd700 bold",
    },
    "light": {
        "prompt": "bold #005f87",
        "prompt.offline": "#af5f00",
        "prompt.pending": "#875f00 bold",
        "prompt.continuation": "#6c6c6c",
        "bottom-toolbar": "noreverse bg:#e4e4e4 #262626",
        "bottom-toolbar.online": "bg:#e4e4e4 #008700 bold",
        "bottom-toolbar.offline": "bg:#e4e4e4 #af5f00 bold",
        "bottom-toolbar.connecting": "bg:#e4e4e4 #875f00",
        "bottom-toolbar.dim": "bg:#e4e4e4 #585858",
        "bottom-toolbar.pending": "bg:#e4e4e4 #875f00 bold",
    },
}
"""prompt-toolkit styles of the prompt and the bottom toolbar."""
