"""Fold one chat's stored events: back into live events, and into projection rows.

The same fold serves replay and the projections, so a replayed chat and the
``messages`` table show exactly what the live stream showed. It mirrors what
the client does with the wire:

* a ``user-message`` record ends the assistant message being built; the next
  server chunks start a new :class:`~kai_core.assemble.MessageAssembler`;
* v6 ``approval`` records mark the answered tool parts ``approval-responded``
  (keeping the whole approval object, adding ``approved`` and ``reason``); the
  continuation turn then gets ``MessageAssembler(that message)``, so its
  ``start`` (repeating the message id) extends the same message;
* after a ``resume`` record ``{"skipped": n}`` the resumed turn gets a fresh
  assembler that has folded the first n chunks of the interrupted stream
  (the ones the server sent again and the client skipped);
* on kai-agent, a tool whose call has an ``approval`` record with
  ``transport="agent"`` was waiting: replay yields the
  :class:`~kai_core.events.ToolApprovalRequestEvent` again, and (when asked)
  the :class:`~kai_core.events.ApprovalDecisionEvent` right after it, as the
  session did.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final, NamedTuple

import msgspec

from .. import chunks as c
from ..assemble import MessageAssembler
from ..chunks import Chunk, ToolInputAvailableChunk
from ..events import ApprovalDecisionEvent, Event, ToolApprovalRequestEvent
from ._decode import decode_frame, decode_one
from ._frames import frame_bodies, frame_types, stored_events
from ._records import (
    APPROVAL,
    DELETE_CHAT,
    IMPORTED_MESSAGE,
    RESUME,
    USER_MESSAGE,
    VOTE,
    StoredEvent,
)

__all__ = ["ChatFold", "MessageState", "message_text", "tool_rows"]

_decode_json: Final = msgspec.json.Decoder()
_UNTRACKED: Final = object()
_TOOL_CHUNKS: Final[frozenset[type]] = frozenset(
    {
        c.ToolInputStartChunk,
        c.ToolInputDeltaChunk,
        c.ToolInputAvailableChunk,
        c.ToolInputErrorChunk,
        c.ToolApprovalRequestChunk,
        c.ToolOutputAvailableChunk,
        c.ToolOutputErrorChunk,
        c.ToolOutputDeniedChunk,
    }
)
# The only chunks that can yield a ToolApprovalRequestEvent.
_APPROVAL_CHUNKS: Final[frozenset[type]] = frozenset(
    {c.ToolInputAvailableChunk, c.ToolApprovalRequestChunk}
)
_TITLE_MAX: Final = 100


class _At(NamedTuple):
    """Where a client record sits: what its handler needs of it."""

    seq: int
    turn: str
    ts: float


class _AgentWaiting:
    """kai-agent: whether the tool being called waits for approval (an
    ``approval`` record with ``transport="agent"`` is left for its call)."""

    __slots__ = ("decisions", "call_id")

    def __init__(self, decisions: dict[str, list[dict[str, Any]]]) -> None:
        self.decisions = decisions
        self.call_id: str | None = None  # of the tool-input-available being folded

    def __call__(self, _tool_name: str) -> bool:
        return bool(self.decisions.get(self.call_id or ""))


class MessageState:
    """One message of the chat as the projection stores it."""

    __slots__ = (
        "seq",
        "id",
        "role",
        "ts",
        "turn",
        "parts",
        "metadata",
        "finish_reason",
        "prompt_tokens",
        "completion_tokens",
        "imported",
        "asm",
        "base_prompt",
        "base_completion",
    )

    def __init__(self, seq: int, id: str, role: str, ts: float, turn: str) -> None:
        self.seq = seq
        self.id = id
        self.role = role
        self.ts = ts
        self.turn = turn
        self.parts: list[dict[str, Any]] = []
        self.metadata: Any = None
        self.finish_reason: str | None = None
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.imported = False
        # While the message is being assembled its content lives in `asm`;
        # `base_*` are the tokens of the turns before a continuation.
        self.asm: MessageAssembler | None = None
        self.base_prompt = 0
        self.base_completion = 0

    def settle(self) -> None:
        """Copy the assembler's content in (call before reading the fields)."""
        asm = self.asm
        if asm is None:
            return
        message = asm.message
        self.parts = message["parts"]
        self.metadata = message.get("metadata")
        self.finish_reason = asm.finish_reason
        self.prompt_tokens = self.base_prompt + asm.prompt_tokens
        self.completion_tokens = self.base_completion + asm.completion_tokens


def message_text(parts: list[Any]) -> str:
    """The readable text of a UI message: its text parts, a blank line apart."""
    texts = [
        p["text"]
        for p in parts
        if isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
    ]
    return "\n\n".join(t for t in texts if t)


def _tool_name(part: dict[str, Any]) -> str | None:
    name = part.get("toolName")
    if isinstance(name, str):
        return name
    kind = part.get("type")
    return kind[5:] if isinstance(kind, str) and kind.startswith("tool-") else None


def tool_rows(parts: list[Any]) -> list[dict[str, Any]]:
    """The tool parts of a UI message (static ``tool-*`` and ``dynamic-tool``)."""
    out = []
    for part in parts:
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if not isinstance(kind, str) or not (kind.startswith("tool-") or kind == "dynamic-tool"):
            continue
        if not isinstance(part.get("toolCallId"), str):
            continue
        out.append(part)
    return out


class ChatFold:
    """Folds the stored events of one chat, in ``seq`` order.

    :param chat_id: the chat.
    :param agent_decisions: for replay: the chat's ``approval`` record bodies
        with ``transport="agent"``, by tool call id, in log order (they tell
        which kai-agent tools were waiting).
    :param decisions: for replay: also yield the :class:`ApprovalDecisionEvent`
        the session yielded.
    :param project: keep the message states the projections need (replay
        does not need them).
    """

    def __init__(
        self,
        chat_id: str,
        *,
        agent_decisions: Mapping[str, list[dict[str, Any]]] | None = None,
        decisions: bool = False,
        project: bool = True,
    ) -> None:
        self.chat_id = chat_id
        self._project = project
        self.title: str | None = None
        self.imported_title: str | None = None
        self.server: str | None = None
        self.backend: str | None = None
        self.first_ts: float | None = None
        self.last_ts: float | None = None
        self.deleted_ts: float | None = None
        self.last_seq = 0
        self.messages: dict[str, MessageState] = {}
        self.votes: dict[str, tuple[str, float]] = {}
        # (message id, tool_call_id) -> approval body: call ids repeat across messages
        self.approvals: dict[tuple[str, str], dict[str, Any]] = {}
        self.tool_message: dict[str, str] = {}  # tool_call_id -> message id
        self.dirty_messages: set[str] = set()
        self.dirty_votes: set[str] = set()
        self.dirty = False
        self._asm: MessageAssembler | None = None
        self._asm_turn: str | None = None
        self._current: MessageState | None = None
        self._seed: dict[str, Any] | None = None
        self._resume: int | None = None  # chunks a resumed stream skips, after `resume`
        self._turn_chunks: list[Chunk] = []  # what the current assembler folded
        self._agent = (
            {k: list(v) for k, v in agent_decisions.items()}
            if agent_decisions is not None
            else None
        )
        self._decisions = decisions
        self._agent_yielded: dict[str, int] = {}
        self._requests: dict[str, ToolApprovalRequestEvent] = {}
        # Holds no reference to the fold: an assembler keeping it makes no cycle.
        self._waiting = _AgentWaiting(self._agent) if self._agent else None
        self._turn_seed: dict[str, Any] | None = None

    # -- folding ------------------------------------------------------------

    def feed(self, ev: StoredEvent) -> list[Event]:
        """Fold one stored event; return the live events it stands for."""
        return self.feed_row(ev.seq, ev.turn, ev.ts, ev.origin, ev.type, ev.body)

    def feed_row(
        self, seq: int, turn: str, ts: float, origin: str, type_: str, body: str | bytes
    ) -> list[Event]:
        """:meth:`feed` for one record given by its fields."""
        self._at(seq, ts)
        if origin == "server":
            return self._chunks(turn, seq, ts, [decode_one(body)])
        return self._client(seq, turn, ts, type_, body)

    def feed_frame(
        self,
        seq: int,
        n: int,
        turn: str,
        ts: float,
        origin: str,
        types: str | bytes | None,
        body: bytes,
        sizes: bytes | None,
        *,
        after: int = 0,
        upto: int | None = None,
    ) -> list[Event]:
        """Fold the records of one stored frame (see :mod:`._frames`) whose
        positions are in ``(after, upto]``; return the live events they stand for.

        The fast path: a frame of server chunks is decoded in one call and its
        bookkeeping is done once, not per record. ``types`` is read only for
        client frames and when filtering (replay leaves it None for server frames).
        """
        last = seq + n - 1
        if seq <= after or (upto is not None and last > upto):
            events: list[Event] = []
            assert types is not None
            for ev in stored_events(
                [(seq, n, "", turn, ts, origin, types, body, sizes)], after=after, upto=upto
            ):
                events += self.feed_row(ev.seq, turn, ts, origin, ev.type, ev.body)
            return events
        self._at(last, ts)
        if origin == "server":
            return self._chunks(turn, seq, ts, decode_frame(n, body, sizes))
        assert types is not None
        events = []
        kinds = frame_types(n, types)
        for i, data in enumerate(frame_bodies(n, body, sizes)):
            events += self._client(seq + i, turn, ts, kinds[i], data)
        return events

    def _at(self, seq: int, ts: float) -> None:
        self.last_seq = seq
        if self.first_ts is None:
            self.first_ts = self.last_ts = ts
        elif ts > self.last_ts:  # type: ignore[operator]
            self.last_ts = ts
        self.dirty = True

    def _client(self, seq: int, turn: str, ts: float, type_: str, body: str | bytes) -> list[Event]:
        handler = _CLIENT_HANDLERS.get(type_)
        if handler is None:
            return []
        if not self._project and type_ in _PROJECTED_ONLY:
            # Replay needs of these only that a user message ends the answer.
            if type_ == USER_MESSAGE and _is_object(body):
                self._end_answer()
            return []
        try:
            data = _decode_json.decode(body)
        except msgspec.DecodeError:
            return []
        if not isinstance(data, dict):
            return []
        return handler(self, _At(seq, turn, ts), data)

    def _chunks(self, turn: str, seq: int, ts: float, chunks: list[Chunk | None]) -> list[Event]:
        """Fold the decoded chunks of consecutive records of one turn (None: a
        chunk the live stream failed on too, which yielded nothing)."""
        asm = self._asm if turn == self._asm_turn else None
        resumed = False
        if asm is None:
            for chunk in chunks:
                if chunk is not None:
                    break
            else:
                return []  # no assembler for chunks that all failed, as live
            asm, resumed = self._new_assembler()
            self._asm_turn = turn
        if self._project:
            return self._project_chunks(asm, resumed, turn, seq, ts, chunks)
        events: list[Event] = []
        feed = asm.feed
        keep = self._turn_chunks.append
        for chunk in chunks:
            if chunk is None:
                continue
            keep(chunk)
            if type(chunk) in _APPROVAL_CHUNKS:
                events += self._approval_chunk(feed, chunk)
            else:
                events += feed(chunk)
        return events

    def _project_chunks(
        self,
        asm: MessageAssembler,
        resumed: bool,
        turn: str,
        seq: int,
        ts: float,
        chunks: list[Chunk | None],
    ) -> list[Event]:
        """:meth:`_chunks` keeping the messages and tool calls the projections need."""
        events: list[Event] = []
        feed = asm.feed
        keep = self._turn_chunks.append
        tracked: object = _UNTRACKED
        for i, chunk in enumerate(chunks):
            if chunk is None:
                continue
            keep(chunk)
            kind = type(chunk)
            if kind in _APPROVAL_CHUNKS:
                events += self._approval_chunk(feed, chunk)
            else:
                events += feed(chunk)
            # The message the chunks go to changes only with the assembler's
            # message id: track it then, not for every chunk.
            if asm.message_id is not tracked:
                self._track(seq + i, turn, ts, asm, resumed)
                tracked = asm.message_id
                resumed = False
            if kind in _TOOL_CHUNKS and self._current is not None:
                self.tool_message[chunk.tool_call_id] = self._current.id  # type: ignore[union-attr]
        return events

    def _approval_chunk(self, feed: Callable[[Chunk], list[Event]], chunk: Chunk) -> list[Event]:
        """Fold a chunk that may ask for approval (and, on replay, yield its decision)."""
        if type(chunk) is ToolInputAvailableChunk and self._waiting is not None:
            self._waiting.call_id = chunk.tool_call_id
        events = feed(chunk)
        if self._decisions or self._agent is not None:
            return self._with_decisions(events)
        return events

    def _new_assembler(self) -> tuple[MessageAssembler, bool]:
        """The assembler the client made for a new exchange (and whether it resumes)."""
        waiting = self._waiting
        skipped, self._resume = self._resume, None
        seed, self._seed = self._seed, None
        if skipped is not None and self._asm is not None:
            # A resumed stream: a fresh assembler that folded the chunks the
            # server sent again (the first `skipped` of the interrupted stream).
            prefix = self._turn_chunks[:skipped]
            asm = MessageAssembler(self._turn_seed, agent_waiting=waiting)
            if waiting is not None:
                waiting.call_id = None  # no agent decisions are consumed by the refold
            for chunk in prefix:
                asm.feed(chunk)
            self._turn_chunks = prefix
            self._asm = asm
            return asm, True
        asm = MessageAssembler(seed, agent_waiting=waiting)
        self._turn_seed = seed
        self._turn_chunks = []
        self._asm = asm
        return asm, False

    def _track(
        self, seq: int, turn: str, ts: float, asm: MessageAssembler, resumed: bool = False
    ) -> None:
        """Point the current message at what the assembler builds now."""
        current = self._current
        if current is not None and current.asm is asm and current.id == asm.message_id:
            self.dirty_messages.add(current.id)  # the common case: same message
            return
        message_id = asm.message_id or f"turn-{turn}"
        if (
            current is not None
            and current.asm is asm
            and current.id == f"turn-{current.turn}"
            and message_id != current.id
            and message_id not in self.messages
        ):
            # Chunks came before `start` gave the id (a data part may): rename.
            del self.messages[current.id]
            current.id = message_id
            self.messages[message_id] = current
            self.dirty_messages.discard(f"turn-{current.turn}")
        if current is None or current.id != message_id or current.asm is not asm:
            if current is not None and current.asm is not None:
                current.settle()
                current.asm = None
            state = self.messages.get(message_id)
            if state is None:
                state = MessageState(seq, message_id, "assistant", ts, turn)
                self.messages[message_id] = state
            elif not resumed:
                # A continuation: keep the row, count the new turn's tokens on top.
                # (A resumed stream's assembler refolded the interrupted turn, whose
                # tokens are therefore not added twice.)
                state.settle()
                state.base_prompt = state.prompt_tokens
                state.base_completion = state.completion_tokens
            state.asm = asm
            self._current = state
        self.dirty_messages.add(message_id)

    def _with_decisions(self, events: list[Event]) -> list[Event]:
        out: list[Event] = []
        for event in events:
            out.append(event)
            if not isinstance(event, ToolApprovalRequestEvent):
                continue
            self._requests[event.tool_call_id] = event
            if event.transport == "agent" and self._agent is not None:
                waiting = self._agent.get(event.tool_call_id)
                if waiting:
                    body = waiting.pop(0)
                    if self._decisions:
                        out.append(_decision(event, body))
                        call_id = event.tool_call_id
                        self._agent_yielded[call_id] = self._agent_yielded.get(call_id, 0) + 1
        return out

    def _end_answer(self) -> None:
        if self._current is not None and self._current.asm is not None:
            self._current.settle()
            self._current.asm = None
        self._current = None
        self._asm = None
        self._asm_turn = None
        self._seed = None
        self._turn_seed = None
        self._resume = None

    def _user_message(self, ev: _At, body: dict[str, Any]) -> list[Event]:
        self._end_answer()
        message = body.get("message")
        if isinstance(body.get("server"), str):
            self.server = body["server"]
        if isinstance(body.get("backend"), str):
            self.backend = body["backend"]
        if isinstance(message, dict):
            state = self._store_message(ev, message, imported=False)
            if state is not None and self.title is None:
                text = message_text(state.parts).strip()
                if text:
                    self.title = text.splitlines()[0][:_TITLE_MAX]
        return []

    def _imported(self, ev: _At, body: dict[str, Any]) -> list[Event]:
        title = body.get("title")
        if isinstance(title, str) and title:
            self.imported_title = title
        message = body.get("message")
        if isinstance(message, dict) and message.get("id") not in self.messages:
            self._store_message(ev, message, imported=True)
        return []

    def _store_message(
        self, ev: _At, message: dict[str, Any], *, imported: bool
    ) -> MessageState | None:
        message_id = message.get("id")
        if not isinstance(message_id, str):
            message_id = f"turn-{ev.turn}"
        role = message.get("role")
        state = self.messages.get(message_id)
        if state is None:
            state = MessageState(
                ev.seq, message_id, role if isinstance(role, str) else "user", ev.ts, ev.turn
            )
            self.messages[message_id] = state
        parts = message.get("parts")
        state.parts = [p for p in parts if isinstance(p, dict)] if isinstance(parts, list) else []
        state.metadata = message.get("metadata")
        state.imported = imported
        for part in tool_rows(state.parts):
            self.tool_message[part["toolCallId"]] = message_id
        self.dirty_messages.add(message_id)
        return state

    def _approval(self, ev: _At, body: dict[str, Any]) -> list[Event]:
        call_id = body.get("tool_call_id")
        if not isinstance(call_id, str):
            return []
        owner = self.tool_message.get(call_id)
        if owner is not None:
            self.approvals[(owner, call_id)] = body
            self.dirty_messages.add(owner)
        out: list[Event] = []
        if body.get("transport") != "agent":
            # v6: the session answers by re-POSTing the message with the part
            # answered; the continuation extends that message.
            base = self._seed
            if base is None and self._asm is not None:
                base = self._asm.message
            if base is not None:
                self._seed = _apply_approval(base, body)
                self._asm_turn = None  # the continuation is a new exchange
        if self._agent_yielded.get(call_id):
            self._agent_yielded[call_id] -= 1  # already yielded after its request
        elif self._decisions:
            request = self._requests.get(call_id)
            if request is not None:
                out.append(_decision(request, body))
        return out

    def _vote(self, ev: _At, body: dict[str, Any]) -> list[Event]:
        message_id, kind = body.get("message_id"), body.get("type")
        if isinstance(message_id, str) and isinstance(kind, str):
            self.votes[message_id] = (kind, ev.ts)
            self.dirty_votes.add(message_id)
        return []

    def _delete(self, ev: _At, body: dict[str, Any]) -> list[Event]:
        self.deleted_ts = ev.ts
        return []

    def _resume_record(self, ev: _At, body: dict[str, Any]) -> list[Event]:
        skipped = body.get("skipped")
        self._resume = skipped if isinstance(skipped, int) and skipped >= 0 else 0
        return []

    # -- reading the state ----------------------------------------------------

    @property
    def chat_title(self) -> str | None:
        """The server's title when imported, else the first user words."""
        return self.imported_title or self.title

    def tool_call_rows(self, state: MessageState) -> list[dict[str, Any]]:
        """The ``tool_calls`` rows of one (settled) message."""
        rows = []
        for part in tool_rows(state.parts):
            call_id: str = part["toolCallId"]
            approval = part.get("approval") if isinstance(part.get("approval"), dict) else None
            decision = self.approvals.get((state.id, call_id))
            approved = approval.get("approved") if approval else None
            reason = approval.get("reason") if approval else None
            approval_id = approval.get("id") if approval else None
            decided_by = None
            if decision is not None:
                approved = decision.get("approved", approved)
                reason = decision.get("reason", reason)
                approval_id = decision.get("approval_id", approval_id)
                decided_by = decision.get("decided_by")
            output = part.get("output")
            # Any record may be in a log (an old import, another tool's file):
            # every column gets a value SQLite takes, whatever the part holds.
            rows.append(
                {
                    "chat_id": self.chat_id,
                    "tool_call_id": call_id,
                    "message_id": state.id,
                    "message_seq": state.seq,
                    "tool_name": _tool_name(part),
                    "state": _scalar(part.get("state")),
                    "input": _json(part.get("input")),
                    "output": _json(output) if "output" in part else None,
                    "error_text": _scalar(part.get("errorText")),
                    "approval_id": _scalar(approval_id),
                    "approved": None if approved is None else int(approved is True),
                    "decided_by": _scalar(decided_by),
                    "reason": _scalar(reason),
                }
            )
        return rows


def _json(value: Any) -> str | None:
    return None if value is None else msgspec.json.encode(value).decode()


def _scalar(value: Any) -> str | None:
    """A text column's value: a string as it is, anything else as its JSON."""
    return value if value is None or isinstance(value, str) else _json(value)


def _apply_approval(message: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    parts = []
    for part in message.get("parts", []):
        approval = part.get("approval") if isinstance(part, dict) else None
        if isinstance(approval, dict) and approval.get("id") == body.get("approval_id"):
            answered = {**approval, "approved": body.get("approved") is True}
            if body.get("reason") is not None:
                answered["reason"] = body["reason"]
            part = {**part, "state": "approval-responded", "approval": answered}
        parts.append(part)
    return {**message, "parts": parts}


def _decision(request: ToolApprovalRequestEvent, body: dict[str, Any]) -> ApprovalDecisionEvent:
    reason = body.get("reason")
    rule = body.get("who", {}).get("rule") if isinstance(body.get("who"), dict) else None
    return ApprovalDecisionEvent(
        approval_id=request.approval_id,
        tool_call_id=request.tool_call_id,
        tool_name=request.tool_name,
        approved=body.get("approved") is True,  # anything but true rejects
        reason=reason if isinstance(reason, str) else None,
        decided_by=str(body.get("decided_by") or "unknown"),
        rule=rule if isinstance(rule, str) else None,
        chunk=request.chunk,
    )


class _Object(msgspec.Struct):
    """Any JSON object (its fields are skipped, not built)."""


_object_decoder: Final = msgspec.json.Decoder(_Object)


def _is_object(body: str | bytes) -> bool:
    try:
        _object_decoder.decode(body)
    except msgspec.MsgspecError:
        return False
    return True


# Client records whose content only the projections use (replay skips them).
_PROJECTED_ONLY: Final = frozenset({USER_MESSAGE, IMPORTED_MESSAGE, VOTE, DELETE_CHAT})

_CLIENT_HANDLERS: Final = {
    USER_MESSAGE: ChatFold._user_message,
    IMPORTED_MESSAGE: ChatFold._imported,
    APPROVAL: ChatFold._approval,
    VOTE: ChatFold._vote,
    DELETE_CHAT: ChatFold._delete,
    RESUME: ChatFold._resume_record,
}
