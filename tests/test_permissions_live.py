"""Permissions against the emulator, on both backends: a denied tool never runs, and
every decision is in the audit trail with who made it (library and the real ``kai``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from kai_core.audit import read_audit
from kai_core.client import KaiClient
from kai_core.events import ApprovalDecisionEvent, ToolApprovalRequestEvent
from kai_core.hookspecs import hookimpl
from kai_core.log import EventLog
from kai_core.permissions import PermissionSet
from kai_core.plugins import Plugins
from kai_core.policy import ApprovalDecision, ApprovalRequest
from kai_core.session import NO_TERMINAL_REASON, Session
from kai_core.testing import Emulator
from kai_plugins.policies import AUTO_APPROVE_PLUGIN, AutoApprove

from .cli_common import TOKEN, Kai, chat_id_of, gather

POLICY = """\
[permissions]
allow = ["list_*", "create_bucket(stage=in)"]
ask = ["run_*"]
deny = [
  "delete_*",
  "update_descriptions(table_id=out.c-*)",
]
"""


@pytest.fixture(params=["agent", "assistant"])
def kai_emulator_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    return {"token": TOKEN, "backend": request.param}


def keep_bucket(emulator: Emulator, bucket_id: str = "in.c-keep") -> None:
    stage, _, name = bucket_id.partition(".c-")
    emulator.state.buckets[bucket_id] = {"id": bucket_id, "name": name, "stage": stage}


def client_for(emulator: Emulator, log: EventLog) -> KaiClient:
    return KaiClient(
        storage_api_token=emulator.token,
        storage_api_url=emulator.storage_api_url,
        base_url=emulator.base_url,
        backend=emulator.backend,
        log=log,
    )


async def decisions(session: Session, text: str) -> list[ApprovalDecisionEvent]:
    return [e async for e in session.send(text) if isinstance(e, ApprovalDecisionEvent)]


class JobsPolicy:
    """A plugin that approves extractor jobs and says which of its rules did."""

    @hookimpl
    def kai_approve_tool(self, request: ApprovalRequest) -> ApprovalDecision | None:
        if request.tool_name == "run_job" and request.input["component_id"].startswith(
            "keboola.ex-"
        ):
            return ApprovalDecision.approve("extractors only read", rule="extractors")
        return None


# -- the library: Session with a permission set ----------------------------------------


async def test_session_rules_decide_before_plugins_and_are_audited(
    kai_emulator: Emulator, tmp_path: Path
) -> None:
    keep_bucket(kai_emulator)
    plugins = Plugins(load_entry_points=False)
    plugins.register(JobsPolicy(), name="jobs")
    plugins.register(AutoApprove(), name=AUTO_APPROVE_PLUGIN)  # must not beat a deny
    permissions = PermissionSet.from_rules(**_rules())
    with EventLog(tmp_path / "kai.db") as log:
        async with client_for(kai_emulator, log) as client:
            session = Session(client, plugins=plugins, permissions=permissions)
            (denied,) = await decisions(session, "delete bucket in.c-keep")
            (described,) = await decisions(
                session, "describe table out.c-reports.daily_revenue as Revenue"
            )
            (created,) = await decisions(session, "create a bucket called b7")
            (job,) = await decisions(session, "run job keboola.ex-db-mysql 42")
            (asked,) = await decisions(session, "run job keboola.wr-db-snowflake 7")
        entries = read_audit(log)
        replayed = [
            (e.tool_call_id, e.approved, e.decided_by, e.rule)
            for e in log.replay_events(session.chat_id)
            if isinstance(e, ApprovalDecisionEvent)
        ]
    live = [denied, described, created, job, asked]
    assert replayed == [(e.tool_call_id, e.approved, e.decided_by, e.rule) for e in live]
    # a denied tool never ran: the emulator's state shows it
    assert "in.c-keep" in kai_emulator.state.buckets
    revenue = next(t for t in kai_emulator.state.tables if t["id"].endswith("daily_revenue"))
    assert "description" not in revenue
    assert (denied.approved, denied.decided_by, denied.rule) == (False, "rule", "delete_*")
    assert (described.approved, described.rule) == (False, "update_descriptions(table_id=out.c-*)")
    assert created.approved and created.rule == "create_bucket(stage=in)"
    assert "in.c-b7" in kai_emulator.state.buckets
    assert job.approved and job.decided_by == "jobs"
    assert asked.approved and asked.decided_by == "auto-approve"  # ask, settled by the flag
    assert [j["component_id"] for j in kai_emulator.state.jobs] == [
        "keboola.ex-db-mysql",
        "keboola.wr-db-snowflake",
    ]
    assert [(e.tool_name, e.decision, e.who) for e in entries] == [
        ("delete_bucket", "deny", {"kind": "rule", "rule": "delete_*"}),
        (
            "update_descriptions",
            "deny",
            {"kind": "rule", "rule": "update_descriptions(table_id=out.c-*)"},
        ),
        ("create_bucket", "allow", {"kind": "rule", "rule": "create_bucket(stage=in)"}),
        ("run_job", "allow", {"kind": "plugin", "name": "jobs", "rule": "extractors"}),
        ("run_job", "allow", {"kind": "auto-approve"}),
    ]
    for entry in entries:
        assert entry.chat_id == session.chat_id
        assert (
            entry.tool_call_id and entry.input_digest and entry.input_digest.startswith("sha256:")
        )
        assert entry.elapsed_ms is not None and entry.elapsed_ms >= 0
        assert entry.input is None  # the full input only when asked for


def _rules() -> dict[str, list[str]]:
    return {
        "allow": ["list_*", "create_bucket(stage=in)"],
        "ask": ["run_*"],
        "deny": ["delete_*", "update_descriptions(table_id=out.c-*)"],
    }


async def test_with_nobody_to_ask_an_ask_is_rejected_with_a_reason(
    kai_emulator: Emulator, tmp_path: Path
) -> None:
    permissions = PermissionSet.from_rules(ask=["run_*"], allow=["run_job"])
    with EventLog(tmp_path / "kai.db") as log:
        async with client_for(kai_emulator, log) as client:
            session = Session(client, permissions=permissions, audit_input=True)
            (decision,) = await decisions(session, "run job keboola.ex-db-mysql 1")
        (entry,) = read_audit(log)
    assert not decision.approved and decision.decided_by == "no-terminal"
    assert decision.reason == NO_TERMINAL_REASON
    assert kai_emulator.state.jobs == []
    assert entry.who == {"kind": "no-terminal"}
    assert entry.input == {"component_id": "keboola.ex-db-mysql", "configuration_id": "1"}
    assert session.last_decision is not None and session.last_decision["decision"] == "deny"


@pytest.mark.kai_emulator(backend="agent")
async def test_a_tool_kai_blocks_is_denied_here_too(kai_emulator: Emulator, tmp_path: Path) -> None:
    # kai-agent fails a blocked tool itself and does not ask; should a request
    # for one come anyway, no local allow rule, plugin or flag approves it.
    plugins = Plugins(load_entry_points=False)
    plugins.register(AutoApprove(), name=AUTO_APPROVE_PLUGIN)
    with EventLog(tmp_path / "kai.db") as log:
        async with client_for(kai_emulator, log) as client:
            await client.tool_policy()  # what the client knows of Kai's settings
            await client.update_user_settings(tool_permissions={"create_bucket": "blocked"})
            session = Session(
                client, plugins=plugins, permissions=PermissionSet.from_rules(allow=["*"])
            )
            request = ToolApprovalRequestEvent(
                approval_id="call_1",
                tool_call_id="call_1",
                tool_name="create_bucket",
                input={"name": "nope"},
                transport="agent",
            )
            decision = await session.decide(request)
            other = await session.decide(msgspec.structs.replace(request, tool_name="run_job"))
    assert not decision.approved and decision.decided_by == "server"
    assert decision.reason == "create_bucket is blocked by Kai's tool permissions (server setting)"
    assert other.approved and other.decided_by == "rule"


# -- the real kai process ------------------------------------------------------------------


@pytest.mark.e2e
async def test_kai_chat_denies_and_kai_audit_attributes(kai: Kai, kai_emulator: Emulator) -> None:
    keep_bucket(kai_emulator)
    policy = kai.root / "policy.toml"
    policy.write_text(POLICY)
    online = kai.online(kai_emulator)
    denied, auto, nobody = await gather(
        kai(
            *online,
            "--policy",
            str(policy),
            "chat",
            "--auto-approve",
            "-m",
            "delete bucket in.c-keep",
        ),
        kai(*online, "chat", "--auto-approve", "-m", "create a bucket called auto1"),
        kai(*online, "chat", "-m", "run job keboola.ex-db-mysql 5"),
    )
    for result in (denied, auto, nobody):
        assert result.returncode == 0, result
    assert "in.c-keep" in kai_emulator.state.buckets  # denied: never ran
    assert "in.c-auto1" in kai_emulator.state.buckets
    assert kai_emulator.state.jobs == []
    listed, only_denied, one_chat, text, exported = await gather(
        kai("audit", "--json-output"),
        kai("audit", "--decision", "deny", "--json-output"),
        kai("audit", "--chat", chat_id_of(auto)[:8], "--json-output"),  # a prefix
        kai("audit", "--since", "1h"),
        kai("log", "export", "--format", "jsonl"),
    )
    entries = {e["chat_id"]: e for e in listed.json_lines()}
    assert len(entries) == 3
    rule = entries[chat_id_of(denied)]
    assert (rule["tool_name"], rule["decision"]) == ("delete_bucket", "deny")
    assert rule["who"] == {
        "kind": "rule",
        "rule": "delete_*",
        "scope": "command-line",
        "source": f"{policy}:5",
    }
    assert entries[chat_id_of(auto)]["who"] == {"kind": "auto-approve"}
    assert entries[chat_id_of(nobody)]["who"] == {"kind": "no-terminal"}
    for entry in entries.values():
        assert entry["tool_call_id"] and entry["input_digest"].startswith("sha256:")
        assert isinstance(entry["elapsed_ms"], float) and entry["time"]
    assert {e["chat_id"] for e in only_denied.json_lines()} == {
        chat_id_of(denied),
        chat_id_of(nobody),
    }
    assert [e["chat_id"] for e in one_chat.json_lines()] == [chat_id_of(auto)]
    assert f"deny   delete_bucket  by rule 'delete_*' (command-line {policy}:5)" in text.stdout
    approvals = [
        json.loads(line)
        for line in exported.stdout.splitlines()
        if json.loads(line).get("type") == "approval"
    ]
    assert len(approvals) == 3
    assert all("who" in a["body"] for a in approvals), approvals[0]


@pytest.mark.e2e
async def test_a_managed_ban_on_auto_approve_stops_kai_before_sending(
    kai: Kai, kai_emulator: Emulator
) -> None:
    managed = kai.root / "managed.toml"
    managed.write_text("[permissions]\ndisable_auto_approve = true\n")
    env = kai.env(KAI_MANAGED_POLICY=str(managed))
    online = kai.online(kai_emulator)
    refused, allowed = await gather(
        kai(*online, "chat", "--auto-approve", "-m", "create a bucket called x", env=env),
        kai(*online, "chat", "-m", "hello", env=env),
    )
    assert refused.returncode == 3, refused
    assert f"policy file {managed}:2: disable_auto_approve" in refused.stderr
    assert allowed.returncode == 0, allowed
    assert len(kai_emulator.state.chats) == 1  # only the second run sent anything


@pytest.mark.e2e
@pytest.mark.kai_emulator(backend="agent")
async def test_kai_permissions_shows_and_sets_kais_settings(
    kai: Kai, kai_emulator: Emulator
) -> None:
    policy = kai.root / "policy.toml"
    policy.write_text(POLICY)
    online = [*kai.online(kai_emulator), "--policy", str(policy)]
    done = await kai(*online, "permissions", "set", "delete_bucket", "blocked")
    assert done.returncode == 0 and done.stdout.strip() == "delete_bucket: blocked", done
    unknown = await kai(*online, "permissions", "set", "no_such_tool", "blocked")
    assert unknown.returncode == 2 and "has no tool 'no_such_tool'" in unknown.stderr
    listed, text = await gather(
        kai(*online, "permissions", "--json-output"), kai(*online, "permissions")
    )
    rows = {r["tool"]: r for r in listed.json()}
    assert rows["delete_bucket"]["server"] == "blocked"
    assert rows["delete_bucket"]["local"] == "deny"
    assert (
        rows["list_tables"].items()
        >= {"read_only": True, "local": "allow", "rule": "list_*"}.items()
    )
    assert rows["update_descriptions"]["argument_rules"] == 1
    assert rows["create_bucket"]["argument_rules"] == 1
    assert rows["run_job"]["local"] == "ask" and rows["run_job"]["source"] == f"{policy}:3"
    assert "kai: blocked" in text.stdout and "list_*" in text.stdout


@pytest.mark.e2e
async def test_kai_policy_check_explains_without_contacting_kai(kai: Kai) -> None:
    project = kai.cwd / ".kai" / "policy.toml"
    project.parent.mkdir()
    project.write_text(POLICY)
    broken = kai.root / "broken.toml"
    broken.write_text('[permissions]\ndeny = ["a(b"]\n')
    allow, deny, ask, as_json, bad, bad_input = await gather(
        kai("policy", "check", "list_tables"),
        kai("policy", "check", "update_descriptions", "--input", '{"table_id": "out.c-x.y"}'),
        kai("policy", "check", "create_bucket", "--input", '{"stage": "out"}'),
        kai("policy", "check", "delete_bucket", "--json-output"),
        kai("--policy", str(broken), "policy", "check", "list_tables"),
        kai("policy", "check", "x", "--input", "{nope"),
    )
    assert allow.returncode == 0, allow
    assert allow.stdout.splitlines() == [
        "allow: list_tables",
        "  rule:  list_*",
        f"  scope: project ({project}:2)",
    ]
    assert deny.returncode == 1 and "update_descriptions(table_id=out.c-*)" in deny.stdout
    assert f"({project}:6)" in deny.stdout
    assert ask.returncode == 2 and "none matches" in ask.stdout
    assert as_json.returncode == 1
    assert as_json.json() == {
        "tool": "delete_bucket",
        "decision": "deny",
        "rule": "delete_*",
        "scope": "project",
        "source": f"{project}:5",
        "reason": f"deny rule 'delete_*' (project policy {project}:5)",
    }
    assert bad.returncode == 3 and f"policy file {broken}:2: deny: rule 'a(b'" in bad.stderr
    assert bad_input.returncode == 2 and "--input" in bad_input.stderr
