"""kai-shell's two parsers agree (issue 16): a plain command line is parsed
without click (:func:`kai_shell.shell.options.parse_plain`), the rest by click.

Whatever ``parse_plain`` takes, click must take the same way: the
parameters are compared with click's own for generated command lines
(options, values that look like options, choices offered and not, files,
folders, unknown words), and the usual command lines must be plain.
"""

from __future__ import annotations

import os
from pathlib import Path

import click
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kai_shell.shell.command import command
from kai_shell.shell.options import SHELL_OPTIONS, parse_plain


def click_params(argv: list[str]) -> dict[str, object] | None:
    """What click makes of ``argv``: its parameters, or None when it refuses it."""
    try:
        ctx = command.make_context("kai-shell", list(argv), resilient_parsing=False)
    except (click.exceptions.ClickException, click.exceptions.Exit):
        return None
    return dict(ctx.params)


@pytest.fixture(scope="module")
def places(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("options")
    readable = root / "policy.toml"
    readable.write_text("")
    locked = root / "locked.toml"
    locked.write_text("")
    locked.chmod(0)
    return {
        "folder": str(root),
        "file": str(readable),
        "missing": str(root / "nothing.db"),
        "locked": str(locked),
    }


WORDS = st.sampled_from(
    [o.flag for o in SHELL_OPTIONS]
    + ["--help", "-h", "--version", "--", "-", "--tok", "--nope", "chat", "agent", "assistant"]
    + ["dark", "light", "bogus", "", "-x", "--offline=1", "a=b", "--token=", "--service=agent"]
    + ["--service=legacy", "--theme=light", "--db=", "{folder}", "{file}", "{missing}"]
    + ["{locked}", "--db={folder}", "--policy={file}", "--db={missing}"]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(WORDS, max_size=6))
def test_what_the_plain_parser_takes_click_takes_alike(
    places: dict[str, str], words: list[str]
) -> None:
    argv = [w.format(**places) for w in words]
    plain = parse_plain(argv)
    if plain is not None:
        assert click_params(argv) == plain, argv


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--offline"],
        ["--token", "t0k", "--url", "https://connection.keboola.com", "--service", "agent"],
        ["--db", "{missing}", "--theme=light", "--vote", "--auto-approve"],
        ["--policy", "{file}", "--chat-id", "1234abcd", "--renderer", "plain", "--debug"],
        ["--base-url=http://127.0.0.1:8000", "--no-log", "--offline", "--offline"],
        ["--token", "first", "--token", "last"],
    ],
)
def test_the_usual_command_lines_are_plain(places: dict[str, str], argv: list[str]) -> None:
    argv = [a.format(**places) for a in argv]
    plain = parse_plain(argv)
    assert plain is not None, argv
    assert plain == click_params(argv)


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["-h"],
        ["--service", "legacy"],  # click names the choices
        ["--token"],  # click says the value is missing
        ["--token", "--offline"],  # a value that looks like an option (click takes it as one)
        ["--offline=yes"],  # a flag takes no value
        ["--db", "{folder}"],  # click says it is a folder
        ["chat"],  # no arguments
        ["--nope"],
    ],
)
def test_anything_else_is_left_to_click(places: dict[str, str], argv: list[str]) -> None:
    argv = [a.format(**places) for a in argv]
    assert parse_plain(argv) is None


def test_a_file_it_cannot_read_is_left_to_click(places: dict[str, str]) -> None:
    argv = ["--policy", places["locked"]]
    if os.access(places["locked"], os.R_OK):  # root reads any file: both take it alike
        assert parse_plain(argv) == click_params(argv) is not None
    else:
        assert parse_plain(argv) is None and click_params(argv) is None


def test_the_options_are_click_s(places: dict[str, str]) -> None:
    # One declaration: click's command has exactly these options, in this order.
    names = [p.name for p in command.params if isinstance(p, click.Option) and p.expose_value]
    assert names == [o.name for o in SHELL_OPTIONS]
    assert Path(places["folder"]).is_dir()
