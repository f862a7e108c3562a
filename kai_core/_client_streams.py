"""The streaming half of :class:`~kai_core.client.KaiClient`.

Every method here returns an :class:`~kai_core._stream.EventStream` (lazy:
nothing is sent before it is iterated or entered): a user message, a v6
approval answer (the assistant message sent back), the legacy tool result,
a resumed stream. Kept apart from the plain requests so each module stays
small; :class:`StreamMethods` is only meant as a base of ``KaiClient``.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Final

import msgspec

from ._approvals import Answers, answer_parts
from ._compat import enum_value
from .api import (
    ChatRequest,
    MessageMetadata,
    MessageRequest,
    RequestContext,
    ToolRestrictions,
    encode_request,
)
from .discovery import KaiBackend
from .exceptions import KaiLogError
from .records import LogRecord

if TYPE_CHECKING:
    # Only for the type checker: at run time these are imported where a
    # stream is made, so that ``import kai_core.client`` loads neither httpx
    # nor trio (issue 16: it must take at most half of ``import kai_client``).
    import httpx

    from ._agent import ToolPolicy
    from ._http import Transport
    from ._stream import EventLogSink, EventStream, Opener, StreamPlan
    from .api import ChatDetail
    from .assemble import MessageAssembler

__all__ = ["StreamMethods"]

_json: Final = msgspec.json.Encoder()


class StreamMethods:
    """The methods of :class:`~kai_core.client.KaiClient` that stream an answer."""

    base_url: str
    backend: KaiBackend | None
    log: EventLogSink | None
    max_event_size: int
    resume_attempts: int
    _http: Transport

    if TYPE_CHECKING:

        async def get_chat(self, chat_id: str) -> ChatDetail: ...

        async def tool_policy(self, *, refresh: bool = False) -> ToolPolicy: ...

        def _log_failed(self, error: KaiLogError) -> None: ...

    def _stream(self, chat_id: str, prepare: Callable[[str], Awaitable[StreamPlan]]) -> EventStream:
        from ._stream import EventStream

        resume: Opener | None = None
        no_resume: str | None = None
        # kai-assistant resumes; a backend not named is asked too (a 204 or 404
        # then says there is nothing to resume).
        if self.backend is KaiBackend.AGENT:
            no_resume = "kai-agent cannot resume a stream"
        elif self.resume_attempts <= 0:
            no_resume = "resuming is turned off (resume_attempts=0)"
        else:
            path = f"/api/chat/{chat_id}/stream"

            def resume() -> Awaitable[httpx.Response]:
                return self._open("GET", path, retry=True)

        return EventStream(
            prepare,
            chat_id=chat_id,
            log=self.log,
            max_event_size=self.max_event_size,
            resume=resume,
            resume_attempts=self.resume_attempts,
            no_resume=no_resume,
            on_log_error=self._log_failed,
            secret=self._http.token,
            agent_waits=None if self.backend is KaiBackend.AGENT else self._agent_would_wait,
        )

    async def _agent_would_wait(self, tool_name: str) -> bool:
        """Whether kai-agent would hold a call of ``tool_name`` for an approval.

        Only a tool the server lists as not read-only (and the user did not
        set to ``always_allow`` or ``blocked``) does; a server without the
        tool list (kai-assistant) holds none.
        """
        policy = await self.tool_policy()
        listed = policy.read_only is not None and tool_name in policy.read_only
        return listed and policy.waits(tool_name)

    async def _open(
        self,
        method: str,
        path: str,
        content: bytes | None = None,
        *,
        retry: bool,
    ) -> httpx.Response:
        request = self._http.build(method, path, content=content, stream=True)
        return await self._http.send(request, retry=retry, stream=True)

    async def _assembler(self, message: dict[str, Any] | None = None) -> MessageAssembler:
        from .assemble import MessageAssembler

        if self.backend is KaiBackend.AGENT:
            policy = await self.tool_policy()
            return MessageAssembler(message, agent_waiting=policy.waits)
        return MessageAssembler(message)

    def _chat_body(
        self,
        chat_id: str,
        message: MessageRequest,
        visibility: str,
        branch_id: int | None,
        tool_restrictions: ToolRestrictions | None = None,
    ) -> bytes:
        return encode_request(
            ChatRequest(
                id=chat_id,
                message=message,
                selected_chat_model="chat-model",
                selected_visibility_type=enum_value(visibility),
                branch_id=branch_id,
                tool_restrictions=tool_restrictions,
            )
        )

    def _post_user_message(
        self,
        chat_id: str,
        parts: list[dict[str, Any]],
        metadata: MessageMetadata | None,
        visibility: str,
        branch_id: int | None,
        tool_restrictions: ToolRestrictions | None = None,
    ) -> EventStream:
        message = MessageRequest(id=str(uuid.uuid4()), role="user", parts=parts, metadata=metadata)
        body = self._chat_body(chat_id, message, visibility, branch_id, tool_restrictions)

        async def prepare(turn: str) -> StreamPlan:
            from ._stream import StreamPlan

            assembler = await self._assembler()
            records = self._fact(
                chat_id,
                turn,
                "user-message",
                {
                    "message": msgspec.to_builtins(message),
                    "server": self.base_url,
                    "backend": self.backend.value if self.backend else None,
                },
            )
            return StreamPlan(
                lambda: self._open("POST", "/api/chat", body, retry=False), assembler, records
            )

        return self._stream(chat_id, prepare)

    def send_message(
        self,
        chat_id: str,
        text: str,
        *,
        visibility: str = "private",
        branch_id: int | None = None,
        hidden: bool = False,
        request_path: str | None = None,
        tool_restrictions: ToolRestrictions | None = None,
    ) -> EventStream:
        """Send a user message; the answer's events stream back.

        Nothing is sent until the stream is iterated or entered. The user
        message is logged before the request leaves.

        :param visibility: ``"private"`` or ``"public"``.
        :param branch_id: the Keboola development branch, if any (``branchId``).
        :param hidden: mark the message hidden (UI-triggered prompts).
        :param request_path: the UI path the user was on.
        :param tool_restrictions: kai-agent: the tools the agent may use in this
            chat (``toolRestrictions``); the server keeps those of a chat's first
            message and ignores them later.
        """
        metadata: MessageMetadata | None = None
        if hidden or request_path:
            context = RequestContext(path=request_path) if request_path else None
            metadata = MessageMetadata(hidden=hidden, request_context=context)
        parts = [{"type": "text", "text": text}]
        return self._post_user_message(
            chat_id, parts, metadata, visibility, branch_id, tool_restrictions
        )

    def stream_message(
        self,
        chat_id: str,
        text: str,
        *,
        visibility: str = "private",
        branch_id: int | None = None,
        hidden: bool = False,
        request_path: str | None = None,
        tool_restrictions: ToolRestrictions | None = None,
    ) -> EventStream:
        """:meth:`send_message` for ``async with client.stream_message(...) as events``.

        The stream's lifetime is the block: leaving it closes the response.
        """
        return self.send_message(
            chat_id,
            text,
            visibility=visibility,
            branch_id=branch_id,
            hidden=hidden,
            request_path=request_path,
            tool_restrictions=tool_restrictions,
        )

    def answer_approvals(
        self,
        chat_id: str,
        answers: Answers,
        *,
        visibility: str = "private",
        branch_id: int | None = None,
    ) -> EventStream:
        """kai-assistant: answer v6 approvals of one message in one request.

        Fetches the chat, sets each part to ``approval-responded`` with the
        whole original ``approval`` object plus ``approved``/``reason``, sends
        the assistant message back and streams the continuation.

        :param answers: approval id → ``(approved, reason or None)``.
        This is the answer to every ``tool-approval-request`` chunk, whatever
        the configured backend (a chunk of that type always means the v6 flow);
        tools that wait on kai-agent are answered with :meth:`submit_approval`.

        :raises KaiError: ``approval:not_found`` (no such pending approval in the
            chat), ``approval:already_answered``.
        """
        answers = dict(answers)

        async def prepare(turn: str) -> StreamPlan:
            from ._stream import StreamPlan

            chat = await self.get_chat(chat_id)
            message, parts = answer_parts(chat, answers)
            reply = MessageRequest(id=message.id, role="assistant", parts=parts)
            body = self._chat_body(chat_id, reply, visibility, branch_id)
            base = {"id": message.id, "role": "assistant", "parts": parts}
            if message.metadata is not None:
                base["metadata"] = message.metadata
            return StreamPlan(
                lambda: self._open("POST", "/api/chat", body, retry=False),
                await self._assembler(base),
            )

        return self._stream(chat_id, prepare)

    def send_tool_approval_response(
        self,
        chat_id: str,
        approval_id: str,
        approved: bool,
        *,
        reason: str | None = None,
        visibility: str = "private",
        branch_id: int | None = None,
    ) -> EventStream:
        """kai-assistant: answer one v6 approval and stream the continuation."""
        return self.answer_approvals(
            chat_id, {approval_id: (approved, reason)}, visibility=visibility, branch_id=branch_id
        )

    def approve_tool(
        self,
        chat_id: str,
        approval_id: str,
        reason: str | None = None,
        *,
        visibility: str = "private",
        branch_id: int | None = None,
    ) -> EventStream:
        """kai-assistant: approve a pending tool call; stream the continuation."""
        return self.send_tool_approval_response(
            chat_id, approval_id, True, reason=reason, visibility=visibility, branch_id=branch_id
        )

    def reject_tool(
        self,
        chat_id: str,
        approval_id: str,
        reason: str | None = None,
        *,
        visibility: str = "private",
        branch_id: int | None = None,
    ) -> EventStream:
        """kai-assistant: reject a pending tool call; stream the continuation."""
        return self.send_tool_approval_response(
            chat_id, approval_id, False, reason=reason, visibility=visibility, branch_id=branch_id
        )

    def send_tool_result(
        self,
        chat_id: str,
        tool_call_id: str,
        tool_name: str,
        result: str,
        *,
        visibility: str = "private",
        branch_id: int | None = None,
    ) -> EventStream:
        """Legacy: send a ``tool-result`` user part (pre-v6 servers only)."""
        part = {
            "type": "tool-result",
            "toolCallId": tool_call_id,
            "toolName": tool_name,
            "result": result,
        }
        return self._post_user_message(chat_id, [part], None, visibility, branch_id)

    def confirm_tool(
        self,
        chat_id: str,
        tool_call_id: str,
        tool_name: str,
        *,
        visibility: str = "private",
        branch_id: int | None = None,
    ) -> EventStream:
        """Legacy: :meth:`send_tool_result` with ``"confirmed"``."""
        return self.send_tool_result(
            chat_id,
            tool_call_id,
            tool_name,
            "confirmed",
            visibility=visibility,
            branch_id=branch_id,
        )

    def deny_tool(
        self,
        chat_id: str,
        tool_call_id: str,
        tool_name: str,
        *,
        visibility: str = "private",
        branch_id: int | None = None,
    ) -> EventStream:
        """Legacy: :meth:`send_tool_result` with ``"denied"``."""
        return self.send_tool_result(
            chat_id, tool_call_id, tool_name, "denied", visibility=visibility, branch_id=branch_id
        )

    def resume_stream(self, chat_id: str, *, skip: int = 0) -> EventStream:
        """kai-assistant: ``GET /api/chat/{id}/stream``: the running answer again.

        A ``204`` (nothing running) gives an empty stream. Streams cut before
        ``[DONE]`` are resumed automatically (see ``resume_attempts`` of
        :class:`~kai_core.client.KaiClient`); this is for picking up an answer
        in another process, e.g. after a crash.

        :param skip: chunks at the start that were already delivered: folded
            into :attr:`EventStream.assembler` but not logged or handed out.
        """

        async def prepare(turn: str) -> StreamPlan:
            from ._stream import StreamPlan

            records = self._fact(chat_id, turn, "resume", {"skipped": skip})
            return StreamPlan(
                lambda: self._open("GET", f"/api/chat/{chat_id}/stream", retry=True),
                await self._assembler(),
                records,
                skip,
                may_be_empty=True,
            )

        return self._stream(chat_id, prepare)

    async def chat(
        self,
        text: str,
        *,
        chat_id: str | None = None,
        visibility: str = "private",
        branch_id: int | None = None,
        tool_restrictions: ToolRestrictions | None = None,
    ) -> tuple[str, str]:
        """Send ``text`` and return ``(chat_id, the answer's full text)``."""
        if chat_id is None:
            chat_id = str(uuid.uuid4())
        pieces: list[str] = []
        async with self.send_message(
            chat_id,
            text,
            visibility=visibility,
            branch_id=branch_id,
            tool_restrictions=tool_restrictions,
        ) as events:
            async for event in events:
                if event.type == "text":
                    pieces.append(event.text)
        return chat_id, "".join(pieces)

    def _fact(self, chat_id: str, turn: str, kind: str, body: dict[str, Any]) -> list[LogRecord]:
        if self.log is None:
            return []
        # The token never goes into the log, even when the user typed it.
        data = self._http.scrub_bytes(_json.encode(body))
        return [LogRecord(chat_id=chat_id, turn=turn, origin="client", type=kind, body=data)]

    def _log_fact(self, chat_id: str, kind: str, body: dict[str, Any]) -> None:
        # After the request succeeded: a log failure is reported, not raised.
        self.append_to_log(self._fact(chat_id, uuid.uuid4().hex, kind, body))

    def append_to_log(self, records: Sequence[LogRecord]) -> None:
        """Append ``records`` to :attr:`log` (if any) for something that already happened.

        A failure (:class:`~kai_core.exceptions.KaiLogError`) is not raised:
        it is reported once (``on_log_error``) and logging stops for this client.
        """
        log = self.log
        if log is None or not records:
            return
        try:
            log.append(records)
        except KaiLogError as error:
            self._log_failed(error)
