"""Whether a stream is a terminal: the one question behind colour, live updates and prompts."""

from __future__ import annotations

__all__ = ["is_terminal"]


def is_terminal(stream: object) -> bool:
    """True when ``stream`` is an open terminal; False for a pipe, a file, a closed
    stream, ``None`` (``sys.stdin`` of a process started without one) or an object
    without ``isatty``."""
    try:
        return bool(stream.isatty())  # type: ignore[attr-defined]
    except (AttributeError, ValueError, OSError):
        return False
