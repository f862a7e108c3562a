"""The Claude Code plugin: its manifests have the published shape, and the
MCP configuration it ships starts a working ``kai mcp``."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import trio
from mcp import Client, StdioServerParameters

from kai_core.testing import Emulator

from .cli_common import KAI, TOKEN, Kai

ROOT = Path(__file__).resolve().parent.parent
MARKETPLACE = ROOT / ".claude-plugin" / "marketplace.json"
KEBAB = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
SEMVER = re.compile(r"^\d+\.\d+\.\d+$")


def load(path: Path) -> Any:
    return json.loads(path.read_text())


def plugin_roots() -> list[Path]:
    return [ROOT / entry["source"] for entry in load(MARKETPLACE)["plugins"]]


def test_the_marketplace_manifest_has_the_published_shape() -> None:
    market = load(MARKETPLACE)
    assert KEBAB.match(market["name"])
    assert isinstance(market["owner"], dict) and market["owner"]["name"]
    assert market["plugins"], "a marketplace lists at least one plugin"
    names = [entry["name"] for entry in market["plugins"]]
    assert len(names) == len(set(names))
    for entry in market["plugins"]:
        assert KEBAB.match(entry["name"])
        source = entry["source"]
        # A relative source starts with ./ and stays inside the repository.
        assert isinstance(source, str) and source.startswith("./") and ".." not in source
        manifest = load(ROOT / source / ".claude-plugin" / "plugin.json")
        assert manifest["name"] == entry["name"]
        assert manifest["version"] == entry["version"]


def test_the_plugin_manifests_have_the_published_shape() -> None:
    for root in plugin_roots():
        manifest = load(root / ".claude-plugin" / "plugin.json")
        assert KEBAB.match(manifest["name"]) and SEMVER.match(manifest["version"])
        assert manifest["description"]
        assert set(manifest) <= {
            "name", "version", "description", "author", "homepage", "repository",
            "license", "keywords", "commands", "agents", "skills", "hooks",
            "mcpServers", "lspServers", "outputStyles",
        }  # fmt: skip
        assert (root / "skills").is_dir()
        servers = load(root / ".mcp.json")["mcpServers"]
        assert servers, "the plugin registers kai mcp"
        for server in servers.values():
            assert isinstance(server["command"], str) and isinstance(server["args"], list)
            assert all(isinstance(arg, str) for arg in server["args"])


@pytest.fixture
def kai_emulator_options() -> dict[str, Any]:
    return {"token": TOKEN, "backend": "agent"}


@pytest.mark.e2e
async def test_the_plugin_mcp_config_starts_a_working_server(
    tmp_path: Path, kai_emulator: Emulator
) -> None:
    (root,) = plugin_roots()
    (server,) = load(root / ".mcp.json")["mcpServers"].values()
    assert server["command"] == "kai"  # found on the PATH; here, this environment's
    kai = Kai(tmp_path)
    # Credentials come the way they do for every kai command: here, the environment.
    env = kai.env(
        STORAGE_API_TOKEN=TOKEN,
        STORAGE_API_URL=kai_emulator.storage_api_url,
        KAI_BASE_URL=kai_emulator.base_url,
        KAI_DB=str(kai.db),
    )
    params = StdioServerParameters(command=KAI, args=server["args"], env=env, cwd=str(kai.cwd))
    with trio.fail_after(60):
        async with Client(params, mode="legacy") as client:
            tools = {tool.name for tool in (await client.list_tools()).tools}
            result = await client.call_tool("ask_kai", {"message": "hello"})
    assert "ask_kai" in tools
    assert not result.is_error, result
    assert result.structured_content is not None and result.structured_content["answer"]
    assert TOKEN.encode() not in kai.db.read_bytes()
