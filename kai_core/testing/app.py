"""The emulated Kai backend as an ASGI app (starlette): every route of protocol.md C.2.

Serve it with hypercorn on trio (:func:`kai_core.testing.open_emulator` does);
it needs the ASGI lifespan, which opens the nursery its answers are written
in. Errors are the template's ``ChatSDKError`` bodies (protocol.md C.4).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Literal

import trio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from .. import chunks as c
from .errors import ApiError, error_response, json_body
from .faults import Faults
from .routes_extra import extra_routes
from .runner import DONE_FRAME, AnswerWriter, IdSource, frame
from .scenarios import BUILTIN_SCENARIOS, Scenario, Step
from .state import ChatRecord, EmulatorState, RequestRecord, StreamRecord, is_uuid, iso, user_id_for
from .streams import SSEResponse
from .tools import BUILTIN_TOOLS, Tool

__all__ = ["Backend", "EmulatorApp"]

Backend = Literal["agent", "assistant"]


class EmulatorApp:
    """The ASGI app. Its attributes are the emulator's live configuration.

    :param backend: ``"agent"`` (kai-agent: approvals by POST, no resume) or
        ``"assistant"`` (kai-assistant: the AI SDK v6 approval re-POST, resume).
    :param token: the only Storage API token accepted; None accepts any non-empty one.
    :param resume_window: seconds after its end during which an answer can
        still be resumed (kai-assistant).
    """

    def __init__(
        self,
        *,
        backend: Backend = "agent",
        token: str | None = None,
        state: EmulatorState | None = None,
        faults: Faults | None = None,
        resume_window: float = 30.0,
    ) -> None:
        if backend not in ("agent", "assistant"):
            raise ValueError(f"backend must be 'agent' or 'assistant', not {backend!r}")
        self.backend: Backend = backend
        self.token = token
        self.state = state or EmulatorState()
        self.faults = faults or Faults()
        self.resume_window = resume_window
        self.scenarios: list[Scenario] = []
        self.script_errors: list[Exception] = []
        """Exceptions raised by scenario scripts or tools (each also ends its stream with an error)."""
        self.tools: dict[str, Tool] = {t.name: t for t in BUILTIN_TOOLS}
        self.ids = IdSource()
        self.started = time.monotonic()
        self._nursery: trio.Nursery | None = None
        self._answers: trio.Nursery | None = None
        self.starlette = Starlette(routes=self._routes(), lifespan=self._lifespan)

    @property
    def service_id(self) -> str:
        """``kai-agent`` or ``kai-assistant``."""
        return f"kai-{self.backend}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.starlette(scope, receive, send)
            return
        query = scope.get("query_string", b"").decode("latin-1")

        async def recording_send(message: Any) -> None:
            # Recorded before the response leaves, so a test sees it once it has the answer.
            if message["type"] == "http.response.start":
                record = RequestRecord(scope["method"], scope["path"], query, message["status"])
                self.state.requests.append(record)
            await send(message)

        await self.starlette(scope, receive, recording_send)

    # -- lifecycle ---------------------------------------------------------------

    @asynccontextmanager
    async def _lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        # Answers run in this nursery, not in the request's task, so a client
        # that hangs up does not stop the assistant (as with the AI SDK).
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            yield
            self.stop_answers()
            nursery.cancel_scope.cancel()
        self._nursery = None

    def stop_answers(self) -> None:
        """Cancel every answer being written (their streams end without ``[DONE]``)."""
        if self._answers is not None:
            self._answers.cancel_scope.cancel()

    async def _run_answers(self, *, task_status: trio.TaskStatus[trio.Nursery]) -> None:
        async with trio.open_nursery() as nursery:
            task_status.started(nursery)
            await trio.sleep_forever()

    async def _answers_nursery(self) -> trio.Nursery:
        if self._nursery is None:
            raise RuntimeError(
                "the emulator app needs the ASGI lifespan (serve it with open_emulator)"
            )
        if self._answers is None or self._answers.cancel_scope.cancel_called:
            self._answers = await self._nursery.start(self._run_answers)
        return self._answers

    # -- helpers used by the routes ------------------------------------------------

    def authenticate(self, request: Request) -> str:
        """The user id behind the request's token; raises 401 ``unauthorized:chat``."""
        token = request.headers.get("x-storageapi-token", "")
        if not token.strip() or (self.token is not None and token != self.token):
            raise ApiError("unauthorized:chat")
        return user_id_for(token)

    def check_faults(self, *, is_chat: bool) -> Response | None:
        """A 429 or 5xx answer when a request fault is armed."""
        fault = self.faults.take_request(is_chat)
        if fault == "rate_limit":
            response = error_response("rate_limit:chat")
            response.headers["retry-after"] = str(self.faults.retry_after)
            return response
        if fault == "unavailable":
            return error_response("offline:chat", status=self.faults.unavailable_status)
        return None

    def own_chat(self, chat_id: str, user_id: str, surface: str = "chat") -> ChatRecord:
        """The user's chat, or 404 ``not_found:<surface>`` / 403 ``forbidden:<surface>``."""
        chat = self.state.chats.get(chat_id)
        if chat is None:
            raise ApiError(f"not_found:{surface}")
        if chat.user_id != user_id:
            raise ApiError(f"forbidden:{surface}")
        return chat

    def pick_scenario(self, text: str) -> Scenario:
        """The first scripted, then built-in, scenario whose trigger matches."""
        return next(s for s in [*self.scenarios, *BUILTIN_SCENARIOS] if s.matches(text))

    # -- routes ------------------------------------------------------------------

    def _routes(self) -> list[Route]:
        def public(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Any]:
            return handler

        def guarded(
            handler: Callable[[Request, str], Awaitable[Response | SSEResponse]],
            *,
            chat: bool = False,
        ) -> Callable[[Request], Any]:
            async def endpoint(request: Request) -> Response | SSEResponse:
                try:
                    user_id = self.authenticate(request)
                    failure = self.check_faults(is_chat=chat)
                    if failure is not None:
                        return failure
                    return await handler(request, user_id)
                except ApiError as exc:
                    return error_response(exc.code, exc.cause)

            return endpoint

        routes = [
            Route("/ping", public(self.ping), methods=["GET"]),
            Route("/api", public(self.info), methods=["GET"]),
            Route("/v2/storage", guarded(self.storage), methods=["GET"]),
            Route("/v2/storage/tokens/verify", guarded(self.verify_token), methods=["GET"]),
            Route("/api/chat", guarded(self.post_chat, chat=True), methods=["POST"]),
            Route("/api/chat", guarded(self.delete_chat), methods=["DELETE"]),
            Route("/api/chat/{chat_id}", guarded(self.get_chat), methods=["GET"]),
            Route("/api/chat/{chat_id}/stream", guarded(self.resume), methods=["GET"]),
            Route("/api/chat/{chat_id}/approval", guarded(self.approval), methods=["POST"]),
            Route("/api/history", guarded(self.history), methods=["GET"]),
        ]
        for path, methods, handler in extra_routes(self.state, self.tools):
            routes.append(Route(path, guarded(handler), methods=methods))
        return routes

    async def ping(self, request: Request) -> Response:
        return JSONResponse({"timestamp": iso(datetime.now(UTC))})

    async def info(self, request: Request) -> Response:
        return JSONResponse(
            {
                "timestamp": iso(datetime.now(UTC)),
                "uptime": round(time.monotonic() - self.started, 3),
                "appName": f"{self.service_id} (emulator)",
                "appVersion": "0.1.0",
                "serverVersion": "0.1.0",
                "connectedMcp": [{"name": "keboola-mcp-server", "status": "connected"}],
            }
        )

    async def storage(self, request: Request, user_id: str) -> Response:
        base = str(request.base_url).rstrip("/")
        services = [
            {"id": "docs", "url": "https://docs.example.invalid"},
            {"id": self.service_id, "url": base},
        ]
        return JSONResponse({"services": services})

    async def verify_token(self, request: Request, user_id: str) -> Response:
        """The Storage API's token check (``kai verify``): a master token of the project."""
        return JSONResponse(
            {
                "id": user_id,
                "description": "kai emulator token",
                "isMasterToken": True,
                "owner": {"id": self.state.project_id, "name": "Emulated project"},
            }
        )

    async def get_chat(self, request: Request, user_id: str) -> Response:
        chat = self.own_chat(request.path_params["chat_id"], user_id)
        return JSONResponse(chat.detail())

    async def delete_chat(self, request: Request, user_id: str) -> Response:
        chat_id = request.query_params.get("id")
        if not chat_id:
            raise ApiError("bad_request:api", "Parameter id is required.")
        chat = self.state.chats.get(chat_id)
        if chat is None or chat.user_id != user_id:
            raise ApiError("forbidden:chat")  # the template answers 403 for an unknown chat too
        for waiter in list(chat.waiting.values()):
            waiter.supersede()
        del self.state.chats[chat_id]
        for key in [k for k in self.state.votes if k[0] == chat_id]:
            del self.state.votes[key]
        return JSONResponse(chat.summary())

    async def history(self, request: Request, user_id: str) -> Response:
        params = request.query_params
        try:
            limit = int(params.get("limit", "10"))
        except ValueError:
            raise ApiError("bad_request:api", "limit must be a number") from None
        after, before = params.get("starting_after"), params.get("ending_before")
        if after and before:
            raise ApiError(
                "bad_request:api", "Only one of starting_after or ending_before can be provided."
            )
        chats = self.state.chats_of(user_id)
        cursor_id = after or before
        if cursor_id:
            cursor = next((ch for ch in chats if ch.id == cursor_id), None)
            if cursor is None:  # the template wraps its not_found in bad_request:database
                return error_response("bad_request:database")
            if after:
                chats = [ch for ch in chats if ch.created_at > cursor.created_at]
            else:
                chats = [ch for ch in chats if ch.created_at < cursor.created_at]
        page = chats[: max(limit, 0)]
        return JSONResponse(
            {"chats": [ch.summary() for ch in page], "hasMore": len(chats) > len(page)}
        )

    async def resume(self, request: Request, user_id: str) -> Response | SSEResponse:
        chat_id = request.path_params["chat_id"]
        if self.backend == "agent":
            raise ApiError("not_found:stream")
        chat = self.own_chat(chat_id, user_id)
        record = chat.last_stream
        fresh = record is not None and (
            not record.closed
            or (
                record.ended_at is not None
                and trio.current_time() - record.ended_at <= self.resume_window
            )
        )
        if record is None or not fresh:
            return Response(status_code=204)
        return SSEResponse(record, self.faults.take_stream())

    async def approval(self, request: Request, user_id: str) -> Response:
        if self.backend == "assistant":
            # kai-assistant has no such endpoint: its app answers any unknown path so.
            return PlainTextResponse("Not Found", status_code=404)
        chat_id = request.path_params["chat_id"]
        body = await json_body(request)
        tool_use_id, approved = body.get("toolUseId"), body.get("approved")
        reason = body.get("reason")
        updated_input, answers = body.get("updatedInput"), body.get("answers")
        if not isinstance(tool_use_id, str) or not isinstance(approved, bool):
            raise ApiError(
                "bad_request:api", "toolUseId (string) and approved (boolean) are required."
            )
        if reason is not None and not isinstance(reason, str):
            raise ApiError("bad_request:api", "reason must be a string.")
        for name, value in (("updatedInput", updated_input), ("answers", answers)):
            if value is not None and not isinstance(value, dict):
                raise ApiError("bad_request:api", f"{name} must be an object.")
        chat = self.own_chat(chat_id, user_id)
        waiter = chat.waiting.get(tool_use_id)
        if waiter is None or waiter.event.is_set():
            raise ApiError(
                "bad_request:approval", f"Tool call {tool_use_id} is not waiting for approval."
            )
        waiter.decide(approved, reason, updated_input, answers)
        return JSONResponse({"success": True, "toolUseId": tool_use_id, "approved": approved})

    # -- POST /api/chat ----------------------------------------------------------

    async def post_chat(self, request: Request, user_id: str) -> Response | SSEResponse:  # noqa: C901 - the server's checks of a chat request, in the server's order
        body = await json_body(request)
        chat_id, message = body.get("id"), body.get("message")
        if not is_uuid(chat_id):
            raise ApiError("bad_request:api", "id must be a UUID.")
        if not isinstance(message, dict) or not isinstance(message.get("parts"), list):
            raise ApiError("bad_request:api", "message with parts is required.")
        if not is_uuid(message.get("id")):
            raise ApiError("bad_request:api", "message.id must be a UUID.")
        visibility = body.get("selectedVisibilityType", "private")
        if visibility not in ("private", "public"):
            raise ApiError("bad_request:api", "selectedVisibilityType must be private or public.")
        branch_id, restrictions = body.get("branchId"), body.get("toolRestrictions")
        if branch_id is not None and (type(branch_id) is not int):
            raise ApiError("bad_request:api", "branchId must be an integer.")
        _check_restrictions(restrictions)
        role = message.get("role")
        if role == "assistant":
            return await self._approval_repost(user_id, chat_id, message)
        if role != "user":
            raise ApiError("bad_request:api", "message.role must be user or assistant.")
        text = "".join(
            p.get("text", "")
            for p in message["parts"]
            if isinstance(p, dict) and p.get("type") == "text"
        )
        if not text.strip():
            raise ApiError("bad_request:api", "user messages must have non-empty content")
        if self.state.messages_used.get(user_id, 0) >= self.state.messages_limit:
            raise ApiError("rate_limit:chat")
        chat = self.state.chats.get(chat_id)
        if chat is not None and chat.user_id != user_id:
            raise ApiError("forbidden:chat")
        if chat is None:
            now = self.state.now_for_new_chat()
            title = " ".join(text.split())
            title = title if len(title) <= 80 else title[:77] + "..."
            chat = ChatRecord(chat_id, user_id, title, now, now, visibility)
            chat.tool_restrictions = restrictions  # first message wins, as on kai-agent
            self.state.chats[chat_id] = chat
        if branch_id is not None:
            chat.branch_id = branch_id
        self.state.messages_used[user_id] = self.state.messages_used.get(user_id, 0) + 1
        stored = {
            "id": message["id"],
            "role": "user",
            "parts": message["parts"],
            "createdAt": _now(),
        }
        if "metadata" in message:
            stored["metadata"] = message["metadata"]
        chat.messages.append(stored)
        chat.updated_at = datetime.now(UTC)
        for waiter in list(chat.waiting.values()):
            waiter.supersede()  # kai-agent: the old answer stops waiting
        writer, record = self._writer(chat, user_id, text)
        open_call = _open_approval(chat)
        if open_call is not None:
            writer.builder.message["parts"] = []
            await self._start(writer, writer.write_missing_tool_result, open_call, keep=False)
        else:
            try:
                reply = self.pick_scenario(text).respond(text)
            except Exception as exc:
                self.script_errors.append(exc)
                raise ApiError("offline:chat", f"{type(exc).__name__}: {exc}") from None
            if reply and all(isinstance(x, _CHUNK_TYPES) for x in reply):
                await self._start(writer, writer.write_chunks, list(reply))
            else:
                steps = _as_steps(reply)
                await self._start(writer, writer.write_reply, steps)
        return SSEResponse(record, self.faults.take_stream())

    async def _approval_repost(
        self, user_id: str, chat_id: str, message: dict[str, Any]
    ) -> Response | SSEResponse:
        if self.backend == "agent":
            raise ApiError(
                "bad_request:api", "kai-agent answers approvals with POST /api/chat/{id}/approval."
            )
        chat = self.own_chat(chat_id, user_id)
        cont = chat.continuations.get(message["id"])
        stored = chat.message(message["id"])
        if cont is None or stored is None:
            raise ApiError(
                "bad_request:api", "No assistant message with tool approvals has this id."
            )
        decisions: dict[str, dict[str, Any]] = {}
        for part in message["parts"]:
            approval = part.get("approval") if isinstance(part, dict) else None
            if part.get("state") == "approval-responded" and isinstance(approval, dict):
                if not isinstance(approval.get("id"), str) or not isinstance(
                    approval.get("approved"), bool
                ):
                    raise ApiError("bad_request:api", "approval needs id and approved.")
                decisions[approval["id"]] = approval
        writer, record = self._writer(chat, user_id, "", message=stored)
        missing = next((w for w in cont.waiting if w.approval_id not in decisions), None)
        if missing is not None:
            await self._start(
                writer, writer.write_missing_tool_result, missing.tool_call_id, keep=False
            )
            return SSEResponse(record, self.faults.take_stream())
        chat.updated_at = datetime.now(UTC)
        await self._start(writer, writer.continue_after_approval, cont, decisions)
        return SSEResponse(record, self.faults.take_stream())

    def _writer(
        self, chat: ChatRecord, user_id: str, prompt: str, *, message: dict[str, Any] | None = None
    ) -> tuple[AnswerWriter, StreamRecord]:
        record = StreamRecord(chat.id)
        if message is None:
            message = {
                "id": str(uuid.uuid4()),
                "role": "assistant",
                "parts": [],
                "createdAt": _now(),
            }
        writer = AnswerWriter(
            backend=self.backend,
            state=self.state,
            tools=self.tools,
            faults=self.faults,
            ids=self.ids,
            chat=chat,
            user_id=user_id,
            record=record,
            message=message,
            prompt=prompt,
        )
        return writer, record

    async def _start(
        self, writer: AnswerWriter, write: Callable[..., Any], *args: Any, keep: bool = True
    ) -> None:
        """Run one answer in the answers nursery; store its message as it grows."""
        nursery = await self._answers_nursery()
        chat, record, message = writer.chat, writer.record, writer.builder.message
        chat.last_stream = record
        if keep and not any(m is message for m in chat.messages):
            chat.messages.append(message)

        async def run() -> None:
            try:
                await write(*args)
            except Exception as exc:
                # A broken script must not take the server down: answer like the
                # SDK does for a failure mid-stream, and keep it for the test.
                self.script_errors.append(exc)
                if not record.closed:
                    text = f"The emulator's script failed: {type(exc).__name__}: {exc}"
                    record.append(frame(c.ErrorChunk(error_text=text)))
                    record.append(DONE_FRAME)
                    record.close(complete=True)
            finally:
                record.close(complete=False)  # no-op when it ended with [DONE]
                if not message["parts"]:
                    chat.messages[:] = [m for m in chat.messages if m is not message]

        nursery.start_soon(run)


_CHUNK_TYPES = (*c.KnownChunk.__args__, c.DataChunk, c.UnknownChunk)


def _as_steps(reply: Sequence[Any]) -> list[Step]:
    if all(isinstance(x, Step) for x in reply):
        return list(reply)
    if any(isinstance(x, Step) for x in reply):
        raise TypeError("a reply is a list of steps, of step items, or of chunks, not a mix")
    return [Step(list(reply))]


def _check_restrictions(value: Any) -> None:
    """400 unless ``toolRestrictions`` is absent or ``{allowedTools?, disallowedTools?,
    readOnlyMode?}`` with lists of names and a boolean."""
    if value is None:
        return
    lists = ("allowedTools", "disallowedTools")
    if not isinstance(value, dict) or not set(value) <= {*lists, "readOnlyMode"}:
        raise ApiError(
            "bad_request:api",
            "toolRestrictions must be an object of allowedTools, disallowedTools, readOnlyMode.",
        )
    for name in lists:
        names = value.get(name)
        if names is not None and not (
            isinstance(names, list) and all(isinstance(n, str) for n in names)
        ):
            raise ApiError("bad_request:api", f"toolRestrictions.{name} must be a list of names.")
    if value.get("readOnlyMode") not in (None, True, False):
        raise ApiError("bad_request:api", "toolRestrictions.readOnlyMode must be a boolean.")


def _open_approval(chat: ChatRecord) -> str | None:
    """The tool call id of an approval the user has not answered yet (kai-assistant)."""
    for message in reversed(chat.messages):
        if message["role"] != "assistant":
            continue
        for part in message["parts"]:
            if part.get("state") == "approval-requested":
                call_id: str = part["toolCallId"]
                return call_id
        return None
    return None


def _now() -> str:
    return iso(datetime.now(UTC))
