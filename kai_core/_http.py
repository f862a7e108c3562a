"""The HTTP transport under :class:`~kai_core.client.KaiClient`.

One job: send a request and hand back a good response, or raise the
:mod:`kai_core.exceptions` error that says what went wrong. It maps httpx
failures (refused connection, timeout, broken stream) and HTTP error
statuses to our exceptions, retries idempotent requests with capped
exponential back-off and jitter (``trio.sleep``, so tests can use trio's
autojump clock), and keeps the Storage API token out of every message.
"""

from __future__ import annotations

import email.utils
import functools
import math
import os
import random
import ssl
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any, Final

import httpx
import msgspec

from ._masking import MIN_SECRET, TokenMask
from .exceptions import (
    KaiConnectionError,
    KaiError,
    KaiRateLimitError,
    KaiTimeoutError,
    error_from_response,
    printable,
)

__all__ = [
    "MAX_ERROR_BODY",
    "RETRY_STATUSES",
    "RetryPolicy",
    "Transport",
    "close_response",
    "parse_retry_after",
    "read_error_body",
    "scrub",
]

RETRY_STATUSES: Final = frozenset({429, 502, 503, 504})
"""Statuses after which an idempotent request is tried again."""

MAX_ERROR_BODY: Final = 64 * 1024
"""Bytes of an error response's body read at most (its message is in the first few)."""

_MASK: Final = "***"


def scrub(text: str, secret: str) -> str:
    """``text`` with every occurrence of ``secret`` masked."""
    if secret and secret in text:
        return text.replace(secret, _MASK)
    return text


def shared_ssl_context() -> ssl.SSLContext:
    """The TLS context every client of this process verifies servers with.

    httpx builds a new context per client by default, and loading the CA bundle
    costs about 15 ms each time (a CLI run, a test suite or an app that opens
    many clients pays it again and again). The context is built as httpx would
    (``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` honoured, certifi otherwise) and kept
    per value of those variables, so changing them still takes effect.
    """
    return _ssl_context_for(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))


@functools.lru_cache(maxsize=4)
def _ssl_context_for(cert_file: str | None, cert_dir: str | None) -> ssl.SSLContext:
    del cert_file, cert_dir  # the cache key: create_ssl_context reads them itself
    return httpx.create_ssl_context()


def ssl_context_for(base_url: str) -> ssl.SSLContext:
    """The TLS context of a client whose every request goes to ``base_url``.

    For ``https`` it is :func:`shared_ssl_context`. A plain-``http`` server
    (the emulator, a local kai-assistant, a test) never needs the CA bundle,
    whose loading is most of a short CLI run's or test's time to its first
    event (~15 ms on a fast machine, ~55 ms on a slow one); it gets a context
    that trusts nothing, so that an ``https`` request, which none of its
    requests is, would fail its certificate check rather than go unverified.
    """
    if httpx.URL(base_url).scheme == "http":
        return _trusting_nothing()
    return shared_ssl_context()


@functools.lru_cache(maxsize=1)
def _trusting_nothing() -> ssl.SSLContext:
    # PROTOCOL_TLS_CLIENT: certificates required and host names checked; no CA loaded.
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """The ``Retry-After`` header in seconds (delta-seconds or an HTTP date), or None."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(0.0, seconds)


class RetryPolicy(msgspec.Struct, frozen=True):
    """How idempotent requests are retried.

    :param max_retries: retries after the first try (0 = never retry).
    :param backoff: the first delay in seconds; it doubles per retry...
    :param max_backoff: ...up to this cap. Each delay is jittered to 50–100 %.
    :param max_retry_after: a ``Retry-After`` longer than this is not waited
        out: the rate-limit error is raised instead.
    """

    max_retries: int = 3
    backoff: float = 0.5
    max_backoff: float = 30.0
    max_retry_after: float = 120.0

    def delay(self, attempt: int, rng: random.Random, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based)."""
        if retry_after is not None:
            return retry_after
        cap = min(self.max_backoff, self.backoff * 2.0**attempt)
        return cap * (0.5 + rng.random() / 2)


class Transport:
    """An ``httpx.AsyncClient`` plus error mapping, retries and token masking.

    :param base_url: the server, without a trailing slash.
    :param token: the Storage API token (sent as ``x-storageapi-token``).
    :param storage_api_url: sent as ``x-storageapi-url``.
    :param timeout: seconds for each phase of a plain request.
    :param stream_timeout: seconds to send a streaming request and to wait for a free connection.
    :param stream_read_timeout: the longest silence between two reads of a stream.
    :param connect_timeout: seconds to open a connection.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        storage_api_url: str,
        *,
        timeout: float,
        stream_timeout: float,
        stream_read_timeout: float | None,
        connect_timeout: float,
        retry: RetryPolicy,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url
        self._token = token
        self._mask = TokenMask(token) if len(token) >= MIN_SECRET else None
        self._auth_headers = {"x-storageapi-token": token, "x-storageapi-url": storage_api_url}
        self.request_timeout = httpx.Timeout(timeout, connect=connect_timeout)
        self.stream_timeout = httpx.Timeout(
            stream_timeout, connect=connect_timeout, read=stream_read_timeout
        )
        self.retry = retry
        self._transport = transport
        self._http: httpx.AsyncClient | None = None
        self._rng = random.Random()

    def __repr__(self) -> str:
        return f"Transport(base_url={self.base_url!r})"

    @property
    def http(self) -> httpx.AsyncClient:
        """The httpx client, created on first use."""
        if self._http is None or self._http.is_closed:
            self._http = httpx.AsyncClient(
                base_url=self.base_url,
                timeout=self.request_timeout,
                verify=ssl_context_for(self.base_url),
                transport=self._transport,
                follow_redirects=False,
            )
        return self._http

    async def aclose(self) -> None:
        """Close the connection pool."""
        if self._http is not None:
            http, self._http = self._http, None
            await http.aclose()

    @property
    def token(self) -> str:
        """The Storage API token (for masking; never shown)."""
        return self._token

    def scrub(self, text: str) -> str:
        """``text`` with the token masked."""
        return scrub(text, self._token)

    def scrub_bytes(self, data: bytes) -> bytes:
        """``data`` with the token (8+ characters, as real tokens are) masked,
        raw or, in JSON, spelled with escapes (:class:`~kai_core._masking.TokenMask`)."""
        return data if self._mask is None else self._mask(data)

    def body(self, response: httpx.Response) -> bytes:
        """A read response's body, the token masked (every JSON answer is read through this)."""
        return self.scrub_bytes(response.content)

    # -- requests ----------------------------------------------------------------

    def build(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        params: Mapping[str, Any] | None = None,
        auth: bool = True,
        stream: bool = False,
    ) -> httpx.Request:
        """An ``httpx.Request`` for ``path`` with the auth headers and the right timeouts."""
        headers: dict[str, str] = dict(self._auth_headers) if auth else {}
        if content is not None:
            headers["content-type"] = "application/json"
        if stream:
            headers["accept"] = "text/event-stream"
        timeout = self.stream_timeout if stream else self.request_timeout
        return self.http.build_request(
            method,
            path,
            content=content,
            params=params,
            headers=headers,
            timeout=timeout,
        )

    async def send(
        self, request: httpx.Request, *, retry: bool, stream: bool = False
    ) -> httpx.Response:
        """Send ``request``; return a response with status < 400 or raise.

        :param retry: retry on connection errors and 429/502/503/504 (only for
            idempotent requests).
        :param stream: return before reading the body (the caller closes it).
        """
        attempt = 0
        while True:
            try:
                response = await self.http.send(request, stream=stream)
            except httpx.DecodingError as exc:
                # A body that does not decode as its content-encoding says.
                raise KaiError(
                    f"the answer to {request.method} {_url(request)} could not be decoded",
                    code="response:invalid",
                    cause=self.scrub(str(exc) or type(exc).__name__),
                ) from exc
            except httpx.TransportError as exc:
                error = self.transport_error(exc, request)
                if retry and attempt < self.retry.max_retries and _retryable(exc):
                    await _sleep(self.retry.delay(attempt, self._rng))
                    attempt += 1
                    continue
                raise error from exc
            if response.status_code < 300:
                return response
            if response.status_code < 400:
                raise await self.redirect_error(response)
            error = await self.status_error(response)
            if (
                retry
                and attempt < self.retry.max_retries
                and response.status_code in RETRY_STATUSES
            ):
                retry_after = error.retry_after if isinstance(error, KaiRateLimitError) else None
                if retry_after is None or retry_after <= self.retry.max_retry_after:
                    await _sleep(self.retry.delay(attempt, self._rng, retry_after))
                    attempt += 1
                    continue
            raise error

    async def status_error(self, response: httpx.Response) -> KaiError:
        """Read (the start of) an error response, close it, and build its exception.

        The body is whatever arrived of its first :data:`MAX_ERROR_BODY` bytes:
        a body cut short, badly framed or endless still gives the error of its status.
        The token is masked in it, escaped or not.
        """
        raw = self.scrub_bytes(await read_error_body(response))
        text = self.scrub(raw.decode("utf-8", "replace"))
        body: dict[str, Any] | None = None
        if text.lstrip().startswith("{"):
            try:
                decoded = msgspec.json.decode(text)
            except (msgspec.DecodeError, RecursionError):
                decoded = None
            if isinstance(decoded, dict):
                body = decoded
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        return error_from_response(response.status_code, body, text, retry_after)

    async def redirect_error(self, response: httpx.Response) -> KaiError:
        """The error for a 3xx answer (closed): kai follows no redirects, it names them.

        A redirect would take the token to another server, or turn a POST
        into a GET; more often the URL is wrong (a login page, ``http``
        to ``https``). The message names the target's scheme and host.
        """
        await close_response(response)
        status = response.status_code
        location = response.headers.get("location", "")
        try:
            target = response.url.join(location) if location else None
        except httpx.InvalidURL:
            target = None
        where = "elsewhere"
        if target is not None and target.host:
            host = printable(target.host)
            where = f"to {target.scheme}://{host}"
        request = response.request
        return KaiError(
            f"{request.method} {_url(request)} was redirected {where} (HTTP {status}); "
            "kai follows no redirects: check the server URL",
            code=f"http:{status}",
        )

    def transport_error(self, exc: httpx.TransportError, request: httpx.Request) -> KaiError:
        """Our exception for an httpx transport failure on ``request``."""
        return transport_error(exc, f"{request.method} {_url(request)}", self._token)


async def read_error_body(response: httpx.Response) -> bytes:
    """Up to :data:`MAX_ERROR_BODY` bytes of ``response``'s body; the response is closed.

    What arrived before a failure (a cut, broken chunking, a timeout) is kept.
    """
    if not response.is_stream_consumed:
        pieces: list[bytes] = []
        size = 0
        reads = response.aiter_bytes()
        try:
            async for piece in reads:
                pieces.append(piece)
                size += len(piece)
                if size >= MAX_ERROR_BODY:
                    break
        except httpx.HTTPError:
            pass
        await close_response(response, reads)
        return b"".join(pieces)[:MAX_ERROR_BODY]
    await close_response(response)
    try:
        return response.content[:MAX_ERROR_BODY]
    except httpx.ResponseNotRead:
        return b""


async def _sleep(seconds: float) -> None:
    # trio is imported here, not at the top: this runs under trio.run (so it is
    # loaded already), while making a KaiClient, which builds a Transport, does
    # not need trio (issue 16: import + KaiClient(...) against kai-client's).
    import trio

    await trio.sleep(seconds)


async def close_response(
    response: httpx.Response, reads: AsyncIterator[bytes] | None = None
) -> None:
    """Close ``response``, whose body ``reads`` (httpx's) may be half read; never raises."""
    import trio  # see _sleep

    with trio.CancelScope(shield=True):
        if reads is not None:
            # httpx reads through a chain of async generators; abandoning it
            # half-way leaves httpcore's innermost one for the garbage
            # collector (a ResourceWarning under trio). Resuming it under a
            # cancelled scope runs the chain to its end instead: buffered
            # bytes come out, the next real read raises Cancelled inside it.
            with trio.CancelScope() as drain:
                drain.cancel()
                try:
                    for _ in range(10_000):
                        await reads.__anext__()
                except BaseException:  # noqa: B036 - Cancelled, StopAsyncIteration, errors
                    pass
        try:
            await response.aclose()
        except Exception:  # closing a broken connection may fail; nothing to do
            pass


def transport_error(exc: httpx.TransportError, what: str, token: str = "") -> KaiError:
    """Map an httpx transport failure to :class:`KaiTimeoutError` / :class:`KaiConnectionError`.

    :param what: what was being done, e.g. ``"GET http://host/api/history"``.
    """
    cause = scrub(str(exc) or type(exc).__name__, token)
    what = scrub(what, token)
    if isinstance(exc, httpx.ConnectTimeout):
        return KaiTimeoutError(f"timed out connecting for {what}", "timeout:connect", cause)
    if isinstance(exc, httpx.ReadTimeout):
        return KaiTimeoutError(f"timed out waiting for the server ({what})", "timeout:read", cause)
    if isinstance(exc, httpx.TimeoutException):
        return KaiTimeoutError(f"timed out ({what})", "timeout:request", cause)
    if isinstance(exc, httpx.ConnectError):
        tls = _tls_failure(exc)
        if tls is not None:
            # httpx says only "ConnectError": say what TLS refused, e.g. a
            # self-signed certificate behind a proxy.
            reason = getattr(tls, "verify_message", None) or tls.reason or str(tls)
            return KaiConnectionError(
                f"the TLS connection for {what} failed: {reason}",
                "connection:tls",
                scrub(str(tls), token),
            )
        return KaiConnectionError(
            f"could not connect to the server for {what}", "connection:refused", cause
        )
    return KaiConnectionError(f"the connection failed during {what}", "connection:error", cause)


def _retryable(exc: httpx.TransportError) -> bool:
    # Timeouts other than connect are not retried: the caller already waited long.
    if isinstance(exc, httpx.TimeoutException):
        return isinstance(exc, httpx.ConnectTimeout)
    if isinstance(exc, httpx.ConnectError) and isinstance(
        _tls_failure(exc), ssl.SSLCertVerificationError
    ):
        return False  # a certificate refused now is refused on every try
    return isinstance(exc, (httpx.NetworkError, httpx.RemoteProtocolError))


def _url(request: httpx.Request) -> str:
    # The URL without the query string: ids in it are fine, but keep messages short.
    url = request.url
    return f"{url.scheme}://{url.netloc.decode('ascii', 'replace')}{url.path}"


def _tls_failure(exc: BaseException) -> ssl.SSLError | None:
    """The TLS error behind a connect failure (httpx, httpcore and trio each wrap it)."""
    seen = 0
    cause: BaseException | None = exc
    while cause is not None and seen < 10:
        if isinstance(cause, ssl.SSLError):
            return cause
        cause = cause.__cause__ or cause.__context__
        seen += 1
    return None
