"""Helpers for the emulator tests: raw httpx on the emulator, SDK framing, ``kai serve``.

Shared by ``test_emulator*.py``, ``test_h1_reader.py``, ``test_packaging.py``
and ``test_kai_client_compat.py``; no tests of its own.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import trio

from kai_core.chunks import decode_chunk
from kai_core.testing import Emulator

from .conftest import FIXTURES


def chat_body(text: str, chat_id: str | None = None, **extra: Any) -> dict[str, Any]:
    """A ``POST /api/chat`` body as kai-client sends it."""
    return {
        "id": chat_id or str(uuid.uuid4()),
        "message": {
            "id": str(uuid.uuid4()),
            "role": "user",
            "parts": [{"type": "text", "text": text}],
        },
        "selectedChatModel": "chat-model",
        "selectedVisibilityType": "private",
        **extra,
    }


def parse_frames(raw: bytes) -> list[str]:
    """Split an SSE body into frames, checking the SDK framing strictly.

    Returns the payloads (``[DONE]`` included, comments as ``": ..."``).
    """
    assert raw.endswith(b"\n\n"), raw[-80:]
    frames = raw[:-2].split(b"\n\n")
    payloads = []
    for frame in frames:
        text = frame.decode()
        assert "\n" not in text, f"one line per frame: {text!r}"
        if text.startswith(": "):
            payloads.append(text)
            continue
        assert text.startswith("data: "), text
        payloads.append(text[6:])
    return payloads


def chunk_dicts(payloads: list[str]) -> list[dict[str, Any]]:
    """The JSON chunks of a payload list (comments and ``[DONE]`` left out), each decodable."""
    out = []
    for p in payloads:
        if p == "[DONE]" or p.startswith(": "):
            continue
        decode_chunk(p)  # our decoder accepts every chunk the emulator writes
        out.append(json.loads(p))
    return out


def fixture_payloads(name: str) -> list[str]:
    """The payloads of a captured fixture, with the same strict framing check."""
    return parse_frames((FIXTURES / name).read_bytes())


def shape(payloads: list[str]) -> list[tuple[str, list[str], list[str]]]:
    """Per chunk: type, its keys in order, and the keys of its ``data`` (for ``data-*``)."""
    out = []
    for p in payloads:
        if p == "[DONE]":
            out.append(("[DONE]", [], []))
            continue
        obj = json.loads(p)
        data = obj.get("data")
        out.append((obj["type"], list(obj), list(data) if isinstance(data, dict) else []))
    return out


def headers(emulator: Emulator) -> dict[str, str]:
    """Auth headers as kai-client sends them."""
    return {"x-storageapi-token": emulator.token, "x-storageapi-url": emulator.storage_api_url}


@asynccontextmanager
async def http(emulator: Emulator) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client on the emulator, authenticated."""
    async with httpx.AsyncClient(
        base_url=emulator.base_url, headers=headers(emulator), timeout=10
    ) as client:
        yield client


async def post_chat(
    client: httpx.AsyncClient, body: dict[str, Any]
) -> tuple[httpx.Response, list[str]]:
    """POST /api/chat and read the whole stream; returns the response and its payloads."""
    with trio.fail_after(10):
        async with client.stream("POST", "/api/chat", json=body) as response:
            raw = await response.aread()
    if response.status_code != 200:
        return response, []
    return response, parse_frames(raw)


async def send(client: httpx.AsyncClient, text: str, chat_id: str | None = None) -> list[str]:
    """Send a message; assert 200; return the payloads."""
    response, payloads = await post_chat(client, chat_body(text, chat_id))
    assert response.status_code == 200, response.text
    return payloads


def types(payloads: list[str]) -> list[str]:
    """The chunk types of a payload list (``[DONE]`` kept)."""
    return [
        p if p == "[DONE]" else json.loads(p)["type"] for p in payloads if not p.startswith(": ")
    ]


def approval_repost(
    chat: dict[str, Any], answers: dict[str, tuple[bool, str | None]]
) -> dict[str, Any]:
    """The v6 re-POST: the newest assistant message with the answered parts in approval-responded."""
    message = next(m for m in reversed(chat["messages"]) if m["role"] == "assistant")
    parts = []
    for part in message["parts"]:
        approval = part.get("approval")
        if approval and approval["id"] in answers:
            approved, reason = answers[approval["id"]]
            new_approval = {**approval, "approved": approved}
            if reason is not None:
                new_approval["reason"] = reason
            part = {**part, "state": "approval-responded", "approval": new_approval}
        parts.append(part)
    return {
        "id": chat["id"],
        "message": {"id": message["id"], "role": "assistant", "parts": parts},
        "selectedChatModel": "chat-model",
        "selectedVisibilityType": "private",
    }


def pending_approvals(chat: dict[str, Any]) -> list[str]:
    """The approval ids of parts still in approval-requested."""
    return [
        p["approval"]["id"]
        for m in chat["messages"]
        for p in m["parts"]
        if p.get("state") == "approval-requested"
    ]


# -- ``kai serve`` as a real process ----------------------------------------------------------


async def start_serve(*args: str) -> tuple[trio.Process, str]:
    """Start ``kai serve --port 0 ...``; return the process and its base URL."""
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "kai_shell", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    output = b""
    with trio.fail_after(20):
        while b"\n" not in output:
            data = await process.stdout.receive_some()
            assert data, "kai serve exited before printing its URL"
            output += data
    match = re.search(r"on (http://127\.0\.0\.1:\d+);", output.decode())
    assert match, output
    assert f"STORAGE_API_URL={match.group(1)}" in output.decode()
    return process, match.group(1)


async def stop(process: trio.Process, sig: int = signal.SIGINT) -> tuple[int, bytes]:
    """Ctrl-C (or another signal) the process; return its exit code and stderr."""
    process.send_signal(sig)
    assert process.stderr is not None
    errors = b""
    with trio.fail_after(10):
        while data := await process.stderr.receive_some():
            errors += data
        code = await process.wait()
    return code, errors
