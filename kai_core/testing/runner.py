"""Play a scenario's reply as the AI SDK would stream it, into a :class:`StreamRecord`.

One :class:`AnswerWriter` writes one response: it frames the steps
(``start-step`` … ``finish-step`` + transient ``data-usage``), runs tools,
asks for approval the way the backend does, stores the assistant message as
it grows, and ends with ``[DONE]``.

Approvals:

* kai-assistant (AI SDK v6): a tool that needs approval gets a
  ``tool-approval-request``; the response ends with ``finish`` reason
  ``tool-calls``, and a :class:`Continuation` is kept on the chat until the
  client re-POSTs the assistant message with the parts in
  ``approval-responded`` (:meth:`AnswerWriter.continue_after_approval`).
* kai-agent: the stream sends ``tool-input-available`` and waits, open,
  until ``POST /api/chat/{id}/approval`` answers (:class:`PendingApproval`).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec
import trio

from .. import chunks as c
from .faults import Faults
from .messages import MessageBuilder
from .scenarios import Abort, CallTool, Emit, Fail, Pause, Say, Step, Think, ToolResult
from .state import ChatRecord, EmulatorState, PendingApproval, StreamRecord
from .tools import Tool, ToolFailure

__all__ = ["DONE_FRAME", "AnswerWriter", "Continuation", "IdSource", "frame"]

Backend = Literal["agent", "assistant"]
DONE_FRAME = b"data: [DONE]\n\n"


def frame(chunk: c.Chunk) -> bytes:
    """One SSE frame, exactly as the SDK writes it."""
    return b"data: " + c.encode_chunk(chunk) + b"\n\n"


class IdSource:
    """Tool call and approval ids in the SDK's formats (``call_000001``, ``aitxt-`` + 24)."""

    def __init__(self) -> None:
        self._calls = itertools.count(1)
        self._generated = itertools.count(1)

    def call(self) -> str:
        """A new tool call id."""
        return f"call_{next(self._calls):06d}"

    def generated(self) -> str:
        """A new SDK-generated id (approval ids, de-duplicated text ids)."""
        return f"aitxt-{next(self._generated):024d}"


@dataclass
class _Waiting:
    """A v6 tool call waiting for the client's re-POST."""

    call: CallTool
    tool_call_id: str
    approval_id: str


@dataclass
class Continuation:
    """What an assistant message does once its approvals are answered (kai-assistant)."""

    message_id: str
    order: list[str]
    results: dict[str, ToolResult]
    waiting: list[_Waiting]
    after: Any
    rest: list[Step]


@dataclass
class _StepOutcome:
    ended: bool = False
    results: list[ToolResult] = field(default_factory=list)
    waiting: list[_Waiting] = field(default_factory=list)
    order: list[str] = field(default_factory=list)
    done: dict[str, ToolResult] = field(default_factory=dict)


class AnswerWriter:
    """Writes one streamed answer of the emulated assistant."""

    def __init__(
        self,
        *,
        backend: Backend,
        state: EmulatorState,
        tools: dict[str, Tool],
        faults: Faults,
        ids: IdSource,
        chat: ChatRecord,
        user_id: str,
        record: StreamRecord,
        message: dict[str, Any],
        prompt: str,
    ) -> None:
        self.backend = backend
        self.state = state
        self.tools = tools
        self.faults = faults
        self.ids = ids
        self.chat = chat
        self.user_id = user_id
        self.record = record
        self.builder = MessageBuilder(message)
        self.prompt = prompt
        self._used_ids: set[str] = set()
        self._step_count = 0
        self._step_chars = 0

    # -- writing ---------------------------------------------------------------

    async def emit(self, chunk: c.Chunk) -> None:
        """Write one chunk (after the configured delay) and fold it into the message."""
        if self.faults.chunk_delay > 0:
            await trio.sleep(self.faults.chunk_delay)
        else:
            await trio.lowlevel.checkpoint()
        self.builder.feed(chunk)
        self.record.append(frame(chunk))

    def done(self) -> None:
        """Write ``[DONE]`` and close the record."""
        self.record.append(DONE_FRAME)
        self.record.close(complete=True)

    # -- entry points ----------------------------------------------------------

    async def write_chunks(self, chunks: Sequence[c.Chunk]) -> None:
        """A verbatim reply: the chunks as given, then ``[DONE]``."""
        for chunk in chunks:
            if isinstance(chunk, c.StartChunk) and chunk.message_id:
                self.builder.message["id"] = chunk.message_id
            await self.emit(chunk)
        self.done()

    async def write_reply(self, steps: Sequence[Step]) -> None:
        """A new answer: ``start``, the steps, ``finish``, ``[DONE]``."""
        await self.emit(c.StartChunk(message_id=self.builder.message["id"]))
        await self._run_steps(list(steps))

    async def write_missing_tool_result(self, tool_call_id: str) -> None:
        """What the SDK answers when an approval is still open: an error, no answer."""
        await self.emit(c.StartChunk(message_id=self.builder.message["id"]))
        await self.emit(
            c.ErrorChunk(error_text=f"Tool result is missing for tool call {tool_call_id}.")
        )
        self.done()

    async def continue_after_approval(
        self, cont: Continuation, decisions: dict[str, dict[str, Any]]
    ) -> None:
        """The v6 continuation: ``start`` with the same id, the tool outputs, the next steps.

        :param decisions: approval id -> the ``approval`` object the client sent back.
        """
        await self.emit(c.StartChunk(message_id=cont.message_id))
        results = dict(cont.results)
        for wait in cont.waiting:
            approval = decisions[wait.approval_id]
            part = self.builder.tool_part(wait.tool_call_id)
            if part is not None:
                part["state"] = "approval-responded"
                part["approval"] = {**part.get("approval", {}), **approval}
            if approval.get("approved"):
                results[wait.tool_call_id] = await self._execute(wait.call, wait.tool_call_id)
            else:
                await self.emit(c.ToolOutputDeniedChunk(tool_call_id=wait.tool_call_id))
                results[wait.tool_call_id] = _denied(
                    wait.call, wait.tool_call_id, approval.get("reason")
                )
        ordered = [results[i] for i in cont.order if i in results]
        after = cont.after or _generic_after
        await self._run_steps([*after(ordered), *cont.rest])

    # -- steps -----------------------------------------------------------------

    async def _run_steps(self, steps: list[Step]) -> None:
        while steps:
            step = steps.pop(0)
            outcome = await self._run_step(step)
            if outcome.ended:
                return
            if outcome.waiting:  # v6: the client answers in a new request
                self.chat.continuations[self.builder.message["id"]] = Continuation(
                    message_id=self.builder.message["id"],
                    order=outcome.order,
                    results=outcome.done,
                    waiting=outcome.waiting,
                    after=step.after,
                    rest=steps,
                )
                await self._end_step(step)
                await self.emit(c.FinishChunk(finish_reason="tool-calls"))
                self.done()
                return
            await self._end_step(step)
            if outcome.results:
                steps = [*(step.after or _generic_after)(outcome.results), *steps]
        await self.emit(c.FinishChunk(finish_reason="stop"))
        self.done()

    async def _end_step(self, step: Step) -> None:
        await self.emit(c.FinishStepChunk())
        prompt, completion = step.usage or (
            32 + len(self.prompt) // 4 + 100 * self._step_count,
            1 + self._step_chars // 4,
        )
        usage = {"promptTokens": prompt, "completionTokens": completion}
        await self.emit(c.DataChunk(type="data-usage", data=usage, transient=True))
        self._step_count += 1

    async def _run_step(self, step: Step) -> _StepOutcome:
        self._step_chars = 0
        counters = {"txt": itertools.count(), "rs": itertools.count()}
        out = _StepOutcome()
        agent_waits: list[tuple[CallTool, str, PendingApproval]] = []
        await self.emit(c.StartStepChunk())
        for item in step.items:
            match item:
                case Say():
                    await self._text(
                        self._part_id("txt", counters), item.deltas, item.unfinished, item.pause
                    )
                case Think():
                    await self._reasoning(self._part_id("rs", counters), item.deltas)
                case Pause():
                    await trio.sleep(item.seconds)
                case Emit():
                    await self.emit(item.chunk)
                case Abort():
                    await self.emit(c.AbortChunk(reason=item.reason))
                    self.done()
                    out.ended = True
                    return out
                case Fail():
                    await self.emit(c.ErrorChunk(error_text=item.error_text))
                    await self._end_step(step)
                    await self.emit(c.FinishChunk(finish_reason="error"))
                    self.done()
                    out.ended = True
                    return out
                case CallTool():
                    call_id = self.ids.call()
                    out.order.append(call_id)
                    result = await self._call(item, call_id, out, agent_waits)
                    if result is not None:
                        out.done[call_id] = result
        for call, call_id, waiter in agent_waits:
            try:
                await waiter.event.wait()
            finally:
                self.chat.waiting.pop(call_id, None)
            if waiter.superseded:
                await self.emit(c.AbortChunk(reason="A new message was sent"))
                self.done()
                out.ended = True
                return out
            if waiter.approved:
                out.done[call_id] = await self._execute(_as_answered(call, waiter), call_id)
            else:
                await self.emit(c.ToolOutputDeniedChunk(tool_call_id=call_id))
                out.done[call_id] = _denied(call, call_id, waiter.reason)
        out.results = [out.done[i] for i in out.order if i in out.done]
        return out

    def _part_id(self, prefix: str, counters: dict[str, itertools.count[int]]) -> str:
        # Providers restart their ids each step; the SDK renames a reused one.
        candidate = f"{prefix}-{next(counters[prefix])}"
        if candidate in self._used_ids:
            candidate = self.ids.generated()
        self._used_ids.add(candidate)
        return candidate

    async def _text(
        self, part_id: str, deltas: Sequence[str], unfinished: bool, pause: float
    ) -> None:
        await self.emit(c.TextStartChunk(id=part_id))
        for delta in deltas:
            if pause:
                await trio.sleep(pause)
            self._step_chars += len(delta)
            await self.emit(c.TextDeltaChunk(id=part_id, delta=delta))
        if not unfinished:
            await self.emit(c.TextEndChunk(id=part_id))

    async def _reasoning(self, part_id: str, deltas: Sequence[str]) -> None:
        await self.emit(c.ReasoningStartChunk(id=part_id))
        for delta in deltas:
            self._step_chars += len(delta)
            await self.emit(c.ReasoningDeltaChunk(id=part_id, delta=delta))
        await self.emit(c.ReasoningEndChunk(id=part_id))

    # -- tools -----------------------------------------------------------------

    async def _call(
        self,
        call: CallTool,
        call_id: str,
        out: _StepOutcome,
        agent_waits: list[tuple[CallTool, str, PendingApproval]],
    ) -> ToolResult | None:
        tool = self.tools.get(call.name)
        dynamic = True if tool is not None and tool.dynamic else None
        model_input = call.model_input if call.model_input is not None else call.input
        await self.emit(
            c.ToolInputStartChunk(tool_call_id=call_id, tool_name=call.name, dynamic=dynamic)
        )
        for delta in _input_deltas(model_input):
            await self.emit(c.ToolInputDeltaChunk(tool_call_id=call_id, input_text_delta=delta))
        if tool is None:
            error = f"Model tried to call unavailable tool '{call.name}'."
            await self.emit(
                c.ToolInputErrorChunk(
                    tool_call_id=call_id, tool_name=call.name, input=model_input, error_text=error
                )
            )
            await self.emit(c.ToolOutputErrorChunk(tool_call_id=call_id, error_text=error))
            return _failed(call, call_id, error)
        await self.emit(
            c.ToolInputAvailableChunk(
                tool_call_id=call_id, tool_name=call.name, input=call.input, dynamic=dynamic
            )
        )
        permission = self.state.tool_permission(self.user_id, call.name)
        restricted = self.chat.restriction(call.name, tool.read_only)
        if permission == "blocked" or restricted is not None:
            error = restricted or f"Tool {call.name} is blocked by your tool permissions."
            await self.emit(
                c.ToolOutputErrorChunk(tool_call_id=call_id, error_text=error, dynamic=dynamic)
            )
            return _failed(call, call_id, error)
        if tool.read_only or permission == "always_allow":
            return await self._execute(call, call_id)
        if self.backend == "assistant":
            approval_id = self.ids.generated()
            await self.emit(
                c.ToolApprovalRequestChunk(
                    approval_id=approval_id, tool_call_id=call_id, input_schema_input=model_input
                )
            )
            out.waiting.append(_Waiting(call, call_id, approval_id))
            return None
        waiter = PendingApproval(tool_call_id=call_id, tool_name=call.name)
        self.chat.waiting[call_id] = waiter
        agent_waits.append((call, call_id, waiter))
        return None

    async def _execute(self, call: CallTool, call_id: str) -> ToolResult:
        tool = self.tools[call.name]
        dynamic = True if tool.dynamic else None
        try:
            output = tool.run(dict(call.input), self.state)
        except ToolFailure as exc:
            await self.emit(
                c.ToolOutputErrorChunk(tool_call_id=call_id, error_text=str(exc), dynamic=dynamic)
            )
            return _failed(call, call_id, str(exc))
        await self.emit(
            c.ToolOutputAvailableChunk(tool_call_id=call_id, output=output, dynamic=dynamic)
        )
        return ToolResult(call_id, call.name, call.input, "output", output=output)


def _as_answered(call: CallTool, waiter: PendingApproval) -> CallTool:
    """The call as the user approved it: ``updatedInput`` replaces its input,
    ``answers`` join it (kai-agent's approval body)."""
    tool_input = dict(waiter.updated_input if waiter.updated_input is not None else call.input)
    if waiter.answers is not None:
        tool_input["answers"] = waiter.answers
    return dataclasses.replace(call, input=tool_input)


def _input_deltas(model_input: Any) -> list[str]:
    text = msgspec.json.encode(model_input).decode()
    if len(text) <= 2:
        return list(text)
    return [text[i : i + 5] for i in range(0, len(text), 5)]


def _failed(call: CallTool, call_id: str, error: str) -> ToolResult:
    return ToolResult(call_id, call.name, call.input, "error", error_text=error)


def _denied(call: CallTool, call_id: str, reason: str | None) -> ToolResult:
    return ToolResult(call_id, call.name, call.input, "denied", reason=reason)


def _generic_after(results: list[ToolResult]) -> list[Step]:
    sentences = []
    for r in results:
        if r.status == "output":
            sentences.append(f"The {r.tool_name} tool finished.")
        elif r.status == "denied":
            why = f" ({r.reason})" if r.reason else ""
            sentences.append(f"Understood, I did not run {r.tool_name}{why}.")
        else:
            sentences.append(f"The {r.tool_name} tool failed: {r.error_text}")
    return [Step([Say(" ".join(sentences))])]
