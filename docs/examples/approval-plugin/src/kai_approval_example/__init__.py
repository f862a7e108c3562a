"""An example kai plugin: an approval policy and a renderer.

Policy: tools whose names start with ``list_`` or ``get_`` only read and
are approved; tools that create or delete things (``create_``, ``delete_``,
``drop_``) are rejected with a reason; anything else is left to the next
policy or to the user (``None``).

Renderer ``quiet``: only the answer's text, then a newline.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kai_core.hookspecs import hookimpl
from kai_core.policy import ApprovalContext, ApprovalDecision, ApprovalRequest
from kai_core.render import Renderer

if TYPE_CHECKING:
    import click

READ_ONLY = ("list_", "get_")
WRITES = ("create_", "delete_", "drop_")


@hookimpl
def kai_approve_tool(request: ApprovalRequest, context: ApprovalContext) -> ApprovalDecision | None:
    """Approve read-only tools, reject creating and deleting, no opinion on the rest."""
    if request.tool_name.startswith(READ_ONLY):
        return ApprovalDecision.approve("read-only tool (approval-example)")
    if request.tool_name.startswith(WRITES):
        return ApprovalDecision.reject("creating and deleting is off (approval-example)")
    return None


class QuietRenderer(Renderer):
    """Writes only the answer's text."""

    def event(self, event: Any) -> None:
        if event.type == "text":
            self.stream.write(event.text)
            self.stream.flush()

    def end(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


@hookimpl
def kai_register_renderers() -> dict[str, Any]:
    """Offer the ``quiet`` renderer (``kai chat --renderer quiet``)."""
    return {"quiet": QuietRenderer}


@hookimpl
def kai_register_commands(cli: click.Group) -> None:
    """Add ``kai approval-example-rules``: print what this policy decides."""
    import click

    @cli.command("approval-example-rules")
    def rules() -> None:
        """Show the tool-name prefixes this plugin approves and rejects."""
        click.echo(f"approve: {', '.join(READ_ONLY)}")
        click.echo(f"reject: {', '.join(WRITES)}")
