"""The scripted assistant: what the emulated Kai answers to a message.

A :class:`Scenario` pairs a trigger (a case-insensitive substring, a
predicate, or ``None`` for "anything") with a ``respond(text)`` function.
``respond`` returns either

* a list of :class:`Step` (or of step items, which form one step): the
  emulator frames them like the AI SDK does (``start``, ``start-step`` …
  ``finish-step``, a transient ``data-usage``, ``finish``, ``[DONE]``), runs
  tools, asks for approvals the way the chosen backend does, and stores the
  message; or
* a list of chunk Structs from :mod:`kai_core.chunks`: written verbatim (then
  ``[DONE]``), for tests that need exact bytes.

Step items: :class:`Say` (text), :class:`Think` (reasoning),
:class:`CallTool`, :class:`Fail` (a model error), :class:`Abort`,
:class:`Pause`, :class:`Emit` (any chunk). A step that calls tools may give
``after(results)``, the steps that follow once the tools have run (or were
denied); they replace the rest of the plan.

Example, in a test using the ``kai_emulator`` fixture::

    from kai_core.testing import CallTool, Say, Step

    kai_emulator.script(
        lambda text: [
            Step([Say("Creating it."), CallTool("create_bucket", {"name": "x"})],
                 after=lambda results: [Step([Say("Done.")])]),
        ],
        trigger="make x",
    )
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from .. import chunks as c

__all__ = [
    "BUILTIN_SCENARIOS",
    "Abort",
    "CallTool",
    "Emit",
    "Fail",
    "Item",
    "Pause",
    "Reply",
    "Say",
    "Scenario",
    "Step",
    "Think",
    "ToolResult",
    "split_text",
]


def split_text(text: str, words: int = 3) -> tuple[str, ...]:
    """Split ``text`` into deltas of a few words each (spaces kept), as a model streams."""
    tokens = re.findall(r"\S+\s*", text)
    return tuple("".join(tokens[i : i + words]) for i in range(0, len(tokens), words)) or ("",)


@dataclass(frozen=True)
class Say:
    """A text part; one string is split into deltas of a few words.

    :param unfinished: no ``text-end`` (what an error or abort leaves).
    :param pause: seconds to wait before each delta (a slow model).
    """

    deltas: tuple[str, ...]
    unfinished: bool = False
    pause: float = 0.0

    def __init__(self, *deltas: str, unfinished: bool = False, pause: float = 0.0) -> None:
        if len(deltas) == 1:
            deltas = split_text(deltas[0])
        object.__setattr__(self, "deltas", deltas)
        object.__setattr__(self, "unfinished", unfinished)
        object.__setattr__(self, "pause", pause)


@dataclass(frozen=True)
class Think:
    """A reasoning part."""

    deltas: tuple[str, ...]

    def __init__(self, *deltas: str) -> None:
        if len(deltas) == 1:
            deltas = split_text(deltas[0])
        object.__setattr__(self, "deltas", deltas)


@dataclass(frozen=True)
class CallTool:
    """A tool call: input streamed, then run, approved or denied per the backend's rules.

    :param input: the validated input (with defaults), as ``tool-input-available`` carries it.
    :param model_input: what the model wrote before defaults were applied
        (streamed as the input deltas and sent as ``inputSchemaInput``);
        defaults to ``input``.
    """

    name: str
    input: dict[str, Any] = field(default_factory=dict)
    model_input: dict[str, Any] | None = None


@dataclass(frozen=True)
class Fail:
    """A model error: ``error``, then ``finish-step``, usage and ``finish`` with reason error."""

    error_text: str = "An error occurred."


@dataclass(frozen=True)
class Abort:
    """A server-side abort: ``abort``, then ``[DONE]`` without ``finish``."""

    reason: str = "This operation was aborted"


@dataclass(frozen=True)
class Pause:
    """Wait before the next chunk (a slow model)."""

    seconds: float


@dataclass(frozen=True)
class Emit:
    """Write one chunk as it is."""

    chunk: c.Chunk


Item: TypeAlias = Say | Think | CallTool | Fail | Abort | Pause | Emit


@dataclass(frozen=True)
class ToolResult:
    """How one tool call ended, as ``Step.after`` receives it."""

    tool_call_id: str
    tool_name: str
    input: dict[str, Any]
    status: Literal["output", "error", "denied"]
    output: Any = None
    error_text: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Step:
    """One model step.

    :param usage: ``(promptTokens, completionTokens)`` for its ``data-usage``;
        computed from the texts when None.
    :param after: the steps that follow once this step's tools have results.
    """

    items: Sequence[Item]
    usage: tuple[int, int] | None = None
    after: Callable[[list[ToolResult]], Sequence[Step]] | None = None


Reply: TypeAlias = Sequence[Step] | Sequence[Item] | Sequence[c.Chunk]


@dataclass(frozen=True)
class Scenario:
    """A trigger and the reply it produces.

    :param trigger: case-insensitive substring of the user's text, a predicate
        on the text, or None to match any message.
    """

    respond: Callable[[str], Reply]
    trigger: str | Callable[[str], bool] | None = None
    name: str = ""

    def matches(self, text: str) -> bool:
        """Whether this scenario answers ``text``."""
        if self.trigger is None:
            return True
        if isinstance(self.trigger, str):
            return self.trigger.lower() in text.lower()
        return bool(self.trigger(text))


def _any(*needles: str) -> Callable[[str], bool]:
    return lambda text: any(n in text.lower() for n in needles)


def _tables(_text: str) -> Reply:
    def after(results: list[ToolResult]) -> list[Step]:
        result = results[0]
        if result.status != "output":
            return [Step([Say(f"The list_tables tool failed: {result.error_text}")])]
        tables = result.output["tables"]
        listing = ", ".join(f"{t['id']} ({t['rowsCount']} rows)" for t in tables)
        return [Step([Say(f"You have {len(tables)} tables: {listing}.")])]

    return [Step([Say("Let me list ", "your tables."), CallTool("list_tables")], after=after)]


def _bucket_names(text: str, count: int) -> list[str]:
    if count == 1:
        match = re.search(r"called\s+[\"']?([\w-]+)", text, re.IGNORECASE)
        return [match.group(1) if match else "b1"]
    match = re.search(r"called\s+[\"']?([\w-]+)[\"']?\s+and\s+[\"']?([\w-]+)", text, re.IGNORECASE)
    return [match.group(1), match.group(2)] if match else ["b1", "b2"]


def _after_buckets(results: list[ToolResult]) -> list[Step]:
    sentences = []
    for r in results:
        if r.status == "output":
            sentences.append(f"Done: bucket {r.output['id']} was created.")
        elif r.status == "denied":
            why = f" ({r.reason})" if r.reason else ""
            sentences.append(f"Understood, I did not run {r.tool_name}{why}.")
        else:
            sentences.append(f"The {r.tool_name} tool failed: {r.error_text}")
    return [Step([Say(" ".join(sentences))])]


def _bucket_call(name: str) -> CallTool:
    return CallTool("create_bucket", {"name": name, "stage": "in"}, {"name": name})


def _create_bucket(text: str) -> Reply:
    (name,) = _bucket_names(text, 1)
    return [
        Step(
            [Say(f"I will create the bucket {name} for you."), _bucket_call(name)],
            after=_after_buckets,
        )
    ]


def _two_buckets(text: str) -> Reply:
    first, second = _bucket_names(text, 2)
    say = Say(f"I will create the buckets {first} and {second}.")
    return [Step([say, _bucket_call(first), _bucket_call(second)], after=_after_buckets)]


def _project(_text: str) -> Reply:
    def after(results: list[ToolResult]) -> list[Step]:
        out = results[0].output or {}
        return [Step([Say(f"Your project is {out.get('name')} ({out.get('projectId')}).")])]

    return [Step([Say("Let me check ", "the project."), CallTool("get_project_info")], after=after)]


def _fail(_text: str) -> Reply:
    def after(results: list[ToolResult]) -> list[Step]:
        return [Step([Say(f"The run_query tool failed: {results[0].error_text}")])]

    query = CallTool("run_query", {"sql": "SELECT * FROM in.c-main.missing"})
    return [Step([Say("Let me run ", "that query."), query], after=after)]


def _run_job(text: str) -> Reply:
    match = re.search(r"run (?:the )?job\s+([\w.-]+)(?:\s+(\w+))?", text, re.IGNORECASE)
    component = match.group(1) if match else "keboola.ex-db-mysql"
    configuration = (match.group(2) if match else None) or "12345"
    call = CallTool("run_job", {"component_id": component, "configuration_id": configuration})
    return [Step([Say(f"I will run {component} configuration {configuration}."), call])]


def _delete_bucket(text: str) -> Reply:
    match = re.search(r"delete (?:the )?bucket\s+([\w.-]+)", text, re.IGNORECASE)
    bucket_id = match.group(1) if match else "in.c-b1"
    call = CallTool("delete_bucket", {"bucket_id": bucket_id})
    return [Step([Say(f"I will delete the bucket {bucket_id}."), call])]


def _describe_table(text: str) -> Reply:
    match = re.search(r"describe (?:the )?table\s+([\w.-]+)\s+as\s+(.+)", text, re.IGNORECASE)
    table_id = match.group(1) if match else "out.c-reports.daily_revenue"
    description = match.group(2).strip() if match else "Described by Kai."
    call = CallTool("update_descriptions", {"table_id": table_id, "description": description})
    return [Step([Say(f"I will describe {table_id}."), call])]


def _boom(_text: str) -> Reply:
    return [
        Step(
            [
                Say("Let me look into ", "that for you", unfinished=True),
                Fail("Simulated model failure (boom)"),
            ]
        )
    ]


def _abort(_text: str) -> Reply:
    return [
        Step([Say("This answer is ", "long and will ", "be cut short ", unfinished=True), Abort()])
    ]


def _think(_text: str) -> Reply:
    return [
        Step(
            [
                Think("The user wants me to think first. I will reason briefly, then answer."),
                Say("After thinking it over: the answer is 42."),
            ]
        )
    ]


def _slow(_text: str) -> Reply:
    return [Step([Say(*(f"Slow chunk {n}. " for n in range(1, 13)), pause=0.1)])]


def _hello(_text: str) -> Reply:
    return [
        Step(
            [
                Say(
                    "Hello! I'm Kai, ",
                    "the Keboola AI ",
                    "assistant (emulator). ",
                    "How can I ",
                    "help?",
                )
            ]
        )
    ]


def _echo(text: str) -> Reply:
    words = " ".join(text.split())
    if len(words) > 60:
        words = words[:57] + "..."
    return [
        Step(
            [
                Say(
                    f'You said: "{words}". I am the emulated Kai: try "list my tables", '
                    '"create a bucket called b1", "think", "boom" or "slow".'
                )
            ]
        )
    ]


BUILTIN_SCENARIOS: tuple[Scenario, ...] = (
    Scenario(_tables, _any("list my tables", "what tables do i have"), "tables"),
    Scenario(_two_buckets, "two buckets", "two-buckets"),
    Scenario(_create_bucket, "create a bucket called", "create-bucket"),
    Scenario(_project, "tell me about my project", "project"),
    Scenario(_run_job, _any("run job", "run the job"), "run-job"),
    Scenario(_delete_bucket, _any("delete bucket", "delete the bucket"), "delete-bucket"),
    Scenario(_describe_table, _any("describe table", "describe the table"), "describe-table"),
    Scenario(_boom, "boom", "boom"),
    Scenario(_abort, "abort", "abort"),
    Scenario(_fail, "fail", "fail"),
    Scenario(_think, "think", "think"),
    Scenario(_slow, "slow", "slow"),
    Scenario(_hello, lambda t: t.strip().lower().rstrip("!.") in {"hello", "hi", "hey"}, "hello"),
    Scenario(_echo, None, "echo"),
)
"""The built-in scenarios, tried in order after any the user scripted."""
