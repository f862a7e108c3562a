"""``kai verify`` (kai-client 0.13's command): the real ``kai`` against the emulator."""

from __future__ import annotations

from typing import Any

import pytest

from kai_core.testing import Emulator

from .cli_common import TOKEN, WRONG_TOKEN, Kai, closed_port_url, gather

pytestmark = pytest.mark.e2e

CHECKS = ["token", "service-discovery", "ping", "info", "usage"]


@pytest.fixture
def kai_emulator_options() -> dict[str, Any]:
    return {"token": TOKEN}


async def test_every_check_passes_against_kai_agent(kai: Kai, kai_emulator: Emulator) -> None:
    em = kai_emulator
    text, report, direct = await gather(
        kai(*kai.online(em, discover=True), "verify"),
        kai(*kai.online(em, discover=True), "verify", "--json-output"),
        kai(*kai.online(em), "verify", "--json-output"),
    )
    assert text.returncode == 0, text
    lines = text.stdout.splitlines()
    assert lines[0] == f"Storage API URL: {em.storage_api_url}"
    assert [line.split(":")[0] for line in lines[1:6]] == [f"✓ {name}" for name in CHECKS]
    assert "project 1234 (Emulated project), token 'kai emulator token' [master]" in lines[1]
    assert f"kai-agent at {em.base_url}" in lines[2]
    assert "0/" in lines[5] and "messages used" in lines[5]
    assert lines[-1] == "All checks passed."
    assert report.returncode == 0, report
    data = report.json()
    assert data["ok"] is True and list(data["checks"]) == CHECKS
    assert data["checks"]["token"]["is_master_token"] is True
    assert data["checks"]["usage"]["messages_used"] == 0
    assert (
        direct.json()["checks"]["service-discovery"]["summary"] == f"using --base-url {em.base_url}"
    )


@pytest.mark.kai_emulator(backend="assistant")
async def test_the_quota_is_not_applicable_on_kai_assistant(
    kai: Kai, kai_emulator: Emulator
) -> None:
    result = await kai(*kai.online(kai_emulator, discover=True), "--service", "assistant", "verify")
    assert result.returncode == 0, result
    assert "– usage: kai-assistant has no message quota endpoint" in result.stdout
    assert result.stdout.rstrip().endswith("All checks passed.")


async def test_a_refused_token_fails_with_a_hint_and_stops(
    kai: Kai, kai_emulator: Emulator
) -> None:
    em = kai_emulator
    args = ["--token", WRONG_TOKEN, "--url", em.storage_api_url]
    text, report = await gather(kai(*args, "verify"), kai(*args, "verify", "--json-output"))
    assert text.returncode == 4, text  # the documented exit code of a refused token
    assert "✗ token: [unauthorized:chat]" in text.stdout
    assert "    hint: check --token / STORAGE_API_TOKEN" in text.stdout
    assert "– service-discovery: not checked: the token check failed" in text.stdout
    assert "Some checks failed (see above)." in text.stdout
    assert report.returncode == 4
    checks = report.json()["checks"]
    assert checks["token"]["ok"] is False and checks["token"]["code"] == "unauthorized:chat"
    assert checks["ping"] == {
        "ok": None, "summary": "not checked: the token check failed", "skipped": True,
    }  # fmt: skip


async def test_a_missing_service_and_a_dead_server_fail(kai: Kai, kai_emulator: Emulator) -> None:
    em = kai_emulator
    missing, dead = await gather(
        kai(*kai.online(em, discover=True), "--service", "assistant", "verify"),
        kai(*kai.online(em), "--base-url", closed_port_url(), "verify", "--json-output"),
    )
    assert missing.returncode == 3, missing  # configuration: the service is not listed
    assert "✗ service-discovery: [discovery:service_not_found]" in missing.stdout
    assert "['docs', 'kai-agent']" in missing.stdout
    assert "hint: choose the backend with --service / KAI_SERVICE" in missing.stdout
    assert dead.returncode == 6, dead  # unreachable
    checks = dead.json()["checks"]
    assert checks["token"]["ok"] and checks["service-discovery"]["ok"]
    assert checks["ping"]["ok"] is False and checks["info"]["ok"] is False
    assert "does not answer as Kai" in checks["ping"]["hint"]


async def test_a_used_up_quota_fails(kai: Kai, kai_emulator: Emulator) -> None:
    kai_emulator.app.state.messages_limit = 0
    result = await kai(*kai.online(kai_emulator), "verify")
    assert result.returncode == 7, result  # rate limited
    assert "✗ usage: [rate_limit:chat] 0/0 messages used" in result.stdout
    assert "hint: the message quota is used up; wait for the reset" in result.stdout
