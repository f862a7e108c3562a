"""The built-in renderers (plain, markdown, json) on the captured fixture streams."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

from kai_core.assemble import MessageAssembler
from kai_core.events import ApprovalDecisionEvent, Event, TextEvent
from kai_core.plugins import Plugins
from kai_core.render import Renderer
from kai_plugins.renderers import JsonRenderer, MarkdownRenderer, PlainRenderer
from kai_plugins.renderers import markdown as markdown_module
from kai_plugins.renderers._common import preview

from .assemble_support import EXPECTED, assemble


class TtyStream(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def events_of(*names: str, decision: ApprovalDecisionEvent | None = None) -> list[Event]:
    """The events of fixtures played one after the other on one assembler (a continuation)."""
    assembler = MessageAssembler()
    events: list[Event] = []
    for name in names:
        for event in assemble(name, assembler)[1]:
            events.append(event)
            if event.type == "tool-approval-request" and decision is not None:
                events.append(decision)
    return events


def render(factory: type[Renderer], events: list[Event], stream: io.StringIO | None = None,
           **kwargs: bool) -> str:  # fmt: skip
    out = stream if stream is not None else io.StringIO()
    renderer = factory(out, **kwargs)
    renderer.begin("the user's message")
    for event in events:
        renderer.event(event)
    renderer.end()
    return out.getvalue()


APPROVED = ApprovalDecisionEvent(
    approval_id="aitxt-000000000000000000000007",
    tool_call_id="call_000002",
    tool_name="create_bucket",
    approved=True,
    reason="--auto-approve",
    decided_by="auto-approve",
)

PLAIN = {
    "hello.sse": (
        "Hello! I'm Kai, the Keboola AI assistant (reference server). How can I help?\n"
        "[tokens] 33 in / 19 out\n"
    ),
    "tables.sse": (
        "Let me list your tables.\n"
        "[tool] list_tables started\n"
        '[tool] list_tables → {"tables": [{"id": "in.c-main.customers", "name": "customers", '
        '"bucket": "in.c-m… (315 chars)\n'
        "You have 3 tables: in.c-main.customers (1200 rows), in.c-main.orders (5400 rows), "
        "out.c-reports.daily_revenue (365 rows).\n"
        "[tokens] 218 in / 40 out\n"
    ),
    "boom.sse": (
        "Let me look into that for you\n"
        "[error] Simulated model failure (boom)\n"
        "[tokens] 32 in / 8 out\n"
    ),
    "abort.sse": (
        "This answer is long and will be cut short \n[aborted] This operation was aborted\n"
    ),
    "think.sse": (
        "[reasoning] The user wants me to think first. I will reason briefly, then answer.\n"
        "After thinking it over: the answer is 42.\n"
        "[tokens] 37 in / 28 out\n"
    ),
    "sources.sse": (
        "[source] Storage <https://help.keboola.com/storage/>\n"
        "[source] Storage guide <storage.pdf>\n"
        "Keboola Storage keeps data in buckets and tables, see the documentation.\n"
        "[tokens] 36 in / 18 out\n"
    ),
    "image.sse": "[file] image/png (118 chars)\nHere is a tiny image.\n[tokens] 35 in / 6 out\n",
    "slow-dropped.sse": "",  # filled below: text only, no usage line
}


@pytest.mark.parametrize("name", sorted(set(PLAIN) - {"slow-dropped.sse"}))
def test_plain_renders_fixture(name: str) -> None:
    assert render(PlainRenderer, events_of(name)) == PLAIN[name]


def test_plain_cut_stream_ends_its_line_without_usage() -> None:
    output = render(PlainRenderer, events_of("slow-dropped.sse"))
    assert output.endswith("\n") and "[tokens]" not in output and output.count("\n") == 1


def test_plain_approval_flow_with_continuation() -> None:
    events = events_of("bucket-request.sse", "bucket-approved.sse", decision=APPROVED)
    assert render(PlainRenderer, events) == (
        "I will create the bucket b1 for you.\n"
        "[tool] create_bucket started\n"
        '[tool] create_bucket ← {"name": "b1", "stage": "in"}\n'
        '[approval] create_bucket waits for approval: {"name": "b1", "stage": "in"}\n'
        "[approval] create_bucket approved by auto-approve (--auto-approve)\n"
        '[tool] create_bucket → {"id": "in.c-b1", "name": "b1", "stage": "in", "created": true}\n'
        "Done: bucket in.c-b1 was created.\n"
        "[tokens] 176 in / 26 out\n"  # every step of both responses, once
    )


def test_plain_denied_tool() -> None:
    rejected = ApprovalDecisionEvent(
        approval_id="aitxt-000000000000000000000007",
        tool_call_id="call_000002",
        tool_name="create_bucket",
        approved=False,
        reason="Not now",
        decided_by="user",
    )
    output = render(PlainRenderer, [rejected, *events_of("bucket-denied.sse")])
    assert output.splitlines()[:3] == [
        "[approval] create_bucket rejected by user (Not now)",
        "[tool] call_000003 denied, not run",
        "Understood, I did not run create_bucket (Not now).",
    ]


def test_plain_invalid_tool_input_is_said_once() -> None:
    output = render(PlainRenderer, events_of("invalid-tool-input.sse"))
    lines = output.splitlines()
    assert lines[0] == "[tool] list_tables started"
    assert lines[1].startswith("[error] list_tables: Invalid input for tool list_tables:")
    assert sum(line.startswith("[error]") for line in lines) == 1
    assert lines[-1] == "[tokens] 214 in / 79 out"


def test_plain_streams_text_without_buffering() -> None:
    out = io.StringIO()
    renderer = PlainRenderer(out)
    renderer.begin(None)
    renderer.event(TextEvent(text="Hel"))
    assert out.getvalue() == "Hel"
    renderer.event(TextEvent(text="lo"))
    assert out.getvalue() == "Hello"
    renderer.notice("saved as chat c1")
    renderer.end()
    assert out.getvalue() == "Hello\nsaved as chat c1\n"


def test_plain_color_styles_only_when_asked() -> None:
    assert "\x1b[" not in render(PlainRenderer, events_of("boom.sse"))
    colored = render(PlainRenderer, events_of("boom.sse"), color=True)
    assert "\x1b[31m[error] Simulated model failure (boom)\x1b[0m\n" in colored


def test_preview_is_one_line_and_cut() -> None:
    assert preview({"a": 1}) == '{"a": 1}'
    assert preview("two\nlines") == "two lines"
    long = preview("x" * 100, 10)
    assert long == "xxxxxxxxxx… (100 chars)"


# -- json ------------------------------------------------------------------------

KAI_CLIENT_FIELDS = {
    "text": {"type", "text", "state"},
    "step-start": {"type"},
    "tool-call": {"type", "tool_call_id", "tool_name", "state", "input", "output", "approval"},
    "tool-approval-request": {"type", "approval_id", "tool_call_id", "tool_name", "input"},
    "data-usage": {"type", "usage"},
    "finish": {"type", "finish_reason", "usage"},
    "error": {"type", "message", "code"},
    "tool-output-error": {"type", "tool_call_id", "error_text"},
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_json_lines_parse_with_kai_client_fields(name: str) -> None:
    events = events_of(name)
    output = render(JsonRenderer, events)
    lines = output.splitlines()
    assert len(lines) == len(events)
    for line, event in zip(lines, events, strict=True):
        obj = json.loads(line)
        assert obj["type"] == event.type
        assert KAI_CLIENT_FIELDS.get(event.type, {"type"}) <= set(obj)
        assert "chunk" not in obj


def test_json_usage_fields_and_notices_are_not_written() -> None:
    out = io.StringIO()
    renderer = JsonRenderer(out)
    renderer.begin("hello")
    for event in events_of("hello.sse"):
        renderer.event(event)
    renderer.notice("not JSON, not written")
    renderer.end()
    last = json.loads(out.getvalue().splitlines()[-1])
    assert last["finish_reason"] == "stop"
    assert last["usage"]["prompt_tokens"] == 33 and last["usage"]["completion_tokens"] == 19
    assert "not JSON" not in out.getvalue()


def test_json_includes_approval_decisions() -> None:
    output = render(JsonRenderer, [APPROVED])
    assert json.loads(output) == {
        "type": "approval-decision",
        "approval_id": "aitxt-000000000000000000000007",
        "tool_call_id": "call_000002",
        "tool_name": "create_bucket",
        "approved": True,
        "reason": "--auto-approve",
        "decided_by": "auto-approve",
        "rule": None,
    }


# -- markdown --------------------------------------------------------------------


def test_markdown_piped_prints_rendered_parts_without_control_codes() -> None:
    output = render(MarkdownRenderer, events_of("tables.sse"))
    assert "\x1b" not in output
    assert output.splitlines() == [
        "Let me list your tables.",
        "⚙ list_tables started",
        '⚙ list_tables → {"tables": [{"id": "in.c-main.customers", "name": "customers", '
        '"bucket": "in.c-m… (315 chars)',
        "You have 3 tables: in.c-main.customers (1200 rows), in.c-main.orders (5400",
        "rows), out.c-reports.daily_revenue (365 rows).",
        "Σ 218 in / 40 out",
    ]


def test_markdown_renders_markdown() -> None:
    text = "# Buckets\n\n* **in.c-main** has `2` tables\n"
    pieces = [TextEvent(text=text[i : i + 5]) for i in range(0, len(text), 5)]
    output = render(MarkdownRenderer, list(pieces))
    assert "**" not in output and "`" not in output and "# " not in output
    assert "Buckets" in output and "in.c-main has 2 tables" in output


@pytest.mark.parametrize("name", ["boom.sse", "abort.sse", "think.sse", "invalid-tool-input.sse"])
def test_markdown_piped_shows_errors_and_text(name: str) -> None:
    output = render(MarkdownRenderer, events_of(name))
    plain = render(PlainRenderer, events_of(name))
    for line in plain.splitlines():
        if line.startswith(("[error]", "[aborted]")):
            assert line.split("] ", 1)[1][:40] in output


def test_markdown_on_a_terminal_updates_live() -> None:
    out = TtyStream()
    output = render(MarkdownRenderer, events_of("tables.sse"), stream=out, color=True)
    assert "\x1b[?25l" in output  # rich.Live hides the cursor while a part streams
    assert output.count("\x1b[?25h") == output.count("\x1b[?25l") == 2  # and shows it again
    assert "out.c-reports.daily_revenue" in output
    assert "\x1b[2m⚙ list_tables started\x1b[0m" in output


def frames(monkeypatch: pytest.MonkeyPatch, interval: float) -> int:
    monkeypatch.setattr(markdown_module, "REFRESH_INTERVAL", interval)
    out = TtyStream()
    render(MarkdownRenderer, [TextEvent(text="word ") for _ in range(50)], stream=out)
    return out.getvalue().count("word")


def test_markdown_refreshes_are_throttled(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every delta re-renders with no interval; with a long one only the first
    # delta and the final state are drawn.
    assert frames(monkeypatch, 3600.0) < frames(monkeypatch, 0.0)


@pytest.mark.e2e
def test_importing_the_renderers_does_not_import_rich() -> None:
    code = (
        "import sys, kai_plugins.renderers, kai_core.render\n"
        "from kai_core.plugins import Plugins\n"
        "Plugins().renderers()\n"
        "assert 'rich' not in sys.modules, 'rich was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- registration ------------------------------------------------------------------


def test_builtin_renderers_come_from_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAI_LOAD_PLUGINS", "")  # third-party off; built-ins still load
    plugins = Plugins()
    assert {"renderers", "voting"} <= set(plugins.names())
    assert {"plain", "markdown", "json"} <= set(plugins.renderers())


class BrokenRenderers:
    from kai_core.hookspecs import hookimpl

    @hookimpl
    def kai_register_renderers(self) -> dict[str, object]:
        raise RuntimeError("cannot offer renderers")


def test_a_raising_renderer_plugin_is_reported_once_and_skipped() -> None:
    reports: list[str] = []
    plugins = Plugins(report=reports.append)
    plugins.register(BrokenRenderers(), name="broken")
    assert {"plain", "markdown", "json"} <= set(plugins.renderers())
    assert {"plain", "markdown", "json"} <= set(plugins.renderers())
    assert reports == [
        "plugin 'broken' failed in kai_register_renderers: RuntimeError: cannot offer "
        "renderers (disabled for this session)"
    ]
