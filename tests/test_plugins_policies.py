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
    load_rules,
    register_builtin_policies,
)

RULES = """\
# read-only tools run without asking
[[rule]]
tool = "list_*"
action = "approve"
reason = "read-only"

[[rule]]
tool = ["delete_*", "drop_*"]
action = "reject"

[[rule]]
tool = "create_*"
action = "ask"

[[rule]]
tool = "*"
action = "approve"
reason = "everything else"
"""


def request(tool_name: str) -> ApprovalRequest:
    return ApprovalRequest(tool_name=tool_name, tool_call_id="call_1", approval_id="aitxt-1")


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
    """An empty config folder in place of the user's own."""
    home = tmp_path / "config"
    home.mkdir()
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    return home


# -- parsing -----------------------------------------------------------------------


def test_rules_are_read_in_order(tmp_path: Path) -> None:
    rules = load_rules(write(tmp_path, RULES))
    assert [(r.tools, r.action, r.reason, r.number) for r in rules] == [
        (("list_*",), "approve", "read-only", 1),
        (("delete_*", "drop_*"), "reject", None, 2),
        (("create_*",), "ask", None, 3),
        (("*",), "approve", "everything else", 4),
    ]


def test_an_empty_file_has_no_rules(tmp_path: Path) -> None:
    assert load_rules(write(tmp_path, "# nothing yet\n")) == []


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('[[rule]]\ntool = "list_*"\naction = "approve\n', "invalid TOML: "),
        ('[[rule]]\naction = "approve"\n', 'rule 1 has no tool; add tool = "glob"'),
        (
            '[[rule]]\ntool = "a"\naction = "approve"\n[[rule]]\ntool = "b"\naction = "allow"\n',
            "rule 2 ('b') has unknown action 'allow'; use one of ('approve', 'reject', 'ask')",
        ),
        ('[[rule]]\ntool = "a"\n', "rule 1 ('a') has no action"),
        ('[[rule]]\ntool = "a"\naction = "ask"\nwhy = "x"\n', "rule 1 has unknown key(s) why"),
        ('[[rule]]\ntool = ""\naction = "ask"\n', "rule 1: tool must be a glob or a list"),
        ('[[rule]]\ntool = [1]\naction = "ask"\n', "rule 1: tool must be a glob or a list"),
        ('[[rule]]\ntool = "a"\naction = "ask"\nreason = 3\n', "reason must be a string"),
        ('rule = "x"\n', "rule must be an array of tables"),
        ('[[rules]]\ntool = "a"\n', "unknown top-level key(s) rules"),
    ],
)
def test_bad_files_say_what_is_wrong(tmp_path: Path, text: str, problem: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(PolicyFileError) as info:
        load_rules(path)
    assert str(info.value).startswith(f"policy file '{path}': ")
    assert problem in str(info.value)
    assert info.value.path == path


def test_toml_syntax_errors_give_the_line(tmp_path: Path) -> None:
    with pytest.raises(PolicyFileError, match=r"invalid TOML: .*line 3"):
        load_rules(write(tmp_path, '[[rule]]\ntool = "list_*"\naction = approve\n'))


def test_missing_unreadable_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(PolicyFileError, match="no such file"):
        load_rules(tmp_path / "absent.toml")
    with pytest.raises(PolicyFileError, match="is a directory"):
        load_rules(tmp_path)
    with pytest.raises(PolicyFileError, match="not UTF-8"):
        load_rules(write(tmp_path, b"\xff\xfe[[rule]]"))
    assert issubclass(PolicyFileError, ValueError)


# -- deciding ------------------------------------------------------------------------


def test_first_matching_rule_decides(tmp_path: Path) -> None:
    policy = RulesPolicy(write(tmp_path, RULES))
    approve = policy.kai_approve_tool(request("list_tables"), CONTEXT)
    assert approve == ApprovalDecision.approve("read-only", decided_by="policy-file")
    reject = policy.kai_approve_tool(request("drop_table"), CONTEXT)
    assert reject is not None and not reject.approved
    assert reject.reason == f"rule 2 (delete_*, drop_*) in {policy.path}"
    assert policy.kai_approve_tool(request("create_bucket"), CONTEXT) is None  # ask
    other = policy.kai_approve_tool(request("run_job"), CONTEXT)
    assert other is not None and other.reason == "everything else"


def test_no_matching_rule_is_no_opinion(tmp_path: Path) -> None:
    policy = RulesPolicy(write(tmp_path, '[[rule]]\ntool = "list_*"\naction = "approve"\n'))
    assert policy.kai_approve_tool(request("create_bucket"), CONTEXT) is None
    assert policy.match("List_tables") is None  # globs are case-sensitive


def test_auto_approve_approves_everything() -> None:
    decision = AutoApprove().kai_approve_tool(request("anything"), CONTEXT)
    assert decision == ApprovalDecision(
        approved=True, reason="--auto-approve", decided_by="auto-approve"
    )


# -- where the file comes from ------------------------------------------------------------


def test_default_path_is_in_the_config_folder(config_home: Path) -> None:
    assert default_policy_path() == config_home / "kai" / "policy.toml"


def test_load_policy_default_file_only_when_it_exists(config_home: Path) -> None:
    assert load_policy(None) is None
    (config_home / "kai").mkdir()
    (config_home / "kai" / "policy.toml").write_text(RULES)
    policy = load_policy(None)
    assert policy is not None and len(policy.rules) == 4


def test_load_policy_explicit_file_must_exist(tmp_path: Path, config_home: Path) -> None:
    with pytest.raises(PolicyFileError, match="no such file"):
        load_policy(tmp_path / "nope.toml")
    policy = load_policy(str(write(tmp_path, RULES)))
    assert policy is not None and policy.path == tmp_path / "policy.toml"


def test_a_broken_default_file_is_a_start_up_error(config_home: Path) -> None:
    (config_home / "kai").mkdir()
    (config_home / "kai" / "policy.toml").write_text("[[rule]]\ntool =\n")
    with pytest.raises(PolicyFileError, match="invalid TOML"):
        register_builtin_policies(Plugins(load_entry_points=False))
    assert (
        register_builtin_policies(Plugins(load_entry_points=False), use_default_policy=False) == []
    )


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
    rules = write(tmp_path, '[[rule]]\ntool = "run_*"\naction = "reject"\nreason = "no jobs"\n')
    plugins = Plugins(load_entry_points=False)
    plugins.register(Installed(), name="installed")  # as if loaded from an entry point
    names = register_builtin_policies(plugins, policy_path=rules, auto_approve=True)
    assert names == ["policy-file", "auto-approve"]

    name, decision = decide(plugins, "run_job") or ("", None)
    assert (name, decision.approved, decision.reason) == ("policy-file", False, "no jobs")
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
