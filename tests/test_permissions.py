"""The permission engine: rule syntax, matching, precedence, scopes, broken files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kai_core.permissions import (
    PermissionSet,
    PolicyError,
    Rule,
    RuleSyntaxError,
    find_policy_files,
    load_permissions,
    parse_rule,
    read_policy_file,
)

ISSUE_POLICY = """\
[permissions]
allow = ["list_*", "get_*", "run_job(component_id=keboola.ex-db-*)"]
ask   = ["create_*"]
deny  = ["delete_*", "update_descriptions(table_id=out.c-prod.*)"]
"""


def write(folder: Path, text: str | bytes, name: str = "policy.toml") -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def no_scopes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """An empty managed file; no user or project file unless a test writes one."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.chdir(tmp_path)
    managed = write(tmp_path, "", "managed.toml")
    return {"KAI_MANAGED_POLICY": str(managed)}


# -- matching and precedence: (rules, tool, input) -> (decision, rule) --------------

NESTED = {"configuration": {"parameters": {"table": "out.c-prod.users", "rows": 10}}}

CASES: list[tuple[str, dict[str, list[str]], str, Any, str, str | None]] = [
    # name, rules, tool, input, decision, matching rule
    ("no rules: ask", {}, "list_tables", None, "ask", None),
    ("plain glob", {"allow": ["list_*"]}, "list_tables", None, "allow", "list_*"),
    ("case-sensitive", {"allow": ["list_*"]}, "List_tables", None, "ask", None),
    (
        "deny beats allow",
        {"allow": ["*"], "deny": ["delete_*"]},
        "delete_x",
        None,
        "deny",
        "delete_*",
    ),
    ("deny beats ask", {"ask": ["*"], "deny": ["delete_*"]}, "delete_x", None, "deny", "delete_*"),
    (
        "ask beats allow",
        {"allow": ["create_*"], "ask": ["create_*"]},
        "create_b",
        None,
        "ask",
        "create_*",
    ),
    (
        "specificity does not matter",
        {"allow": ["run_job(component_id=keboola.ex-db-mysql)"], "deny": ["run_*"]},
        "run_job",
        {"component_id": "keboola.ex-db-mysql"},
        "deny",
        "run_*",
    ),
    (
        "first match decides within a list",
        {"deny": ["delete_*", "delete_bucket"]},
        "delete_bucket",
        None,
        "deny",
        "delete_*",
    ),
    (
        "argument glob",
        {"allow": ["run_job(component_id=keboola.ex-db-*)"]},
        "run_job",
        {"component_id": "keboola.ex-db-snowflake"},
        "allow",
        "run_job(component_id=keboola.ex-db-*)",
    ),
    (
        "argument glob not matching",
        {"allow": ["run_job(component_id=keboola.ex-db-*)"]},
        "run_job",
        {"component_id": "keboola.wr-db-snowflake"},
        "ask",
        None,
    ),
    (
        "argument globs are case-sensitive",
        {"deny": ["update_descriptions(table_id=out.c-prod.*)"]},
        "update_descriptions",
        {"table_id": "OUT.c-prod.users"},
        "ask",
        None,
    ),
    (
        "every key must match",
        {"allow": ["run_job(component_id=keboola.ex-*, config_id=12*)"]},
        "run_job",
        {"component_id": "keboola.ex-db", "config_id": "99"},
        "ask",
        None,
    ),
    (
        "every key matches",
        {"allow": ["run_job(component_id=keboola.ex-*, config_id=12*)"]},
        "run_job",
        {"component_id": "keboola.ex-db", "config_id": "1234"},
        "allow",
        "run_job(component_id=keboola.ex-*, config_id=12*)",
    ),
    (
        "dotted key into nested objects",
        {"deny": ["update_*(configuration.parameters.table=out.c-prod.*)"]},
        "update_config",
        NESTED,
        "deny",
        "update_*(configuration.parameters.table=out.c-prod.*)",
    ),
    (
        "dotted key: non-string value is compact JSON",
        {"ask": ["update_*(configuration.parameters.rows=1?)"]},
        "update_config",
        NESTED,
        "ask",
        "update_*(configuration.parameters.rows=1?)",
    ),
    (
        "a whole object as compact JSON",
        {"deny": ['x(configuration.parameters={"table":"out.c-prod.users"*)']},
        "x",
        NESTED,
        "deny",
        'x(configuration.parameters={"table":"out.c-prod.users"*)',
    ),
    ("boolean value", {"deny": ["x(force=true)"]}, "x", {"force": True}, "deny", "x(force=true)"),
    ("list value", {"deny": ['x(ids=["a"*)']}, "x", {"ids": ["a", "b"]}, "deny", 'x(ids=["a"*)'),
    ("null value is JSON null", {"deny": ["x(v=null)"]}, "x", {"v": None}, "deny", "x(v=null)"),
    ("missing key never matches a glob", {"deny": ["x(table_id=*)"]}, "x", {}, "ask", None),
    ("missing key: KEY= matches", {"deny": ["x(table_id=)"]}, "x", {}, "deny", "x(table_id=)"),
    ("empty string: KEY= matches", {"deny": ["x(t=)"]}, "x", {"t": ""}, "deny", "x(t=)"),
    ("empty list: KEY= matches", {"deny": ["x(t=)"]}, "x", {"t": []}, "deny", "x(t=)"),
    ("null: KEY= matches", {"deny": ["x(t=)"]}, "x", {"t": None}, "deny", "x(t=)"),
    ("zero is not empty", {"deny": ["x(t=)"]}, "x", {"t": 0}, "ask", None),
    ("false is not empty", {"deny": ["x(t=)"]}, "x", {"t": False}, "ask", None),
    ("non-object input: keys missing", {"deny": ["x(t=)"]}, "x", ["t"], "deny", "x(t=)"),
    ("dotted path through a string", {"deny": ["x(a.b=*)"]}, "x", {"a": "b"}, "ask", None),
    (
        "quoted value with a comma",
        {"deny": ['run_query(sql="SELECT a, b *")']},
        "run_query",
        {"sql": "SELECT a, b FROM t"},
        "deny",
        'run_query(sql="SELECT a, b *")',
    ),
    # look-alikes and control characters
    (
        "full-width look-alike hits deny",
        {"deny": ["delete_*"]},
        "ｄelete_bucket",
        None,
        "deny",
        "delete_*",
    ),
    (
        "zero-width space hits deny",
        {"deny": ["delete_*"]},
        "delete\u200b_bucket",
        None,
        "deny",
        "delete_*",
    ),
    (
        "control character hits deny",
        {"deny": ["delete_*"]},
        "delete\x07_bucket",
        None,
        "deny",
        "delete_*",
    ),
    (
        "look-alike hits ask",
        {"ask": ["create_*"], "allow": ["*"]},
        "ｃreate_b",
        None,
        "ask",
        "create_*",
    ),
    (
        "cyrillic look-alike is never allowed",
        {"allow": ["list_*"]},
        "lіst_tables",
        None,
        "ask",
        None,
    ),
    ("full-width name is never allowed", {"allow": ["*"]}, "ｌist_tables", None, "ask", None),
    (
        "control char in name never allowed",
        {"allow": ["list_*"]},
        "list_tables\n",
        None,
        "ask",
        None,
    ),
    ("escape sequence never allowed", {"allow": ["*"]}, "list\x1b[2J", None, "ask", None),
    ("empty name never allowed", {"allow": ["*"]}, "", None, "ask", None),
    (
        "control char in a value is never allowed",
        {"allow": ["x(id=*)"]},
        "x",
        {"id": "a\x1b[31m"},
        "ask",
        None,
    ),
    (
        "format char in a value is never allowed",
        {"allow": ["x(id=a*)"]},
        "x",
        {"id": "a\u202eb"},
        "ask",
        None,
    ),
    (
        "look-alike value hits deny",
        {"deny": ["update_descriptions(table_id=out.c-prod.*)"]},
        "update_descriptions",
        {"table_id": "ｏut.c-prod.users"},
        "deny",
        "update_descriptions(table_id=out.c-prod.*)",
    ),
    (
        "unicode value can be allowed",
        {"allow": ["x(d=Tabulka*)"]},
        "x",
        {"d": "Tabulka objednávek"},
        "allow",
        "x(d=Tabulka*)",
    ),
]


@pytest.mark.parametrize(
    ("rules", "tool", "tool_input", "decision", "rule"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_precedence_and_matching(
    rules: dict[str, list[str]], tool: str, tool_input: Any, decision: str, rule: str | None
) -> None:
    permissions = PermissionSet.from_rules(**rules)
    verdict = permissions.evaluate(tool, tool_input)
    assert (verdict.decision, verdict.rule) == (decision, rule)
    # Rule.matches (normalising by itself) agrees with the set's evaluation.
    matching = [r for rs in permissions.rules.values() for r in rs if r.matches(tool, tool_input)]
    assert [r.text for r in matching][:1] == ([verdict.rule] if verdict.rule else [])


def test_the_issues_example_policy(tmp_path: Path) -> None:
    path = write(tmp_path, ISSUE_POLICY)
    permissions = PermissionSet([read_policy_file(path, "project")])
    table = [
        ("list_tables", {}, "allow", "list_*", 2),
        ("run_job", {"component_id": "keboola.ex-db-mysql"}, "allow", None, 2),
        ("run_job", {"component_id": "keboola.orchestrator"}, "ask", None, None),
        ("create_bucket", {"name": "b"}, "ask", "create_*", 3),
        ("delete_bucket", {"bucket_id": "in.c-x"}, "deny", "delete_*", 4),
        ("update_descriptions", {"table_id": "out.c-prod.users"}, "deny", None, 4),
        ("update_descriptions", {"table_id": "in.c-main.users"}, "ask", None, None),
    ]
    for tool, tool_input, decision, rule, line in table:
        verdict = permissions.evaluate(tool, tool_input)
        assert verdict.decision == decision, tool
        if rule is not None:
            assert verdict.rule == rule
        assert verdict.line == line
        if line is not None:
            assert verdict.scope == "project"
            assert verdict.source == f"{path}:{line}"
            assert f"({'project'} policy {path}:{line})" in verdict.reason


def test_rules_are_placed_on_their_own_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '# a comment\n[permissions]\ndeny = [\n  "delete_*",\n  "drop_*",\n  "delete_*",\n]\n',
    )
    rules = read_policy_file(path, "user").rules
    assert [(r.text, r.line, r.scope) for r in rules] == [
        ("delete_*", 4, "user"),
        ("drop_*", 5, "user"),
        ("delete_*", 6, "user"),
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "has no tool glob"),
        ("   ", "has no tool glob"),
        ("(a=1)", "has no tool glob"),
        ("a(", "does not end with ')'"),
        ("a(b=1", "does not end with ')'"),
        ("a()", "empty parentheses"),
        ("a(b)", "expected KEY=GLOB"),
        ("a(=1)", "expected KEY=GLOB"),
        ("a(b..c=1)", "expected KEY=GLOB"),
        ("a(b=1,)", "expected KEY=GLOB"),
        ("a(b=(1))", "holds a parenthesis"),
        ("a(b=1)x", "does not end with ')'"),
        ("a(b=1))", "holds a parenthesis"),
        ('a(b="x)', "not closed"),
        ('a(b="x" c=1)', "expected ',' or ')'"),
        ("a(b=1, b=2)", "names b twice"),
        ("list tables", "must be printable ASCII"),
        ("lіst_*", "must be printable ASCII"),
        ("list_*\x00", "control or format character"),
        ("list_\u200b*", "control or format character"),
    ],
)
def test_rule_syntax_errors(text: str, problem: str) -> None:
    with pytest.raises(RuleSyntaxError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        parse_rule(text, "deny")


def test_a_rule_keeps_its_text_and_keys() -> None:
    rule = parse_rule('  run_query( sql = "SELECT a, b" , a.b= )  ', "ask")
    assert rule == Rule(
        text='run_query( sql = "SELECT a, b" , a.b= )',
        action="ask",
        tool="run_query",
        keys=(("sql", "SELECT a, b"), ("a.b", "")),
    )


# -- broken files: every case names the file and the line ---------------------------

BROKEN: list[tuple[str, str | bytes, str, int | None]] = [
    ("toml syntax", '[permissions]\nallow = ["a"\ndeny = []\n', "invalid TOML", 3),
    ("toml cut short", "[permissions]\ndeny = [\n", "invalid TOML", 2),
    ("not utf-8", b'[permissions]\nallow = ["a"]\n\xff\n', "is not UTF-8 text", 3),
    ("unknown top key", "[permissions]\nallow = []\n[rules]\nx = 1\n", "unknown key 'rules'", 3),
    ("unknown top scalar", 'mode = "strict"\n', "unknown key 'mode'", 1),
    ("permissions not a table", "permissions = 3\n", "permissions must be a table", 1),
    (
        "unknown permissions key",
        '[permissions]\nallow = []\nblock = ["x"]\n',
        "unknown key 'block'",
        3,
    ),
    ("rules not a list", '[permissions]\n\ndeny = "delete_*"\n', "deny must be a list of rules", 3),
    (
        "rule not a string",
        '[permissions]\nask = [\n  "a",\n  3,\n]\n',
        "a rule must be a string",
        2,
    ),
    (
        "bad rule",
        '[permissions]\nallow = ["list_*"]\ndeny = [\n  "ok_*",\n  "a(b",\n]\n',
        "deny: rule 'a(b' does not end",
        5,
    ),
    (
        "managed-only setting",
        "[permissions]\ndisable_auto_approve = true\n",
        "may only be set in the managed",
        2,
    ),
    ("audit not a table", "audit = true\n", "audit must be a table", 1),
    ("unknown audit key", "[audit]\nfull = true\n", "unknown key 'full' in [audit]", 2),
    ("audit not a bool", '[audit]\nfull_input = "yes"\n', "full_input must be true or false", 2),
    ("old form: no tool", '[[rule]]\naction = "approve"\n', "rule 1: tool must be a glob", 1),
    (
        "old form: bad action",
        '[[rule]]\ntool = "a"\naction = "approve"\n\n[[rule]]\ntool = "b"\naction = "allow"\n',
        "rule 2 ('b') has action 'allow'",
        5,
    ),
    (
        "old form: unknown key",
        '[[rule]]\ntool = "a"\naction = "ask"\nwhy = "x"\n',
        "rule 1 has unknown key(s) why",
        1,
    ),
    (
        "old form: reason type",
        '[[rule]]\ntool = "a"\naction = "ask"\nreason = 3\n',
        "reason must be a string",
        1,
    ),
    ("old form: not tables", 'rule = "x"\n', "rule must be an array of tables", 1),
    (
        "old form: bad glob",
        '[[rule]]\ntool = "a b"\naction = "ask"\n',
        "must be printable ASCII",
        1,
    ),
]


@pytest.mark.parametrize(
    ("text", "problem", "line"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN]
)
def test_every_broken_file_names_the_file_and_line(
    tmp_path: Path, text: str | bytes, problem: str, line: int | None
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(PolicyError) as info:
        read_policy_file(path, "user")
    assert info.value.path == path
    assert info.value.line == line
    assert str(info.value).startswith(f"policy file {path}:{line}: ")
    assert problem in str(info.value)


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="no such file"):
        read_policy_file(tmp_path / "absent.toml", "command-line")
    with pytest.raises(PolicyError, match="is a directory"):
        read_policy_file(tmp_path, "command-line")


def test_managed_settings_must_be_booleans(tmp_path: Path) -> None:
    path = write(tmp_path, '[permissions]\nallow_user_rules = "no"\n')
    with pytest.raises(PolicyError, match=r":2: allow_user_rules must be true or false"):
        read_policy_file(path, "managed")


def test_the_old_form_still_works_with_a_warning(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[[rule]]\ntool = "list_*"\naction = "approve"\nreason = "read-only"\n\n'
        '[[rule]]\ntool = ["delete_*", "drop_*"]\naction = "reject"\n\n'
        '[[rule]]\ntool = "create_*"\naction = "ask"\n',
    )
    policy = read_policy_file(path, "user")
    assert [(r.text, r.action, r.line, r.reason) for r in policy.rules] == [
        ("list_*", "allow", 1, "read-only"),
        ("delete_*", "deny", 6, None),
        ("drop_*", "deny", 6, None),
        ("create_*", "ask", 10, None),
    ]
    (warning,) = policy.warnings
    assert "old [[rule]] form" in warning and "[permissions] allow = [...]" in warning
    verdict = PermissionSet([policy]).evaluate("list_tables")
    assert verdict.decision == "allow"
    assert verdict.reason.startswith("read-only: allow rule 'list_*'")


# -- scopes and their merge -------------------------------------------------------


def test_scopes_are_found_in_order(tmp_path: Path, no_scopes: dict[str, str]) -> None:
    managed = tmp_path / "managed.toml"
    assert find_policy_files(environ=no_scopes) == [("managed", managed)]
    user = write(tmp_path / "config" / "kai", "")
    project = write(tmp_path / ".kai", "")
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    cli = tmp_path / "cli.toml"
    found = find_policy_files(cli, cwd=deep, environ=no_scopes)
    assert found == [
        ("managed", managed),
        ("user", user),
        ("project", project),
        ("command-line", cli),  # listed though missing: reading it then fails
    ]


def test_the_nearest_project_file_wins(tmp_path: Path, no_scopes: dict[str, str]) -> None:
    write(tmp_path / ".kai", "")
    inner = write(tmp_path / "repo" / ".kai", "")
    found = find_policy_files(cwd=tmp_path / "repo", environ=no_scopes)
    assert found[1:] == [("project", inner)]


def test_a_deny_in_any_scope_wins(tmp_path: Path, no_scopes: dict[str, str]) -> None:
    write(tmp_path, '[permissions]\nallow = ["list_*"]\n', "managed.toml")
    write(tmp_path / "config" / "kai", '[permissions]\nallow = ["delete_*", "*"]\n')
    write(tmp_path / ".kai", '[permissions]\nask = ["create_*"]\n')
    cli = write(tmp_path, '[permissions]\ndeny = ["delete_bucket"]\n', "cli.toml")
    permissions = load_permissions(cli, environ=no_scopes)
    denied = permissions.evaluate("delete_bucket")
    assert (denied.decision, denied.scope, denied.source) == ("deny", "command-line", f"{cli}:2")
    asked = permissions.evaluate("create_bucket")
    assert (asked.decision, asked.scope) == ("ask", "project")
    allowed = permissions.evaluate("delete_table")
    assert (allowed.decision, allowed.rule, allowed.scope) == ("allow", "delete_*", "user")
    assert permissions.evaluate("list_tables").scope == "managed"  # managed is read first


def test_a_managed_deny_cannot_be_loosened(tmp_path: Path, no_scopes: dict[str, str]) -> None:
    write(
        tmp_path, '[permissions]\ndeny = ["run_job(component_id=keboola.wr-*)"]\n', "managed.toml"
    )
    cli = write(tmp_path, '[permissions]\nallow = ["run_job"]\n', "cli.toml")
    permissions = load_permissions(cli, environ=no_scopes)
    verdict = permissions.evaluate("run_job", {"component_id": "keboola.wr-db-snowflake"})
    assert (verdict.decision, verdict.scope) == ("deny", "managed")
    assert permissions.evaluate("run_job", {"component_id": "keboola.ex-x"}).decision == "allow"


def test_allow_user_rules_false_keeps_only_managed_rules(
    tmp_path: Path, no_scopes: dict[str, str]
) -> None:
    managed = write(
        tmp_path,
        '[permissions]\nallow_user_rules = false\nallow = ["list_*"]\n',
        "managed.toml",
    )
    write(tmp_path / "config" / "kai", '[permissions]\nallow = ["create_*"]\n')
    cli = write(tmp_path, '[permissions]\ndeny = ["list_*"]\n', "cli.toml")
    permissions = load_permissions(cli, environ=no_scopes)
    assert permissions.evaluate("list_tables").scope == "managed"
    assert permissions.evaluate("create_bucket").decision == "ask"
    (warning,) = permissions.warnings
    assert str(managed) in warning and "allow_user_rules = false" in warning
    assert str(cli) in warning and "are ignored" in warning


def test_disable_auto_approve_names_the_managed_file(
    tmp_path: Path, no_scopes: dict[str, str]
) -> None:
    managed = write(tmp_path, "[permissions]\n\ndisable_auto_approve = true\n", "managed.toml")
    permissions = load_permissions(environ=no_scopes)
    with pytest.raises(PolicyError) as info:
        permissions.refuse_auto_approve()
    assert str(info.value).startswith(f"policy file {managed}:3: disable_auto_approve")
    write(tmp_path, "[permissions]\ndisable_auto_approve = false\n", "managed.toml")
    load_permissions(environ=no_scopes).refuse_auto_approve()  # allowed


def test_a_broken_file_in_any_scope_is_an_error(tmp_path: Path, no_scopes: dict[str, str]) -> None:
    project = write(tmp_path / ".kai", "[permissions]\nallow = [\n")
    with pytest.raises(PolicyError, match=str(project)):
        load_permissions(environ=no_scopes)
    project.unlink()
    with pytest.raises(PolicyError, match="absent.toml: no such file"):
        load_permissions(environ={"KAI_MANAGED_POLICY": str(tmp_path / "absent.toml")})


def test_full_input_auditing_is_opt_in(tmp_path: Path) -> None:
    off = read_policy_file(write(tmp_path, ISSUE_POLICY), "user")
    on = read_policy_file(write(tmp_path, "[audit]\nfull_input = true\n", "b.toml"), "project")
    assert not PermissionSet([off]).audit_full_input
    assert PermissionSet([off, on]).audit_full_input
