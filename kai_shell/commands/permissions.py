"""``kai permissions``: Kai's own tool settings beside the local rules; ``set`` changes Kai's.

kai-agent keeps per-user ``toolPermissions`` (``always_allow``, ``always_ask``,
``blocked``) and a ``readOnly`` flag per tool. A tool Kai runs without asking
(read-only, or ``always_allow``) never reaches the local rules: only Kai's
``blocked`` stops it, and the listing says so beside a local deny.
"""

from __future__ import annotations

import json
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

import click

from kai_core.sanitize import for_terminal

from ..cli import runtime_of
from ..errors import run_trio
from ..runtime import UsageError

if TYPE_CHECKING:
    from kai_core.permissions import PermissionSet

__all__ = ["SETTINGS", "permission_rows", "permissions"]

SETTINGS = ("always_allow", "always_ask", "blocked")


def permission_rows(
    tools: list[Any], server: dict[str, str], local: PermissionSet
) -> list[dict[str, Any]]:
    """One row per tool: Kai's setting, the read-only flag, the local verdict, a warning."""
    names = [t.name for t in tools] + sorted(set(server) - {t.name for t in tools})
    read_only = {t.name: t.read_only for t in tools}
    rows = []
    for name in names:
        verdict = local.evaluate(name, {})
        keyed = sum(
            1
            for rules in local.rules.values()
            for r in rules
            if r.keys and fnmatchcase(name, r.tool)
        )
        setting = server.get(name)
        runs_unasked = setting == "always_allow" or (
            setting != "always_ask" and read_only.get(name, False)
        )
        note = None
        if setting == "blocked":
            note = "blocked by Kai: denied here too"
        elif runs_unasked and (verdict.decision == "deny" or keyed):
            note = (
                "Kai runs it without asking, so local rules never see it; "
                f"to stop it: kai permissions set {name} blocked"
            )
        rows.append(
            {
                "tool": name,
                "read_only": read_only.get(name),
                "server": setting,
                "local": verdict.decision if setting != "blocked" else "deny",
                "rule": verdict.rule,
                "source": verdict.source,
                "argument_rules": keyed,
                "note": note,
            }
        )
    return rows


@click.group(invoke_without_command=True)
@click.option("--json-output", is_flag=True, help="Output as JSON.")
@click.pass_context
def permissions(ctx: click.Context, json_output: bool) -> None:
    """Per tool: Kai's setting, its read-only flag and the local rule that matches."""
    if ctx.invoked_subcommand is not None:
        return
    runtime = runtime_of(ctx)
    local = runtime.permissions

    async def run() -> None:
        async with runtime.client(with_log=False) as client:
            tools = (await client.get_tools()).tools
            settings = await client.get_user_settings()
        rows = permission_rows(tools, dict(settings.tool_permissions or {}), local)
        if json_output:
            click.echo(json.dumps(rows, ensure_ascii=False))
            return
        for row in rows:
            kind = "read-only" if row["read_only"] else "writes"
            rule = f"{row['rule']} ({row['source']})" if row["rule"] else "no rule"
            extra = f", +{row['argument_rules']} argument rules" if row["argument_rules"] else ""
            click.echo(
                for_terminal(
                    f"{row['tool']:<24} {kind:<9} kai: {row['server'] or 'default':<12} "
                    f"local: {row['local']} by {rule}{extra}"
                )
            )
            if row["note"]:
                click.echo(for_terminal(f"{'':<24} note: {row['note']}"))

    run_trio(ctx, run)


@permissions.command("set")
@click.argument("tool")
@click.argument("setting", type=click.Choice(SETTINGS))
@click.pass_context
def set_(ctx: click.Context, tool: str, setting: str) -> None:
    """Change Kai's own setting for TOOL (always_allow, always_ask or blocked)."""
    runtime = runtime_of(ctx)

    async def run() -> None:
        async with runtime.client(with_log=False) as client:
            known = {t.name for t in (await client.get_tools()).tools}
            if tool not in known:
                raise UsageError(
                    f"Kai has no tool {tool!r}; its tools are: {', '.join(sorted(known))}"
                )
            current = dict((await client.get_user_settings()).tool_permissions or {})
            current[tool] = setting
            updated = await client.update_user_settings(tool_permissions=current)
        now = (updated.tool_permissions or {}).get(tool)
        click.echo(f"{tool}: {now}")

    run_trio(ctx, run)
