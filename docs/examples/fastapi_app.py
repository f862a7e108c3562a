"""Kai behind a FastAPI app: answers re-streamed to the browser as SSE, approvals answered.

    STORAGE_API_TOKEN=... STORAGE_API_URL=https://connection.keboola.com \\
        uvicorn --app-dir docs/examples fastapi_app:app

(or ``KAI_BASE_URL`` and ``KAI_SERVICE`` to talk to a Kai server directly,
such as the emulator of ``kai serve``). One ``kai_core.aio.KaiClient`` is
opened when the app starts and shared by every request.

``POST /chats/{chat_id}/messages`` with ``{"text": "..."}``
    answers with ``text/event-stream``: one SSE event per Kai event, named
    after its type, its data the event's JSON (the shape of
    ``kai chat --json-output``). When the browser goes away, the Kai stream
    is closed at once.

``POST /chats/{chat_id}/approvals/{approval_id}`` with ``{"approved": true}``
    answers a ``tool-approval-request`` the browser received. On kai-agent
    the message's stream is still open, waiting: the decision is posted
    and the answer goes on in that stream (this returns ``{"ok": true}``).
    On kai-assistant the answer had ended: this streams the continuation.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel

from kai_core.aio import EventStream, KaiBackend, KaiClient, event_to_json


async def open_client() -> KaiClient:
    token = os.environ["STORAGE_API_TOKEN"]
    url = os.environ["STORAGE_API_URL"]
    base_url = os.environ.get("KAI_BASE_URL")
    if base_url:
        return KaiClient(token, url, base_url=base_url, backend=os.environ.get("KAI_SERVICE"))
    return await KaiClient.from_storage_api(token, url)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with await open_client() as client:
        app.state.kai = client
        yield


app = FastAPI(lifespan=lifespan)


class Message(BaseModel):
    text: str


class Decision(BaseModel):
    approved: bool
    reason: str | None = None


def as_sse(events: EventStream) -> StreamingResponse:
    """Kai's events as server-sent events; the Kai stream lives as long as the response."""

    async def frames() -> AsyncIterator[bytes]:
        async with events:
            async for event in events:
                yield (
                    b"event: " + event.type.encode() + b"\ndata: " + event_to_json(event) + b"\n\n"
                )

    return StreamingResponse(frames(), media_type="text/event-stream")


@app.post("/chats/{chat_id}/messages")
async def send_message(chat_id: str, message: Message, request: Request) -> Response:
    client: KaiClient = request.app.state.kai
    return as_sse(client.send_message(chat_id, message.text))


@app.post("/chats/{chat_id}/approvals/{approval_id}")
async def answer_approval(
    chat_id: str, approval_id: str, decision: Decision, request: Request
) -> Response:
    client: KaiClient = request.app.state.kai
    if client.backend is KaiBackend.AGENT:
        await client.submit_approval(
            chat_id, approval_id, decision.approved, reason=decision.reason
        )
        return JSONResponse({"ok": True})
    return as_sse(
        client.send_tool_approval_response(
            chat_id, approval_id, decision.approved, reason=decision.reason
        )
    )
