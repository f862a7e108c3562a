"""Shared by the telemetry tests: a chat through a real Session, client, log and emulator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kai_core.client import KaiClient
from kai_core.exceptions import KaiError
from kai_core.log import EventLog
from kai_core.observe import ObservedLog
from kai_core.plugins import Plugins
from kai_core.policy import ApprovalDecision, ApprovalRequest
from kai_core.session import Session


def approver(approve: bool) -> Any:
    async def ask(request: ApprovalRequest) -> ApprovalDecision:
        if approve:
            return ApprovalDecision.approve(decided_by="user")
        return ApprovalDecision.reject("not today", decided_by="user")

    return ask


async def chat(
    emulator: Any,
    plugins: Plugins,
    db: Path,
    text: str,
    *,
    approve: bool = True,
    chat_id: str | None = None,
    token: str | None = None,
) -> str:
    """Send one message through the real stack; return the chat id (errors swallowed)."""
    log = EventLog(db)
    try:
        async with KaiClient(
            storage_api_token=token or emulator.token or "tok",
            storage_api_url=emulator.storage_api_url,
            base_url=emulator.base_url,
            backend=emulator.backend,
            log=ObservedLog(log, plugins),
            resume_attempts=0,
        ) as client:
            session = Session(client, chat_id=chat_id, plugins=plugins, ask=approver(approve))
            try:
                async for _ in session.send(text):
                    pass
            except KaiError:
                pass
            return session.chat_id
    finally:
        log.close()
