"""The tools ``kai mcp`` offers, and the MCP server that carries them.

Each tool is a thin layer over what the CLI already does: ``ask_kai`` is a
:class:`~kai_core.session.Session` (so every chat is in the event log, and
approvals go to the policies first, then to the user by elicitation);
``list_chats``, ``get_chat`` and ``kai_usage`` call the server;
``search_chats`` reads the local log. A failure the model can act on is a
tool error with one line (``ToolError``), never a traceback.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import trio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from kai_core.events import (
    AbortEvent,
    ApprovalDecisionEvent,
    ErrorEvent,
    ReasoningEvent,
    TextEvent,
    ToolCallEvent,
    ToolOutputDeniedEvent,
    ToolOutputErrorEvent,
)
from kai_core.exceptions import KaiError
from kai_core.sanitize import for_terminal
from kai_core.session import Session

from .approval import DEFAULT_APPROVAL_TIMEOUT, ElicitationApproval

if TYPE_CHECKING:
    from kai_core.client import KaiClient

    from ..runtime import Runtime

__all__ = ["AskResult", "KaiTools", "ToolRun", "build_server"]

INSTRUCTIONS = (
    "Kai is the Keboola AI Assistant: it answers questions about a Keboola project "
    "(tables, buckets, configurations, jobs, SQL) and can change it with its own tools. "
    "Use ask_kai for anything about the Keboola project; pass chat_id to continue a chat. "
    "Kai's tools that change the project ask the user for approval first."
)

_OUTPUT_LIMIT = 200


class ToolRun(BaseModel):
    """One tool Kai ran (or tried to) while answering."""

    name: str
    status: str = Field(description="running, done, failed, rejected or denied")
    output: str = Field(default="", description="the start of its output, error or reason")


class AskResult(BaseModel):
    """What ``ask_kai`` returns."""

    answer: str = Field(description="Kai's answer text")
    chat_id: str = Field(description="pass it back as chat_id to continue this chat")
    tools: list[ToolRun] = Field(default_factory=list, description="the tools Kai ran")
    error: str | None = Field(default=None, description="set when the answer ended in an error")


def _short(value: Any, limit: int = _OUTPUT_LIMIT) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = for_terminal(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _Answer:
    """Collects the answer text, the tools and an error from the session's events."""

    def __init__(self) -> None:
        self.pieces: list[str] = []
        self.tools: dict[str, ToolRun] = {}
        self.error: str | None = None
        self.thinking = False

    def see(self, event: Any) -> str | None:
        """Take ``event`` in; return a progress message for it, if it is worth one."""
        if isinstance(event, TextEvent):
            first = not self.pieces
            self.pieces.append(event.text)
            return "Kai is answering" if first else None
        if isinstance(event, ReasoningEvent):
            first, self.thinking = not self.thinking, True
            return "Kai is thinking" if first else None
        if isinstance(event, ToolCallEvent):
            name = event.tool_name or "?"
            run = self.tools.setdefault(event.tool_call_id, ToolRun(name=name, status="running"))
            if event.state == "output-available":
                run.status, run.output = "done", _short(event.output)
                return f"tool {name} done"
            return f"tool {name} running" if event.state == "input-available" else None
        if isinstance(event, ToolOutputErrorEvent):
            run = self._run(event.tool_call_id, event.tool_name)
            run.status, run.output = "failed", _short(event.error_text)
            return f"tool {run.name} failed"
        if isinstance(event, ToolOutputDeniedEvent):
            run = self._run(event.tool_call_id, event.tool_name)
            if run.status != "rejected":
                run.status = "denied"
            return None
        if isinstance(event, ApprovalDecisionEvent):
            run = self._run(event.tool_call_id, event.tool_name)
            verdict = "approved" if event.approved else "rejected"
            if not event.approved:
                run.status, run.output = "rejected", _short(event.reason or "")
            return f"tool {run.name} {verdict} by {event.decided_by}"
        if isinstance(event, ErrorEvent):
            self.error = for_terminal(event.message)
        elif isinstance(event, AbortEvent):
            self.error = f"aborted: {for_terminal(event.reason or 'by the server')}"
        return None

    def _run(self, call_id: str, name: str | None) -> ToolRun:
        return self.tools.setdefault(call_id, ToolRun(name=name or "?", status="running"))


class KaiTools:
    """The tools, bound to one front-end runtime and one open client.

    :param runtime: the :class:`~kai_shell.runtime.Runtime` (plugins, log).
    :param client: an open :class:`~kai_core.client.KaiClient`.
    :param approval_timeout: seconds the user has to answer an approval.
    """

    def __init__(
        self,
        runtime: Runtime,
        client: KaiClient,
        approval_timeout: float = DEFAULT_APPROVAL_TIMEOUT,
    ) -> None:
        self.runtime = runtime
        self.client = client
        self.approval_timeout = approval_timeout

    async def ask_kai(
        self,
        message: Annotated[str, Field(description="What to ask or tell Kai, in plain language.")],
        ctx: Context,
        chat_id: Annotated[
            str | None,
            Field(description="Continue this chat (from an earlier ask_kai); omit for a new chat."),
        ] = None,
    ) -> AskResult:
        """Ask Kai, the Keboola AI Assistant, about the user's Keboola project.

        Kai can read the project (tables, buckets, configurations, jobs, SQL)
        and change it with its own tools; a tool that changes something is
        first approved by the user's rules or asked of the user. Returns
        Kai's answer, the chat id (pass it back as chat_id to follow up) and
        the tools Kai ran with their status.
        """
        if not message.strip():
            raise ToolError("the message is empty")
        session = self._session(
            await self._chat_id(chat_id) if chat_id else None,
            ElicitationApproval(ctx, self.approval_timeout),
        )
        answer = _Answer()
        step = 0
        try:
            async with session.stream(message) as events:
                async for event in events:
                    note = answer.see(event)
                    if note is not None:
                        step += 1
                        await ctx.report_progress(step, None, note)
        except KaiError as exc:
            raise ToolError(for_terminal(str(exc))) from None
        return AskResult(
            answer="".join(answer.pieces),
            chat_id=session.chat_id,
            tools=list(answer.tools.values()),
            error=answer.error,
        )

    async def list_chats(
        self,
        limit: Annotated[
            int, Field(ge=1, le=100, description="How many chats, newest first.")
        ] = 10,
        local: Annotated[
            bool, Field(description="Read the local event log instead of the server.")
        ] = False,
    ) -> list[dict[str, Any]]:
        """List the user's Kai chats, newest first: id, title and when it started."""
        if local:
            log = self._log()
            rows = await trio.to_thread.run_sync(lambda: log.chats(limit=limit))
            return [
                {"id": r.id, "title": for_terminal(r.title or ""), "started": r.first_ts}
                for r in rows
            ]
        try:
            page = await self.client.get_history(limit=limit)
        except KaiError as exc:
            raise ToolError(for_terminal(str(exc))) from None
        return [
            {"id": c.id, "title": for_terminal(c.title or ""), "started": c.created_at}
            for c in page.chats
        ]

    async def get_chat(
        self,
        chat_id: Annotated[str, Field(description="The chat's id (from list_chats or ask_kai).")],
    ) -> dict[str, Any]:
        """Show one chat: its title and every message (text and the tools Kai ran)."""
        from ..commands.chats import format_part

        try:
            chat = await self.client.get_chat(await self._chat_id(chat_id))
        except KaiError as exc:
            raise ToolError(for_terminal(str(exc))) from None
        messages = [
            {
                "role": m.role,
                "text": for_terminal(
                    "\n".join(line for part in m.parts for line in format_part(part)),
                    multiline=True,
                ),
            }
            for m in chat.messages
        ]
        return {"id": chat.id, "title": for_terminal(chat.title or ""), "messages": messages}

    async def search_chats(
        self,
        query: Annotated[
            str, Field(description='Words to find (all of them), "a phrase" or prefix*.')
        ],
        limit: Annotated[int, Field(ge=1, le=100, description="Most hits to return.")] = 10,
    ) -> list[dict[str, Any]]:
        """Search every chat recorded on this machine (questions, answers, tool calls)."""
        log = self._log()
        try:
            hits = await trio.to_thread.run_sync(lambda: log.search(query, limit=limit))
        except KaiError as exc:
            raise ToolError(for_terminal(str(exc))) from None
        return [
            {
                "chat_id": h.chat_id,
                "role": h.role,
                "title": for_terminal(h.title or ""),
                "snippet": for_terminal(h.snippet),
            }
            for h in hits
        ]

    async def kai_usage(self) -> dict[str, Any]:
        """How many messages the user has used of their Kai quota, and when it resets."""
        if self.client.backend == "kai-assistant":
            raise ToolError("this Kai server (kai-assistant) has no usage endpoint")
        try:
            usage = await self.client.get_usage()
        except KaiError as exc:
            raise ToolError(for_terminal(str(exc))) from None
        return {
            "messages_used": usage.messages_used,
            "messages_limit": usage.messages_limit,
            "reset_date": usage.reset_date,
        }

    async def _chat_id(self, text: str) -> str:
        """The chat id ``text`` names: a full id, or a prefix the log or the
        server's recent history knows (as every kai command takes it)."""
        from ..ids import resolve

        try:
            return await resolve(self.runtime, text.strip(), self.client)
        except KaiError as exc:
            raise ToolError(for_terminal(str(exc))) from None

    def _session(self, chat_id: str | None, ask: ElicitationApproval) -> Session:
        """A session on ``chat_id``: the permission engine (rules, scopes, Kai's
        settings) and the policies decide first; what is left goes to ``ask``."""
        return self.runtime.session(self.client, chat_id=chat_id, ask=ask)

    def _log(self) -> Any:
        log = self.runtime.log
        if log is None:
            raise ToolError("the local event log is off (kai mcp was started with --no-log)")
        return log


_READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=True)


def build_server(tools: KaiTools) -> MCPServer:
    """An MCP server offering ``tools``."""
    from importlib.metadata import version

    server: MCPServer = MCPServer(
        "kai", version=version("kai"), instructions=INSTRUCTIONS, log_level="WARNING"
    )
    server.add_tool(
        tools.ask_kai,
        title="Ask Kai",
        annotations=ToolAnnotations(
            title="Ask Kai", read_only_hint=False, destructive_hint=True, open_world_hint=True
        ),
    )
    for fn, title in (
        (tools.list_chats, "List Kai chats"),
        (tools.get_chat, "Show a Kai chat"),
        (tools.search_chats, "Search Kai chats"),
        (tools.kai_usage, "Kai usage"),
    ):
        annotations = _READ_ONLY.model_copy(update={"title": title})
        server.add_tool(fn, title=title, annotations=annotations)
    return server
