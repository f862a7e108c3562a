"""The console scripts: check the ``cli`` extra, then hand over to click.

Kept apart from :mod:`kai_shell.cli` so that a ``kai`` installed without its
extra says in one line what to install, instead of a traceback about click.
``--version`` alone is answered here, before click is imported: click and
``importlib.metadata`` would take most of its time (issue 16); so is a
plain ``kai-shell`` command line (:mod:`kai_shell.shell.options`).
"""

from __future__ import annotations

import sys

from kai_core._extras import MissingExtraError, require

from . import _httpx_cli

__all__ = ["kai", "kai_shell"]


def _answer_version(program: str) -> None:
    """Print ``<program> <version>`` and exit when ``--version`` is the only argument.

    The output is click's ``version_option`` message, so nothing changes for
    a caller; any other command line goes to click as before. The version is
    ``kai_core.__version__`` (tests/test_startup.py holds it to the package's).
    """
    if sys.argv[1:] == ["--version"]:
        from kai_core import __version__

        sys.stdout.write(f"{program} {__version__}\n")
        raise SystemExit(0)


def _require_cli(program: str) -> None:
    try:
        require("cli", program)
    except MissingExtraError as exc:
        print(f"{program}: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


def kai() -> None:
    """``kai``: the command line."""
    _require_cli("kai")  # first: a lean install says what to install, even to --version
    _answer_version("kai")
    _httpx_cli.install()
    from .cli import main

    main()


def kai_shell() -> None:
    """``kai-shell``: the interactive shell."""
    _require_cli("kai-shell")  # first: a lean install says what to install, even to --version
    _answer_version("kai-shell")
    _httpx_cli.install()
    from .shell.options import parse_plain

    params = parse_plain(sys.argv[1:])
    if params is None:  # --help, a mistake, anything not plain: click's
        from .shell.command import command

        command()
    else:
        from .shell.launch import run

        run(**params)
