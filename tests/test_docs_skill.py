"""The coding-agent skill (docs/agent-skill/) is true to the CLI.

Every ``kai`` / ``kai-shell`` command line in the skill (fenced shell
blocks, inline code, the example scripts) is parsed the way a shell splits
it and walked down the click command tree: the command must exist and every
option must belong to the command it is given to (options of ``kai`` itself
before the command name). The JSON lines of the events reference are checked
against ``event_to_dict``, the exit codes against ``kai_shell.errors``, and
the example scripts are syntax-checked and run against the emulator.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
import trio

from kai_core import events as ev
from kai_core.testing import Emulator

SKILL_ROOT = Path(__file__).resolve().parent.parent / "docs" / "agent-skill"
SKILL = SKILL_ROOT / "skills" / "kai-cli"
MARKDOWN = sorted(SKILL.rglob("*.md"))
SCRIPTS = sorted((SKILL / "examples").glob("*.sh"))
SHELL_LANGS = {"bash", "sh", "shell", "console"}


# -- splitting shell text into commands ---------------------------------------------


def split_commands(text: str) -> list[list[str]]:  # noqa: C901 - a small shell-word lexer: one state machine
    """Simple commands of ``text``, each a list of words with quotes removed.

    Enough of the shell for documentation: quotes, backslashes, line
    continuations, comments, ``$(...)`` (whose inside is a command of its
    own), pipes, lists and redirections. ``[`` and ``]`` outside quotes are
    dropped and a ``|`` inside them is an alternative, as in synopses
    (``[--instant | --speed N]``).
    """
    commands: list[list[str]] = []
    current: list[str] = []
    word: list[str] = []
    in_word = False
    skip_next_word = False  # the target of a redirection
    depth = 0  # synopsis brackets
    i, n = 0, len(text)

    def end_word() -> None:
        nonlocal word, in_word, skip_next_word
        if in_word:
            if skip_next_word:
                skip_next_word = False
            else:
                current.append("".join(word))
        word, in_word = [], False

    def end_command() -> None:
        nonlocal current
        end_word()
        if current:
            commands.append(current)
        current = []

    while i < n:
        ch = text[i]
        if ch == "\\" and i + 1 < n:
            if text[i + 1] != "\n":
                word.append(text[i + 1])
                in_word = True
            i += 2
            continue
        if ch == "'":
            close = text.find("'", i + 1)
            close = n if close < 0 else close
            word.append(text[i + 1 : close])
            in_word = True
            i = close + 1
            continue
        if ch == "$" and text.startswith("$(", i):
            close = _matching_paren(text, i + 1)
            commands.extend(split_commands(text[i + 2 : close]))
            word.append("$SUBST")
            in_word = True
            i = close + 1
            continue
        if ch == '"':
            j = i + 1
            while j < n and text[j] != '"':
                if text[j] == "\\" and j + 1 < n:
                    word.append(text[j + 1])
                    j += 2
                    continue
                if text.startswith("$(", j):
                    close = _matching_paren(text, j + 1)
                    commands.extend(split_commands(text[j + 2 : close]))
                    word.append("$SUBST")
                    j = close + 1
                    continue
                word.append(text[j])
                j += 1
            in_word = True
            i = j + 1
            continue
        if ch == "#" and not in_word:
            newline = text.find("\n", i)
            i = n if newline < 0 else newline
            continue
        if ch in "[]":
            depth += 1 if ch == "[" else -1
            depth = max(depth, 0)
            end_word()
            i += 1
            continue
        if ch == "|" and depth > 0:
            end_word()
            i += 1
            continue
        if ch in "\n;&|()":
            end_command()
            i += 1
            continue
        if ch in "<>":
            end_word()
            if word == [] and current and current[-1].isdigit():
                current.pop()  # the fd of 2>...
            skip_next_word = True  # the file, or the fd of >&1
            i += 2 if text.startswith((">>", ">&", "<<", "<&"), i) else 1
            continue
        if ch.isspace():
            end_word()
            i += 1
            continue
        word.append(ch)
        in_word = True
        i += 1
    end_command()
    return commands


def _matching_paren(text: str, open_at: int) -> int:
    depth, i = 0, open_at
    quote: str | None = None
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return len(text)


def test_split_commands() -> None:
    assert split_commands('kai chat -m "a | b" | jq .text') == [
        ["kai", "chat", "-m", "a | b"],
        ["jq", ".text"],
    ]
    assert split_commands("x=$(kai search --json-output q | jq -r .id)  # note") == [
        ["kai", "search", "--json-output", "q"],
        ["jq", "-r", ".id"],
        ["x=$SUBST"],
    ]
    assert split_commands("kai replay ID [--instant | --speed N] > out.txt 2>&1") == [
        ["kai", "replay", "ID", "--instant", "--speed", "N"],
    ]
    assert split_commands("kai chat \\\n  --json-output && echo ok") == [
        ["kai", "chat", "--json-output"],
        ["echo", "ok"],
    ]


# -- where the skill mentions kai ----------------------------------------------------


@dataclass(frozen=True)
class Mention:
    where: str
    text: str


FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.M | re.S)
INLINE = re.compile(r"(?<!`)`([^`\n]+(?:\n[^`\n]+)*)`(?!`)")


def mentions() -> Iterator[Mention]:
    """Shell text of the skill: shell code blocks, inline code spans, example scripts."""
    for path in MARKDOWN:
        name = str(path.relative_to(SKILL_ROOT))
        text = path.read_text()
        for match in FENCE.finditer(text):
            lang, body = match.group(1), match.group(2)
            if lang == "console":
                body = "\n".join(line[2:] for line in body.splitlines() if line.startswith("$ "))
            if lang in SHELL_LANGS:
                yield Mention(f"{name} (code block)", body)
        prose = FENCE.sub("", text)
        for match in INLINE.finditer(prose):
            yield Mention(f"{name} (inline)", match.group(1).replace("\\|", "|"))
    for script in SCRIPTS:
        yield Mention(str(script.relative_to(SKILL_ROOT)), script.read_text())


# -- walking the click tree -------------------------------------------------------


def programs() -> dict[str, click.Command]:
    from kai_shell.cli import main as kai
    from kai_shell.shell.command import command as kai_shell

    return {"kai": kai, "kai-shell": kai_shell}


def _context(command: click.Command, name: str, parent: click.Context | None) -> click.Context:
    return click.Context(command, info_name=name, parent=parent, **command.context_settings)


def _options(ctx: click.Context) -> dict[str, click.Option]:
    found: dict[str, click.Option] = {}
    for param in ctx.command.get_params(ctx):
        if isinstance(param, click.Option):
            for name in [*param.opts, *param.secondary_opts]:
                found[name] = param
    return found


def check_invocation(words: list[str]) -> list[str]:
    """Problems with one ``kai ...`` command line (words after the program name included)."""
    ctx = _context(programs()[words[0]], words[0], None)
    problems: list[str] = []
    rest = iter(words[1:])
    options_done = False
    for word in rest:
        if word in ("...", "…") or word.startswith("$SUBST"):
            if isinstance(ctx.command, click.Group):
                break  # a placeholder for the rest of the line
            continue
        if word == "--":
            options_done = True
            continue
        if not options_done and word.startswith("-") and len(word) > 1 and not word[1].isdigit():
            name, _, inline_value = word.partition("=")
            known = _options(ctx)
            alternatives = name.split("/") if "/" in name else [name]
            missing = [alt for alt in alternatives if alt not in known]
            if missing:
                problems.append(f"`{ctx.command_path}` has no option {', '.join(missing)}")
                continue
            option = known[alternatives[0]]
            if not (option.is_flag or option.count) and not inline_value:
                next(rest, None)
            continue
        if isinstance(ctx.command, click.Group):
            sub = ctx.command.get_command(ctx, word)
            if sub is None:
                problems.append(f"`{ctx.command_path}` has no command {word!r}")
                break
            ctx = _context(sub, word, ctx)
    return problems


def invocations() -> Iterator[tuple[str, list[str]]]:
    for mention in mentions():
        for words in split_commands(mention.text):
            for i, word in enumerate(words):
                if word in programs():
                    yield mention.where, words[i:]
                    break


def test_the_skill_mentions_kai_commands() -> None:
    found = list(invocations())
    assert len(found) > 40
    named = {words[1] for _, words in found if len(words) > 1 and words[0] == "kai"}
    from kai_shell.cli import COMMANDS

    # The references cover every command of the CLI.
    assert set(COMMANDS) <= named


def test_every_kai_command_and_option_exists() -> None:
    problems = []
    for where, words in invocations():
        for problem in check_invocation(words):
            problems.append(f"{where}: {' '.join(words)}\n    {problem}")
    assert not problems, "\n".join(problems)


def test_the_checker_catches_mistakes() -> None:
    assert check_invocation(["kai", "chat", "--json-output", "-m", "hi"]) == []
    assert check_invocation(["kai", "--db", "x.db", "history", "--local"]) == []
    assert check_invocation(["kai", "log", "export", "ID", "-o/--output", "f"]) == []
    assert check_invocation(["kai", "chats"]) == ["`kai` has no command 'chats'"]
    assert check_invocation(["kai", "chat", "--yes"]) == ["`kai chat` has no option --yes"]
    # Global options are accepted after the command name too (issue 13).
    assert check_invocation(["kai", "history", "--no-log"]) == []
    assert check_invocation(["kai", "log", "purge"]) == ["`kai log` has no command 'purge'"]


def test_every_flag_mentioned_alone_exists() -> None:
    """Inline code like `--auto-approve` or `-n/--limit N` names an option of some command."""
    universe: set[str] = set()

    def collect(ctx: click.Context) -> None:
        universe.update(_options(ctx))
        if isinstance(ctx.command, click.Group):
            for name in ctx.command.list_commands(ctx):
                sub = ctx.command.get_command(ctx, name)
                if sub is not None:
                    collect(_context(sub, name, ctx))

    for name, command in programs().items():
        collect(_context(command, name, None))
    flag = re.compile(r"^(-{1,2}[a-z][\w-]*(?:/-{1,2}[a-z][\w-]*)*)(?:[ =]\S+)?$")
    unknown = []
    for mention in mentions():
        if "inline" not in mention.where:
            continue
        match = flag.match(mention.text)
        if match:
            for name in match.group(1).split("/"):
                if name not in universe:
                    unknown.append(f"{mention.where}: {mention.text}")
    assert not unknown, unknown


# -- the references ------------------------------------------------------------------


def event_classes() -> dict[str, type]:
    classes = {}
    for name in ev.__all__:
        cls = getattr(ev, name)
        if isinstance(cls, type) and issubclass(cls, ev._Event):
            classes[name] = cls
    return classes


def test_event_json_lines_match_the_events() -> None:
    page = (SKILL / "references" / "events-json.md").read_text()
    lines = [
        line
        for match in FENCE.finditer(page)
        if match.group(1) == "json"
        for line in match.group(2).splitlines()
    ]
    by_type = {
        cls.type: cls
        for cls in event_classes().values()
        if isinstance(cls.__dict__.get("type"), str)
    }
    seen: set[type] = set()
    for line in lines:
        data = json.loads(line)
        kind = data["type"]
        cls = by_type.get(kind)
        if cls is None:
            cls = ev.DataEvent if kind.startswith("data-") else ev.UnknownEvent
        fields = [f for f in cls.__struct_fields__ if f not in ("chunk", "type")]
        assert list(data) == ["type", *fields], line
        seen.add(cls)
    assert seen == set(event_classes().values())


def test_exit_codes_match_the_cli() -> None:
    from kai_shell.errors import EXIT_CODES

    page = (SKILL / "references" / "exit-codes.md").read_text()
    listed = {int(code) for code in re.findall(r"^\| `(\d+)` \|", page, re.M)}
    assert listed == set(EXIT_CODES.values())
    skill = (SKILL / "SKILL.md").read_text()
    summary = skill.split("## Exit codes", 1)[1].split("##", 1)[0]
    assert {int(c) for c in re.findall(r"`(\d+)`", summary)} == set(EXIT_CODES.values()) - {130}


def test_manifest_and_front_matter() -> None:
    manifest = json.loads((SKILL_ROOT / ".claude-plugin" / "plugin.json").read_text())
    assert manifest["name"] == "kai-cli" and manifest["description"] and manifest["version"]
    head = (SKILL / "SKILL.md").read_text().split("---")[1]
    keys = dict(line.split(":", 1) for line in head.strip().splitlines())
    assert keys["name"].strip() == "kai-cli" and len(keys["description"]) > 100


def test_links_between_skill_files_resolve() -> None:
    for path in MARKDOWN:
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", path.read_text()):
            if "://" in target or target.startswith("../../../../"):
                continue  # the docs site, outside the skill
            assert (path.parent / target).exists(), f"{path.name}: broken link {target}"


# -- the example scripts -------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_syntax(script: Path) -> None:
    subprocess.run(["bash", "-n", str(script)], check=True)
    assert script.read_text().startswith("#!/usr/bin/env bash\n")
    assert os.access(script, os.X_OK)


needs_jq = pytest.mark.skipif(shutil.which("jq") is None, reason="the examples use jq")


async def run_script(
    emulator: Emulator | None, workdir: Path, script: str, *args: str
) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STORAGE_API_", "KAI_"))}
    env.update(
        KAI_LOAD_PLUGINS="",
        KAI_DB=str(workdir / "kai.db"),
        # the `kai` of this environment, as if installed
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
    )
    if emulator is not None:
        env.update(STORAGE_API_URL=emulator.storage_api_url, STORAGE_API_TOKEN=emulator.token)
    with trio.fail_after(120):
        done = await trio.run_process(
            [str(SKILL / "examples" / script), *args],
            env=env,
            cwd=workdir,
            stdin=b"",
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    return done.returncode, done.stdout.decode(), done.stderr.decode()


def written(folder: Path, pattern: str) -> list[str]:
    """The contents of the files ``pattern`` matches in ``folder``."""
    return [path.read_text() for path in folder.glob(pattern)]


@needs_jq
@pytest.mark.e2e
async def test_example_scripts_against_the_emulator(kai_emulator: Emulator, tmp_path: Path) -> None:
    assert (Path(sys.executable).parent / "kai").exists()

    code, out, err = await run_script(kai_emulator, tmp_path, "first-chat.sh", "list my tables")
    assert code == 0, out + err
    assert "Server is alive" in out and "You have 3 tables" in out
    chat_id = re.search(r"^chat: (\S+)", out, re.M)
    assert chat_id is not None and chat_id.group(1) in kai_emulator.state.chats

    code, out, err = await run_script(kai_emulator, tmp_path, "approve-with-policy.sh", "reports")
    assert code == 0, out + err
    assert "create_bucket: approved by rule (allow rule 'create_bucket(name=reports)'" in out
    assert list(kai_emulator.state.buckets) == ["in.c-reports"]

    code, out, err = await run_script(kai_emulator, tmp_path, "check-answer.sh", "boom")
    assert code == 10, out + err
    assert "Simulated model failure (boom)" in err

    code, out, err = await run_script(kai_emulator, tmp_path, "check-answer.sh", "fail")
    assert code == 0, out + err
    assert "tool run_query failed: Query failed" in err

    # Offline: no server, no credentials; the same log.
    code, out, err = await run_script(None, tmp_path, "search-offline.sh", "tables")
    assert code == 0, out + err
    assert "[user]  list my tables: list my [tables]" in out
    assert "--- replay of" in out and "You have 3 tables" in out
    transcripts = written(tmp_path, "transcript-*.md")
    assert len(transcripts) == 1 and "list my tables" in transcripts[0]


@needs_jq
@pytest.mark.e2e
async def test_check_answer_reports_missing_credentials(tmp_path: Path) -> None:
    code, _out, err = await run_script(None, tmp_path, "check-answer.sh", "hello")
    assert code == 3
    assert "credentials" in err and "no Storage API token" in err
