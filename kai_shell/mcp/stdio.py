"""MCP over stdin and stdout with trio streams, so that SIGTERM can stop it.

The SDK's own stdio transport reads stdin in a worker thread that a
cancellation cannot interrupt: the server would only stop at the next line
or at EOF. Here stdin and stdout are trio streams on private copies of
fds 0 and 1, and while the server runs fd 0 reads the null device and fd 1
writes to stderr, so a stray ``print`` (from a plugin, say) cannot corrupt
the wire. A stdin that is not a pipe or socket falls back to the SDK's
transport.
"""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import trio

__all__ = ["serve_stdio"]

_MAX_LINE = 64 * 1024 * 1024  # a JSON-RPC message larger than this is refused


class _Wire:
    """The duck-typed ``anyio.AsyncFile[str]`` the SDK's stdio transport reads and writes."""

    def __init__(self, reading: trio.lowlevel.FdStream, writing: trio.lowlevel.FdStream) -> None:
        self.reading = reading
        self.writing = writing

    async def __aiter__(self) -> AsyncIterator[str]:
        buffer = b""
        while True:
            data = await self.reading.receive_some()
            if not data:
                if buffer:
                    yield buffer.decode("utf-8", "replace")
                return
            buffer += data
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                yield line.decode("utf-8", "replace") + "\n"
            if len(buffer) > _MAX_LINE:
                raise ValueError("a message on stdin is larger than 64 MiB")

    async def write(self, text: str) -> None:
        await self.writing.send_all(text.encode("utf-8"))

    async def flush(self) -> None:
        """Nothing is buffered."""


def _is_stream(fd: int) -> bool:
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


@contextmanager
def _claimed_std_fds() -> Iterator[tuple[int, int]]:
    """Private copies of fds 0 and 1; meanwhile 0 reads /dev/null and 1 goes to stderr."""
    wire_in, wire_out = os.dup(0), os.dup(1)
    saved_in, saved_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    try:
        os.dup2(devnull, 0)
        os.dup2(2, 1)
        yield wire_in, wire_out
    finally:
        os.dup2(saved_in, 0)
        os.dup2(saved_out, 1)
        for fd in (devnull, saved_in, saved_out):
            os.close(fd)


async def serve_stdio(server: Any) -> None:
    """Run the MCP ``server`` on stdin/stdout until EOF (or cancellation)."""
    if not (_is_stream(0) and _is_stream(1)):
        await server.run_stdio_async()
        return
    from mcp.server.stdio import stdio_server

    lowlevel = server._lowlevel_server  # what MCPServer.run_stdio_async runs
    with _claimed_std_fds() as (wire_in, wire_out):
        reading, writing = trio.lowlevel.FdStream(wire_in), trio.lowlevel.FdStream(wire_out)
        async with reading, writing:
            wire: Any = _Wire(reading, writing)
            async with stdio_server(stdin=wire, stdout=wire) as (read, write):
                await lowlevel.run(read, write, lowlevel.create_initialization_options())
