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

Error bodies of the Kai backend are ``{code, message, cause?}`` where
``code`` is ``<type>:<surface>``; :func:`error_from_response` maps them by
the type prefix. A body that is not JSON becomes ``http:<status>``.
"""

from __future__ import annotations

from typing import Any

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
    "error_from_response",
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
    if body is not None and isinstance(body.get("code"), str):
        code: str = body["code"]
        message = str(body.get("message") or f"HTTP {status}")
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
