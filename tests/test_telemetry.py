"""Telemetry (issue 19): log records become GenAI spans, checked with the SDK's in-memory exporters.

Every chat goes through the real Session, client, SQLite log and emulator;
only the export end is the SDK's in-memory exporter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from kai_core.log import EventLog
from kai_core.plugins import Plugins
from kai_plugins.telemetry import redactor
from kai_plugins.telemetry._export import Exporter
from kai_plugins.telemetry._plugin import TelemetryPlugin
from kai_plugins.telemetry._spans import SpanBuilder, approval_attributes

from .telemetry_support import chat


class Telemetry:
    """A telemetry plugin registered on a fresh plugin manager, exporting in memory."""

    def __init__(self, *, capture: bool = False, token: str | None = None) -> None:
        self.spans = InMemorySpanExporter()
        self.metrics = InMemoryMetricReader()
        self.exporter = Exporter(
            span_exporter=self.spans, metric_reader=self.metrics, processor=SimpleSpanProcessor
        )
        self.plugin = TelemetryPlugin(
            self.exporter, capture_content=capture, redact=redactor(token)
        )
        self.plugins = Plugins(load_entry_points=False)
        self.plugins.register(self.plugin, name="telemetry")

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def agent_spans(self) -> list[ReadableSpan]:
        return [s for s in self.finished() if s.name.startswith("invoke_agent")]

    def tool_spans(self) -> list[ReadableSpan]:
        return [s for s in self.finished() if s.name.startswith("execute_tool")]

    def metric_points(self) -> dict[str, list[Any]]:
        data = self.metrics.get_metrics_data()
        found: dict[str, list[Any]] = {}
        for rm in data.resource_metrics if data else []:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    found.setdefault(m.name, []).extend(m.data.data_points)
        return found


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "log.db"


async def test_read_only_tool_makes_an_agent_span_with_a_tool_child(
    kai_emulator: Any, db: Path
) -> None:
    t = Telemetry()
    chat_id = await chat(kai_emulator, t.plugins, db, "list my tables")
    (agent,) = t.agent_spans()
    (tool,) = t.tool_spans()
    a = dict(agent.attributes or {})
    assert agent.kind is SpanKind.CLIENT
    assert a["gen_ai.operation.name"] == "invoke_agent"
    assert a["gen_ai.provider.name"] == "keboola.kai"
    assert a["gen_ai.agent.name"] == "Kai"
    assert a["gen_ai.conversation.id"] == chat_id
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    assert isinstance(a["gen_ai.response.id"], str)
    assert a["gen_ai.usage.input_tokens"] > 0 and a["gen_ai.usage.output_tokens"] > 0
    assert a["server.address"] == "127.0.0.1"
    assert a["kai.backend"] == "kai-agent"
    assert a["kai.resumed"] is False and a["kai.cancelled"] is False
    assert "error.type" not in a and agent.status.status_code is StatusCode.UNSET
    assert "gen_ai.input.messages" not in a and "gen_ai.output.messages" not in a
    assert tool.parent is not None and tool.parent.span_id == agent.context.span_id
    assert tool.context.trace_id == agent.context.trace_id
    assert tool.attributes["gen_ai.tool.name"] == tool.name.removeprefix("execute_tool ")
    assert tool.attributes["kai.tool.outcome"] == "output"
    assert "gen_ai.tool.call.arguments" not in tool.attributes
    assert agent.start_time <= tool.start_time <= tool.end_time <= agent.end_time
    points = t.metric_points()
    tokens = {p.attributes["gen_ai.token.type"]: p.sum for p in points["gen_ai.client.token.usage"]}
    assert tokens == {
        "input": a["gen_ai.usage.input_tokens"],
        "output": a["gen_ai.usage.output_tokens"],
    }
    assert points["gen_ai.client.operation.duration"][0].count == 1
    assert points["gen_ai.client.operation.time_to_first_chunk"][0].count == 1


@pytest.mark.parametrize("backend", ["agent", "assistant"])
@pytest.mark.parametrize("approve", [True, False])
async def test_an_approval_is_an_event_on_the_tool_span(
    kai_emulator_options: dict[str, Any], backend: str, approve: bool, db: Path
) -> None:
    from kai_core.testing import open_emulator

    t = Telemetry()
    async with open_emulator(backend=backend) as emulator:  # type: ignore[arg-type]
        await chat(emulator, t.plugins, db, "create a bucket called b1", approve=approve)
    agents = t.agent_spans()
    (tool,) = t.tool_spans()
    # kai-assistant answers the approval in a second request: its own span.
    assert len(agents) == (2 if backend == "assistant" else 1)
    assert len({a.attributes["gen_ai.conversation.id"] for a in agents}) == 1
    assert tool.attributes["gen_ai.tool.name"] == "create_bucket"
    assert tool.attributes["kai.tool.outcome"] == ("output" if approve else "denied")
    (event,) = tool.events
    assert event.name == "kai.approval"
    assert event.attributes["kai.approval.decision"] == ("approved" if approve else "denied")
    assert event.attributes["kai.approval.decider"] == "user"
    assert event.attributes["kai.approval.wait_ms"] >= 0
    assert "kai.approval.reason" not in event.attributes  # content: opt-in only
    if backend == "assistant":
        assert agents[0].attributes["gen_ai.response.finish_reasons"] == ("tool-calls",)
        assert agents[1].attributes["kai.continuation"] is True


async def test_an_answer_error_sets_error_type(kai_emulator: Any, db: Path) -> None:
    t = Telemetry()
    await chat(kai_emulator, t.plugins, db, "boom")
    (agent,) = t.agent_spans()
    assert agent.attributes["error.type"] == "answer_error"
    assert agent.status.status_code is StatusCode.ERROR
    (duration,) = t.metric_points()["gen_ai.client.operation.duration"]
    assert duration.attributes["error.type"] == "answer_error"


async def test_a_cut_stream_sets_error_type(kai_emulator: Any, db: Path) -> None:
    t = Telemetry()
    kai_emulator.faults.drop_connection(after=3, times=None)
    await chat(kai_emulator, t.plugins, db, "list my tables")
    (agent,) = t.agent_spans()
    assert agent.attributes["error.type"].startswith("stream")
    assert agent.status.status_code is StatusCode.ERROR


async def test_content_only_when_opted_in_and_never_the_token(kai_emulator: Any, db: Path) -> None:
    token = "KBC-TOKEN-7f3e9a-recognisable"
    t = Telemetry(capture=True, token=token)
    await chat(kai_emulator, t.plugins, db, f"list my tables, my token is {token}")
    (agent,) = t.agent_spans()
    (tool,) = t.tool_spans()
    assert "list my tables" in agent.attributes["gen_ai.input.messages"]
    assert "[redacted]" in agent.attributes["gen_ai.input.messages"]
    assert agent.attributes["gen_ai.output.messages"].startswith('[{"role":"assistant"')
    assert "gen_ai.tool.call.arguments" in tool.attributes
    assert "gen_ai.tool.call.result" in tool.attributes
    assert token not in repr([s.to_json() for s in t.finished()])


async def test_ids_are_the_same_from_the_live_path_and_from_the_log(
    kai_emulator: Any, db: Path
) -> None:
    t = Telemetry()
    await chat(kai_emulator, t.plugins, db, "create a bucket called b1")
    await chat(kai_emulator, t.plugins, db, "list my tables")
    live = {(s.name, s.context.trace_id, s.context.span_id) for s in t.finished()}
    builder = SpanBuilder()
    log = EventLog(db)
    try:
        replayed = [d for e in log.events() for d in builder.feed(e)] + builder.close()
    finally:
        log.close()
    assert {(d.name, d.trace_id, d.span_id) for d in replayed} == live
    assert len(live) == 4


def test_approval_mapping_takes_the_permission_engines_fields_when_present() -> None:
    today = approval_attributes({"approved": True, "decided_by": "auto-approve"})
    assert today["kai.approval.decider"] == "auto-approve"
    assert "kai.approval.rule" not in today
    engine = approval_attributes(
        {
            "approved": False,
            "decided_by": "policy-file",
            "rule": "deny create_*",
            "scope": "project",
            "file": "/home/u/.config/kai/policy.toml",
            "line": 7,
        }
    )
    assert engine["kai.approval.decider"] == "rule"
    assert engine["kai.approval.rule"] == "deny create_*"
    assert engine["kai.approval.scope"] == "project"
    assert engine["kai.approval.source"] == "/home/u/.config/kai/policy.toml:7"
    assert (
        approval_attributes({"approved": True, "decided_by": "my-plugin"})["kai.approval.decider"]
        == "plugin"
    )


async def test_every_gen_ai_name_sent_is_in_the_semantic_conventions_registry(
    kai_emulator: Any, db: Path
) -> None:
    from opentelemetry.semconv._incubating.attributes import gen_ai_attributes
    from opentelemetry.semconv._incubating.metrics import gen_ai_metrics

    registry = {v for v in vars(gen_ai_attributes).values() if isinstance(v, str)}
    registry |= {v for v in vars(gen_ai_metrics).values() if isinstance(v, str)}
    t = Telemetry(capture=True)
    await chat(kai_emulator, t.plugins, db, "create a bucket called b1")
    sent = {k for s in t.finished() for k in (s.attributes or {})}
    sent |= set(t.metric_points())
    sent |= {k for p in t.metric_points()["gen_ai.client.token.usage"] for k in p.attributes}
    gen_ai = {name for name in sent if name.startswith("gen_ai.")}
    assert "gen_ai.response.time_to_first_chunk" in gen_ai
    assert gen_ai - registry == set()
