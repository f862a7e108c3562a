"""The public surface of kai_core: every exported name resolves, lazily."""

from __future__ import annotations

import os
import subprocess
import sys

import kai_core


def test_every_public_name_resolves() -> None:
    for name in kai_core.__all__:
        assert getattr(kai_core, name) is not None, name


def test_unknown_name_is_an_attribute_error() -> None:
    try:
        kai_core.NoSuchThing  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_import_is_cheap() -> None:
    code = (
        "import sys, kai_core; "
        "heavy = [m for m in ('httpx', 'sqlite3', 'sqlite_utils', 'trio', 'rich') if m in sys.modules]; "
        "print(heavy)"
    )
    # Measured without coverage (CI's run follows subprocesses; it imports sqlite3).
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip() == "[]"


def test_kai_client_readme_names() -> None:
    from kai_core import KaiClient, SSEStreamParser, ToolApprovalRequestEvent

    assert hasattr(KaiClient, "send_message") and hasattr(KaiClient, "from_storage_api")
    assert hasattr(SSEStreamParser, "process_event")
    assert ToolApprovalRequestEvent.type == "tool-approval-request"


def test_kai_client_names_resolve_lazily_from_their_modules() -> None:
    # kai-client's exports (see docs/kai-client.md): each from the module that defines it.
    code = (
        "import sys, kai_core; "
        "from kai_core import (parse_sse_event, raise_for_error_response, ERROR_CODE_MAP, "
        "TextPart, ToolCallPart, ToolResultPart, StepStartPart, MessageRequest, ChatRequest, "
        "ErrorResponse, McpConnection, VoteType, VisibilityType, ToolRestrictions, SSEEvent); "
        "print(VoteType.UP.value, ErrorResponse.__name__, parse_sse_event.__module__, "
        "'httpx' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["up", "ErrorBody", "kai_core.assemble", "False"]
