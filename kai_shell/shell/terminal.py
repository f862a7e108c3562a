"""The terminal while output streams: keys are not echoed into the answer.

While an answer streams the terminal is in cooked mode, so the kernel
echoes what is typed, Ctrl-C included (as ``^C``), right where the answer is
being drawn. The markdown display pads its lines to the full width, so that
echo wraps onto a new line the display does not know about, and its next
redraw leaves the previous drawing on screen: the answer shows twice. With
echo off the keys still arrive (Ctrl-C still signals; what was typed waits
for the next prompt), they are just not drawn.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

__all__ = ["keys_not_echoed"]


@contextmanager
def keys_not_echoed(stdin: TextIO | None = None) -> Iterator[None]:
    """Turn the terminal's echo off for the block (nothing happens without a terminal)."""
    try:
        import termios
    except ImportError:  # not on a POSIX system
        yield
        return
    try:
        fd = (stdin or sys.stdin).fileno()
        saved = termios.tcgetattr(fd)
    except (termios.error, AttributeError, ValueError, OSError):  # not a terminal
        yield
        return
    quiet = list(saved)
    quiet[3] &= ~(termios.ECHO | termios.ECHOCTL)
    try:
        termios.tcsetattr(fd, termios.TCSANOW, quiet)
    except termios.error:
        yield
        return
    try:
        yield
    finally:
        try:
            termios.tcsetattr(fd, termios.TCSANOW, saved)
        except termios.error:
            pass
