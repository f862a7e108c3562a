"""``kai policy check``: what the permission rules decide for a tool call, and why.

Reads the policy files of every scope (managed, user, project, ``--policy``)
and asks the engine; Kai is not contacted. Exit codes: 0 allow, 1 deny,
2 ask, 3 a broken policy file (as for every command, a usage error is also 2:
both mean "not allowed without a person").
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from kai_core.sanitize import for_terminal

from ..cli import runtime_of

__all__ = ["CHECK_EXIT", "policy"]

CHECK_EXIT = {"allow": 0, "deny": 1, "ask": 2}
"""``kai policy check``'s exit code per decision (3: a broken policy file)."""


def _parse_input(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--input") from None


@click.group()
def policy() -> None:
    """The permission rules: check what they decide (no Kai contact)."""


@policy.command()
@click.argument("tool")
@click.option("--input", "tool_input", metavar="JSON", help="The tool's input, as JSON.")
@click.option("--json-output", is_flag=True, help="Output as JSON.")
@click.pass_context
def check(ctx: click.Context, tool: str, tool_input: str | None, json_output: bool) -> None:
    """Say whether TOOL (called with --input) would be allowed, asked about or denied.

    Prints the decision, the rule that made it and its scope (file:line).
    Exit 0 allow, 1 deny, 2 ask, 3 broken policy file.
    """
    parsed = _parse_input(tool_input)
    runtime = runtime_of(ctx)
    verdict = runtime.permissions.evaluate(tool, parsed)
    if json_output:
        click.echo(json.dumps({"tool": tool, **verdict.to_dict()}, ensure_ascii=False))
    else:
        click.echo(f"{verdict.decision}: {for_terminal(tool)}")
        if verdict.rule is None:
            click.echo("  rule:  none matches (ask: a person decides; with nobody to ask, denied)")
        else:
            click.echo(f"  rule:  {verdict.rule}")
            click.echo(f"  scope: {verdict.scope} ({verdict.source})")
    sys.exit(CHECK_EXIT[verdict.decision])
