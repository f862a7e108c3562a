"""``is_terminal``: the one TTY check behind colour, live updates and prompts."""

from __future__ import annotations

import io
import os

from kai_core._terminal import is_terminal


def test_a_pty_is_a_terminal_a_pipe_is_not() -> None:
    leader, follower = os.openpty()
    read_end, write_end = os.pipe()
    with open(follower, "w") as tty, open(write_end, "w") as pipe:
        assert is_terminal(tty)
        assert not is_terminal(pipe)
    os.close(leader)
    os.close(read_end)


def test_closed_missing_and_unusual_streams_are_not_terminals() -> None:
    closed = io.StringIO()
    closed.close()
    assert not is_terminal(closed)  # ValueError: I/O operation on closed file
    assert not is_terminal(None)  # sys.stdin of a process started without one
    assert not is_terminal(object())
    assert not is_terminal(io.StringIO())
