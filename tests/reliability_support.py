"""Helpers shared by the reliability tests (issue 8); no tests of its own.

Every ``tests/test_reliability_*.py`` module imports from here: an emulator
plus a client in one block, event normalisation (so two runs of the same
scenario compare equal although their message ids differ), the log checks
every fault test ends with, and a tally of what each fault test tried, which
``docs/reliability.md`` reports.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import sqlite3
import sys
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

import httpx
import msgspec
import trio

from kai_core.chunks import decode_chunk
from kai_core.client import KaiClient
from kai_core.events import Event, event_to_dict
from kai_core.exceptions import KaiStreamError
from kai_core.log import EventLog
from kai_core.testing import Emulator, open_emulator

Backend = Literal["agent", "assistant"]

SECRET = "sapi-RELIABILITY-7c1f9e-secret-token"
"""A recognisable Storage API token: it must show up nowhere but in the request header."""

KAI = Path(sys.executable).parent / "kai"
"""The installed ``kai`` command of this environment."""

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@asynccontextmanager
async def connected(
    backend: Backend = "assistant",
    *,
    token: str | None = SECRET,
    resume_window: float = 30.0,
    **options: Any,
) -> AsyncIterator[tuple[Emulator, KaiClient]]:
    """An emulator and a client pointed at it (``options`` go to the client)."""
    async with open_emulator(backend=backend, token=token, resume_window=resume_window) as emu:
        client = KaiClient(emu.token, emu.storage_api_url, emu.base_url, backend=backend, **options)
        async with client:
            yield emu, client


def normalised(events: Iterable[Event]) -> list[Any]:
    """The events as kai-client's JSON, with ids that differ between runs replaced."""
    text = json.dumps([event_to_dict(e) for e in events], sort_keys=True, default=str)
    seen: dict[str, str] = {}

    def stable(match: re.Match[str]) -> str:
        return seen.setdefault(match.group(0), f"<id{len(seen)}>")

    text = re.sub(r"call_\d+|aitxt-\d+", stable, _UUID.sub(stable, text))
    return list(json.loads(text))


def frame_payloads(emulator: Emulator, chat_id: str) -> list[bytes]:
    """The payloads of the chat's last answer as the emulator produced it (no ``[DONE]``)."""
    record = emulator.state.chats[chat_id].last_stream
    assert record is not None
    out = []
    for frame in record.frames:
        assert frame.startswith(b"data: ") and frame.endswith(b"\n\n")
        payload = frame[6:-2]
        if payload != b"[DONE]":
            out.append(payload)
    return out


def server_payloads(log: EventLog, chat_id: str) -> list[bytes]:
    """The server chunks the log holds for the chat, in order."""
    return [
        bytes(e.body) if not isinstance(e.body, str) else e.body.encode()
        for e in log.events(chat_id)
        if e.origin == "server"
    ]


def client_records(log: EventLog, chat_id: str, kind: str) -> list[Any]:
    """The decoded bodies of the chat's client records of one type."""
    return [
        msgspec.json.decode(e.body)
        for e in log.events(chat_id)
        if e.origin == "client" and e.type == kind
    ]


def integrity_ok(path: Path) -> None:
    """The SQLite file passes ``PRAGMA integrity_check`` (opened as any next run would)."""
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        conn.close()


def requests_to(emulator: Emulator, method: str, path: str) -> int:
    """How many ``method path`` requests the emulator answered."""
    return sum(1 for r in emulator.state.requests if r.method == method and r.path == path)


def chunk_types(payloads: Iterable[bytes]) -> list[str]:
    """The chunk type of each payload."""
    return [decode_chunk(p).type for p in payloads]


def mode_of(path: Path) -> int:
    """The permission bits of a file."""
    return os.stat(path).st_mode & 0o777


def kai_env(home: Path, **extra: str) -> dict[str, str]:
    """An environment for a ``kai`` subprocess: isolated home/data dirs, no plugins."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("STORAGE_API_", "KAI_")) and k not in ("XDG_DATA_HOME", "HOME")
    }
    env.update(
        HOME=str(home),
        XDG_DATA_HOME=str(home / "data"),
        XDG_CONFIG_HOME=str(home / "config"),
        KAI_LOAD_PLUGINS="",
        PYTHONUNBUFFERED="1",
        NO_COLOR="1",
    )
    env.update(extra)
    return env


# -- the decoding path without sockets (test_reliability_decoding, _secrets) ---------------

_ids = itertools.count()


class _Reads(httpx.AsyncByteStream):
    def __init__(self, reads: Sequence[bytes]) -> None:
        self.reads = reads

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for read in self.reads:
            if read:
                yield read


class _Serve(httpx.AsyncBaseTransport):
    """An httpx transport answering every request with these reads."""

    def __init__(self, reads: Sequence[bytes]) -> None:
        self.reads = reads

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, headers={"content-type": "text/event-stream"}, stream=_Reads(self.reads)
        )


class Outcome(msgspec.Struct):
    events: list[Event]
    error: KaiStreamError | None
    chat_id: str


def run(
    reads: Sequence[bytes], log: EventLog | None = None, token: str = "t", **options: object
) -> Outcome:
    """Stream these reads through a real client; only KaiStreamError may come out."""
    chat_id = f"chat-{next(_ids)}"

    async def main() -> Outcome:
        events: list[Event] = []
        client = KaiClient(
            token, "https://s", "http://kai.test", transport=_Serve(reads), log=log, **options
        )  # type: ignore[arg-type]
        async with client:
            try:
                async for event in client.send_message(chat_id, "hi"):
                    events.append(event)
            except KaiStreamError as exc:
                assert exc.events_delivered == len(events)
                return Outcome(events, exc, chat_id)
        return Outcome(events, None, chat_id)

    return trio.run(main)


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(data)) for c in cuts})
    reads, start = [], 0
    for p in points:
        reads.append(data[start:p])
        start = p
    reads.append(data[start:])
    return reads
