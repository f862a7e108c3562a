"""``kai audit``: every tool-call decision in the event log, with who made it."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime
from typing import Any

import click

from kai_core.sanitize import for_terminal

from ..cli import runtime_of
from ..errors import run_trio
from ..ids import ChatId, resolve
from ..runtime import UsageError

__all__ = ["audit", "parse_since"]

_AGO = re.compile(r"(\d+)\s*([smhd])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str, now: float | None = None) -> float:
    """``2026-12-05``, ``2026-12-05T08:00`` (local time unless it has an offset),
    or ``30m`` / ``12h`` / ``7d`` ago, as a Unix time."""
    ago = _AGO.fullmatch(text.strip())
    if ago:
        return (time.time() if now is None else now) - int(ago[1]) * _UNIT[ago[2]]
    try:
        return datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not a date (2026-12-05, 2026-12-05T08:00) or an age (30m, 12h, 7d)",
            param_hint="--since",
        ) from None


@click.command()
@click.option("--since", help="Only decisions since DATE (ISO date or time) or an age (12h, 7d).")
@click.option(
    "--chat", "chat_id", type=ChatId, help="Only this chat's decisions (its id or a prefix)."
)
@click.option("--decision", type=click.Choice(["allow", "deny"]), help="Only allowed or denied.")
@click.option("--json-output", is_flag=True, help="One JSON object per decision per line.")
@click.pass_context
def audit(
    ctx: click.Context,
    since: str | None,
    chat_id: str | None,
    decision: str | None,
    json_output: bool,
) -> None:
    """List every tool-call decision: tool, decision, who decided (rule with file:line,
    user, auto-approve, plugin, server setting), how long it took, chat and call ids."""
    runtime = runtime_of(ctx)
    start = parse_since(since) if since is not None else None

    async def run() -> None:
        import trio

        from kai_core.audit import read_audit

        log = runtime.log
        if log is None:
            raise UsageError("the audit trail is in the event log; drop --no-log")
        chat = await resolve(runtime, chat_id) if chat_id is not None else None
        entries = await trio.to_thread.run_sync(
            lambda: read_audit(log, since=start, chat_id=chat, decision=decision)
        )
        for entry in entries:
            if json_output:
                click.echo(json.dumps(_as_json(entry), ensure_ascii=False, default=str))
            else:
                click.echo(_as_line(entry))
        if not entries and not json_output:
            click.echo("No decisions recorded.")

    run_trio(ctx, run)


def _as_json(entry: Any) -> dict[str, Any]:
    import msgspec

    data: dict[str, Any] = msgspec.to_builtins(entry)
    data["time"] = entry.time
    if entry.input is None:
        data.pop("input")
    return data


def _as_line(entry: Any) -> str:
    took = f" in {entry.elapsed_ms:.0f} ms" if entry.elapsed_ms is not None else ""
    return for_terminal(
        f"{entry.time}  {entry.decision:<5}  {entry.tool_name}  by {entry.describe_who()}"
        f"{took}  chat {entry.chat_id}  call {entry.tool_call_id}"
    )
