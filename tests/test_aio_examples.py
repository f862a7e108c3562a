"""The asyncio examples of docs/examples/ work against the emulator.

``fastapi_app.py`` is served by a real ASGI server (hypercorn, on asyncio)
on loopback and driven by an HTTP client reading its SSE; ``streamlit_app.py``
runs under Streamlit's own ``AppTest``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from hypercorn.asyncio import serve
from hypercorn.config import Config

from kai_core.testing import Say, Step

from .aio_support import EmulatorThread, emulator_thread

EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"

pytestmark = pytest.mark.e2e


@pytest.fixture(params=["agent", "assistant"])
def emu(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[EmulatorThread]:
    with emulator_thread(backend=request.param) as running:
        emulator = running.emulator
        monkeypatch.setenv("STORAGE_API_TOKEN", emulator.token)
        monkeypatch.setenv("STORAGE_API_URL", emulator.storage_api_url)
        monkeypatch.setenv("KAI_BASE_URL", emulator.base_url)
        monkeypatch.setenv("KAI_SERVICE", emulator.backend)
        yield running


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name.removesuffix(".py"), EXAMPLES / name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- FastAPI ---------------------------------------------------------------------------


@asynccontextmanager
async def served(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """``app`` behind hypercorn on a loopback port, and an HTTP client pointed at it."""
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = Config()
    config.bind = [f"fd://{sock.detach()}"]  # hypercorn owns (and closes) the socket
    config.loglevel = "WARNING"
    stop = asyncio.Event()
    server = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            assert (await http.get("/openapi.json")).status_code == 200  # started up
            yield http
    finally:
        stop.set()
        await server


async def sse(response: httpx.Response) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """(event name, data) of each server-sent event of ``response``."""
    name = ""
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            yield name, json.loads(line[6:])


def test_fastapi_restreams_and_answers_approvals(emu: EmulatorThread) -> None:
    example = load("fastapi_app.py")
    chat_id = "4c7b3c52-96a4-4c4e-8a8f-0f3d2b8c9e11"

    async def main() -> list[str]:
        seen: list[str] = []
        async with served(example.app) as http:
            body = {"text": "create a bucket called web"}
            async with http.stream("POST", f"/chats/{chat_id}/messages", json=body) as response:
                assert response.headers["content-type"].startswith("text/event-stream")
                async for name, data in sse(response):
                    seen.append(name)
                    if name != "tool-approval-request":
                        continue
                    answer = await http.post(
                        f"/chats/{chat_id}/approvals/{data['approval_id']}",
                        json={"approved": True},
                    )
                    assert answer.status_code == 200
                    if data["transport"] == "agent":
                        assert answer.json() == {"ok": True}  # the answer goes on here
                    else:
                        seen += [name for name, _ in [(n, d) async for n, d in sse(answer)]]
        return seen

    seen = asyncio.run(main())
    assert seen.count("tool-approval-request") == 1
    assert seen[-1] == "finish"
    assert "in.c-web" in emu.run(lambda: list(emu.emulator.state.buckets))


def test_fastapi_closes_the_kai_stream_when_the_browser_goes(emu: EmulatorThread) -> None:
    emu.run(
        emu.emulator.script,
        lambda t: [Step([Say(*(f"{i} " for i in range(300)), pause=0.02)])],
        "slowly",
    )
    example = load("fastapi_app.py")

    async def main() -> None:
        answered = asyncio.Event()

        async def watched(scope: Any, receive: Any, send: Any) -> None:
            try:
                await example.app(scope, receive, send)
            finally:
                if scope["type"] == "http" and scope["path"].endswith("/messages"):
                    answered.set()  # the endpoint's response has ended

        async with served(watched) as http:
            kai = example.app.state.kai
            pool = kai.trio_client._http.http._transport._pool
            url = f"/chats/{kai.new_chat_id()}/messages"
            async with http.stream("POST", url, json={"text": "slowly"}) as response:
                async for name, _ in sse(response):
                    if name == "text":
                        break
                assert pool.connections
            # The browser went away: the server cancels the response, which closes
            # Kai's stream before it ends (a hang guard, not a speed assertion).
            async with asyncio.timeout(30):
                await answered.wait()
            assert pool.connections == []

    asyncio.run(main())


# -- Streamlit -------------------------------------------------------------------------


@pytest.mark.parametrize("approved", [True, False])
def test_streamlit_chat_with_approve_and_deny_buttons(emu: EmulatorThread, approved: bool) -> None:
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(str(EXAMPLES / "streamlit_app.py"), default_timeout=60)
    app.run()
    assert not app.exception
    try:
        app.chat_input[0].set_value("create a bucket called st").run()
        assert not app.exception
        assert [b.label for b in app.button] == ["Approve", "Deny"]
        assert "create_bucket" in app.warning[0].value
        app.button(key="approve" if approved else "deny").click().run()
        assert not app.exception
        assert list(app.button) == []  # nothing waits any more
        said = [m.value for m in app.markdown]
        assert "create a bucket called st" in said
        # the question, the answer up to the tool, the decision, the rest of the answer
        assert said[:3] == [
            "create a bucket called st",
            said[1],
            f"{'Approved' if approved else 'Denied'}: create_bucket",
        ]
        assert len(said) == 4 and said[1] and said[3]
        buckets = emu.run(lambda: list(emu.emulator.state.buckets))
        assert ("in.c-st" in buckets) is approved
        assert app.session_state["stream"] is None  # the answer ended
    finally:
        state = app.session_state
        state["loop"].run(state["kai"].close())
        state["loop"].close()
