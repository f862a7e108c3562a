"""The smaller routes of the emulated backend: votes, usage, settings, tools, suggestions.

Each handler takes ``(request, user_id)``; authentication and fault
injection happen in :class:`kai_core.testing.app.EmulatorApp` around them.
The handlers read and change only the emulator's state and its tools, which
is all :func:`extra_routes` is given.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from .errors import ApiError, json_body
from .state import iso

if TYPE_CHECKING:
    from .state import EmulatorState
    from .tools import Tool

__all__ = ["extra_routes"]

Handler = Callable[[Request, str], Awaitable[Response]]
_PERMISSIONS = ("always_allow", "always_ask", "blocked")
_CONTEXTS = ("dashboard", "job-detail", "configuration-detail")


def extra_routes(
    state: EmulatorState, tools: Mapping[str, Tool]
) -> list[tuple[str, list[str], Handler]]:
    """``(path, methods, handler)`` for every route defined here.

    :param state: the emulator's state (chats, votes, settings), read and changed.
    :param tools: the emulator's tools by name (read when asked; tools added later show).
    """
    routes = _ExtraRoutes(state, tools)
    return [
        ("/api/vote", ["GET"], routes.get_votes),
        ("/api/vote", ["PATCH"], routes.patch_vote),
        ("/api/usage", ["GET"], routes.usage),
        ("/api/settings", ["GET"], routes.get_settings),
        ("/api/settings", ["PATCH"], routes.patch_settings),
        ("/api/settings/user", ["GET"], routes.get_user_settings),
        ("/api/settings/user", ["PATCH"], routes.patch_user_settings),
        ("/api/settings/tools", ["GET"], routes.list_tools),
        ("/api/suggestions", ["POST"], routes.suggestions),
    ]


class _ExtraRoutes:
    """The handlers, over the state and the tools they share."""

    def __init__(self, state: EmulatorState, tools: Mapping[str, Tool]) -> None:
        self.state = state
        self.tools = tools

    async def get_votes(self, request: Request, user_id: str) -> Response:
        chat_id = request.query_params.get("chatId")
        if not chat_id:
            raise ApiError("bad_request:api", "Parameter chatId is required.")
        chat = self.state.chats.get(chat_id)
        if chat is None:
            raise ApiError("not_found:chat")
        if chat.user_id != user_id:
            raise ApiError("forbidden:vote")
        votes = [
            {"chatId": chat.id, "messageId": mid, "isUpvoted": up}
            for (cid, mid), up in self.state.votes.items()
            if cid == chat.id
        ]
        return JSONResponse(votes)

    async def patch_vote(self, request: Request, user_id: str) -> Response:
        body = await json_body(request)
        chat_id, message_id, kind = body.get("chatId"), body.get("messageId"), body.get("type")
        if (
            not isinstance(chat_id, str)
            or not isinstance(message_id, str)
            or kind not in ("up", "down")
        ):
            raise ApiError("bad_request:api", "chatId, messageId and type (up|down) are required.")
        chat = self.state.chats.get(chat_id)
        if chat is None:
            raise ApiError("not_found:vote")
        if chat.user_id != user_id:
            raise ApiError("forbidden:vote")
        self.state.votes[(chat_id, message_id)] = kind == "up"
        return PlainTextResponse("Message voted")

    async def usage(self, request: Request, user_id: str) -> Response:
        tomorrow = (datetime.now(UTC) + timedelta(days=1)).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        return JSONResponse(
            {
                "messagesUsed": self.state.messages_used.get(user_id, 0),
                "messagesLimit": self.state.messages_limit,
                "resetDate": iso(tomorrow),
            }
        )

    def project_settings(self) -> dict[str, Any]:
        body: dict[str, Any] = {"projectId": self.state.project_id}
        if self.state.custom_instructions is not None:
            body["customInstructions"] = self.state.custom_instructions
        body["createdAt"] = iso(self.state.settings_created)
        body["updatedAt"] = iso(self.state.settings_updated)
        return body

    async def get_settings(self, request: Request, user_id: str) -> Response:
        return JSONResponse(self.project_settings())

    async def patch_settings(self, request: Request, user_id: str) -> Response:
        body = await json_body(request)
        if "customInstructions" in body:
            value = body["customInstructions"]
            if value is not None and not isinstance(value, str):
                raise ApiError("bad_request:api", "customInstructions must be a string or null.")
            self.state.custom_instructions = value
            self.state.settings_updated = datetime.now(UTC)
        return JSONResponse(self.project_settings())

    def user_settings(self, user_id: str) -> dict[str, Any]:
        stored = self.state.user_settings.setdefault(
            user_id,
            {"toolPermissions": {}, "createdAt": datetime.now(UTC), "updatedAt": datetime.now(UTC)},
        )
        body: dict[str, Any] = {"userId": user_id, "projectId": self.state.project_id}
        if stored.get("customInstructions") is not None:
            body["customInstructions"] = stored["customInstructions"]
        body["toolPermissions"] = dict(stored["toolPermissions"])
        body["createdAt"] = iso(stored["createdAt"])
        body["updatedAt"] = iso(stored["updatedAt"])
        return body

    async def get_user_settings(self, request: Request, user_id: str) -> Response:
        return JSONResponse(self.user_settings(user_id))

    async def patch_user_settings(self, request: Request, user_id: str) -> Response:
        body = await json_body(request)
        if not {"customInstructions", "toolPermissions"} & body.keys():
            raise ApiError("bad_request:api", "Nothing to update.")
        self.user_settings(user_id)  # creates the defaults
        stored = self.state.user_settings[user_id]
        if "customInstructions" in body:
            value = body["customInstructions"]
            if value is not None and not isinstance(value, str):
                raise ApiError("bad_request:api", "customInstructions must be a string or null.")
            stored["customInstructions"] = value
        if "toolPermissions" in body:
            perms = body["toolPermissions"]
            if perms is None:
                stored["toolPermissions"] = {}
            elif isinstance(perms, dict) and all(v in _PERMISSIONS for v in perms.values()):
                stored["toolPermissions"] = {**stored["toolPermissions"], **perms}
            else:
                raise ApiError(
                    "bad_request:api",
                    f"toolPermissions values must be one of {', '.join(_PERMISSIONS)}.",
                )
        stored["updatedAt"] = datetime.now(UTC)
        return JSONResponse(self.user_settings(user_id))

    async def list_tools(self, request: Request, user_id: str) -> Response:
        return JSONResponse({"tools": [t.info() for t in self.tools.values()]})

    async def suggestions(self, request: Request, user_id: str) -> Response:
        body = await json_body(request)
        context, data = body.get("context"), body.get("data")
        if context not in _CONTEXTS or not isinstance(data, dict):
            raise ApiError(
                "bad_request:api", f"context must be one of {', '.join(_CONTEXTS)}; data an object."
            )
        seed = hashlib.sha256(f"{context}:{sorted(data)}".encode()).hexdigest()
        items = [
            ("List my tables", "What tables do I have?", "high", "exploration"),
            ("Create a bucket", "Create a bucket called sandbox", "medium", "setup"),
            ("Explain this page", f"Explain the {context} I am looking at", "low", "help"),
        ]
        return JSONResponse(
            {
                "suggestions": [
                    {
                        "id": f"sugg-{seed[:8]}-{n}",
                        "label": label,
                        "prompt": prompt,
                        "priority": priority,
                        "category": category,
                        "reasoning": f"Suggested for the {context} context.",
                    }
                    for n, (label, prompt, priority, category) in enumerate(items)
                ],
                "suggestionSessionId": f"{seed[:8]}-{seed[8:12]}-4{seed[13:16]}-8{seed[17:20]}-{seed[20:32]}",
            }
        )
