"""Find the Kai backend of a Keboola stack through its Storage API.

``GET {storage_api_url}/v2/storage`` (with ``x-storageapi-token``) lists the
stack's services as ``{id, url}``; Kai is ``kai-agent`` (the current backend)
or ``kai-assistant`` (the legacy one). Errors carry kai-client's codes:
``discovery:http_error``, ``discovery:service_not_found``, ``discovery:no_url``.

:func:`verify_token` asks the same Storage API whose token it is
(``GET /v2/storage/tokens/verify``), for ``kai verify``.

A service URL that is not ``http(s)://host`` is refused (``discovery:bad_url``);
one in plain ``http`` to a host other than this machine gets an
:class:`InsecureURLWarning`, or is refused (``config:insecure_url``) with
``require_https=True``: the Storage API token would travel in clear text.
"""

from __future__ import annotations

import enum
import ipaddress
import warnings
from typing import TYPE_CHECKING

from .api import StorageIndex, TokenInfo, decode_response
from .exceptions import KaiError, printable

if TYPE_CHECKING:
    # Imported where a URL is parsed or a request made: the client imports
    # this module, and ``import kai_core.client`` must not load httpx (issue 16).
    import httpx

    from ._http import RetryPolicy, Transport

__all__ = [
    "InsecureURLWarning",
    "KaiBackend",
    "check_https",
    "discover",
    "parse_backend",
    "verify_token",
]


class InsecureURLWarning(UserWarning):
    """Discovery found a Kai service in plain ``http`` on another machine."""


class KaiBackend(enum.StrEnum):
    """The two Kai backends, by their Storage API service id."""

    AGENT = "kai-agent"
    """The current backend: the stream waits open while a tool awaits approval."""
    ASSISTANT = "kai-assistant"
    """The legacy backend: the AI SDK v6 approval flow (re-POST), stream resume."""


_ALIASES = {
    "agent": KaiBackend.AGENT,
    "kai-agent": KaiBackend.AGENT,
    "assistant": KaiBackend.ASSISTANT,
    "kai-assistant": KaiBackend.ASSISTANT,
}


def parse_backend(value: str | KaiBackend | None) -> KaiBackend | None:
    """``"agent"``, ``"kai-agent"``, ``"assistant"``, ``"kai-assistant"``, a
    :class:`KaiBackend` or None (= not known / choose automatically)."""
    if value is None or isinstance(value, KaiBackend):
        return value
    try:
        return _ALIASES[value.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown Kai backend {value!r}: use 'agent' or 'assistant'") from None


def _is_local(host: str) -> bool:
    """Whether ``host`` is this machine (``localhost`` or a loopback address)."""
    if host.lower() in ("localhost", "localhost.") or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_https(url: str, what: str, *, require_https: bool) -> bool:
    """Whether ``url`` keeps the token safe: ``https``, or ``http`` to this machine.

    :param what: what the URL is, for the message (e.g. ``"the Kai service"``).
    :raises KaiError: ``config:insecure_url`` when it does not and ``require_https``.
    """
    import httpx

    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return True  # not a URL at all: the request says so
    if parsed.scheme != "http" or _is_local(parsed.host):
        return True
    if require_https:
        raise KaiError(
            f"{what} is plain http on another machine ({parsed.scheme}://{parsed.host}), "
            "and https is required (--require-https / KAI_REQUIRE_HTTPS): "
            "the Storage API token would travel unencrypted",
            code="config:insecure_url",
        )
    return False


async def discover(
    storage_api_token: str,
    storage_api_url: str,
    service: str | KaiBackend | None = None,
    *,
    http_timeout: float = 30.0,
    retry: RetryPolicy | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    require_https: bool = False,
) -> tuple[str, KaiBackend]:
    """Return ``(base_url, backend)`` of the stack's Kai service.

    :param service: the backend to look for; None prefers ``kai-agent`` when
        the stack lists it, else ``kai-assistant``.
    :param http_timeout: seconds for each phase of the request.
    :param require_https: refuse a plain ``http`` Storage API or service URL
        to another machine (else such a service URL gets an :class:`InsecureURLWarning`).
    :raises KaiError: ``discovery:http_error`` when the Storage API answers
        with an error (the subclass follows the status, e.g.
        :class:`~kai_core.exceptions.KaiAuthenticationError` for 401),
        ``discovery:service_not_found``, ``discovery:no_url``,
        ``discovery:bad_url`` (not an ``http(s)`` URL with a host),
        ``config:insecure_url``.
    :raises KaiConnectionError: the Storage API cannot be reached.
    :raises KaiTimeoutError: it did not answer in time.
    """
    wanted = parse_backend(service)
    storage_api_url = storage_api_url.rstrip("/")
    check_https(storage_api_url, "the Storage API URL", require_https=require_https)
    http = _storage_api(storage_api_token, storage_api_url, http_timeout, retry, transport)
    try:
        try:
            response = await _get(http, "/v2/storage")
        except KaiError as exc:
            if exc.code is not None and exc.code.startswith(("connection:", "timeout:")):
                raise
            exc.message = (
                f"could not discover the Kai service: the Storage API at {storage_api_url} "
                f"answered {exc.message}"
            )
            exc.args = (exc.message,)
            exc.code = "discovery:http_error"
            raise
        index = decode_response(StorageIndex, response.content, "the Storage API index")
    finally:
        await http.aclose()

    by_id = {s.id: s for s in index.services}
    if wanted is None:
        backend = KaiBackend.AGENT if KaiBackend.AGENT.value in by_id else KaiBackend.ASSISTANT
    else:
        backend = wanted
    found = by_id.get(backend.value)
    if found is None:
        available = sorted(by_id)
        raise KaiError(
            f"{backend.value} service not found. Available services: {available}",
            code="discovery:service_not_found",
        )
    if not found.url:
        raise KaiError(f"{backend.value} service has no URL", code="discovery:no_url")
    url = found.url.rstrip("/")
    import httpx

    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        shown = printable(url)
        raise KaiError(
            f"{backend.value} service has a URL that is not http(s)://host: {shown!r}",
            code="discovery:bad_url",
        )
    what = f"the {backend.value} service the Storage API lists"
    if not check_https(url, what, require_https=require_https):
        warnings.warn(
            f"{what} is plain http on another machine ({parsed.host}): the Storage API "
            "token travels unencrypted (--require-https / KAI_REQUIRE_HTTPS refuses this)",
            InsecureURLWarning,
            stacklevel=2,
        )
    return url, backend


async def verify_token(
    storage_api_token: str,
    storage_api_url: str,
    *,
    http_timeout: float = 30.0,
    retry: RetryPolicy | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> TokenInfo:
    """``GET {storage_api_url}/v2/storage/tokens/verify``: whose token this is.

    :raises KaiError: the Storage API's answer to a bad token (e.g.
        :class:`~kai_core.exceptions.KaiAuthenticationError` for 401),
        ``response:invalid`` for a body of another shape.
    :raises KaiConnectionError: the Storage API cannot be reached.
    """
    url = storage_api_url.rstrip("/")
    http = _storage_api(storage_api_token, url, http_timeout, retry, transport)
    try:
        response = await _get(http, "/v2/storage/tokens/verify")
        return decode_response(TokenInfo, response.content, "the token verification")
    finally:
        await http.aclose()


def _storage_api(
    token: str,
    url: str,
    http_timeout: float,
    retry: RetryPolicy | None,
    transport: httpx.AsyncBaseTransport | None,
) -> Transport:
    from ._http import RetryPolicy, Transport

    return Transport(
        url,
        token,
        url,
        timeout=http_timeout,
        stream_timeout=http_timeout,
        stream_read_timeout=http_timeout,
        connect_timeout=min(http_timeout, 10.0),
        retry=retry or RetryPolicy(),
        transport=transport,
    )


async def _get(http: Transport, path: str) -> httpx.Response:
    """A GET of the Storage API: only the token header (it is not a Kai request)."""
    request = http.build("GET", path)
    request.headers.pop("x-storageapi-url", None)
    return await http.send(request, retry=True)
