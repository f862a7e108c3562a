"""``kai serve`` as a real process: it listens, answers, and stops cleanly on Ctrl-C."""

from __future__ import annotations

import signal
import sys

import httpx
import pytest
import trio

from .emulator_support import chat_body, parse_frames, start_serve, stop, types

pytestmark = pytest.mark.e2e


async def test_kai_serve_runs_until_ctrl_c() -> None:
    process, url = await start_serve("--backend", "assistant")
    try:
        async with httpx.AsyncClient(base_url=url) as client:
            ping = await client.get("/ping")
            services = await client.get("/v2/storage", headers={"x-storageapi-token": "anything"})
            answer = await client.post(
                "/api/chat", json=chat_body("hello"), headers={"x-storageapi-token": "anything"}
            )
    finally:
        code, errors = await stop(process)
    assert ping.status_code == 200
    assert {"id": "kai-assistant", "url": url} in services.json()["services"]
    assert types(parse_frames(answer.content))[-1] == "[DONE]"
    assert code == 0
    assert b"Traceback" not in errors


async def test_kai_serve_token_and_faults() -> None:
    process, url = await start_serve("--token", "s3cret", "--rate-limit", "1", "--retry-after", "3")
    try:
        async with httpx.AsyncClient(base_url=url) as client:
            wrong = await client.get("/api/history", headers={"x-storageapi-token": "other"})
            limited = await client.post(
                "/api/chat", json=chat_body("hello"), headers={"x-storageapi-token": "s3cret"}
            )
            fine = await client.post(
                "/api/chat", json=chat_body("hello"), headers={"x-storageapi-token": "s3cret"}
            )
    finally:
        code, _ = await stop(process)
    assert wrong.status_code == 401
    assert limited.status_code == 429 and limited.headers["retry-after"] == "3"
    assert fine.status_code == 200
    assert code == 0


async def test_kai_serve_refuses_a_remote_host() -> None:
    result = await trio.run_process(
        [sys.executable, "-m", "kai_shell", "serve", "--host", "0.0.0.0", "--port", "0"],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    assert result.returncode == 2
    assert b"--allow-remote" in result.stderr
    assert b"Traceback" not in result.stderr


async def test_kai_serve_stops_cleanly_on_sigterm() -> None:
    process, url = await start_serve()
    async with httpx.AsyncClient(base_url=url) as client:
        assert (await client.get("/ping")).status_code == 200
    code, errors = await stop(process, signal.SIGTERM)
    assert code == 0 and b"Traceback" not in errors


async def test_kai_serve_reports_a_busy_port() -> None:
    with trio.socket.socket() as busy:
        await busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = await trio.run_process(
            [sys.executable, "-m", "kai_shell", "serve", "--port", str(port)],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    assert result.returncode == 1
    assert b"cannot listen on 127.0.0.1" in result.stderr and b"Traceback" not in result.stderr
