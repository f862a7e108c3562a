"""Moving data out of and into the log: JSON lines, Markdown, server chat details.

JSON lines: one event per line, ``{"seq", "chat_id", "turn", "ts", "origin",
"type", "body"}``, where ``body`` is the record's JSON embedded verbatim (a
body that is not JSON, or holds a raw newline, is written as the string
``body_text``). Importing the lines into an empty log gives identical
events and projections.

Markdown: a transcript for people, built from the projections.

Server chat details (``GET /api/chat/{id}``) become one ``imported-message``
record per message: what the server stored, not invented wire chunks.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Annotated, Any, Final, TypeAlias

import msgspec

from ._output import private_output
from ._records import IMPORTED_MESSAGE, LogRecord, Origin, StoredEvent
from ._validate import MAX_SEQ, MAX_TS, MIN_TS, message_problem, record_problem, sane_ts

__all__ = [
    "ExportLine",
    "FileArg",
    "decode_lines",
    "encode_line",
    "imported_records",
    "open_for_reading",
    "open_for_writing",
    "render_markdown",
]

FileArg: TypeAlias = "str | os.PathLike[str] | IO[bytes] | IO[str]"


_Text = Annotated[str, msgspec.Meta(min_length=1)]


class ExportLine(msgspec.Struct, omit_defaults=True):
    """One line of a JSON lines export. Positions and times are checked to
    be in range (see :mod:`._validate`)."""

    seq: Annotated[int, msgspec.Meta(ge=1, le=MAX_SEQ)]
    chat_id: _Text
    turn: _Text
    ts: Annotated[float, msgspec.Meta(ge=MIN_TS, le=MAX_TS)]
    origin: str
    type: _Text
    body: msgspec.Raw = msgspec.Raw()  # empty = absent (omitted when encoded)
    body_text: str | None = None


_encoder: Final = msgspec.json.Encoder()
_line_decoder: Final = msgspec.json.Decoder(ExportLine)
_any_decoder: Final = msgspec.json.Decoder()


def encode_line(ev: StoredEvent) -> bytes:
    """The export line of one event (with its newline)."""
    try:
        if b"\n" in ev.body:  # JSON may hold raw newlines between tokens; a line may not
            raise msgspec.DecodeError
        _any_decoder.decode(ev.body)
        line = ExportLine(
            ev.seq, ev.chat_id, ev.turn, ev.ts, ev.origin, ev.type, msgspec.Raw(ev.body)
        )
    except msgspec.DecodeError:
        line = ExportLine(
            ev.seq, ev.chat_id, ev.turn, ev.ts, ev.origin, ev.type, body_text=ev.body.decode()
        )
    return _encoder.encode(line) + b"\n"


def decode_lines(lines: Iterable[bytes]) -> Iterator[tuple[int, StoredEvent]]:
    """Parse export lines into ``(line number, event)``; blank lines are skipped.

    The body of a client record kai reads (a user message, an approval, ...)
    must have the fields the projections read, of the right types.

    :raises ValueError: naming the line that is not a valid export line.
    """
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = _line_decoder.decode(line)
        except msgspec.MsgspecError as exc:
            raise ValueError(f"line {number} is not a kai log export line: {exc}") from None
        if item.origin not in ("server", "client"):
            raise ValueError(f"line {number}: origin must be server or client")
        if len(item.body):
            body = bytes(item.body)
        elif item.body_text is not None:
            body = item.body_text.encode()
        else:
            raise ValueError(f"line {number} has no body")
        origin: Origin = "server" if item.origin == "server" else "client"
        if origin == "client":
            problem = _client_body_problem(item.type, body)
            if problem is not None:
                raise ValueError(f"line {number}: {problem}")
        yield (
            number,
            StoredEvent(item.seq, item.chat_id, item.turn, item.ts, origin, item.type, body),
        )


def _client_body_problem(kind: str, body: bytes) -> str | None:
    try:
        data = _any_decoder.decode(body)
    except msgspec.DecodeError:
        data = None
    return record_problem(kind, data)


@contextlib.contextmanager
def open_for_writing(file: FileArg, *, log: Path | None = None) -> Iterator[IO[bytes]]:
    """A binary stream to write to: a path (written as :func:`~._output.private_output`
    does, never one of ``log``'s files) or a file object."""
    if isinstance(file, str | os.PathLike):
        with private_output(file, log=log) as out:
            yield out
    elif isinstance(file, io.TextIOBase):
        buffer = getattr(file, "buffer", None)
        if buffer is not None:
            file.flush()
            yield buffer
            buffer.flush()
        else:
            text = io.BytesIO()
            yield text
            file.write(text.getvalue().decode())
    else:
        yield file  # type: ignore[misc]


@contextlib.contextmanager
def open_for_reading(file: FileArg) -> Iterator[IO[bytes]]:
    """A binary stream to read from: a path or a file object."""
    if isinstance(file, str | os.PathLike):
        with open(os.fspath(file), "rb") as src:
            yield src
    elif isinstance(file, io.TextIOBase):
        buffer = getattr(file, "buffer", None)
        yield buffer if buffer is not None else io.BytesIO(file.read().encode())
    else:
        yield file  # type: ignore[misc]


# -- server chat details -------------------------------------------------------


def _builtins(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    return msgspec.to_builtins(value)


def _timestamp(message: Mapping[str, Any]) -> float | None:
    """The message's creation time, when it has one kai can store and show."""
    value = message.get("createdAt", message.get("created_at"))
    ts: object = None
    if isinstance(value, datetime):
        ts = value.timestamp()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        ts = float(value)
    elif isinstance(value, str):
        try:
            ts = datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except (ValueError, OverflowError):
            return None
    return float(ts) if sane_ts(ts) else None  # type: ignore[arg-type]


def imported_records(
    detail: Any, known_ids: set[str], turn: str, now: float, skipped: list[str] | None = None
) -> list[LogRecord]:
    """The ``imported-message`` records for the messages of ``detail`` not yet known.

    A message whose fields kai reads have the wrong types (see
    :func:`~._validate.message_problem`) is left out; a time out of range is
    replaced by ``now``.

    :param detail: a chat detail as ``GET /api/chat/{id}`` returns it: a mapping
        or a Struct/dataclass with ``id``, ``title`` and ``messages``.
    :param known_ids: ids of the chat's messages already in the log (updated).
    :param skipped: gets one line per message left out, naming it and why.
    """
    data = _builtins(detail)
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        raise ValueError("a chat detail needs an 'id'")
    chat_id: str = data["id"]
    title = data.get("title")
    records = []
    for raw in data.get("messages") or []:
        message = _builtins(raw)
        if not isinstance(message, dict) or not isinstance(message.get("id"), str):
            continue
        if message["id"] in known_ids:
            continue
        problem = message_problem(message)
        if problem is not None:
            if skipped is not None:
                skipped.append(f"message {message['id']!r} of chat {chat_id!r}: {problem}")
            continue
        known_ids.add(message["id"])
        body: dict[str, Any] = {"message": message}
        if isinstance(title, str) and title:
            body["title"] = title
        records.append(
            LogRecord(
                chat_id=chat_id,
                turn=turn,
                origin="client",
                type=IMPORTED_MESSAGE,
                body=_encoder.encode(body),
                ts=_timestamp(message) or now,
            )
        )
    return records


# -- markdown --------------------------------------------------------------------


def _when(ts: float | None) -> str:
    if not sane_ts(ts):
        return "?"  # none, or out of what a date can show (an old import)
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")  # type: ignore[arg-type]


def _fence(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False)
    fence = "```"
    while fence in text:
        fence += "`"
    lang = "" if isinstance(value, str) else "json"
    return f"{fence}{lang}\n{text}\n{fence}"


def _tool_block(part: dict[str, Any], call: Mapping[str, Any] | None) -> list[str]:
    name = part.get("toolName") or str(part.get("type", ""))[5:] or "tool"
    out = [f"**Tool `{name}`** ({part.get('state', '?')})", ""]
    if part.get("input") is not None:
        out += ["Input:", "", _fence(part["input"]), ""]
    if call is not None and call.get("approved") is not None:
        verdict = "approved" if call["approved"] else "rejected"
        who = f" by {call['decided_by']}" if call.get("decided_by") else ""
        why = f": {call['reason']}" if call.get("reason") else ""
        out += [f"_{verdict}{who}{why}_", ""]
    if "output" in part and part.get("state") == "output-available":
        out += ["Output:", "", _fence(part.get("output")), ""]
    if part.get("errorText"):
        out += [f"Error: {part['errorText']}", ""]
    return out


def render_markdown(
    chat: Mapping[str, Any],
    messages: Sequence[Mapping[str, Any]],
    calls: Mapping[tuple[str, str], Mapping[str, Any]],
) -> str:
    """A transcript of one chat for people to read.

    :param chat: the ``chats`` row.
    :param messages: the ``messages`` rows (``parts`` decoded), in order.
    :param calls: ``tool_calls`` rows by (message id, tool call id).
    """
    title = chat.get("title") or "Untitled chat"
    lines = [f"# {title}", ""]
    lines.append(f"- Chat: `{chat['id']}`")
    if chat.get("server"):
        lines.append(f"- Server: {chat['server']}")
    lines.append(f"- From {_when(chat.get('first_ts'))} to {_when(chat.get('last_ts'))}")
    lines.append(
        f"- {chat.get('message_count', 0)} messages, {chat.get('prompt_tokens', 0)} prompt "
        f"and {chat.get('completion_tokens', 0)} completion tokens"
    )
    if chat.get("deleted_ts"):
        lines.append(f"- Deleted on the server {_when(chat['deleted_ts'])}")
    lines.append("")
    for message in messages:
        role = str(message.get("role", "?")).capitalize()
        note = " (imported)" if message.get("imported") else ""
        lines += ["---", "", f"## {role} · {_when(message.get('ts'))}{note}", ""]
        for part in message.get("parts") or []:
            kind = part.get("type")
            text = part.get("text")
            if not isinstance(text, str):
                text = None  # only text is shown as text, whatever a record holds
            if kind == "text" and text:
                lines += [text, ""]
            elif kind == "reasoning" and text:
                lines += ["> " + text.replace("\n", "\n> "), ""]
            elif isinstance(kind, str) and (kind.startswith("tool-") or kind == "dynamic-tool"):
                call = calls.get((str(message.get("id")), str(part.get("toolCallId"))))
                lines += _tool_block(part, call)
            elif kind == "source-url":
                lines += [
                    f"Source: [{part.get('title') or part.get('url')}]({part.get('url')})",
                    "",
                ]
            elif kind == "source-document":
                lines += [f"Source: {part.get('title')} ({part.get('mediaType')})", ""]
            elif kind == "file":
                url = str(part.get("url", ""))
                shown = url if len(url) < 200 else url[:60] + "…"
                lines += [f"File ({part.get('mediaType')}): {shown}", ""]
        if message.get("finish_reason") in ("error", "length", "content-filter"):
            lines += [f"_finished: {message['finish_reason']}_", ""]
    return "\n".join(lines).rstrip() + "\n"


def as_path(file: FileArg) -> Path | None:
    """The path when ``file`` is one."""
    return Path(os.fspath(file)) if isinstance(file, str | os.PathLike) else None
