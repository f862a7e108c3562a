"""Turning failures into one clear line and a documented exit code.

=====  ==========================================================
code   meaning
=====  ==========================================================
0      success
1      any other error reported by the server or the client
2      bad usage (unknown option, bad argument, empty message, bad
       search syntax with --raw, a file that is not a kai export, a
       chat id prefix that is too short or matches several chats)
3      missing configuration: no token, no URL, bad policy file, the
       Kai service (--service) not listed by the Storage API (or its
       URL unusable, or plain http with --require-https), a server that
       is the other backend than --service says
4      the server refused the token or the access (401, 403)
5      not found (unknown chat, vote or stream; 404; a chat not in the log)
6      the server could not be reached, or timed out
7      rate limited (429) after the retries ran out
8      the answer stream was cut or malformed
9      the local event log cannot be opened or written
10     the answer ended with an error or was aborted by the server
130    interrupted (Ctrl-C)
141    stdout was closed early (e.g. piped into ``head``); nothing printed
=====  ==========================================================
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn

from kai_core.sanitize import for_terminal

if TYPE_CHECKING:
    import click

__all__ = [
    "EXIT_CODES",
    "UsageError",
    "exit_code_for",
    "fail",
    "reported",
    "require_extra",
    "run_trio",
]


class UsageError(Exception):
    """A problem the user can fix: printed as one line, exit code ``code``
    (also importable from :mod:`kai_shell.runtime`, which raises most of them)."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


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
    "broken_pipe": 141,
}

# Error codes (``KaiError.code``) whose kind the exception class does not tell.
_CODE_KINDS = {
    "discovery:service_not_found": "config",
    "discovery:no_url": "config",
    "discovery:bad_url": "config",
    "config:insecure_url": "config",
    "stream:backend_mismatch": "config",
    "log:bad_query": "usage",
    "log:bad_import": "usage",
    "log:backup_exists": "usage",
    "log:bad_output": "usage",
    "log:no_chat": "not_found",
    "chat_id:ambiguous": "usage",
    "chat_id:bad_prefix": "usage",
}


def exit_code_for(exc: BaseException) -> int:
    """The exit code of a failure (see the module table)."""
    from kai_core import exceptions as e

    kind = _CODE_KINDS.get(getattr(exc, "code", None) or "")
    if kind is not None:
        return EXIT_CODES[kind]
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
    if isinstance(exc, (e.KaiConnectionError, e.KaiTimeoutError)):
        return " (is the server up? check --url / STORAGE_API_URL and --base-url / KAI_BASE_URL)"
    if exc.__class__ is e.KaiError and (exc.code or "").startswith("discovery:"):
        return " (choose the backend with --service / KAI_SERVICE, or give --base-url)"
    return ""


def fail(message: str, code: int) -> NoReturn:
    """Print ``kai: error: message`` on stderr and exit with ``code``.

    The message is made safe for a terminal first: it often quotes the
    server (an error body, a reason), and stderr reaches the terminal even
    when stdout is piped.
    """
    _say(f"kai: error: {for_terminal(message)}")
    sys.exit(code)


def _say(line: str, end: str = "\n") -> None:
    """A line on stderr (click is not imported for it: kai-shell may run without click)."""
    sys.stderr.write(line + end)
    sys.stderr.flush()


def _from_click(exc: BaseException) -> bool:
    """Whether ``exc`` is click's (a usage error, an exit, an abort): those are
    click's to report. Without click loaded there can be none."""
    click = sys.modules.get("click")
    return click is not None and isinstance(
        exc, (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort)
    )


def require_extra(extra: str, feature: str) -> None:
    """Exit 3 with one line naming the extra to install when ``extra`` is missing."""
    from kai_core._extras import MissingExtraError, require

    try:
        require(extra, feature)
    except MissingExtraError as exc:
        fail(str(exc), EXIT_CODES["config"])


@contextmanager
def reported(debug: bool | None = None) -> Iterator[None]:
    """Turn failures inside the block into one line on stderr and an exit code.

    With ``debug`` the traceback is printed too. A failure that reaches here
    wrapped in an exception group (from a trio nursery) is reported as its
    first leaf. click's own exceptions (usage errors, exit) pass through.
    """
    try:
        yield
    except BaseExceptionGroup as group:
        _report(_first_leaf(group), debug)
    except Exception as exc:
        if _from_click(exc):
            raise
        _report(exc, debug)
    except KeyboardInterrupt as exc:
        _report(exc, debug)


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    # A KeyboardInterrupt anywhere wins: the user asked to stop.
    interrupted, _ = group.split(KeyboardInterrupt)
    first: BaseException = interrupted or group
    while isinstance(first, BaseExceptionGroup):
        first = first.exceptions[0]
    return first


def _report(exc: BaseException, debug: bool | None) -> NoReturn:
    """Report one failure (called while it is being handled) and exit."""
    from kai_core.exceptions import KaiError

    if isinstance(exc, UsageError):
        _maybe_traceback(debug)
        fail(str(exc), exc.code)
    if isinstance(exc, KaiError):
        _maybe_traceback(debug)
        fail(f"{exc}{_hint(exc)}", exit_code_for(exc))
    if isinstance(exc, KeyboardInterrupt):
        _say("\nkai: interrupted")
        sys.exit(EXIT_CODES["interrupted"])
    if isinstance(exc, BrokenPipeError):
        _quiet_broken_pipe()
    if isinstance(exc, OSError):
        _maybe_traceback(debug)
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        fail(f"{exc.strerror or exc}{where}", EXIT_CODES["error"])
    if isinstance(exc, SystemExit) or _from_click(exc):
        raise exc
    # A bug of ours: still one line, the traceback only with --debug.
    _maybe_traceback(debug)
    fail(
        f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)",
        EXIT_CODES["error"],
    )


def _quiet_broken_pipe() -> NoReturn:
    """The reader of stdout went away (``kai log export | head``): stop quietly.

    stdout is pointed at /dev/null first, so that flushing it at exit does
    not raise (and print) a second BrokenPipeError.
    """
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    sys.exit(EXIT_CODES["broken_pipe"])


def run_trio(ctx: click.Context, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    """Run ``fn(*args)`` under trio, failures reported as by :func:`reported`."""
    import trio

    runtime = (ctx.find_root().obj or {}).get("runtime")
    with reported(bool(runtime and runtime.options.debug)), _log_warnings_as_lines():
        return trio.run(fn, *args)


@contextmanager
def _log_warnings_as_lines() -> Iterator[None]:
    """Show the log's warnings (a record left out of an import or of the
    projections) as one ``kai: warning:`` line each, not Python's two-line form."""
    import warnings

    shown = warnings.showwarning

    def show(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        # By name: a command that never opens the log does not import it.
        if category.__name__ == "SkippedRecordWarning":
            _say(f"kai: warning: {message}")
        else:
            shown(message, category, *args, **kwargs)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = shown


def _maybe_traceback(debug: bool | None) -> None:
    click = sys.modules.get("click")  # not loaded: no click context to look in
    if debug is None and click is not None:
        ctx = click.get_current_context(silent=True)
        runtime = ((ctx.find_root().obj or {}) if ctx else {}).get("runtime")
        debug = bool(runtime and runtime.options.debug)
    if debug:
        import traceback

        _say(for_terminal(traceback.format_exc(), multiline=True), end="")
