"""``kai demo`` (kai against the built-in emulator) and ``kai shell``."""

from __future__ import annotations

import shlex
import sys
from typing import Any, Literal

import click

from kai_core._terminal import is_terminal

from ..cli import runtime_of
from ..errors import require_extra, run_trio
from ..runtime import Runtime

DEMO_SCRIPT = (
    "hello",
    "What tables do I have?",
    "create a bucket called demo",
)


@click.command()
@click.option(
    "--backend",
    type=click.Choice(["agent", "assistant"]),
    default="agent",
    show_default=True,
    help="Which Kai backend the emulator plays.",
)
@click.option(
    "--script/--no-script", default=None, help="Play the scripted conversation even on a terminal."
)
@click.pass_context
def demo(ctx: click.Context, backend: Literal["agent", "assistant"], script: bool | None) -> None:
    """Try kai against the built-in emulator, no token needed.

    On a terminal it opens kai-shell on the emulator. Otherwise (or with
    --script) it plays a short conversation: a plain answer, a read-only
    tool, and a write tool with its approval, then exits 0. Demo chats are
    recorded in a separate log (demo.db) unless --db is given.
    """
    require_extra("emulator", "kai demo")
    runtime = runtime_of(ctx)
    if runtime.options.db is None and not runtime.options.no_log:
        from kai_core.log import default_log_path

        runtime.options.db = str(default_log_path().with_name("demo.db"))
    interactive = is_terminal(sys.stdin) and is_terminal(sys.stdout)
    play = script if script is not None else not interactive
    run_trio(ctx, _demo, runtime, backend, play)


async def _demo(runtime: Runtime, backend: Literal["agent", "assistant"], play: bool) -> None:
    from kai_core.testing import open_emulator

    async with open_emulator(backend=backend) as emulator:
        runtime.options.token = "demo-token"
        runtime.options.url = emulator.storage_api_url
        runtime.options.base_url = emulator.base_url
        runtime.options.service = backend
        if play:
            await _play(runtime)
        else:
            from ..repl import run_shell_async
            from ..shell.emulator import welcome

            await run_shell_async(runtime, welcome=welcome())


class _DemoPolicy:
    """Approves the demo's write tool, so the script shows an approval without a prompt."""

    from kai_core.hookspecs import hookimpl

    @hookimpl
    def kai_approve_tool(self, request: Any, context: Any) -> Any:
        from kai_core.policy import ApprovalDecision

        if request.tool_name == "create_bucket":
            return ApprovalDecision.approve("approved by the demo script", decided_by="demo")
        return None


async def _play(runtime: Runtime) -> None:
    from kai_core.session import Session

    from ..converse import converse

    runtime.plugins.register(_DemoPolicy(), name="demo-policy")
    renderer = runtime.guarded_renderer(sys.stdout)
    async with runtime.client() as client:
        session = Session(client, plugins=runtime.plugins)
        click.echo(f"kai demo: emulated {client.backend or 'Kai'} at {client.base_url}")
        for text in DEMO_SCRIPT:
            click.echo(f"\n>>> {text}")
            await converse(session, text, renderer)
        from ..hints import kai_command

        db = shlex.quote(str(runtime.options.db))
        click.echo(
            f"\nChat {session.chat_id} recorded. Try: {kai_command()} --db {db} history --local"
        )


@click.command()
@click.option("--chat-id", help="Open this chat.")
@click.option("--auto-approve", is_flag=True, help="Approve tool calls no policy decided.")
@click.pass_context
def shell(ctx: click.Context, chat_id: str | None, auto_approve: bool) -> None:
    """Open the interactive kai-shell with these options."""
    runtime = runtime_of(ctx)
    runtime.options.auto_approve = auto_approve or runtime.options.auto_approve
    from ..repl import run_shell_async

    run_trio(ctx, run_shell_async, runtime, chat_id)
