"""kai-client's README examples run under kai_core.aio with only the import changed.

The examples are the code blocks of the section "Under asyncio: only the
import changes" of docs/kai-client.md; each runs as a script in a fresh
interpreter against the emulator, credentials in the environment.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .aio_support import emulator_thread

PAGE = Path(__file__).resolve().parent.parent / "docs" / "kai-client.md"
SECTION = "## Under asyncio: only the import changes"

pytestmark = pytest.mark.e2e


def examples() -> list[str]:
    text = PAGE.read_text().split(SECTION, 1)[1]
    return [b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "asyncio.run" in b]


# What each example must print (the examples in the page's order).
EXPECTED = [
    ["Server time: 20", "[Finished: stop]"],
    ["Hello! I'm Kai"],
    ["[Calling list_tables with", "[list_tables returned:", "[Done: stop]"],
    ["Chat ", "user: ", "votes: ['down']"],
    ["Tool create_bucket needs approval", "in.c-readme"],
    ["Full response: ", "Finished: True", "API error: "],
]


def test_the_section_has_every_readme_example() -> None:
    blocks = examples()
    assert len(blocks) == len(EXPECTED)
    for block in blocks:
        assert "from kai_core.aio import" in block
        assert "kai_client" not in block and "trio" not in block


def runs() -> list[tuple[str, int]]:
    # approve_tool is kai-assistant's flow (kai-agent answers with submit_approval).
    return [
        (backend, i)
        for i, code in enumerate(examples())
        for backend in ("agent", "assistant")
        if backend == "assistant" or "approve_tool" not in code
    ]


@pytest.mark.parametrize(("backend", "index"), runs())
def test_readme_example_runs(backend: str, index: int, tmp_path: Path) -> None:
    code = examples()[index]
    script = tmp_path / "example.py"
    script.write_text(code)
    with emulator_thread(backend=backend) as emu:
        emulator = emu.emulator
        env = {k: v for k, v in os.environ.items() if not k.startswith(("STORAGE_API_", "KAI_"))}
        env.update(
            STORAGE_API_TOKEN=emulator.token,
            STORAGE_API_URL=emulator.storage_api_url,
            KAI_BASE_URL=emulator.base_url,
            KAI_LOAD_PLUGINS="",
        )
        done = subprocess.run(
            [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stdout + done.stderr
        out = done.stdout
        if "approve_tool" in code:
            out += " ".join(emu.run(lambda: list(emulator.state.buckets)))
    for expected in EXPECTED[index]:
        assert expected in out, out
