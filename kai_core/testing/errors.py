"""Error answers of the emulated backend: the template's ``ChatSDKError`` (protocol.md C.4)."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse

__all__ = ["ApiError", "error_response", "json_body"]

_MESSAGES = {
    "bad_request:api": "The request couldn't be processed. Please check your input and try again.",
    "bad_request:approval": "There is no tool call waiting for this approval.",
    "unauthorized:chat": "You need to sign in to view this chat. Please sign in and try again.",
    "forbidden:chat": "This chat belongs to another user. Please check the chat ID and try again.",
    "forbidden:vote": "This chat belongs to another user. Please check the chat ID and try again.",
    "not_found:chat": "The requested chat was not found. Please check the chat ID and try again.",
    "not_found:vote": "The requested chat was not found. Please check the chat ID and try again.",
    "not_found:stream": "The requested stream was not found.",
    "rate_limit:chat": "You have exceeded your maximum number of messages for the day. Please try again later.",
    "offline:chat": "We're having trouble sending your message. Please check your internet connection and try again.",
}
_STATUS = {
    "bad_request": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "rate_limit": 429,
    "offline": 503,
}


def error_response(
    code: str, cause: str | None = None, *, status: int | None = None
) -> JSONResponse:
    """A ``{code, message, cause?}`` error with the status its type maps to.

    The ``database`` surface is hidden as the template hides it: empty code,
    a generic message.
    """
    kind, _, surface = code.partition(":")
    body: dict[str, Any]
    if surface == "database":
        body = {"code": "", "message": "Something went wrong. Please try again later."}
    else:
        body = {
            "code": code,
            "message": _MESSAGES.get(code, "Something went wrong. Please try again later."),
        }
        if cause is not None:
            body["cause"] = cause
    return JSONResponse(body, status_code=status or _STATUS.get(kind, 500))


class ApiError(Exception):
    """Raised inside a route to answer with :func:`error_response`."""

    def __init__(self, code: str, cause: str | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.cause = cause


async def json_body(request: Request) -> dict[str, Any]:
    """The request body as a JSON object, or 400 ``bad_request:api``."""
    try:
        body = msgspec.json.decode(await request.body())
    except msgspec.DecodeError:
        raise ApiError("bad_request:api", "The body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise ApiError("bad_request:api", "The body must be a JSON object.")
    return body
