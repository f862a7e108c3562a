"""The pytest plugin's fixtures, used the way a third party would."""

from __future__ import annotations

from typing import Any

import pytest

from kai_core.testing import CallTool, Emulator, Say, Step

from .emulator_support import chat_body, chunk_dicts, http, send


async def test_default_emulator_is_kai_agent_on_loopback(kai_emulator: Emulator) -> None:
    assert kai_emulator.backend == "agent" and kai_emulator.service_id == "kai-agent"
    assert kai_emulator.base_url.startswith("http://127.0.0.1:")
    assert kai_emulator.storage_api_url == kai_emulator.base_url
    assert kai_emulator.token  # any non-empty token works when none is configured


@pytest.mark.kai_emulator(backend="assistant")
async def test_marker_sets_options(kai_emulator: Emulator) -> None:
    assert kai_emulator.backend == "assistant"


class TestOptionsFixture:
    @pytest.fixture
    def kai_emulator_options(self) -> dict[str, Any]:
        return {"backend": "assistant", "token": "class-token"}

    async def test_override(self, kai_emulator: Emulator) -> None:
        assert kai_emulator.backend == "assistant" and kai_emulator.token == "class-token"

    @pytest.mark.kai_emulator(backend="agent")
    async def test_marker_wins_over_the_fixture(self, kai_emulator: Emulator) -> None:
        assert kai_emulator.backend == "agent" and kai_emulator.token == "class-token"


async def test_kai_client_fixture_is_connected(kai_emulator: Emulator, kai_client: Any) -> None:
    assert (await kai_client.ping()).timestamp
    tools = {t.name: t.read_only for t in (await kai_client.get_tools()).tools}
    assert tools["list_tables"] is True and tools["create_bucket"] is False
    kai_emulator.script(lambda text: [Say("Scripted answer.")], trigger="custom")
    async with http(kai_emulator) as client:
        chunks = chunk_dicts(await send(client, "a custom question"))
    assert "".join(c["delta"] for c in chunks if c["type"] == "text-delta") == "Scripted answer."
    history = await kai_client.get_history()
    assert [c.title for c in history.chats] == ["a custom question"]


async def test_loopback_only_unless_allowed() -> None:
    from kai_core.testing import open_emulator

    with pytest.raises(ValueError, match="allow_remote"):
        async with open_emulator(host="0.0.0.0"):
            pass
    with pytest.raises(ValueError, match="backend"):
        async with open_emulator(backend="other"):  # type: ignore[arg-type]
            pass


async def test_errors_inside_the_block_come_out_unwrapped() -> None:
    from kai_core.testing import open_emulator

    with pytest.raises(KeyError):
        async with open_emulator():
            raise KeyError("mine")


async def test_a_broken_script_does_not_take_the_server_down(kai_emulator: Emulator) -> None:
    def broken_after(results: list[Any]) -> list[Any]:
        raise RuntimeError("oops in after")

    kai_emulator.script(lambda text: 1 / 0, trigger="divide")  # type: ignore[arg-type,return-value]
    kai_emulator.script(
        lambda text: [Step([CallTool("list_tables")], after=broken_after)], trigger="later"
    )
    async with http(kai_emulator) as client:
        early = await client.post("/api/chat", json=chat_body("divide"))
        late = chunk_dicts(await send(client, "later please"))
        fine = chunk_dicts(await send(client, "hello"))
    assert early.status_code == 503 and early.json()["code"] == "offline:chat"
    assert late[-1] == {
        "type": "error",
        "errorText": "The emulator's script failed: RuntimeError: oops in after",
    }
    assert fine[-1]["type"] == "finish"
    assert [type(e) for e in kai_emulator.app.script_errors] == [ZeroDivisionError, RuntimeError]
