"""Discovery of the Kai service through a (raw, loopback) Storage API."""

from __future__ import annotations

import msgspec
import pytest

from kai_core.client import KaiClient
from kai_core.discovery import KaiBackend, discover, parse_backend
from kai_core.exceptions import KaiAuthenticationError, KaiConnectionError, KaiError

from .raw_server import TOKEN, Conn, Request, free_port, raw_server


def storage(services: list[dict[str, str]], status: int = 200):  # type: ignore[no-untyped-def]
    async def handler(conn: Conn, request: Request) -> None:
        assert request.path == "/v2/storage"
        assert request.headers["x-storageapi-token"] == TOKEN
        body = msgspec.json.encode({"services": services, "features": []})
        if status != 200:
            body = b'{"error":"Invalid access token","code":401}'
        await conn.simple(status, body, {"content-type": "application/json"})

    return handler


BOTH = [
    {"id": "kai-assistant", "url": "https://kai-assistant.test/"},
    {"id": "kai-agent", "url": "https://kai-agent.test"},
    {"id": "queue", "url": "https://queue.test"},
]


@pytest.mark.parametrize(
    ("service", "url", "backend"),
    [
        (None, "https://kai-agent.test", KaiBackend.AGENT),
        ("agent", "https://kai-agent.test", KaiBackend.AGENT),
        ("assistant", "https://kai-assistant.test", KaiBackend.ASSISTANT),
        (KaiBackend.ASSISTANT, "https://kai-assistant.test", KaiBackend.ASSISTANT),
    ],
)
async def test_choice(service: str | None, url: str, backend: KaiBackend) -> None:
    async with raw_server(storage(BOTH)) as server:
        client = await KaiClient.from_storage_api(
            TOKEN, f"http://127.0.0.1:{server.port}/", service=service
        )
    assert client.base_url == url
    assert client.backend == backend
    assert client.backend == backend.value  # a str enum: "kai-agent" / "kai-assistant"
    assert client.storage_api_url == f"http://127.0.0.1:{server.port}/"
    await client.close()


async def test_auto_falls_back_to_assistant() -> None:
    async with raw_server(storage(BOTH[:1])) as server:
        url, backend = await discover(TOKEN, f"http://127.0.0.1:{server.port}")
    assert (url, backend) == ("https://kai-assistant.test", KaiBackend.ASSISTANT)


async def test_service_not_found() -> None:
    async with raw_server(storage(BOTH[:1])) as server:
        with pytest.raises(KaiError) as info:
            await KaiClient.from_storage_api(
                TOKEN, f"http://127.0.0.1:{server.port}", service="agent"
            )
    assert info.value.code == "discovery:service_not_found"
    assert "kai-assistant" in str(info.value)


async def test_no_url() -> None:
    async with raw_server(storage([{"id": "kai-agent"}])) as server:
        with pytest.raises(KaiError) as info:
            await discover(TOKEN, f"http://127.0.0.1:{server.port}")
    assert info.value.code == "discovery:no_url"


async def test_http_error() -> None:
    async with raw_server(storage([], status=401)) as server:
        with pytest.raises(KaiError) as info:
            await discover(TOKEN, f"http://127.0.0.1:{server.port}")
    assert info.value.code == "discovery:http_error"
    assert isinstance(info.value, KaiAuthenticationError)
    assert "401" in str(info.value)
    assert TOKEN not in str(info.value)


async def test_unreachable(autojump_clock: object) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(KaiConnectionError) as info:
        await discover(TOKEN, url)
    assert url in str(info.value)
    assert TOKEN not in str(info.value)


def test_parse_backend() -> None:
    assert parse_backend("Agent") is KaiBackend.AGENT
    assert parse_backend("kai-assistant") is KaiBackend.ASSISTANT
    assert parse_backend(None) is None
    with pytest.raises(ValueError):
        parse_backend("robot")


def test_direct_base_url_has_no_backend_unless_given() -> None:
    assert KaiClient(TOKEN, "https://s").backend is None
    assert KaiClient(TOKEN, "https://s", backend="assistant").backend is KaiBackend.ASSISTANT
