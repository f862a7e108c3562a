"""One chat as a self-contained HTML page, to open in any browser or to share.

:func:`render_html` is pure: a :class:`~kai_core.log.LocalChatDetail` in
(what :meth:`EventLog.get_chat <kai_core.log.EventLog.get_chat>` returns), a
string out. The page needs nothing but itself: the CSS is inline, there is no
script, no font, no image, and its Content-Security-Policy forbids loading
anything, so even markup that slipped through could neither run nor reach
the network. Light and dark follow ``prefers-color-scheme``.

Every string from the log is escaped; assistant text goes through
:func:`~kai_core.log._safe_markdown.markdown_to_html`. User text is shown as
typed (not as Markdown). Tool calls are ``<details>`` elements, closed, whose
summary names the tool, its outcome and who approved or rejected it.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from html import escape
from typing import Any, Final

import msgspec

from ._safe_markdown import markdown_to_html
from ._views import LocalChatDetail, LocalMessage, LocalToolCall

__all__ = ["LARGE_TOOL_OUTPUT", "render_html"]

LARGE_TOOL_OUTPUT: Final = 4096
"""Tool outputs longer than this many bytes (as shown: UTF-8, JSON indented)
are left out of the page unless asked for; the page says how many bytes."""

_MASK: Final = "***"

_STATES: Final = {
    "input-streaming": "incomplete",
    "input-available": "called",
    "approval-requested": "awaiting approval",
    "approval-responded": "answered",
    "output-available": "done",
    "output-error": "failed",
    "output-denied": "denied",
}

_CSS: Final = """
:root {
  --bg: #ffffff; --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --card: #f6f8fa;
  --code: #eff2f5; --user: #0969da; --assistant: #8250df; --ok: #1a7f37; --no: #cf222e;
  --link: #0969da; }
@media (prefers-color-scheme: dark) { :root {
  --bg: #0d1117; --fg: #e6edf3; --muted: #9198a1; --line: #3d444d; --card: #151b23;
  --code: #1f2630; --user: #4493f8; --assistant: #ab7df8; --ok: #3fb950; --no: #f85149;
  --link: #4493f8; } }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
.page { max-width: 52rem; margin: 0 auto; padding: 1.5rem 1rem 3rem; }
h1 { font-size: 1.6rem; line-height: 1.25; margin: 0 0 .75rem; overflow-wrap: anywhere; }
a { color: var(--link); }
code, pre { font: .875rem/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
:not(pre) > code { background: var(--code); padding: .1em .35em; border-radius: 4px; }
pre { background: var(--code); padding: .75rem; border-radius: 6px; overflow-x: auto; }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; margin: 0;
  color: var(--muted); font-size: .9rem; }
.facts dt { font-weight: 600; }
.facts dd { margin: 0; overflow-wrap: anywhere; }
.message { border-left: 4px solid var(--line); background: var(--card); border-radius: 6px;
  padding: .75rem 1rem; margin: 1rem 0; }
.message.user { border-left-color: var(--user); }
.message.assistant { border-left-color: var(--assistant); }
.meta { display: flex; flex-wrap: wrap; gap: .25rem 1rem; color: var(--muted);
  font-size: .85rem; margin-bottom: .25rem; }
.role { font-size: inherit; margin: 0; color: var(--fg); }
.typed { white-space: pre-wrap; overflow-wrap: anywhere; margin: .5rem 0; }
.markdown > :first-child { margin-top: .25rem; }
.markdown > :last-child { margin-bottom: .25rem; }
.markdown table { border-collapse: collapse; display: block; overflow-x: auto; }
.markdown th, .markdown td { border: 1px solid var(--line); padding: .3rem .6rem; }
.align-left { text-align: left; } .align-center { text-align: center; }
.align-right { text-align: right; }
details { border: 1px solid var(--line); border-radius: 6px; margin: .5rem 0;
  background: var(--bg); }
summary { cursor: pointer; padding: .4rem .75rem; display: flex; flex-wrap: wrap;
  gap: .25rem .75rem; align-items: baseline; }
summary::before { content: "\\25B8"; color: var(--muted); }
details[open] > summary::before { content: "\\25BE"; }
details > div { padding: 0 .75rem .5rem; }
.tool-name { font-weight: 600; }
.state, .label { color: var(--muted); font-size: .85rem; }
.label { margin: .5rem 0 .25rem; font-weight: 600; }
.approved { color: var(--ok); font-weight: 600; }
.rejected, .error { color: var(--no); font-weight: 600; }
.omitted { color: var(--muted); font-style: italic; }
footer { color: var(--muted); font-size: .8rem; margin-top: 2rem; }
""".strip()

_CSS_HASH: Final = base64.b64encode(hashlib.sha256(_CSS.encode()).digest()).decode()
_POLICY: Final = (
    f"default-src 'none'; style-src 'sha256-{_CSS_HASH}'; base-uri 'none'; form-action 'none'"
)


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _when(ts: float | None) -> str:
    if ts is None:
        return "?"
    moment = datetime.fromtimestamp(ts, UTC)
    iso = moment.isoformat(timespec="seconds").replace("+00:00", "Z")
    return f'<time datetime="{iso}">{moment:%Y-%m-%d %H:%M:%S} UTC</time>'


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False)


def _block(label: str, value: Any) -> str:
    return f'<p class="label">{label}</p><pre><code>{_e(_shown(value))}</code></pre>'


def _masked(detail: LocalChatDetail, secrets: Iterable[str]) -> LocalChatDetail:
    # Masked in the JSON form: JSON escapes one character at a time, so a secret
    # inside any string (or key) is still a substring there.
    data = msgspec.json.encode(detail)
    found = False
    for secret in secrets:
        if not secret:
            continue
        needle = msgspec.json.encode(secret)[1:-1]
        if needle in data:
            data = data.replace(needle, _MASK.encode())
            found = True
    return msgspec.json.decode(data, type=LocalChatDetail) if found else detail


def _approval(call: LocalToolCall | None, part: Mapping[str, Any]) -> str:
    found = part.get("approval")
    approval: Mapping[str, Any] = found if isinstance(found, dict) else {}
    approved = call.approved if call is not None else approval.get("approved")
    if approved is None:
        return ""
    reason = (call.reason if call is not None else None) or approval.get("reason")
    decider = call.decided_by if call is not None else None
    who = f" by {decider}" if decider else " elsewhere"  # e.g. in the web app
    verdict = "approved" if approved else "rejected"
    why = f": {reason}" if reason else ""
    return f'<span class="{verdict}">{verdict}{_e(who)}{_e(why)}</span>'


def _tool(
    part: Mapping[str, Any], call: LocalToolCall | None, include_output: bool, limit: int
) -> str:
    kind = str(part.get("type", ""))
    name = part.get("toolName") or (kind[5:] if kind.startswith("tool-") else "") or "tool"
    state = str(part.get("state", "?"))
    decision = _approval(call, part)
    summary = ['<span class="state">tool</span>', f'<span class="tool-name">{_e(name)}</span>']
    if not (decision and state.startswith("approval-")):  # the decision says it better
        summary.append(f'<span class="state">{_e(_STATES.get(state, state))}</span>')
    summary.append(decision)
    body = []
    if part.get("input") is not None:
        body.append(_block("Input", part["input"]))
    if "output" in part and state == "output-available":
        shown = _shown(part.get("output"))
        size = len(shown.encode())
        if include_output or size <= limit:
            body.append(_block("Output", part.get("output")))
        else:
            body.append(
                f'<p class="label">Output</p><p class="omitted">{size:,} bytes left out of '
                "this export.</p>"
            )
    if part.get("errorText"):
        body.append(f'<p class="error">{_e(part["errorText"])}</p>')
    inside = "".join(body) or '<p class="omitted">No input or output recorded.</p>'
    heading = " ".join(s for s in summary if s)
    return f'<details class="tool"><summary>{heading}</summary><div>{inside}</div></details>'


def _part(
    part: Mapping[str, Any],
    message: LocalMessage,
    calls: Mapping[tuple[str, str], LocalToolCall],
    include_output: bool,
    limit: int,
) -> str:
    kind = part.get("type")
    if kind == "text" and part.get("text"):
        if message.role == "user":
            return f'<p class="typed">{_e(part["text"])}</p>'
        return f'<div class="markdown">{markdown_to_html(str(part["text"]))}</div>'
    if kind == "reasoning" and part.get("text"):
        inside = markdown_to_html(str(part["text"]))
        return f'<details class="reasoning"><summary>Reasoning</summary><div class="markdown">{inside}</div></details>'
    if isinstance(kind, str) and (kind.startswith("tool-") or kind == "dynamic-tool"):
        call = calls.get((message.id, str(part.get("toolCallId"))))
        return _tool(part, call, include_output, limit)
    if kind == "source-url":
        url = str(part.get("url", ""))
        title = _e(part.get("title") or url)
        link = (
            f'<a href="{_e(url)}">{title}</a>' if url.startswith(("http://", "https://")) else title
        )
        return f'<p class="label">Source: {link}</p>'
    if kind == "source-document":
        return f'<p class="label">Source: {_e(part.get("title"))} ({_e(part.get("mediaType"))})</p>'
    if kind == "file":
        # The data itself (often a data: URL of an image) is never embedded.
        size = len(str(part.get("url", "")).encode())
        name = part.get("filename") or "file"
        return (
            f'<p class="omitted">{_e(name)} ({_e(part.get("mediaType"))}): {size:,} bytes '
            "left out of this export.</p>"
        )
    return ""


def _message(
    message: LocalMessage,
    calls: Mapping[tuple[str, str], LocalToolCall],
    vote: str | None,
    include_output: bool,
    limit: int,
) -> str:
    role = message.role if message.role in ("user", "assistant") else "other"
    meta = [f'<h2 class="role">{_e(message.role.capitalize())}</h2>', _when(message.ts)]
    if message.imported:
        meta.append("<span>imported from the server</span>")
    if message.prompt_tokens or message.completion_tokens:
        meta.append(
            f"<span>{message.prompt_tokens:,} prompt + {message.completion_tokens:,} "
            "completion tokens</span>"
        )
    if vote in ("up", "down"):
        meta.append(f"<span>voted {vote}</span>")
    parts = [_part(p, message, calls, include_output, limit) for p in message.parts]
    if message.finish_reason in ("error", "length", "content-filter"):
        parts.append(f'<p class="error">Finished: {_e(message.finish_reason)}</p>')
    return (
        f'<article class="message {role}" id="m-{_e(message.id)}">'
        f'<header class="meta">{" ".join(meta)}</header>{"".join(parts)}</article>'
    )


def _facts(detail: LocalChatDetail) -> str:
    chat = detail.chat
    rows = [("Chat", f"<code>{_e(chat.id)}</code>")]
    if chat.backend:
        rows.append(("Backend", _e(chat.backend)))
    if chat.server:
        rows.append(("Server", _e(chat.server)))
    rows += [
        ("Started", _when(chat.first_ts)),
        ("Last activity", _when(chat.last_ts)),
        ("Messages", f"{chat.message_count:,}"),
        (
            "Tokens",
            f"{chat.prompt_tokens:,} prompt + {chat.completion_tokens:,} completion",
        ),
    ]
    if chat.deleted_ts:
        rows.append(("Deleted on the server", _when(chat.deleted_ts)))
    return "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in rows)


def render_html(
    detail: LocalChatDetail,
    *,
    include_tool_output: bool = False,
    secrets: Iterable[str] = (),
    large_output: int = LARGE_TOOL_OUTPUT,
) -> str:
    """One chat as a self-contained HTML document.

    :param detail: the chat, as :meth:`EventLog.get_chat` returns it.
    :param include_tool_output: keep tool outputs of any size (by default an
        output longer than ``large_output`` bytes is replaced by its size).
    :param secrets: strings masked as ``***`` wherever they occur (the
        Storage API token, say; the log never holds it, this is a second lock).
    """
    detail = _masked(detail, secrets)
    calls = {(c.message_id, c.tool_call_id): c for c in detail.tool_calls}
    title = detail.chat.title or "Untitled chat"
    messages = "".join(
        _message(m, calls, detail.votes.get(m.id), include_tool_output, large_output)
        for m in detail.messages
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_POLICY}">\n'
        '<meta name="referrer" content="no-referrer">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="color-scheme" content="light dark">\n'
        f"<title>{_e(title)} · kai</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f'<div class="page">\n<header>\n<h1>{_e(title)}</h1>\n'
        f'<dl class="facts">{_facts(detail)}</dl>\n</header>\n'
        f"<main>\n{messages}\n</main>\n"
        "<footer>A transcript exported from the kai event log.</footer>\n"
        "</div>\n</body>\n</html>\n"
    )
