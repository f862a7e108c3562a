"""``kai_core.aio.KaiClient``: :class:`kai_core.KaiClient` for asyncio code.

Each method is the trio client's own, run on the client's trio thread
(:mod:`kai_core.aio._portal`) and made awaitable here by :func:`_bridge`,
which keeps its signature (typed through ``ParamSpec``, so mypy checks the
arguments against the trio method's). A public method of the trio client
that is not listed in the class body is still bridged at import (see
:data:`FILLED_IN`); listing it gives it its static type.
"""

from __future__ import annotations

import functools
import inspect
import weakref
from collections.abc import AsyncIterator, Callable, Coroutine
from types import TracebackType
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar, overload

from .. import client as _trio
from .._stream import EventStream as _TrioEventStream
from ..sse import DEFAULT_MAX_EVENT_SIZE
from ._portal import Portal
from ._stream import EventStream

if TYPE_CHECKING:
    import httpx

    from .._stream import EventLogSink
    from ..discovery import KaiBackend
    from ..exceptions import KaiLogError

__all__ = ["FILLED_IN", "KaiClient"]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")
_Trio = _trio.KaiClient


# -- bridging one method -------------------------------------------------------------


@overload
def _bridge(
    method: Callable[Concatenate[_trio.KaiClient, P], _TrioEventStream],
) -> Callable[Concatenate[KaiClient, P], EventStream]: ...
@overload
def _bridge(
    method: Callable[Concatenate[_trio.KaiClient, P], AsyncIterator[T]],
) -> Callable[Concatenate[KaiClient, P], AsyncIterator[T]]: ...
@overload
def _bridge(
    method: Callable[Concatenate[_trio.KaiClient, P], Coroutine[Any, Any, R]],
) -> Callable[Concatenate[KaiClient, P], Coroutine[Any, Any, R]]: ...
@overload
def _bridge(
    method: Callable[Concatenate[_trio.KaiClient, P], R],
) -> Callable[Concatenate[KaiClient, P], R]: ...
def _bridge(method: Any) -> Any:
    """The asyncio version of a trio client method, by what the method returns.

    - a coroutine function: awaited on the trio thread (:meth:`Portal.call`);
    - a stream (``EventStream``) or another async iterator: built here (they
      are lazy), read on the trio thread, as a :class:`~kai_core.aio.EventStream`;
    - anything else (plain functions): called as it is.
    """
    returns = str(inspect.signature(method).return_annotation)
    if inspect.iscoroutinefunction(method):

        async def bridged(self: KaiClient, /, *args: Any, **kwargs: Any) -> Any:
            return await self._portal.call(functools.partial(method, self._client, *args, **kwargs))

    elif returns.startswith(("EventStream", "AsyncIterator")):

        def bridged(self: KaiClient, /, *args: Any, **kwargs: Any) -> Any:  # type: ignore[misc]
            return EventStream(self._portal, method(self._client, *args, **kwargs))

        returns = "kai_core.aio.EventStream"
    else:

        def bridged(self: KaiClient, /, *args: Any, **kwargs: Any) -> Any:  # type: ignore[misc]
            return method(self._client, *args, **kwargs)

    functools.update_wrapper(bridged, method)
    bridged.__module__ = __name__
    bridged.__qualname__ = f"KaiClient.{method.__name__}"
    bridged.__signature__ = inspect.signature(method).replace(return_annotation=returns)  # type: ignore[attr-defined]
    return bridged


class KaiClient:
    """The Kai client for asyncio: :class:`kai_core.KaiClient`'s constructor and methods.

    Every method of the trio client is here with the same name and
    arguments; coroutine methods are awaitable under asyncio, streaming
    methods return a :class:`kai_core.aio.EventStream` of the same events,
    and the same exceptions are raised. The trio client runs in a thread of
    its own, started on first use and stopped by :meth:`close` (``async
    with`` closes it too); see ``docs/asyncio.md`` for what that costs.

    A client belongs to the event loop it is first used in: using it from
    another loop, or after :meth:`close`, raises ``RuntimeError``.
    ``on_log_error`` is called on that loop.
    """

    _client: _trio.KaiClient
    _portal: Portal

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
        portal = Portal()
        client = _trio.KaiClient(
            storage_api_token,
            storage_api_url,
            base_url,
            timeout,
            stream_timeout,
            backend=backend,
            log=log,
            max_event_size=max_event_size,
            max_retries=max_retries,
            retry_backoff=retry_backoff,
            max_retry_backoff=max_retry_backoff,
            connect_timeout=connect_timeout,
            stream_read_timeout=stream_read_timeout,
            resume_attempts=resume_attempts,
            on_log_error=_on_loop(portal, on_log_error),
            transport=transport,
            require_https=require_https,
        )
        self._adopt(client, portal)

    def _adopt(self, client: _trio.KaiClient, portal: Portal) -> None:
        self._client = client
        self._portal = portal
        portal.on_exit(client.close)
        # A client dropped without close() still ends its thread.
        weakref.finalize(self, portal.abandon)

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

        See :meth:`kai_core.KaiClient.from_storage_api`.
        """
        portal = Portal()
        options["on_log_error"] = _on_loop(portal, options.get("on_log_error"))
        try:
            client = await portal.call(
                functools.partial(
                    _Trio.from_storage_api,
                    storage_api_token,
                    storage_api_url,
                    timeout,
                    stream_timeout,
                    service,
                    **options,
                )
            )
        except BaseException:
            await portal.aclose()
            raise
        self = cls.__new__(cls)
        self._adopt(client, portal)
        return self

    def __repr__(self) -> str:
        return "kai_core.aio." + repr(self._client)

    # -- lifetime ------------------------------------------------------------------

    async def __aenter__(self) -> KaiClient:
        self._portal.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close every open stream, the connection pool and the client's thread.

        Unlike the trio client, a closed asyncio client cannot be used again.
        """
        await self._portal.aclose()

    aclose = close

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._portal.closed

    # -- what the trio client holds ------------------------------------------------

    @property
    def trio_client(self) -> _trio.KaiClient:
        """The :class:`kai_core.KaiClient` doing the work (use it only from its trio thread)."""
        return self._client

    @property
    def base_url(self) -> str:
        """The Kai server."""
        return self._client.base_url

    @property
    def storage_api_url(self) -> str:
        """The stack's Storage API."""
        return self._client.storage_api_url

    @property
    def storage_api_token(self) -> str:
        """The Storage API token (kept for kai-client compatibility; never printed)."""
        return self._client.storage_api_token

    @property
    def backend(self) -> KaiBackend | None:
        """Which backend ``base_url`` is, if known."""
        return self._client.backend

    @property
    def log(self) -> EventLogSink | None:
        """The event log, or None (also once it failed: see :attr:`log_error`)."""
        return self._client.log

    @property
    def log_error(self) -> KaiLogError | None:
        """The log failure that turned logging off, if any."""
        return self._client.log_error

    # -- the methods (the trio client's, bridged) ----------------------------------

    new_chat_id = staticmethod(_Trio.new_chat_id)
    new_message_id = staticmethod(_Trio.new_message_id)

    # plain requests
    ping = _bridge(_Trio.ping)
    info = _bridge(_Trio.info)
    get_chat = _bridge(_Trio.get_chat)
    delete_chat = _bridge(_Trio.delete_chat)
    get_history = _bridge(_Trio.get_history)
    get_all_history = _bridge(_Trio.get_all_history)
    get_votes = _bridge(_Trio.get_votes)
    vote = _bridge(_Trio.vote)
    upvote = _bridge(_Trio.upvote)
    downvote = _bridge(_Trio.downvote)
    submit_approval = _bridge(_Trio.submit_approval)
    get_usage = _bridge(_Trio.get_usage)
    get_settings = _bridge(_Trio.get_settings)
    update_settings = _bridge(_Trio.update_settings)
    get_user_settings = _bridge(_Trio.get_user_settings)
    update_user_settings = _bridge(_Trio.update_user_settings)
    get_tools = _bridge(_Trio.get_tools)
    get_suggestions = _bridge(_Trio.get_suggestions)
    tool_policy = _bridge(_Trio.tool_policy)
    chat = _bridge(_Trio.chat)
    append_to_log = _bridge(_Trio.append_to_log)

    # streams
    send_message = _bridge(_Trio.send_message)
    stream_message = _bridge(_Trio.stream_message)
    answer_approvals = _bridge(_Trio.answer_approvals)
    send_tool_approval_response = _bridge(_Trio.send_tool_approval_response)
    approve_tool = _bridge(_Trio.approve_tool)
    reject_tool = _bridge(_Trio.reject_tool)
    send_tool_result = _bridge(_Trio.send_tool_result)
    confirm_tool = _bridge(_Trio.confirm_tool)
    deny_tool = _bridge(_Trio.deny_tool)
    resume_stream = _bridge(_Trio.resume_stream)


def public_methods(cls: type) -> list[str]:
    """The public methods of ``cls`` (properties and other attributes left out)."""
    names = []
    for name in dir(cls):
        if name.startswith("_"):
            continue
        value = inspect.getattr_static(cls, name)
        if isinstance(value, (staticmethod, classmethod)) or inspect.isfunction(value):
            names.append(name)
    return names


FILLED_IN: list[str] = []
"""Methods of the trio client bridged at import because the class body does not list
them: they work, untyped; ``tests/test_aio_client.py`` asks for them to be listed."""

for _name in public_methods(_Trio):
    if _name not in KaiClient.__dict__:
        _static = inspect.getattr_static(_Trio, _name)
        if isinstance(_static, (staticmethod, classmethod)):
            setattr(KaiClient, _name, _static)  # needs no client: the same function
        else:
            setattr(KaiClient, _name, _bridge(getattr(_Trio, _name)))
        FILLED_IN.append(_name)


def _on_loop(
    portal: Portal, callback: Callable[[KaiLogError], None] | None
) -> Callable[[KaiLogError], None] | None:
    """``callback``, called on the asyncio loop instead of the trio thread."""
    if callback is None:
        return None

    def call_on_loop(error: KaiLogError) -> None:
        if not portal.notify(callback, error):
            callback(error)  # the loop is gone: better here than never

    return call_on_loop
