"""Start-up time: our ``kai``, ``kai-shell`` and library against kai-client 0.12.

Runs each command ``--runs`` times, interleaved (the machine is shared and
noisy: only figures of the same run are compared), and prints the median
and min–max wall time. ``kai-shell`` is timed from spawn to its prompt
(``kai> ``, ``kai (offline)> ``, ...) on a pseudo-terminal, under pexpect
with ``PROMPT_TOOLKIT_NO_CPR=1``, on an existing log, offline.

The figures of issue 16 come last: each ratio is taken within one round
(ours ÷ kai-client's, measured back to back), and reported as the median and
min–max of the rounds' ratios.

    uv run python bench/bench_startup.py --runs 15
    uv run python bench/bench_startup.py --importtime    # + the slowest imports of each
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    Samples,
    fmt_range,
    kai_client_venv,
    machine,
    package_versions,
    table,
)

# The kai-shell prompt (kai_shell/shell/prompt.py): "kai", an optional
# " (offline)" / " (connecting)" and " ⏸", then "> ".
PROMPT = re.compile(r"kai(?: \([^)\n]*\))?(?: ⏸)?> ")
# PROMPT with the styles prompt-toolkit puts between its fragments (for pexpect's expect).
PROMPT_ON_SCREEN = re.compile(r"kai(?:\x1b\[[0-9;?]*[a-zA-Z])*(?: \([^)\n]*\))?\S*> ")
_ANSI = re.compile(r"\x1b(?:\[[0-9;?]*[ -/]*[@-~]|\][^\x07]*\x07|[()][0-9A-Za-z]|[=>])")
TARGETS_MS = {"kai-shell to prompt": 150.0, "kai-shell to /help done": float("nan")}
"""Start-up figures in milliseconds and their goals (issue 16; NaN: reported only)."""

MAKE_CLIENT = (
    "from {module} import KaiClient\n"
    "KaiClient('token-0123456789', 'https://connection.keboola.com', 'https://kai.example')"
)
"""Import the client and make one (no request): what a program pays before its first call."""

RATIOS = {
    "import the client": (
        'python -c "import kai_core.client"',
        'kai-client: python -c "import kai_client"',
        0.5,
    ),
    "import + make a KaiClient": (
        "import + KaiClient(...)",
        "kai-client: import + KaiClient(...)",
        None,
    ),
    "kai --version": ("kai --version", "kai-client: kai --version", 0.25),
}
"""Figure -> (our case, kai-client's case, goal as the highest ratio; None: reported only)."""


def time_command(argv: list[str], env: dict[str, str]) -> float:
    """Wall seconds of ``argv`` from spawn to exit (it must succeed)."""
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{argv} failed: {done.stderr.decode(errors='replace')[-500:]}")
    return elapsed


def time_shell_prompt(argv: list[str], env: dict[str, str], timeout: float = 20.0) -> float:
    """Wall seconds from spawning ``argv`` on a pty until the kai-shell prompt shows."""
    import pexpect

    started = time.perf_counter()
    child = pexpect.spawn(
        argv[0], argv[1:], env=env, encoding="utf-8", dimensions=(40, 120), timeout=timeout
    )
    seen = ""
    try:
        while True:
            try:
                seen += child.read_nonblocking(4096, timeout=timeout)
            except pexpect.TIMEOUT:
                raise RuntimeError(
                    f"no prompt after {timeout} s; screen: {seen[-500:]!r}"
                ) from None
            except pexpect.EOF:
                raise RuntimeError(f"kai-shell exited before its prompt: {seen[-500:]!r}") from None
            if PROMPT.search(_ANSI.sub("", seen)):
                elapsed = time.perf_counter() - started
                break
        child.sendcontrol("d")
        child.expect(pexpect.EOF, timeout=10)
    finally:
        child.close(force=True)
    return elapsed


def time_shell_first_line(argv: list[str], env: dict[str, str], timeout: float = 20.0) -> float:
    """Wall seconds from spawning ``argv`` on a pty until ``/help``, typed as
    soon as the prompt shows, has printed its list (the first line has run)."""
    import pexpect

    started = time.perf_counter()
    child = pexpect.spawn(
        argv[0], argv[1:], env=env, encoding="utf-8", dimensions=(40, 120), timeout=timeout
    )
    try:
        child.expect(PROMPT_ON_SCREEN)
        child.send("/help\r")
        child.expect(re.escape("/quit"))  # in /help's list, not in the greeting
        elapsed = time.perf_counter() - started
        child.expect(PROMPT_ON_SCREEN)
        child.sendcontrol("d")
        child.expect(pexpect.EOF, timeout=10)
    finally:
        child.close(force=True)
    return elapsed


def import_top(python: str, code: str, env: dict[str, str], n: int = 8) -> str:
    """The ``n`` slowest imports (cumulative) of running ``code``, from ``-X importtime``."""
    done = subprocess.run(
        [python, "-X", "importtime", "-c", code], env=env, capture_output=True, text=True
    )
    rows = []
    for line in done.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if m and len(m.group(3)) <= 3:  # top-level imports and their direct children
            rows.append((int(m.group(2)), m.group(4)))
    rows.sort(reverse=True)
    return ", ".join(f"{name} {us / 1000:.0f} ms" for us, name in rows[:n])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=10, help="runs of each command")
    p.add_argument("--no-shell", action="store_true", help="skip the kai-shell prompt timing")
    p.add_argument("--importtime", action="store_true", help="show the slowest imports")
    p.add_argument(
        "--no-kai-client", action="store_true", help="do not time (or install) kai-client"
    )
    args = p.parse_args(argv)

    bindir = Path(sys.executable).parent
    python = sys.executable
    work = tempfile.TemporaryDirectory(prefix="kai-bench-startup-")
    env = dict(os.environ)
    # Keep the user's real log, history and config out of it.
    env.update(
        KAI_DB=str(Path(work.name) / "kai.db"),
        XDG_STATE_HOME=str(Path(work.name) / "state"),
        XDG_DATA_HOME=str(Path(work.name) / "data"),
        XDG_CONFIG_HOME=str(Path(work.name) / "config"),
        XDG_CACHE_HOME=str(Path(work.name) / "cache"),
        PROMPT_TOOLKIT_NO_CPR="1",
        TERM="xterm-256color",
    )
    # Let the warm-up run write .pyc files, as any normal install has them.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    for name in ("STORAGE_API_TOKEN", "STORAGE_API_URL", "KAI_BASE_URL", "KAI_SERVICE"):
        env.pop(name, None)

    cases: dict[str, Callable[[], float]] = {
        "python -c pass (interpreter)": lambda: time_command([python, "-c", "pass"], env),
        "kai --version": lambda: time_command([str(bindir / "kai"), "--version"], env),
        "kai --help": lambda: time_command([str(bindir / "kai"), "--help"], env),
        'python -c "import kai_core"': lambda: time_command([python, "-c", "import kai_core"], env),
        'python -c "import kai_core.client"': lambda: time_command(
            [python, "-c", "import kai_core.client"], env
        ),
        "import + KaiClient(...)": lambda: time_command(
            [python, "-c", MAKE_CLIENT.format(module="kai_core.client")], env
        ),
    }
    if not args.no_shell:
        shell = [str(bindir / "kai-shell"), "--offline"]
        cases["kai-shell to prompt"] = lambda: time_shell_prompt(shell, env)
        cases["kai-shell to /help done"] = lambda: time_shell_first_line(shell, env)
    venv = None if args.no_kai_client else kai_client_venv()
    theirs: dict[str, str] = {}
    if venv is not None:
        kc_python = str(venv / "bin" / "python")
        kc_env = dict(env)
        cases["kai-client: kai --version"] = lambda: time_command(
            [str(venv / "bin" / "kai"), "--version"], kc_env
        )
        cases['kai-client: python -c "import kai_client"'] = lambda: time_command(
            [kc_python, "-c", "import kai_client"], kc_env
        )
        cases["kai-client: import + KaiClient(...)"] = lambda: time_command(
            [kc_python, "-c", MAKE_CLIENT.format(module="kai_client")], kc_env
        )
        theirs = package_versions(kc_python, ["kai-client", "httpx", "pydantic", "click"])

    info = machine()
    ours = package_versions(python, ["kai", "click", "prompt-toolkit", "trio", "httpx"])
    print(f"# Start-up benchmark — {info['date']}\n")
    print(f"machine: {info['nproc']} CPUs ({info['cpu']}), Python {info['python']}")
    print("ours: " + ", ".join(f"{k} {v}" for k, v in ours.items()))
    if theirs:
        print("kai-client venv: " + ", ".join(f"{k} {v}" for k, v in theirs.items()))
    print(
        f"runs: {args.runs} of each, interleaved (order reversed each round), after one warm-up run\n"
    )

    samples = {name: Samples() for name in cases}
    for case in cases.values():
        case()  # warm-up: .pyc files, page cache, the log file created
    order = list(cases.items())
    for _ in range(args.runs):
        for name, case in order:
            samples[name].add(case())
        order.reverse()  # alternate: a drift of the machine's speed hits both sides alike

    base = samples.get("kai-client: kai --version")
    rows = []
    for name, s in samples.items():
        ratio = f"{s.median / base.median:.2f}" if base else "-"
        rows.append([name, fmt_range(s, 0, 1000), ratio])
    print(table(["command", "wall ms, median (min–max)", "÷ kai-client kai --version"], rows))

    print("\n## Start-up figures (issue 16)\n")
    print(table(["figure", "goal", "measured, median (min–max)", "met"], goals(samples)))

    if args.importtime:
        print("\n## Slowest imports (-X importtime, cumulative, one run)\n")
        print("- `kai`: " + import_top(python, "from kai_shell.cli import main", env))
        print("- `import kai_core`: " + import_top(python, "import kai_core", env))
        print(
            "- `kai-shell`'s first prompt: "
            + import_top(python, "import kai_shell.shell.launch, kai_shell.shell.prompt", env)
        )
        print("- `kai-shell`: " + import_top(python, "import kai_shell.repl", env))
        if venv is not None:
            print(
                "- kai-client `kai`: "
                + import_top(str(venv / "bin" / "python"), "import kai_client.cli", env)
            )
    work.cleanup()
    return 0


def round_ratios(ours: Samples, theirs: Samples) -> Samples:
    """Ours ÷ theirs in each round (the two were measured back to back in it)."""
    ratios = Samples()
    for a, b in zip(ours.values, theirs.values, strict=True):
        ratios.add(a / b)
    return ratios


def goals(samples: dict[str, Samples]) -> list[list[str]]:
    """One row per figure of issue 16 that this run measured."""
    rows = []
    for figure, (ours, theirs, goal) in RATIOS.items():
        if ours in samples and theirs in samples:
            r = round_ratios(samples[ours], samples[theirs])
            rows.append(
                [
                    f"{figure} ÷ kai-client's",
                    f"≤ {goal} ×" if goal is not None else "(reported)",
                    fmt_range(r, 2) + " ×",
                    _yes(r.median <= goal) if goal is not None else "-",
                ]
            )
    for name, limit in TARGETS_MS.items():
        if name in samples:
            s = samples[name]
            if limit != limit:  # NaN: reported, no goal
                rows.append([name, "(reported)", fmt_range(s, 0, 1000) + " ms", "-"])
                continue
            met = _yes(s.median * 1000 <= limit)
            rows.append([name, f"≤ {limit:.0f} ms", fmt_range(s, 0, 1000) + " ms", met])
    return rows


def _yes(ok: bool) -> str:
    return "yes" if ok else "NO"


if __name__ == "__main__":
    sys.exit(main())
