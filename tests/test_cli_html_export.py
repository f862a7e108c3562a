"""``kai log export --format html`` end to end: a chat recorded by the real
``kai`` against the emulator, exported by the real ``kai``, opened in a real
headless Chromium.

What a reader must see is checked where it is drawn: each element's box
comes from the browser, ``elementFromPoint`` says nothing covers it, and the
screenshot's pixels inside the box must hold text (pixels far from the
box's background colour), in the light and in the dark scheme. The page
must load nothing but itself, and a click on a tool call must open it.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import trio

from kai_core.testing import CallTool, Emulator, Say, Step, Tool

from .browser_support import Page, Pixels, open_page
from .cli_common import TOKEN, Kai, chat_id_of, gather

pytestmark = pytest.mark.e2e

ANSWER = "You have 3 tables"
WRITE_DONE = "bucket in.c-zebra was created"

# Boxes (page coordinates) of what a reader must see, and whether anything covers them.
FIND = """(() => {
  const find = (selector, needle) =>
    [...document.querySelectorAll(selector)].find((el) => el.textContent.includes(needle));
  const box = (el) => {
    if (!el) return null;
    const r = el.getBoundingClientRect();
    const hit = document.elementFromPoint(r.x + Math.min(r.width / 2, 30), r.y + r.height / 2);
    return {x: r.x + scrollX, y: r.y + scrollY, width: r.width, height: r.height,
            onTop: el.contains(hit), visible: el.checkVisibility()};
  };
  return {
    title: box(document.querySelector("h1")),
    answer: box(find(".assistant .markdown p", ANSWER)),
    tool: box(find("details.tool > summary", "list_tables")),
    write: box(find("details.tool > summary", "create_bucket")),
    done: box(find(".assistant .markdown p", WRITE_DONE)),
    output: box(find("details.tool pre", "in.c-main.customers")),
  };
})()""".replace("WRITE_DONE", json.dumps(WRITE_DONE)).replace("ANSWER", json.dumps(ANSWER))


@pytest.fixture
def kai_emulator_options() -> dict[str, Any]:
    return {"token": TOKEN}


def _luminance(pixel: tuple[int, int, int]) -> float:
    r, g, b = pixel
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255


def _ink(pixels: Pixels) -> tuple[int, int]:
    """How many pixels are far from the commonest colour (text drawn on a
    background, where a blank box has next to none), and how many there are."""
    values = pixels.all()
    background = _luminance(Counter(values).most_common(1)[0][0])
    return sum(abs(_luminance(p) - background) > 0.3 for p in values), len(values)


async def _shown(page: Page, box: dict[str, Any] | None, what: str) -> None:
    assert box is not None, f"{what}: not in the page"
    assert box["width"] > 20 and box["height"] > 10, f"{what}: no room on the page: {box}"
    assert box["visible"] and box["onTop"], f"{what}: hidden or covered: {box}"
    ink, total = _ink(await page.pixels(box))
    assert ink > max(100, total // 200), f"{what}: nothing legible drawn ({ink} of {total} pixels)"


async def _record_chat(kai: Kai, emulator: Emulator) -> str:
    online = kai.online(emulator)
    first = await kai(*online, "chat", "-m", "list my tables")
    assert first.returncode == 0, first
    chat_id = chat_id_of(first)
    second = await kai(
        *online,
        "chat",
        "--chat-id",
        chat_id,
        "--auto-approve",
        "-m",
        "create a bucket called zebra",
    )
    assert second.returncode == 0 and WRITE_DONE in second.stdout, second
    return chat_id


async def test_the_exported_page_shows_the_chat_in_a_real_browser(
    kai: Kai, kai_emulator: Emulator, tmp_path: Path
) -> None:
    chat_id = await _record_chat(kai, kai_emulator)
    page_file = tmp_path / "chat.html"
    # the token is configured for the export too: it must not reach the page
    env = kai.env(STORAGE_API_TOKEN=TOKEN)
    exported = await kai(
        "log", "export", chat_id, "--format", "html", "-o", str(page_file), env=env
    )
    assert exported.returncode == 0 and exported.stdout == "", exported
    to_stdout = await kai("log", "export", chat_id, "--format", "html", env=env)
    assert to_stdout.stdout == page_file.read_text(encoding="utf-8")
    html = page_file.read_text(encoding="utf-8")
    assert chat_id in html and "approved by auto-approve" in html

    with trio.fail_after(120):
        async with open_page(tmp_path / "profile", width=900, height=1600) as page:
            await page.send("Network.enable")
            await page.send("Page.enable")
            await page.send("Page.navigate", url=page_file.as_uri())
            await page.wait_for("Page.loadEventFired")
            fetched = [
                e["params"]["request"]["url"]
                for e in page.events
                if e.get("method") == "Network.requestWillBeSent"
            ]
            assert fetched == [page_file.as_uri()], "the page loaded something else"

            backgrounds = {}
            for scheme in ("light", "dark"):
                await page.send(
                    "Emulation.setEmulatedMedia",
                    features=[{"name": "prefers-color-scheme", "value": scheme}],
                )
                await page.screenshot(tmp_path / f"chat-{scheme}.png")
                boxes = await page.evaluate(FIND)
                for what in ("title", "answer", "tool", "write", "done"):
                    await _shown(page, boxes[what], f"{what} ({scheme})")
                # a tool's output waits, folded, until the reader opens it
                assert not boxes["output"]["visible"], boxes["output"]
                corner = await page.pixels({"x": 0, "y": 0, "width": 8, "height": 8})
                backgrounds[scheme] = _luminance(corner.rows[0][0])
            assert backgrounds["light"] > 0.9 and backgrounds["dark"] < 0.15, backgrounds

            tool = boxes["tool"]
            for kind in ("mousePressed", "mouseReleased"):
                await page.send(
                    "Input.dispatchMouseEvent",
                    type=kind,
                    x=tool["x"] + 30,
                    y=tool["y"] + tool["height"] / 2,
                    button="left",
                    clickCount=1,
                )
            opened = await page.evaluate(FIND)
            await _shown(page, opened["output"], "tool output after a click")
            await page.screenshot(tmp_path / "chat-dark-open.png")


OTHER_TOKEN = "other-SECRET-token-52be11"
"""A token the log holds (recorded by a client that knew another one) until the export masks it."""


def _rows(_input: dict[str, Any], _state: Any) -> Any:
    return {"rows": [{"id": n, "note": f"row number {n}"} for n in range(200)]}


async def test_large_outputs_and_a_token_in_the_log_through_the_real_kai(
    kai: Kai, kai_emulator: Emulator, tmp_path: Path
) -> None:
    kai_emulator.add_tool(Tool("read_rows", "Read rows", True, _rows))
    kai_emulator.script(
        lambda text: [
            Step(
                [Say(f"Reading them, {OTHER_TOKEN}."), CallTool("read_rows")],
                after=lambda results: [Step([Say("Read 200 rows.")])],
            )
        ],
        "read the rows",
    )
    chat = await kai(*kai.online(kai_emulator), "chat", "-m", "read the rows")
    assert chat.returncode == 0, chat
    chat_id = chat_id_of(chat)
    env = kai.env(STORAGE_API_TOKEN=OTHER_TOKEN)
    left_out, included, no_id = await gather(
        kai("log", "export", chat_id, "--format", "html", env=env),
        kai("log", "export", chat_id, "--format", "html", "--include-tool-output", env=env),
        kai("log", "export", "--format", "html", env=env),
    )
    assert left_out.returncode == 0 and included.returncode == 0, (left_out, included)
    assert "row number 199" not in left_out.stdout
    assert re.search(r"[\d,]+ bytes left out of this export", left_out.stdout), left_out
    assert "row number 199" in included.stdout and "left out" not in included.stdout
    for page in (left_out.stdout, included.stdout):
        assert OTHER_TOKEN not in page and "Reading them, ***." in page
    assert no_id.returncode == 2 and "--format html needs a CHAT_ID" in no_id.stderr, no_id
