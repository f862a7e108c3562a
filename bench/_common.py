"""What the benchmark scripts share: child processes, statistics, tables, versions."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
KAI_CLIENT_VERSION = "0.12.0"


def cache_root() -> Path:
    """``$KAI_BENCH_CACHE`` or ``~/.cache/kai-bench``."""
    env = os.environ.get("KAI_BENCH_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "kai-bench"


def kai_client_venv(create: bool = True) -> Path | None:
    """The venv holding kai-client 0.12 from PyPI (created on first use), or None.

    It lives in ``~/.cache/kai-bench/kai-client-0.12.0`` and is reused; it is
    created with ``python -m venv`` and ``pip install kai-client==0.12.0``.
    """
    venv = Path.home() / ".cache" / "kai-bench" / f"kai-client-{KAI_CLIENT_VERSION}"
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import kai_client"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return venv
    if not create:
        return None
    print(f"creating {venv} (pip install kai-client=={KAI_CLIENT_VERSION}) ...", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "-q", f"kai-client=={KAI_CLIENT_VERSION}"]
    if subprocess.run(pip).returncode != 0:
        return None
    return venv


def package_versions(python: str, names: Sequence[str]) -> dict[str, str]:
    """Installed versions of ``names`` as the interpreter ``python`` sees them."""
    code = (
        "import json, importlib.metadata as m, sys\n"
        "out = {}\n"
        "for n in sys.argv[1:]:\n"
        "    try: out[n] = m.version(n)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps(out))"
    )
    done = subprocess.run([python, "-c", code, *names], capture_output=True, text=True)
    try:
        return dict(json.loads(done.stdout))
    except ValueError:
        return {}


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
    }


@dataclass
class ChildResult:
    """A finished child: its exit code, output, wall time and kernel-measured peak RSS."""

    returncode: int
    stdout: str
    stderr: str
    wall: float
    max_rss_kib: int
    cpu: float  # user + system of the whole child, from the kernel

    def json(self) -> dict[str, Any]:
        """The last stdout line, parsed (the consumers' report)."""
        lines = self.stdout.strip().splitlines()
        if self.returncode != 0 or not lines:
            raise RuntimeError(
                f"child failed (exit {self.returncode}):\n{self.stderr.strip()[-2000:]}"
            )
        return dict(json.loads(lines[-1]))


def child_env() -> dict[str, str]:
    """The environment for measured children: ours, but free to write ``.pyc`` files.

    With ``PYTHONDONTWRITEBYTECODE`` set (some sandboxes set it) every run
    would compile the modules that were never byte-compiled (here: all of
    ``kai_core`` and ``httpcore``, which httpx imports on its first request),
    while pip-installed kai-client has its ``.pyc`` files: an unfair tax on
    whichever side lacks them. A normal install has them, so the benchmarks
    let children write them and warm up once before measuring.
    """
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def run_child(
    argv: Sequence[str], timeout: float = 600.0, env: dict[str, str] | None = None
) -> ChildResult:
    """Run ``argv`` to its end; peak RSS and CPU come from ``wait4`` (this child only)."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        list(argv),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env() if env is None else env,
    )
    try:
        out, err = _read_both(proc, timeout)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    # Reap it ourselves: wait4 gives the resource usage of exactly this child.
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    return ChildResult(
        proc.returncode,
        out,
        err,
        wall,
        usage.ru_maxrss,
        usage.ru_utime + usage.ru_stime,
    )


def _read_both(proc: subprocess.Popen[str], timeout: float) -> tuple[str, str]:
    """stdout and stderr to EOF without reaping the child (``communicate`` would)."""
    import selectors

    assert proc.stdout is not None and proc.stderr is not None
    chunks: dict[int, list[str]] = {proc.stdout.fileno(): [], proc.stderr.fileno(): []}
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        sel.register(proc.stderr, selectors.EVENT_READ)
        while sel.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{proc.args!r} ran longer than {timeout} s")
            for key, _ in sel.select(left):
                data = os.read(key.fd, 65536)
                if not data:
                    sel.unregister(key.fileobj)
                else:
                    chunks[key.fd].append(data.decode(errors="replace"))
    return "".join(chunks[proc.stdout.fileno()]), "".join(chunks[proc.stderr.fileno()])


@dataclass
class Samples:
    """Several measurements of one thing."""

    values: list[float] = field(default_factory=list)

    def add(self, value: float) -> None:
        self.values.append(value)

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    @property
    def low(self) -> float:
        return min(self.values) if self.values else float("nan")

    @property
    def high(self) -> float:
        return max(self.values) if self.values else float("nan")


def fmt_num(value: float, digits: int = 0) -> str:
    """``1234567`` -> ``1,234,567``; NaN -> ``-``."""
    if value != value:  # NaN
        return "-"
    return f"{value:,.{digits}f}"


def fmt_range(s: Samples, digits: int = 0, scale: float = 1.0) -> str:
    """``median (min–max)``."""
    if not s.values:
        return "-"
    if len(s.values) == 1:
        return fmt_num(s.median * scale, digits)
    return (
        f"{fmt_num(s.median * scale, digits)} "
        f"({fmt_num(s.low * scale, digits)}–{fmt_num(s.high * scale, digits)})"
    )


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table (readable as plain text too)."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(headers), sep, *(line(r) for r in rows)])
