"""Telemetry end to end (issue 19): the real OTLP/HTTP exporter, a local receiver
decoding with ``opentelemetry-proto``, and the real ``kai`` process."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import trio

from kai_core.plugins import Plugins
from kai_core.testing import Emulator, open_emulator
from kai_plugins.telemetry import register_telemetry

from .cli_common import TOKEN, Kai, closed_port_url
from .otlp_receiver import otlp_receiver
from .telemetry_support import chat

SPAN_KIND_INTERNAL, SPAN_KIND_CLIENT = 1, 3
STATUS_ERROR = 2


@pytest.fixture
def kai_emulator_options() -> dict[str, Any]:
    return {"token": TOKEN}


def by_name(spans: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    return [s for s in spans if s["name"].startswith(prefix)]


@pytest.mark.parametrize("backend", ["agent", "assistant"])
async def test_every_kind_of_chat_reaches_the_collector(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "team=analytics")
    warnings: list[str] = []
    with otlp_receiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
        plugins = Plugins(load_entry_points=False)
        plugin = register_telemetry(plugins, token=TOKEN, warn=warnings.append)
        db = tmp_path / "log.db"
        async with open_emulator(backend=backend, token=TOKEN) as emulator:  # type: ignore[arg-type]
            one = await chat(emulator, plugins, db, "list my tables", token=TOKEN)
            await chat(emulator, plugins, db, "create a bucket called b1", chat_id=one)
            await chat(emulator, plugins, db, "create a bucket called b2", approve=False)
            await chat(emulator, plugins, db, f"boom, and my token is {TOKEN}")
            emulator.faults.drop_connection(after=3, times=None)
            await chat(emulator, plugins, db, "list my tables")
        assert await trio.to_thread.run_sync(plugin.close)
    assert warnings == []
    spans = receiver.spans()
    agents = by_name(spans, "invoke_agent")
    tools = by_name(spans, "execute_tool")
    # kai-assistant answers each approval in a continuation request: two more spans.
    assert len(agents) == (5 if backend == "agent" else 7)
    assert all(a["kind"] == SPAN_KIND_CLIENT for a in agents)
    assert all(t["kind"] == SPAN_KIND_INTERNAL for t in tools)
    assert {a["attributes"]["kai.backend"] for a in agents} == {f"kai-{backend}"}
    assert all(a["resource"]["team"] == "analytics" for a in agents)
    assert agents[0]["resource"]["service.name"] == "kai"
    errors = sorted(
        a["attributes"].get("error.type", "") for a in agents if a["status"] == STATUS_ERROR
    )
    assert errors[0] == "answer_error" and errors[1].startswith("stream")
    outcomes = sorted(t["attributes"]["kai.tool.outcome"] for t in tools)
    assert outcomes.count("denied") == 1 and outcomes.count("output") >= 2
    decisions = sorted(e[1]["kai.approval.decision"] for t in tools for e in t["events"])
    assert decisions == ["approved", "denied"]
    # each tool span hangs under an invoke_agent span of the same trace
    parents = {(a["trace_id"], a["span_id"]) for a in agents}
    assert all((t["trace_id"], t["parent_id"]) in parents for t in tools)
    assert {
        "gen_ai.client.token.usage",
        "gen_ai.client.operation.duration",
        "gen_ai.client.operation.time_to_first_chunk",
    } <= receiver.metric_names()
    inputs = [a["attributes"].get("gen_ai.input.messages", "") for a in agents]
    # content was sent (opted in), with the token masked (by the log, and again by us)
    assert any("boom, and my token is " in i for i in inputs), inputs
    assert TOKEN.encode() not in receiver.raw()


def telemetry_env(kai: Kai, endpoint: str, **extra: str) -> dict[str, str]:
    return kai.env(
        KAI_ENABLE_TELEMETRY="1",
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="true",
        **extra,
    )


def ids(spans: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return sorted((s["name"], s["trace_id"], s["span_id"]) for s in spans)


@pytest.mark.e2e
async def test_kai_exports_live_and_a_backfill_resends_the_same_ids(
    kai: Kai, kai_emulator: Emulator
) -> None:
    online = kai.online(kai_emulator)
    with otlp_receiver() as live:
        result = await kai(
            *online,
            "chat",
            "--auto-approve",
            "-m",
            "create a bucket called b1",
            env=telemetry_env(kai, live.url),
        )
    assert result.returncode == 0, result
    assert result.stderr == "", result
    assert len(by_name(live.spans(), "invoke_agent")) == 1
    (tool,) = by_name(live.spans(), "execute_tool")
    assert tool["events"][0][1]["kai.approval.decider"] == "auto-approve"
    assert TOKEN.encode() not in live.raw()

    backfills = []
    for _ in range(2):
        with otlp_receiver() as receiver:
            done = await kai("telemetry", "backfill", env=telemetry_env(kai, receiver.url))
        assert done.returncode == 0, done
        assert done.stdout.strip() == "sent 2 span(s)", done
        backfills.append(sorted(receiver.spans(), key=lambda s: s["span_id"]))
        assert TOKEN.encode() not in receiver.raw()
    # the same chat sent again: the same spans, id for id and value for value
    # (the resource describes the sending process: its instance id differs)
    diff = [
        (k, a[k], b[k])
        for a, b in zip(*backfills, strict=True)
        for k in a
        if a[k] != b[k] and k != "resource"
    ]
    assert diff == []
    assert ids(backfills[0]) == ids(live.spans())


@pytest.mark.e2e
async def test_a_collector_that_is_down_slow_or_refusing_costs_one_warning(
    kai: Kai, kai_emulator: Emulator
) -> None:
    online = kai.online(kai_emulator)
    with otlp_receiver("slow") as slow, otlp_receiver("refuse") as refusing:
        down_env = telemetry_env(kai, closed_port_url())
        slow_env = telemetry_env(kai, slow.url, KAI_TELEMETRY_FLUSH_TIMEOUT="0.5")
        refuse_env = telemetry_env(kai, refusing.url)
        results = [
            await kai(*online, "chat", "-m", "hello", env=env)
            for env in (down_env, slow_env, refuse_env)
        ]
    for result in results:
        assert result.returncode == 0, result
        assert "emulated Kai" in result.stdout or "Hello" in result.stdout, result
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("kai: warning: telemetry: "), result
        assert "the local event log has everything" in lines[0]
    assert "did not answer within 0.5 s" in results[1].stderr
    assert slow.bodies  # it was reached, and never answered
    assert "refused or could not be sent" in results[2].stderr
    # nothing lost locally: three chats, each with its answer, are in the log
    history = await kai("history", "--local", "--json-output")
    assert len(history.json()["chats"]) == 3


@pytest.mark.e2e
async def test_telemetry_off_imports_no_opentelemetry(kai: Kai, kai_emulator: Emulator) -> None:
    done = await trio.run_process(
        [
            sys.executable,
            "-X",
            "importtime",
            "-m",
            "kai_shell",
            "--db",
            str(kai.db),
            *kai.online(kai_emulator),
            "chat",
            "-m",
            "hello",
        ],
        capture_stdout=True,
        capture_stderr=True,
        env=kai.env(),
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert b"kai_core.log" in done.stderr  # importtime did report the imports
    assert b"opentelemetry" not in done.stderr


@pytest.mark.e2e
async def test_telemetry_without_the_extra_is_one_clear_line(kai: Kai, tmp_path: Path) -> None:
    # An `opentelemetry` package with nothing in it hides the installed one.
    fake = tmp_path / "fake"
    (fake / "opentelemetry").mkdir(parents=True)
    (fake / "opentelemetry" / "__init__.py").write_text("")
    env = telemetry_env(kai, "http://127.0.0.1:9", PYTHONPATH=str(fake))
    chat_result = await kai(
        "--token", TOKEN, "--url", "http://127.0.0.1:9", "chat", "-m", "hi", env=env
    )
    backfill = await kai("telemetry", "backfill", env=env)
    for result in (chat_result, backfill):
        assert result.returncode == 3, result
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result
        assert "pip install 'kai[otel]'" in lines[0], result


@pytest.mark.e2e
async def test_the_config_file_turns_it_on_and_the_variable_wins(
    kai: Kai, kai_emulator: Emulator
) -> None:
    config = kai.home / "config" / "kai" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text("[telemetry]\nenabled = true\n")
    online = kai.online(kai_emulator)
    with otlp_receiver() as receiver:
        env = kai.env(OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url)
        on = await kai(*online, "chat", "-m", "hello", env=env)
        assert len(by_name(receiver.spans(), "invoke_agent")) == 1
        off = await kai(*online, "chat", "-m", "hello", env={**env, "KAI_ENABLE_TELEMETRY": "0"})
    assert on.returncode == 0 and off.returncode == 0, (on, off)
    assert len(by_name(receiver.spans(), "invoke_agent")) == 1  # the second run sent nothing
    config.write_text("[telemetry]\nenabled = 'yes please'\n")
    bad = await kai(*online, "chat", "-m", "hello")
    assert bad.returncode == 3, bad
    assert bad.stderr.splitlines() == [
        f"kai: error: {config}: [telemetry] enabled must be true or false"
    ]
