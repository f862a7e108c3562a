"""Turning failures into one clear line and a documented exit code.

=====  ==========================================================
code   meaning
=====  ==========================================================
0      success
1      any other error reported by the server or the client
2      bad usage (unknown option, bad argument, empty message)
3      missing configuration: no token, no URL, bad policy file
4      the server refused the token or the access (401, 403)
5      not found (unknown chat, vote or stream; 404)
6      the server could not be reached, or timed out
7      rate limited (429) after the retries ran out
8      the answer stream was cut or malformed
9      the local event log cannot be opened or written
10     the answer ended with an error or was aborted by the server
130    interrupted (Ctrl-C)
=====  ==========================================================
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import click

__all__ = ["EXIT_CODES", "exit_code_for", "fail", "reported", "run_trio"]

EXIT_CODES = {
    "ok": 0,
    "error": 1,
    "usage": 2,
    "config": 3,
    "auth": 4,
    "not_found": 5,
    "unreachable": 6,
    "rate_limited": 7,
    "stream": 8,
    "log": 9,
    "answer_error": 10,
    "interrupted": 130,
}


def exit_code_for(exc: BaseException) -> int:
    """The exit code of a failure (see the module table)."""
    from kai_core import exceptions as e

    if isinstance(exc, (e.KaiAuthenticationError, e.KaiForbiddenError)):
        return EXIT_CODES["auth"]
    if isinstance(exc, e.KaiNotFoundError):
        return EXIT_CODES["not_found"]
    if isinstance(exc, (e.KaiConnectionError, e.KaiTimeoutError)):
        return EXIT_CODES["unreachable"]
    if isinstance(exc, e.KaiRateLimitError):
        return EXIT_CODES["rate_limited"]
    if isinstance(exc, e.KaiStreamError):
        return EXIT_CODES["stream"]
    if isinstance(exc, e.KaiLogError):
        return EXIT_CODES["log"]
    if isinstance(exc, e.KaiBadRequestError):
        return EXIT_CODES["usage"]
    return EXIT_CODES["error"]


def _hint(exc: BaseException) -> str:
    from kai_core import exceptions as e

    if isinstance(exc, e.KaiAuthenticationError):
        return " (the Storage API token was refused: check --token / STORAGE_API_TOKEN)"
    if isinstance(exc, e.KaiRateLimitError) and exc.retry_after:
        return f" (retry after {exc.retry_after:g} s)"
    return ""


def fail(message: str, code: int) -> NoReturn:
    """Print ``kai: error: message`` on stderr and exit with ``code``."""
    click.echo(f"kai: error: {message}", err=True)
    sys.exit(code)


@contextmanager
def reported(debug: bool | None = None) -> Iterator[None]:
    """Turn failures inside the block into one line on stderr and an exit code.

    With ``debug`` the traceback is printed too.
    """
    from kai_core.exceptions import KaiError

    from .runtime import UsageError

    try:
        yield
    except UsageError as exc:
        _maybe_traceback(debug)
        fail(str(exc), exc.code)
    except KaiError as exc:
        _maybe_traceback(debug)
        fail(f"{exc}{_hint(exc)}", exit_code_for(exc))
    except KeyboardInterrupt:
        click.echo("\nkai: interrupted", err=True)
        sys.exit(EXIT_CODES["interrupted"])
    except OSError as exc:
        _maybe_traceback(debug)
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        fail(f"{exc.strerror or exc}{where}", EXIT_CODES["error"])


def run_trio(ctx: click.Context, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    """Run ``fn(*args)`` under trio, failures reported as by :func:`reported`."""
    import trio

    runtime = (ctx.find_root().obj or {}).get("runtime")
    with reported(bool(runtime and runtime.options.debug)):
        return trio.run(fn, *args)


def _maybe_traceback(debug: bool | None) -> None:
    if debug is None:
        ctx = click.get_current_context(silent=True)
        runtime = ((ctx.find_root().obj or {}) if ctx else {}).get("runtime")
        debug = bool(runtime and runtime.options.debug)
    if debug:
        import traceback

        traceback.print_exc()
