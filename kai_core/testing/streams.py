"""The HTTP side of a streamed answer: follow a :class:`StreamRecord` and write it out.

The response carries the SDK's UI-message-stream headers, writes the
record's frames as they come (from the first, so a resumed stream replays
the answer), and applies the stream faults: keep-alive comments, a
malformed chunk, and a cut connection (the ASGI app returns without ending
the body, so the server closes the socket mid-stream: no ``[DONE]``, no
final chunk of the chunked encoding).

Writing and generating are separate tasks: when the client goes away the
assistant keeps going, as the AI SDK does, and the stored message is still
complete.
"""

from __future__ import annotations

from typing import Any

import trio
from starlette.types import Receive, Scope, Send

from .faults import StreamFaults
from .state import StreamRecord

__all__ = ["SSE_HEADERS", "SSEResponse"]

SSE_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
    (b"connection", b"keep-alive"),
    (b"x-vercel-ai-ui-message-stream", b"v1"),
    (b"x-accel-buffering", b"no"),
]
"""The headers of ``createUIMessageStreamResponse`` (fixtures/hello.headers)."""

MALFORMED_FRAME = b'data: {"type":"text-delta","id":\n\n'


class SSEResponse:
    """An ASGI response that follows one answer's record."""

    def __init__(self, record: StreamRecord, faults: StreamFaults) -> None:
        self.record = record
        self.faults = faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
        completed = False
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_cancel_on_disconnect, receive, nursery.cancel_scope)
            completed = await self._write(send)
            nursery.cancel_scope.cancel()
        if completed:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        # Otherwise return mid-body: the server then closes the connection abruptly.

    async def _write(self, send: Send) -> bool:
        faults = self.faults
        chunks_sent = 0
        index = 0
        if faults.keepalive:
            await _body(send, b": stream-open\n\n")
        while True:
            while index < len(self.record.frames):
                data = self.record.frames[index]
                index += 1
                is_done = data.startswith(b"data: [DONE]")
                if faults.malformed_at is not None and (
                    chunks_sent == faults.malformed_at
                    or (is_done and chunks_sent < faults.malformed_at)
                ):
                    await _body(send, MALFORMED_FRAME)
                    faults = _without_malformed(faults)
                if faults.drop_after is not None and chunks_sent >= faults.drop_after:
                    return False
                await _body(send, data)
                if not is_done:
                    chunks_sent += 1
            if self.record.closed:
                return self.record.complete
            if faults.keepalive:
                with trio.move_on_after(faults.keepalive) as idle:
                    await self.record.wait_changed(index)
                if idle.cancelled_caught:
                    await _body(send, b": keep-alive\n\n")
            else:
                await self.record.wait_changed(index)


def _without_malformed(faults: StreamFaults) -> StreamFaults:
    return StreamFaults(drop_after=faults.drop_after, malformed_at=None, keepalive=faults.keepalive)


async def _body(send: Send, data: bytes) -> None:
    await send({"type": "http.response.body", "body": data, "more_body": True})


async def _cancel_on_disconnect(receive: Receive, scope: trio.CancelScope) -> None:
    while True:
        message: Any = await receive()
        if message["type"] == "http.disconnect":
            scope.cancel()
            return
