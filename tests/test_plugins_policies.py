"""The built-in approval policies: the rules file, auto-approve, their order, failing closed."""

from __future__ import annotations

from pathlib import Path

import pytest

from kai_core.hookspecs import hookimpl
from kai_core.plugins import PluginFailure, Plugins
from kai_core.policy import ApprovalContext, ApprovalDecision, ApprovalRequest
from kai_plugins.policies import (
    AutoApprove,
    PolicyFileError,
    RulesPolicy,
    default_policy_path,
    load_policy,
    register_builtin_policies,
)

RULES = """\
[permissions]
allow = ["list_*", "run_job(component_id=keboola.ex-*)"]
ask = ["create_*"]
deny = ["delete_*", "drop_*"]
"""


def request(tool_name: str, tool_input: object = None) -> ApprovalRequest:
    return ApprovalRequest(
        tool_name=tool_name, tool_call_id="call_1", approval_id="aitxt-1", input=tool_input
    )


CONTEXT = ApprovalContext(chat_id="chat-1", backend="kai-assistant", server="http://127.0.0.1:1")


def decide(plugins: Plugins, tool_name: str) -> tuple[str, ApprovalDecision] | None:
    return plugins.call_first(
        "kai_approve_tool", fail_closed=True, request=request(tool_name), context=CONTEXT
    )


def write(tmp_path: Path, text: str | bytes, name: str = "policy.toml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


@pytest.fixture
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty config folder in place of the user's own; no project or managed file."""
    home = tmp_path / "config"
    home.mkdir()
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    monkeypatch.setenv("KAI_MANAGED_POLICY", str(write(tmp_path, "", "managed.toml")))
    monkeypatch.chdir(tmp_path)
    return home


# -- deciding (the rules themselves: tests/test_permissions.py) ---------------------


def test_the_plugin_applies_the_engine(tmp_path: Path) -> None:
    policy = RulesPolicy(write(tmp_path, RULES))
    approve = policy.kai_approve_tool(request("list_tables"), CONTEXT)
    assert approve is not None and approve.approved
    assert (approve.decided_by, approve.rule) == ("rule", "list_*")
    reject = policy.kai_approve_tool(request("drop_table"), CONTEXT)
    assert reject is not None and not reject.approved and reject.rule == "drop_*"
    path = tmp_path / "policy.toml"
    assert reject.reason == f"deny rule 'drop_*' (command-line policy {path}:4)"
    assert policy.kai_approve_tool(request("create_bucket"), CONTEXT) is None  # ask
    assert policy.kai_approve_tool(request("run_job"), CONTEXT) is None  # no component
    job = request("run_job", {"component_id": "keboola.ex-db-mysql"})
    assert policy.kai_approve_tool(job, CONTEXT) is not None


def test_auto_approve_approves_everything() -> None:
    decision = AutoApprove().kai_approve_tool(request("anything"), CONTEXT)
    assert decision == ApprovalDecision(
        approved=True, reason="--auto-approve", decided_by="auto-approve"
    )


# -- where the files come from ------------------------------------------------------------


def test_default_path_is_in_the_config_folder(config_home: Path) -> None:
    assert default_policy_path() == config_home / "kai" / "policy.toml"


def test_load_policy_reads_the_user_file_only_when_it_exists(config_home: Path) -> None:
    assert load_policy(None) is None
    (config_home / "kai").mkdir()
    (config_home / "kai" / "policy.toml").write_text(RULES)
    policy = load_policy(None)
    assert policy is not None and len(policy.permissions.rules["deny"]) == 2


def test_load_policy_explicit_file_must_exist(tmp_path: Path, config_home: Path) -> None:
    with pytest.raises(PolicyFileError, match="no such file"):
        load_policy(tmp_path / "nope.toml")
    policy = load_policy(str(write(tmp_path, RULES)))
    assert policy is not None
    assert policy.permissions.evaluate("delete_x").scope == "command-line"


def test_a_broken_default_file_is_a_start_up_error(config_home: Path) -> None:
    (config_home / "kai").mkdir()
    (config_home / "kai" / "policy.toml").write_text("[[rule]]\ntool =\n")
    with pytest.raises(PolicyFileError, match="invalid TOML"):
        register_builtin_policies(Plugins(load_entry_points=False))
    assert (
        register_builtin_policies(Plugins(load_entry_points=False), use_default_policy=False) == []
    )


def test_a_managed_ban_on_auto_approve_is_a_start_up_error(
    tmp_path: Path, config_home: Path
) -> None:
    write(tmp_path, "[permissions]\ndisable_auto_approve = true\n", "managed.toml")
    plugins = Plugins(load_entry_points=False)
    with pytest.raises(PolicyFileError, match=r"managed.toml:2: disable_auto_approve"):
        register_builtin_policies(plugins, auto_approve=True)
    assert "auto-approve" not in plugins.names()


# -- order ------------------------------------------------------------------------


class Installed:
    """A third-party policy: rejects anything about buckets, approves ``run_*``."""

    @hookimpl
    def kai_approve_tool(self, request: ApprovalRequest) -> ApprovalDecision | None:
        if "bucket" in request.tool_name:
            return ApprovalDecision.reject("no buckets here")
        if request.tool_name.startswith("run_"):
            return ApprovalDecision.approve("runs are fine")
        return None


def test_rules_then_installed_policies_then_auto_approve(tmp_path: Path, config_home: Path) -> None:
    rules = write(tmp_path, '[permissions]\ndeny = ["run_*"]\n')
    plugins = Plugins(load_entry_points=False)
    plugins.register(Installed(), name="installed")  # as if loaded from an entry point
    names = register_builtin_policies(plugins, policy_path=rules, auto_approve=True)
    assert names == ["policy-file", "auto-approve"]

    name, decision = decide(plugins, "run_job") or ("", None)
    assert (name, decision.approved, decision.rule) == ("policy-file", False, "run_*")
    name, decision = decide(plugins, "create_bucket") or ("", None)
    assert (name, decision.approved, decision.reason) == ("installed", False, "no buckets here")
    name, decision = decide(plugins, "list_tables") or ("", None)
    assert (name, decision.approved, decision.decided_by) == ("auto-approve", True, "auto-approve")


def test_auto_approve_stays_last_whenever_registered(config_home: Path) -> None:
    plugins = Plugins(load_entry_points=False)
    register_builtin_policies(plugins, auto_approve=True)
    plugins.register(Installed(), name="late")
    found = decide(plugins, "create_bucket")
    assert found is not None and found[0] == "late" and not found[1].approved


def test_without_auto_approve_nobody_decides(config_home: Path) -> None:
    plugins = Plugins(load_entry_points=False)
    assert register_builtin_policies(plugins) == []
    assert decide(plugins, "create_bucket") is None  # the front end asks, or rejects


class Raising:
    @hookimpl
    def kai_approve_tool(self, request: ApprovalRequest) -> ApprovalDecision | None:
        raise KeyError("policy database gone")


def test_a_raising_policy_fails_closed_before_auto_approve(config_home: Path) -> None:
    reports: list[str] = []
    plugins = Plugins(load_entry_points=False, report=reports.append)
    register_builtin_policies(plugins, auto_approve=True)
    plugins.register(Raising(), name="raising")
    with pytest.raises(PluginFailure) as info:
        decide(plugins, "create_bucket")
    assert info.value.plugin == "raising"
    assert reports == [
        "plugin 'raising' failed in kai_approve_tool: KeyError: 'policy database gone' "
        "(it rejects every call for the rest of this session)"
    ]
    # Tripped from then on: every later request fails on it again, never reaching
    # auto-approve (it was skipped, and auto-approve decided, before the fix);
    # it is not called again, nor reported again.
    for _ in range(3):
        with pytest.raises(PluginFailure) as again:
            decide(plugins, "create_bucket")
        assert again.value.plugin == "raising"
        assert isinstance(again.value.error, KeyError)
    assert len(reports) == 1
