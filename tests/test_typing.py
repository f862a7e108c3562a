"""The public event union narrows under ``mypy --strict``.

kai-client's README idiom, ``if event.type == "text": print(event.text)``,
must type-check over :data:`kai_core.Event`, and narrowing must really happen:
a snippet that reads a field the narrowed event does not have is an error.
Both snippets go through one mypy run (a real ``mypy --strict`` process, as
CI runs it), so the test can fail either way.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent

NARROWS = """
from collections.abc import AsyncIterator

from kai_core import Event, KaiClient, Session
from kai_core.events import DataEvent, TextEvent, UnknownEvent


def show(event: Event) -> str:
    if event.type == "text":
        return event.text
    if event.type == "tool-call":
        return f"{event.tool_name} {event.state}"
    if event.type == "tool-approval-request":
        return event.approval_id
    if event.type == "data-usage":
        return str(event.usage.total_tokens)
    if event.type == "finish":
        return str(event.finish_reason)
    if event.type == "error":
        return event.message
    if event.type == "approval-decision":
        return event.decided_by
    if event.type == "start":  # a protocol chunk: an UnknownEvent
        return str(event.data)
    if isinstance(event, DataEvent):
        return event.name
    if isinstance(event, UnknownEvent):
        wire: str = event.type
        return wire
    return ""


async def answer(client: KaiClient, session: Session) -> str:
    pieces = [show(e) async for e in session.send("hi")]
    async with session.stream("again") as events:
        async for event in events:
            if event.type == "reasoning":
                pieces.append(event.text)
    gen = session.send("bye")
    await gen.aclose()
    async for event in client.send_message("chat", "hi"):
        if event.type == "text":
            pieces.append(event.text)
    return "".join(pieces)


built = [
    TextEvent(type="text", text="hi"),
    TextEvent(text="hi"),
    DataEvent(type="data-weather", data={}),
    UnknownEvent(type="brand-new", data={}),
]
iterator: AsyncIterator[Event]
"""

# Each line must be an error: a narrowed event read for another event's
# field, or a ``type=`` that belongs to another event.
MUST_FAIL = {
    "wrong_field.py": """
from kai_core import Event

def show(event: Event) -> str:
    if event.type == "text":
        return event.tool_name or ""
    return ""
""",
    "unnarrowed.py": """
from kai_core import Event

def show(event: Event) -> str:
    return event.text
""",
    "wrong_type.py": """
from kai_core.events import TextEvent

TextEvent(type="reasoning", text="hi")
""",
}


@pytest.fixture(scope="module")
def mypy_output(tmp_path_factory: pytest.TempPathFactory) -> str:
    where = tmp_path_factory.mktemp("typing")
    (where / "narrows.py").write_text(textwrap.dedent(NARROWS))
    for name, text in MUST_FAIL.items():
        (where / name).write_text(textwrap.dedent(text))
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", str(where)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done.stdout


def errors_in(output: str, name: str) -> list[str]:
    return [line for line in output.splitlines() if f"{name}:" in line and ": error:" in line]


def test_the_kai_client_idiom_narrows_the_event_union(mypy_output: str) -> None:
    assert errors_in(mypy_output, "narrows.py") == []


@pytest.mark.parametrize("name", sorted(MUST_FAIL))
def test_narrowing_is_real(mypy_output: str, name: str) -> None:
    errors = errors_in(mypy_output, name)
    assert errors, f"mypy accepted {name}:\n{MUST_FAIL[name]}"
