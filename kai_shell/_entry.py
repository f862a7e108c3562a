"""The console scripts: check the ``cli`` extra, then hand over to click.

Kept apart from :mod:`kai_shell.cli` so that a ``kai`` installed without its
extra says in one line what to install, instead of a traceback about click.
"""

from __future__ import annotations

import sys

from kai_core._extras import MissingExtraError, require

__all__ = ["kai", "kai_shell"]


def _require_cli(program: str) -> None:
    try:
        require("cli", program)
    except MissingExtraError as exc:
        print(f"{program}: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


def kai() -> None:
    """``kai``: the command line."""
    _require_cli("kai")
    from .cli import main

    main()


def kai_shell() -> None:
    """``kai-shell``: the interactive shell."""
    _require_cli("kai-shell")
    from .repl import main

    main()
