"""``kai chat`` approvals without a terminal, on both backends: auto-approve, a
rules file, rejection when no one can be asked, and a broken rules file.

(The prompt answered on a terminal is in ``test_cli_pty.py``.)
"""

from __future__ import annotations

from typing import Any

import pytest

from kai_core.testing import Emulator

from .cli_common import TOKEN, Kai, chat_id_of, client_records, gather

pytestmark = pytest.mark.e2e


@pytest.fixture(params=["agent", "assistant"])
def kai_emulator_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    return {"token": TOKEN, "backend": request.param}


def transport(emulator: Emulator) -> str:
    return "agent" if emulator.backend == "agent" else "v6"


async def test_without_a_terminal_the_tool_is_rejected_and_logged(
    kai: Kai, kai_emulator: Emulator
) -> None:
    result = await kai(*kai.online(kai_emulator), "chat", "-m", "create a bucket called b1")
    assert result.returncode == 0, result
    assert "rejected by no-terminal" in result.stdout, result
    assert "in.c-b1" not in kai_emulator.state.buckets
    # The hint names the CLI's flags, on stderr; the reason kai_core sends to
    # Kai and logs does not (a library has no flags: issue 13, item 9).
    assert (
        "kai: no terminal to ask about create_bucket, so it was rejected; "
        "approve it with --auto-approve or a --policy rule"
    ) in result.stderr
    (decision,) = client_records(kai.db, "approval", chat_id_of(result))
    assert decision["tool_name"] == "create_bucket"
    assert decision["approved"] is False
    assert decision["decided_by"] == "no-terminal"
    assert decision["reason"] == "no approval policy decided and there was no one to ask"
    assert "--" not in decision["reason"]
    assert decision["transport"] == transport(kai_emulator)


async def test_auto_approve_runs_the_tools(kai: Kai, kai_emulator: Emulator) -> None:
    ask = kai.root / "ask.toml"
    ask.write_text('[[rule]]\ntool = "create_*"\naction = "ask"\n')  # "ask": no opinion
    online = kai.online(kai_emulator)
    as_json, after_ask = await gather(
        # two tools waiting for approval in one turn
        kai(*online, "chat", "--auto-approve", "--json-output", "-m", "two buckets"),
        kai(
            *online,
            "--policy",
            str(ask),
            "chat",
            "--auto-approve",
            "-m",
            "create a bucket called b3",
        ),
    )
    for result in (as_json, after_ask):
        assert result.returncode == 0, result
    assert "in.c-b3 was created" in after_ask.stdout
    assert "approved by auto-approve" in after_ask.stdout
    events = as_json.json_lines()
    decisions = [e for e in events if e["type"] == "approval-decision"]
    assert len(decisions) == 2
    assert all(d["approved"] and d["decided_by"] == "auto-approve" for d in decisions)
    if kai_emulator.backend == "assistant":
        requests = [e for e in events if e["type"] == "tool-approval-request"]
        assert len(requests) == 2
        assert all({"approval_id", "tool_call_id"} <= set(r) for r in requests)
    outputs = [e for e in events if e["type"] == "tool-call" and e["state"] == "output-available"]
    assert len(outputs) == 2 and all(o["output"]["created"] for o in outputs)
    assert len(kai_emulator.state.buckets) == 3
    records = client_records(kai.db, "approval")
    assert len(records) == 3 and len({r["tool_call_id"] for r in records}) == 3
    assert all(r["approved"] and r["decided_by"] == "auto-approve" for r in records)
    assert {r["transport"] for r in records} == {transport(kai_emulator)}


async def test_policy_file_rules_decide(kai: Kai, kai_emulator: Emulator) -> None:
    reject = kai.root / "reject.toml"
    reject.write_text(
        '[[rule]]\ntool = "create_*"\naction = "reject"\nreason = "no writes on Fridays"\n'
    )
    approve = kai.root / "approve.toml"
    approve.write_text('[[rule]]\ntool = "create_bucket"\naction = "approve"\n')
    online = kai.online(kai_emulator)
    rejected, approved = await gather(
        # the rules file is consulted before --auto-approve
        kai(
            *online,
            "--policy",
            str(reject),
            "chat",
            "--auto-approve",
            "-m",
            "create a bucket called r1",
        ),
        kai(*online, "--policy", str(approve), "chat", "-m", "create a bucket called a1"),
    )
    for result in (rejected, approved):
        assert result.returncode == 0, result
    assert "no writes on Fridays" in rejected.stdout
    assert "in.c-a1 was created" in approved.stdout
    assert set(kai_emulator.state.buckets) == {"in.c-a1"}
    (r1,) = client_records(kai.db, "approval", chat_id_of(rejected))
    assert (r1["approved"], r1["decided_by"]) == (False, "rule")
    assert r1["reason"].startswith("no writes on Fridays: deny rule 'create_*'")
    assert r1["who"] == {
        "kind": "rule",
        "rule": "create_*",
        "scope": "command-line",
        "source": f"{reject}:1",
    }
    (a1,) = client_records(kai.db, "approval", chat_id_of(approved))
    assert a1["approved"] is True and a1["decided_by"] == "rule"
    assert "old [[rule]] form" in approved.stderr  # still read, with a warning
