"""Reading a line from the terminal inside trio, without a worker thread.

``kai chat`` asks questions on the terminal (the message, an approval, a
vote) while trio runs. ``input()`` blocks, so it used to run in a worker
thread; but on Ctrl-C trio ends the run while that thread still holds the
lock of ``sys.stdin``'s buffer, and the interpreter aborts at exit ("Fatal
Python error: _enter_buffered_busy", status 134) before anything is logged.

:func:`read_line` waits for the terminal in trio itself
(``trio.lowlevel.wait_readable``) and then reads the line the terminal has
ready (a terminal in canonical mode hands over whole lines). Ctrl-C is then
an ordinary ``KeyboardInterrupt`` raised in the waiting task: the caller can
log what it must and exit 130.
"""

from __future__ import annotations

import os
import sys

import click

__all__ = ["read_line"]


async def read_line(prompt: str, *, err: bool = False) -> str:
    """Show ``prompt`` (on stderr with ``err``) and read one line from stdin.

    :returns: the line, without its newline.
    :raises EOFError: stdin ended (Ctrl-D on an empty line).
    :raises KeyboardInterrupt: Ctrl-C while waiting.
    """
    import trio  # here: importing this module (every ``kai`` start) costs nothing

    click.echo(prompt, nl=False, err=err)
    fd = sys.stdin.fileno()
    line = bytearray()
    while True:
        try:
            await trio.lowlevel.wait_readable(fd)
        except OSError:
            pass  # not pollable (a regular file): the read below does not block for long
        chunk = os.read(fd, 4096)
        if not chunk:
            if line:
                break
            raise EOFError
        line += chunk
        if line.endswith(b"\n"):
            del line[-1:]
            break
    return line.decode("utf-8", "replace").removesuffix("\r")
