"""The exceptions kai raises, with kai-client's names and attributes.

The tree::

    KaiError                      message, code ("<type>:<surface>"), cause
    ├── KaiAuthenticationError    401, unauthorized:*
    ├── KaiForbiddenError         403, forbidden:*
    ├── KaiNotFoundError          404, not_found:*
    ├── KaiRateLimitError         429, rate_limit:*   (+ retry_after seconds)
    ├── KaiBadRequestError        400, bad_request:*
    ├── KaiStreamError            a stream that was cut, malformed or too large
    ├── KaiConnectionError        the server could not be reached
    ├── KaiTimeoutError           a request or a stream read took too long
    └── KaiLogError               the local event log cannot be opened or written

Error bodies of kai-assistant are ``{code, message, cause?}`` where
``code`` is ``<type>:<surface>``; kai-agent nests them:
``{"error": {type, surface, message, exceptionId}}`` (the code becomes
``<type>:<surface>``, the ``exceptionId`` the cause).
:func:`error_from_response` maps both by the type prefix. A body that is not
JSON becomes ``http:<status>``.
"""

from __future__ import annotations

from typing import Any, NoReturn

__all__ = [
    "KaiAuthenticationError",
    "KaiBadRequestError",
    "KaiConnectionError",
    "KaiError",
    "KaiForbiddenError",
    "KaiLogError",
    "KaiNotFoundError",
    "KaiRateLimitError",
    "KaiStreamError",
    "KaiTimeoutError",
    "ERROR_CODE_MAP",
    "error_from_response",
    "raise_for_error_response",
]


class KaiError(Exception):
    """Base class of every error kai raises.

    :param message: what went wrong, in words a user can act on.
    :param code: ``<type>:<surface>`` as the server sent it, or one of ours
        (``http:<status>``, ``discovery:*``, ``stream:*``, ``log:*``).
    :param cause: a detail string, when the server or the transport gave one.
    """

    def __init__(
        self,
        message: str,
        code: str | None = None,
        cause: str | None = None,
        response_data: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.cause = cause
        self.response_data = response_data

    def __str__(self) -> str:
        text = f"[{self.code}] {self.message}" if self.code else self.message
        if self.cause and self.cause not in self.message:
            text += f" (cause: {self.cause})"
        return text

    def __repr__(self) -> str:
        return f"{type(self).__name__}(message={self.message!r}, code={self.code!r})"


class KaiAuthenticationError(KaiError):
    """The server refused the Storage API token (401)."""


class KaiForbiddenError(KaiError):
    """The token may not touch this resource (403), e.g. another user's chat."""


class KaiNotFoundError(KaiError):
    """The chat, vote or stream does not exist (404)."""


class KaiRateLimitError(KaiError):
    """Too many requests (429). ``retry_after`` is the server's hint in seconds."""

    def __init__(
        self,
        message: str,
        code: str | None = None,
        cause: str | None = None,
        response_data: dict[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, code, cause, response_data)
        self.retry_after = retry_after


class KaiBadRequestError(KaiError):
    """The server rejected the request as invalid (400)."""


class KaiStreamError(KaiError):
    """An answer stream was cut, malformed, or exceeded the size limit.

    ``events_delivered`` says how many events had reached the caller.
    """

    def __init__(
        self,
        message: str,
        code: str | None = None,
        cause: str | None = None,
        response_data: dict[str, Any] | None = None,
        events_delivered: int = 0,
    ) -> None:
        super().__init__(message, code, cause, response_data)
        self.events_delivered = events_delivered


class KaiConnectionError(KaiError):
    """The server could not be reached, or the connection broke."""


class KaiTimeoutError(KaiError):
    """A request, or a read on a stream, took longer than its timeout."""


class KaiLogError(KaiError):
    """The local event log cannot be opened, read or written."""


def printable(text: str, limit: int = 200) -> str:
    """``text`` cut to ``limit`` characters, anything not printable shown as ``?``.

    For server-supplied words put into an error message (a host, a content
    type, a tool name): a terminal must never interpret them.
    """
    return "".join(c if c.isprintable() else "?" for c in text[:limit])


_BY_TYPE: dict[str, type[KaiError]] = {
    "unauthorized": KaiAuthenticationError,
    "forbidden": KaiForbiddenError,
    "not_found": KaiNotFoundError,
    "rate_limit": KaiRateLimitError,
    "bad_request": KaiBadRequestError,
}

_BY_STATUS: dict[int, type[KaiError]] = {
    400: KaiBadRequestError,
    401: KaiAuthenticationError,
    403: KaiForbiddenError,
    404: KaiNotFoundError,
    429: KaiRateLimitError,
}


def error_from_response(
    status: int,
    body: dict[str, Any] | None,
    text: str = "",
    retry_after: float | None = None,
) -> KaiError:
    """Build the exception for an HTTP error response.

    :param status: the HTTP status code.
    :param body: the decoded JSON body, or None when it was not a JSON object.
    :param text: the raw body text, used when ``body`` is None.
    :param retry_after: the parsed ``Retry-After`` header, if any.
    """
    if body is not None and isinstance(body.get("error"), dict):
        body = _flatten_agent_error(body["error"])
    if body is not None and isinstance(body.get("code"), str):
        code: str = body["code"]
        given = body.get("message")
        message = given if isinstance(given, str) and given else f"HTTP {status}"
        cause = body.get("cause")
        cls = _BY_TYPE.get(code.split(":", 1)[0]) or _BY_STATUS.get(status, KaiError)
        cause_text = cause if isinstance(cause, str) else None
        data = body
    else:
        code = f"http:{status}"
        detail = text.strip()[:200]
        message = f"HTTP {status}: {detail}" if detail else f"HTTP {status}"
        cls = _BY_STATUS.get(status, KaiError)
        cause_text = None
        data = None
    if cls is KaiRateLimitError:
        return KaiRateLimitError(message, code, cause_text, data, retry_after=retry_after)
    return cls(message, code, cause_text, data)


def _flatten_agent_error(error: dict[str, Any]) -> dict[str, Any]:
    """kai-agent's ``{"error": {type, surface, message, exceptionId}}`` as a flat body.

    The code is ``<type>:<surface>`` (the surface defaults to ``api``), so the
    exception class follows the type as for kai-assistant's bodies; the
    ``exceptionId`` (what kai-agent's logs know the failure by) is the cause.
    """
    kind = error.get("type")
    surface = error.get("surface")
    flat: dict[str, Any] = {"error": error}
    if isinstance(kind, str) and kind:
        flat["code"] = f"{kind}:{surface if isinstance(surface, str) and surface else 'api'}"
    message = error.get("message")
    if isinstance(message, str) and message:
        flat["message"] = message
    exception_id = error.get("exceptionId")
    if isinstance(exception_id, (str, int)):
        flat["cause"] = str(exception_id)
    return flat


ERROR_CODE_MAP: dict[str, type[KaiError]] = {
    "unauthorized:chat": KaiAuthenticationError,
    "forbidden:chat": KaiForbiddenError,
    "not_found:chat": KaiNotFoundError,
    "rate_limit:chat": KaiRateLimitError,
    "bad_request:api": KaiBadRequestError,
}
"""kai-client's table of error codes. kai maps every code by its type (the part
before ``:``), so ``not_found:stream`` is a :class:`KaiNotFoundError` too."""


def raise_for_error_response(response_data: dict[str, Any]) -> NoReturn:
    """kai-client's helper: raise the exception an error body stands for.

    Accepts kai-assistant's ``{code, message, cause?}`` and kai-agent's nested
    ``{"error": {type, surface, message, exceptionId}}``.

    :raises KaiError: the subclass the code's type maps to, else :class:`KaiError`.
    """
    error = error_from_response(0, response_data)
    if error.code == "http:0":  # no code in the body: not an HTTP status either
        error.code = str(response_data.get("code") or "") or None
    if error.message == "HTTP 0":
        error.message = "Unknown error"
        error.args = (error.message,)
    raise error
