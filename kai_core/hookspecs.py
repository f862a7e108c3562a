"""The hooks a kai plugin can implement (pluggy, project name ``kai``).

Plugins are found through the ``kai`` entry-point group; the built-in ones
(:mod:`kai_plugins`) are registered the same way. Implement a hook by
decorating a function of the same name with :data:`hookimpl`::

    from kai_core import hookimpl, ApprovalDecision

    @hookimpl
    def kai_approve_tool(request, context):
        if request.tool_name.startswith("list_"):
            return ApprovalDecision.approve("read-only")
        return None  # no opinion: the next policy, then the user, decides

kai calls most hooks itself, one implementation at a time, so that a plugin
that raises is reported once, disabled for the session, and never stops a
stream, the log or an approval (an approval policy that raises *rejects*).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from .log import LogRecord
    from .policy import AnswerInfo, ApprovalContext, ApprovalDecision, ApprovalRequest, VoteDecision

__all__ = ["hookimpl", "hookspec", "PROJECT"]

PROJECT = "kai"
hookspec = pluggy.HookspecMarker(PROJECT)
"""Marks a function in this module as a hook specification."""
hookimpl = pluggy.HookimplMarker(PROJECT)
"""Marks a plugin function as the implementation of the hook of the same name."""


@hookspec
def kai_register_renderers() -> dict[str, Any]:
    """Offer named renderers.

    :returns: a mapping of renderer name to a factory (usually the class):
        ``factory(stream, color=bool)`` must return an object with the methods
        of :class:`kai_core.render.Renderer`. A front end picks one by name
        (``--renderer NAME``). Later plugins override earlier names.

    Example::

        @hookimpl
        def kai_register_renderers():
            return {"shout": ShoutRenderer}
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def kai_approve_tool(request: ApprovalRequest, context: ApprovalContext) -> ApprovalDecision | None:
    """Decide whether a tool that waits for approval may run.

    Called once per approval request, in plugin order; **the first non-None
    result wins** (``firstresult``). ``--auto-approve`` registers a policy that
    runs after all others (``trylast``).

    :param request: the tool call: ``tool_name``, ``tool_call_id``, ``input``,
        ``approval_id``.
    :param context: the chat (``chat_id``), the backend and server URL.
    :returns: :meth:`ApprovalDecision.approve` or :meth:`ApprovalDecision.reject`
        (with a reason), or None for no opinion. When no plugin decides, an
        interactive front end asks the user; a non-interactive one rejects
        (fail closed). A policy that raises rejects the tool, and the error
        becomes the logged reason.
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def kai_vote(answer: AnswerInfo) -> VoteDecision | None:
    """Vote on an answer once it has finished.

    **The first non-None result wins.**

    :param answer: the chat id, the message id, the answer's text, its tool
        calls and finish reason.
    :returns: a :class:`VoteDecision` (``up`` or ``down``) to send to the
        server, or None to not vote.
    """
    raise NotImplementedError


@hookspec
def kai_observe_event(record: LogRecord) -> None:
    """See every event as it is logged (wire chunks and client-side facts).

    Called after the record is durable in the log (or, with logging off,
    when it would have been). For metrics and exporters. Must be quick: it runs
    on the streaming path. The return value is ignored.

    :param record: the logged record: ``chat_id``, ``turn``, ``origin``
        (``server`` or ``client``), ``type`` and ``body`` (exact JSON bytes).
    """


@hookspec
def kai_register_commands(cli: Any) -> None:
    """Add commands to the ``kai`` command line.

    :param cli: the root :class:`click.Group`; call ``cli.add_command(cmd)``.
    """


@hookspec
def kai_shell_commands() -> list[Any]:
    """Offer extra ``kai-shell`` slash commands.

    :returns: a list of :class:`kai_shell.shell.ShellCommand` (name, handler,
        ``help=``, ``usage=``). They show in ``/help`` and in completion.
    """
    raise NotImplementedError
