"""Profile one stream consumer with py-spy and print its hot spots.

Starts ``stream_server.py``, runs ``consumers.py KIND`` under ``py-spy
record`` (raw, folded stacks), and prints, for the samples spent inside the
read loop (below ``--root``), the functions by self time and by inclusive
time, and the hottest lines.

    uv run python bench/profile_stream.py --consumer kai --events 1000000 --mode large
    uv run python bench/profile_stream.py --consumer kai-log --rate 200

py-spy is looked up on ``PATH``, then in ``~/.cache/kai-bench/tools/bin``
(``python -m venv ~/.cache/kai-bench/tools && ~/.cache/kai-bench/tools/bin/pip
install py-spy``); it needs ptrace (root in a container, or
``kernel.yama.ptrace_scope=0``).
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import BENCH_DIR, cache_root
from bench_stream import ServerProcess

_FRAME = re.compile(r"(.*) \((.*):(\d+)\)$")


def find_py_spy() -> str | None:
    """py-spy on PATH or in the benchmark's tools venv."""
    found = shutil.which("py-spy")
    if found:
        return found
    local = cache_root() / "tools" / "bin" / "py-spy"
    return str(local) if local.exists() else None


def _short(path: str) -> str:
    for marker in ("site-packages/", "/work/main/", "lib/python3."):
        if marker in path:
            path = path.split(marker, 1)[1]
            if marker == "lib/python3.":
                path = path.split("/", 1)[1]
    return path


def summarize(folded: Path, root: str, top: int) -> str:
    """Self, inclusive and line hot spots of the stacks that pass through ``root``."""
    self_t: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    lines: collections.Counter[str] = collections.Counter()
    total = inside = 0
    for raw in folded.read_text().splitlines():
        if not raw.strip():
            continue
        stack, count_text = raw.rsplit(" ", 1)
        count = int(count_text)
        total += count
        frames = []
        for frame in stack.split(";"):
            m = _FRAME.match(frame)
            if m:
                frames.append((m.group(1), _short(m.group(2)), m.group(3)))
        names = [f"{fn} ({path})" for fn, path, _ in frames]
        if not any(root in n for n in names):
            continue
        inside += count
        i = max(i for i, n in enumerate(names) if root in n)
        below = names[i:]
        self_t[below[-1]] += count
        for name in set(below):
            incl[name] += count
        fn, path, line = frames[-1]
        lines[f"{fn} ({path}:{line})"] += count
    if not inside:
        return f"no samples under {root!r} (of {total})"

    def block(title: str, counter: collections.Counter[str]) -> str:
        rows = [f"{100 * v / inside:5.1f} %  {k}" for k, v in counter.most_common(top)]
        return f"### {title}\n\n```\n" + "\n".join(rows) + "\n```\n"

    head = (
        f"{inside} of {total} samples ({100 * inside / total:.0f} %) are under `{root}`; "
        "percentages below are of those.\n"
    )
    return "\n".join(
        [
            head,
            block("self time", self_t),
            block("inclusive time", incl),
            block("hottest lines (self)", lines),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--consumer", default="kai", help="a kind of consumers.py (default kai)")
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--mode", default="large", choices=["large", "per-event"])
    p.add_argument("--rate", type=int, default=500, help="samples per second")
    p.add_argument(
        "--root",
        default="EventStream.__anext__",
        help="count only samples under this frame (default: our stream's __anext__)",
    )
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--keep", type=Path, help="also keep the folded stacks in this file")
    args = p.parse_args(argv)
    spy = find_py_spy()
    if spy is None:
        print("py-spy not found (see this script's docstring)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="kai-profile-") as tmp:
        folded = args.keep or Path(tmp) / "stacks.txt"
        with ServerProcess([args.events], [args.mode]) as server:
            url = f"{server.url}/{args.mode}/{args.events}"
            cmd = [
                spy,
                "record",
                "-r",
                str(args.rate),
                "-f",
                "raw",
                "-o",
                str(folded),
                "--",
                sys.executable,
                str(BENCH_DIR / "consumers.py"),
                args.consumer,
                url,
            ]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                print(done.stderr[-2000:], file=sys.stderr)
                return 1
        print(
            f"# Profile of `{args.consumer}` on {args.events:,} events, {args.mode} writes "
            f"(py-spy, {args.rate} Hz)\n"
        )
        print("consumer report: " + done.stdout.strip().splitlines()[-1] + "\n")
        print(summarize(folded, args.root, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
