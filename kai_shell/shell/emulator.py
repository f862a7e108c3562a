"""What to type to the built-in emulator: ``kai demo``'s welcome and ``/help``'s list.

The emulator answers scripted words (see :mod:`kai_core.testing.scenarios`);
a new user cannot guess them, so the shell says them when it is on one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from kai_core.client import KaiClient

__all__ = ["TRY_FIRST", "WORDS_HELP", "on_emulator", "welcome"]

TRY_FIRST = (
    ("hello", "a question: the answer streams in"),
    ("what tables do I have?", "a read-only tool (list_tables) runs at once"),
    ("create a bucket called demo", "a write tool (create_bucket): you approve it first"),
)
"""Three things to try: ``(what to type, what it shows)``."""

WORDS_HELP = (
    "On the emulator, scripted words: "
    + ", ".join(f'"{text}"' for text, _ in TRY_FIRST)
    + ', "two buckets" (two approvals), "tell me about my project", "think" (reasoning), '
    '"slow" (Ctrl-C stops it), "fail", "boom", "abort" (errors); anything else is echoed.'
)


def welcome() -> str:
    """The lines ``kai demo`` shows when the shell opens."""
    width = max(len(text) for text, _ in TRY_FIRST)
    lines = ["Welcome to the kai demo: an emulated Kai on this machine, no token needed. Try:"]
    lines += [f"  {text:<{width}}  {what}" for text, what in TRY_FIRST]
    return "\n".join(lines)


async def on_emulator(client: KaiClient | None) -> bool:
    """True when ``client`` (a shell's; None offline) talks to the built-in emulator
    (its /api says so)."""
    if client is None:
        return False
    with trio.move_on_after(2):
        try:
            info = await client.info()
        except Exception:  # only decides whether to show a hint
            return False
        return "(emulator)" in (info.app_name or "")
    return False
