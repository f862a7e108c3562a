"""KaiClient: the Kai HTTP API, under trio.

Every method of kai-client 0.12 is here with the same name and arguments.
Streaming methods (:meth:`KaiClient.send_message`, the approval methods,
:meth:`KaiClient.resume_stream`) return an :class:`EventStream`: iterate it
with ``async for``, or hold it with ``async with`` so that the stream's
lifetime is a block::

    async with KaiClient(token, url, base_url=...) as client:
        chat_id = client.new_chat_id()
        async with client.stream_message(chat_id, "Hello!") as events:
            async for event in events:
                if event.type == "text":
                    print(event.text, end="")

Plain requests (everything else) raise the exceptions of
:mod:`kai_core.exceptions`; ``GET`` requests and votes are retried on
connection errors and 429/502/503/504. ``POST /api/chat`` is never retried.
A stream cut mid-answer is resumed on kai-assistant, or a backend not named
(``resume_attempts``).
A log that fails once the request has left is reported (``on_log_error``)
and turned off; the answer keeps coming. See ``docs/reliability.md``.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import AsyncIterator, Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

import msgspec

from ._agent import ToolPolicy
from ._client_streams import StreamMethods
from ._compat import enum_value
from .api import (
    AgentSettings,
    ApprovalRequest,
    ApprovalResponse,
    Chat,
    ChatDetail,
    HistoryResponse,
    InfoResponse,
    PingResponse,
    SuggestionsRequest,
    SuggestionsResponse,
    ToolsListResponse,
    UsageResponse,
    UserAgentSettings,
    Vote,
    VoteRequest,
    decode_response,
    encode_request,
)
from .discovery import KaiBackend, check_https, discover, parse_backend
from .exceptions import KaiError, KaiLogError
from .sse import DEFAULT_MAX_EVENT_SIZE

if TYPE_CHECKING:
    # The type checker sees the real imports; at run time httpx and trio (with
    # the transport and the stream built on them) load when a client is made
    # or a stream opened, so that ``import kai_core.client`` stays at most half
    # of ``import kai_client`` (issue 16; tests/test_startup.py pins it).
    import httpx

    from ._http import Transport
    from ._stream import EventLogSink, EventStream

__all__ = ["EventStream", "KaiClient", "LogFailedWarning", "ToolPolicy"]


def __getattr__(name: str) -> Any:
    """``EventStream``, imported on first use (PEP 562): see the imports above."""
    if name == "EventStream":
        from ._stream import EventStream

        return EventStream
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class LogFailedWarning(RuntimeWarning):
    """Issued when the event log failed and no ``on_log_error`` handler was given."""


_UNSET: Any = object()


class KaiClient(StreamMethods):
    """Async client of the Kai backend (kai-agent or kai-assistant).

    :param storage_api_token: the Keboola Storage API token (never shown in
        any message, repr or log).
    :param storage_api_url: the stack's Storage API, e.g. ``https://connection.keboola.com``.
    :param base_url: the Kai server (see :meth:`from_storage_api` to discover it).
    :param timeout: seconds for each phase of a plain request.
    :param stream_timeout: seconds to send a streaming request and to get a
        pooled connection for it.
    :param backend: which backend ``base_url`` is (``"agent"``/``"assistant"``
        or :class:`KaiBackend`); None when not known. On kai-agent, streams
        announce the tools that wait for approval.
    :param log: an event log (:class:`kai_core.log.EventLog`) to record every
        chunk and client fact in; None records nothing.
    :param max_event_size: bound on one SSE event in bytes.
    :param max_retries: retries of idempotent requests (0 = none).
    :param retry_backoff: first back-off delay in seconds (doubles, jittered).
    :param max_retry_backoff: cap of the back-off delay.
    :param connect_timeout: seconds to open a connection.
    :param stream_read_timeout: the longest silence allowed between two reads
        of a stream (None: wait forever).
    :param resume_attempts: a stream cut before the end is resumed through
        ``GET /api/chat/{id}/stream`` (not on kai-agent); this many resumes in a
        row may bring nothing new before it fails (0 = never resume).
    :param on_log_error: called once with the :class:`KaiLogError` when the log
        fails after a request has left (disk full, ...); logging then stops for
        this client and answers keep coming. None: a :class:`LogFailedWarning`.
    :param transport: an httpx transport to use instead of the network.
    :param require_https: refuse a plain ``http`` ``base_url`` or
        ``storage_api_url`` to another machine (``config:insecure_url``); the
        token would travel unencrypted. Loopback addresses are always allowed.
    """

    @classmethod
    async def from_storage_api(
        cls,
        storage_api_token: str,
        storage_api_url: str,
        timeout: float = 300.0,  # noqa: ASYNC109 - kai-client's signature; it configures the client
        stream_timeout: float = 600.0,
        service: str | KaiBackend | None = None,
        **options: Any,
    ) -> KaiClient:
        """Discover the stack's Kai service through the Storage API and connect to it.

        :param service: ``"agent"``, ``"assistant"``, a :class:`KaiBackend`, or
            None to prefer kai-agent when the stack lists it.
        :param options: more keyword arguments of the constructor.
        :raises KaiError: ``discovery:http_error``, ``discovery:service_not_found``,
            ``discovery:no_url``, ``discovery:bad_url``, ``config:insecure_url``
            (with ``require_https=True``); :class:`KaiConnectionError` when the
            Storage API cannot be reached.

        A service in plain ``http`` on another machine gets an
        :class:`~kai_core.discovery.InsecureURLWarning` (see :func:`~kai_core.discovery.discover`).
        """
        base_url, backend = await discover(
            storage_api_token,
            storage_api_url,
            service,
            http_timeout=min(timeout, 30.0),
            transport=options.get("transport"),
            require_https=bool(options.get("require_https")),
        )
        return cls(
            storage_api_token,
            storage_api_url,
            base_url,
            timeout,
            stream_timeout,
            backend=backend,
            **options,
        )

    def __init__(
        self,
        storage_api_token: str,
        storage_api_url: str,
        base_url: str = "http://localhost:3000",
        timeout: float = 300.0,
        stream_timeout: float = 600.0,
        *,
        backend: str | KaiBackend | None = None,
        log: EventLogSink | None = None,
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
        max_retries: int = 3,
        retry_backoff: float = 0.5,
        max_retry_backoff: float = 30.0,
        connect_timeout: float = 10.0,
        stream_read_timeout: float | None = 300.0,
        resume_attempts: int = 2,
        on_log_error: Callable[[KaiLogError], None] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        require_https: bool = False,
    ) -> None:
        if require_https:
            check_https(base_url, "the Kai server URL", require_https=True)
            check_https(storage_api_url, "the Storage API URL", require_https=True)
        self.base_url = base_url.rstrip("/")
        self.storage_api_url = storage_api_url
        self.timeout = timeout
        self.stream_timeout = stream_timeout
        self.backend: KaiBackend | None = parse_backend(backend)
        self.log = log
        self.max_event_size = max_event_size
        self.resume_attempts = resume_attempts
        self.on_log_error = on_log_error
        self.log_error: KaiLogError | None = None
        """The log failure that turned logging off, if any."""
        self._token = storage_api_token
        from ._http import RetryPolicy, Transport

        self._http: Transport = Transport(
            self.base_url,
            storage_api_token,
            storage_api_url,
            timeout=timeout,
            stream_timeout=stream_timeout,
            stream_read_timeout=stream_read_timeout,
            connect_timeout=connect_timeout,
            retry=RetryPolicy(
                max_retries=max_retries, backoff=retry_backoff, max_backoff=max_retry_backoff
            ),
            transport=transport,
        )
        self._tool_policy: ToolPolicy | None = None

    @property
    def storage_api_token(self) -> str:
        """The Storage API token (kept for kai-client compatibility; never printed)."""
        return self._token

    def __repr__(self) -> str:
        backend = self.backend.value if self.backend else None
        return f"KaiClient(base_url={self.base_url!r}, backend={backend!r})"

    def _log_failed(self, error: KaiLogError) -> None:
        """The log failed after a request left: report it once, stop logging."""
        self.log = None
        if self.log_error is not None:
            return
        self.log_error = error
        if self.on_log_error is not None:
            self.on_log_error(error)
        else:
            warnings.warn(
                f"{error}; the event log is off for the rest of this session",
                LogFailedWarning,
                stacklevel=2,
            )

    async def __aenter__(self) -> KaiClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connection pool (the client can be used again afterwards)."""
        await self._http.aclose()

    aclose = close

    @staticmethod
    def new_chat_id() -> str:
        """A new chat id (a UUID, as the server requires)."""
        return str(uuid.uuid4())

    @staticmethod
    def new_message_id() -> str:
        """A new message id (a UUID)."""
        return str(uuid.uuid4())

    # -- plain requests --------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: msgspec.Struct | dict[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        auth: bool = True,
        retry: bool | None = None,
    ) -> httpx.Response:
        content = encode_request(body) if body is not None else None
        request = self._http.build(method, path, content=content, params=params, auth=auth)
        return await self._http.send(request, retry=method == "GET" if retry is None else retry)

    async def ping(self) -> PingResponse:
        """``GET /ping``: is the server alive (no auth)."""
        response = await self._call("GET", "/ping", auth=False)
        return decode_response(PingResponse, self._http.body(response))

    async def info(self) -> InfoResponse:
        """``GET /api``: server name, version, uptime and MCP connections (no auth)."""
        response = await self._call("GET", "/api", auth=False)
        return decode_response(InfoResponse, self._http.body(response))

    async def get_chat(self, chat_id: str) -> ChatDetail:
        """``GET /api/chat/{id}``: the chat with every message."""
        response = await self._call("GET", f"/api/chat/{chat_id}")
        return decode_response(ChatDetail, self._http.body(response))

    async def delete_chat(self, chat_id: str) -> None:
        """``DELETE /api/chat?id=``: delete the chat on the server."""
        await self._call("DELETE", "/api/chat", params={"id": chat_id})
        self._log_fact(chat_id, "delete-chat", {})

    async def get_history(
        self,
        limit: int = 10,
        starting_after: str | None = None,
        ending_before: str | None = None,
    ) -> HistoryResponse:
        """``GET /api/history``: one page of chats, newest first.

        :param starting_after: a chat id: chats *newer* than it.
        :param ending_before: a chat id: chats *older* than it (to page on).
        """
        params: dict[str, Any] = {"limit": limit}
        if starting_after:
            params["starting_after"] = starting_after
        if ending_before:
            params["ending_before"] = ending_before
        response = await self._call("GET", "/api/history", params=params)
        return decode_response(HistoryResponse, self._http.body(response))

    def get_all_history(self, batch_size: int = 100) -> AsyncIterator[Chat]:
        """Every chat, newest first, fetched ``batch_size`` at a time.

        Pages towards older chats with ``ending_before=<last id>`` (kai-client
        used ``starting_after`` and stopped after the first page).
        """
        return _HistoryPages(self, batch_size)

    async def get_votes(self, chat_id: str) -> list[Vote]:
        """``GET /api/vote?chatId=``: the votes on the chat's messages (either wire format)."""
        response = await self._call("GET", "/api/vote", params={"chatId": chat_id})
        data = decode_response(object, self._http.body(response), "the votes")
        items = data.get("votes") if isinstance(data, dict) else data
        try:
            return msgspec.convert([] if items is None else items, list[Vote])
        except msgspec.ValidationError as exc:
            raise KaiError(
                f"the server answered with unexpected votes: {exc}", code="response:invalid"
            ) from exc

    async def vote(self, chat_id: str, message_id: str, vote_type: str) -> Vote:
        """``PATCH /api/vote``: vote ``"up"`` or ``"down"`` on a message."""
        kind = enum_value(vote_type)
        if kind not in ("up", "down"):
            raise ValueError(f"vote_type must be 'up' or 'down', not {vote_type!r}")
        request = VoteRequest(chat_id=chat_id, message_id=message_id, type=kind)  # type: ignore[arg-type]
        await self._call("PATCH", "/api/vote", body=request, retry=True)
        self._log_fact(chat_id, "vote", {"message_id": message_id, "type": kind})
        return Vote(chat_id=chat_id, message_id=message_id, type=kind)  # type: ignore[arg-type]

    async def upvote(self, chat_id: str, message_id: str) -> Vote:
        """Vote up."""
        return await self.vote(chat_id, message_id, "up")

    async def downvote(self, chat_id: str, message_id: str) -> Vote:
        """Vote down."""
        return await self.vote(chat_id, message_id, "down")

    async def submit_approval(
        self,
        chat_id: str,
        tool_use_id: str,
        approved: bool,
        *,
        reason: str | None = None,
        updated_input: dict[str, Any] | None = None,
        answers: dict[str, Any] | None = None,
    ) -> ApprovalResponse:
        """kai-agent: answer the tool call the live stream is waiting on.

        :param tool_use_id: the ``tool_call_id`` of the tool call (the
            ``approval_id`` of its ``ToolApprovalRequestEvent`` with
            ``transport="agent"``).
        """
        request = ApprovalRequest(
            tool_use_id=tool_use_id,
            approved=approved,
            reason=reason,
            updated_input=updated_input,
            answers=answers,
        )
        response = await self._call(
            "POST", f"/api/chat/{chat_id}/approval", body=request, retry=False
        )
        return decode_response(ApprovalResponse, self._http.body(response))

    async def get_usage(self) -> UsageResponse:
        """``GET /api/usage``: messages used, the limit, when it resets."""
        response = await self._call("GET", "/api/usage")
        return decode_response(UsageResponse, self._http.body(response))

    async def get_settings(self) -> AgentSettings:
        """``GET /api/settings``: the project's settings."""
        response = await self._call("GET", "/api/settings")
        return decode_response(AgentSettings, self._http.body(response))

    async def update_settings(self, *, custom_instructions: str | None = _UNSET) -> AgentSettings:
        """``PATCH /api/settings``; an omitted argument leaves the value alone, None clears it."""
        body: dict[str, Any] = {}
        if custom_instructions is not _UNSET:
            body["customInstructions"] = custom_instructions
        response = await self._call("PATCH", "/api/settings", body=body)
        return decode_response(AgentSettings, self._http.body(response))

    async def get_user_settings(self) -> UserAgentSettings:
        """``GET /api/settings/user``: the user's instructions and tool permissions."""
        response = await self._call("GET", "/api/settings/user")
        return decode_response(UserAgentSettings, self._http.body(response))

    async def update_user_settings(
        self,
        *,
        custom_instructions: str | None = _UNSET,
        tool_permissions: dict[str, str] | None = _UNSET,
    ) -> UserAgentSettings:
        """``PATCH /api/settings/user``; omitted arguments are left alone, None clears.

        :raises ValueError: when no argument is given.
        """
        body: dict[str, Any] = {}
        if custom_instructions is not _UNSET:
            body["customInstructions"] = custom_instructions
        if tool_permissions is not _UNSET:
            body["toolPermissions"] = tool_permissions
        if not body:
            raise ValueError(
                "update_user_settings() requires at least one argument; "
                "call with explicit values or None to clear individual fields."
            )
        response = await self._call("PATCH", "/api/settings/user", body=body)
        settings = decode_response(UserAgentSettings, self._http.body(response))
        if self._tool_policy is not None:
            self._tool_policy.permissions = dict(settings.tool_permissions or {})
        return settings

    async def get_tools(self) -> ToolsListResponse:
        """``GET /api/settings/tools``: the tools and whether each is read-only."""
        response = await self._call("GET", "/api/settings/tools")
        return decode_response(ToolsListResponse, self._http.body(response))

    async def get_suggestions(self, context: str, data: dict[str, Any]) -> SuggestionsResponse:
        """``POST /api/suggestions``: suggested prompts for a UI context."""
        request = SuggestionsRequest(context=context, data=data)
        response = await self._call("POST", "/api/suggestions", body=request)
        return decode_response(SuggestionsResponse, self._http.body(response))

    async def tool_policy(self, *, refresh: bool = False) -> ToolPolicy:
        """kai-agent: which tools wait for approval (fetched once, then cached).

        If the tools or the user's permissions cannot be fetched, every tool
        not known to be read-only is taken to wait (fail closed).
        """
        if self._tool_policy is not None and not refresh:
            return self._tool_policy
        read_only: dict[str, bool] | None = None
        permissions: dict[str, str] | None = None
        try:
            response = await self._call("GET", "/api/settings/tools", retry=False)
            tools = decode_response(ToolsListResponse, self._http.body(response))
            read_only = {tool.name: tool.read_only for tool in tools.tools}
        except KaiError:
            pass
        try:
            response = await self._call("GET", "/api/settings/user", retry=False)
            permissions = decode_response(
                UserAgentSettings, self._http.body(response)
            ).tool_permissions
        except KaiError:
            pass
        self._tool_policy = ToolPolicy(read_only, permissions)
        return self._tool_policy


class _HistoryPages:
    """Async iterator over every chat (a class, not an async generator: see ``_stream``)."""

    def __init__(self, client: KaiClient, batch_size: int) -> None:
        self._client = client
        self._batch = batch_size
        self._page: list[Chat] = []
        self._cursor: str | None = None
        self._more = True
        self._seen: set[str] = set()

    def __aiter__(self) -> _HistoryPages:
        return self

    async def __anext__(self) -> Chat:
        while not self._page:
            if not self._more:
                raise StopAsyncIteration
            page = await self._client.get_history(limit=self._batch, ending_before=self._cursor)
            fresh = [chat for chat in page.chats if chat.id not in self._seen]
            # Stop on an empty page, or one with nothing new (a server ignoring the cursor).
            self._more = bool(page.has_more and fresh)
            if page.chats:
                self._cursor = page.chats[-1].id
            self._seen.update(chat.id for chat in fresh)
            self._page = fresh[::-1]
        return self._page.pop()

    async def aclose(self) -> None:
        """Stop early (nothing is held open between pages)."""
        self._more = False
        self._page.clear()
