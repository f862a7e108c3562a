"""Stream consumption: our client against kai-client 0.12 and two references.

Starts ``stream_server.py`` (a separate process), then for every round, every
stream size and both write modes runs each consumer of ``consumers.py`` once
in a fresh process, in an order that rotates per round (the machine is
shared and noisy: only figures from the same run are compared). Prints, per
stream, events/s, CPU µs per event and peak RSS as median (min–max) with the
ratio to kai-client, then the memory check and the targets of issue 7.

    uv run python bench/bench_stream.py                      # the full run (~5-10 min)
    uv run python bench/bench_stream.py --sizes 100000 --rounds 5
    uv run python bench/bench_stream.py --sizes 20000 --rounds 1 --consumers kai,httpx-raw
    uv run python bench/bench_stream.py --diagnostics      # + prototypes and diagnostics

"events" are the wire chunks of the stream (100,000 or 1,000,000, ``[DONE]``
not counted), whatever a consumer hands out for them; CPU is the consumer
process's user + system time during the read (imports excluded); peak RSS is
the kernel's figure for the whole consumer process.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # the scripts run from anywhere
    BENCH_DIR,
    Samples,
    fmt_num,
    fmt_range,
    kai_client_venv,
    machine,
    package_versions,
    run_child,
    table,
)

ALL = [
    "kai-client",
    "kai",
    "kai-aio",
    "kai-log",
    "kai-otel",
    "kai-nokeep",
    "httpx-raw",
    "httpx-sse",
    "kai-decode",
    "httpx-batch-log",
    "httpx-batch-frames",
    "h1-assemble",
    "h1-log",
    "h1-frames",
    "socket",
]
DIAGNOSTICS = [
    "kai-decode",
    "httpx-batch-log",
    "httpx-batch-frames",
    "h1-assemble",
    "h1-log",
    "h1-frames",
    "socket",
]
DEFAULT = [c for c in ALL if c not in DIAGNOSTICS]
DESCRIPTIONS = {
    "kai-client": "kai-client 0.12 send_message (asyncio)",
    "kai": "ours, send_message, log off",
    "kai-aio": "ours under asyncio (kai_core.aio), send_message, log off",
    "kai-log": "ours, send_message, durable log on",
    "kai-otel": "ours, durable log on, telemetry on (OpenTelemetry plugin, issue 19)",
    "kai-nokeep": "ours, log off, assembled message emptied as it goes",
    "httpx-raw": "reference: httpx aiter_raw (trio)",
    "httpx-sse": "reference: httpx-sse + msgspec (trio)",
    "kai-decode": "diagnostic: aiter_bytes + our SSEDecoder + decode_chunk",
    "httpx-batch-log": "prototype: httpx + our decoder/assembler + EventLog, one commit per burst of reads",
    "httpx-batch-frames": "prototype: httpx-batch-log storing one SQLite row per commit",
    "h1-assemble": "diagnostic: no httpx: trio socket + minimal chunked reader + SSEDecoder + decode_chunk + MessageAssembler",
    "h1-log": "diagnostic: h1-assemble + durable log, one append per socket read",
    "h1-frames": "prototype: h1-log storing one SQLite row per socket read",
    "socket": "diagnostic: raw socket read (server ceiling)",
}
# Issue 7: ratio of events/s to kai-client's, per mode.
TARGETS = {
    ("kai-log", "large"): 1.5,
    ("kai-log", "per-event"): 1.1,
    ("kai", "large"): 2.5,
    ("kai", "per-event"): 1.3,
    ("kai-aio", "large"): 1.5,  # issue 17
}
MEMORY_LIMIT_MIB = 10.0
BIG = 1_000_000  # streams this long get --big-rounds
WARMUP = 1_000  # the stream of the unmeasured first run of each consumer


class ServerProcess:
    """``stream_server.py`` in its own process, for the duration of a ``with``."""

    def __init__(self, sizes: list[int], modes: list[str]) -> None:
        self.argv = [
            sys.executable,
            str(BENCH_DIR / "stream_server.py"),
            "--events",
            ",".join(map(str, sizes)),
            "--modes",
            ",".join(modes),
        ]

    def __enter__(self) -> ServerProcess:
        self.proc = subprocess.Popen(
            self.argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # generation of a new size takes a while
        if not line.startswith("READY "):
            self.proc.kill()
            raise RuntimeError("the stream server did not start")
        self.url = line.split()[1]
        return self

    def cpu_seconds(self) -> float:
        """User + system CPU the server has used so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="100000,1000000", help="comma-separated event counts")
    p.add_argument("--modes", default="large,per-event", help="large, per-event or both")
    p.add_argument("--rounds", type=int, default=3, help="runs of each consumer per stream")
    p.add_argument(
        "--big-rounds",
        type=int,
        default=1,
        help="runs per stream of 1,000,000 events or more (default 1: keeps a full run "
        "under ~10 min while the durable log takes ~2 min per 1M one-write-per-event run)",
    )
    p.add_argument(
        "--consumers",
        default=",".join(DEFAULT),
        help=f"comma-separated, of {ALL} (default: {','.join(DEFAULT)})",
    )
    p.add_argument(
        "--diagnostics", action="store_true", help=f"add {','.join(DIAGNOSTICS)} to the consumers"
    )
    p.add_argument("--json", type=Path, help="also write every measurement to this file")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds per consumer run")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:  # noqa: C901 - a script's main: one step per option, read top to bottom
    args = parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    modes = args.modes.split(",")
    consumers = args.consumers.split(",")
    if args.diagnostics:
        consumers += [c for c in DIAGNOSTICS if c not in consumers]
    unknown = set(consumers) - set(ALL)
    if unknown:
        print(f"unknown consumers: {sorted(unknown)}", file=sys.stderr)
        return 2
    pythons = {c: sys.executable for c in consumers}
    if "kai-client" in consumers:
        venv = kai_client_venv()
        if venv is None:
            print("kai-client could not be installed; running without it", file=sys.stderr)
            consumers.remove("kai-client")
        else:
            pythons["kai-client"] = str(venv / "bin" / "python")

    info = machine()
    ours = package_versions(
        sys.executable, ["kai", "httpx", "httpcore", "h11", "httpx-sse", "msgspec", "trio"]
    )
    theirs = (
        package_versions(
            pythons.get("kai-client", sys.executable),
            ["kai-client", "httpx", "httpcore", "h11", "pydantic"],
        )
        if "kai-client" in consumers
        else {}
    )
    print(f"# Stream benchmark — {info['date']}")
    print(
        f"\nmachine: {info['nproc']} CPUs ({info['cpu']}), Python {info['python']}, {info['platform']}"
    )
    print("ours: " + ", ".join(f"{k} {v}" for k, v in ours.items()))
    if theirs:
        print("kai-client venv: " + ", ".join(f"{k} {v}" for k, v in theirs.items()))
    print(
        f"rounds: {args.rounds} ({args.big_rounds} at 1,000,000 events and more); "
        f"sizes: {sizes}; modes: {modes}\n"
    )
    print("\n".join(f"- `{c}`: {DESCRIPTIONS[c]}" for c in consumers), flush=True)

    # results[(size, mode, consumer)] = list of run dicts
    results: dict[tuple[int, str, str], list[dict[str, Any]]] = defaultdict(list)
    started = time.perf_counter()
    with ServerProcess(sorted({WARMUP, *sizes}), modes) as server:
        # One unmeasured run of each consumer: .pyc files written, page cache warm.
        for consumer in consumers:
            run_child(
                [
                    pythons[consumer],
                    str(BENCH_DIR / "consumers.py"),
                    consumer,
                    f"{server.url}/{modes[0]}/{WARMUP}",
                ],
                timeout=args.timeout,
            ).json()
        total_rounds = max(args.rounds, args.big_rounds) if max(sizes) >= BIG else args.rounds
        for r in range(total_rounds):
            order = consumers[r % len(consumers) :] + consumers[: r % len(consumers)]
            for size in sizes:
                if r >= (args.big_rounds if size >= BIG else args.rounds):
                    continue
                for mode in modes:
                    url = f"{server.url}/{mode}/{size}"
                    for consumer in order:
                        cpu0 = server.cpu_seconds()
                        child = run_child(
                            [pythons[consumer], str(BENCH_DIR / "consumers.py"), consumer, url],
                            timeout=args.timeout,
                        )
                        report = child.json()
                        report["server_cpu"] = server.cpu_seconds() - cpu0
                        report["max_rss_kib"] = child.max_rss_kib
                        results[(size, mode, consumer)].append(report)
            print(
                f"round {r + 1}/{total_rounds} done ({time.perf_counter() - started:.0f} s)",
                file=sys.stderr,
                flush=True,
            )

    for size in sizes:
        for mode in modes:
            print(f"\n## {fmt_num(size)} events, {mode} writes\n")
            print(stream_table(results, size, mode, consumers))
    print(memory_section(results, sizes, modes, consumers))
    print(targets_section(results, sizes, modes, consumers))
    print(f"\n(total {time.perf_counter() - started:.0f} s)")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "machine": info,
                    "ours": ours,
                    "kai_client": theirs,
                    "runs": [
                        {"size": s, "mode": m, "consumer": c, **run}
                        for (s, m, c), runs in results.items()
                        for run in runs
                    ],
                },
                indent=1,
            )
        )
    return 0


def _series(runs: list[dict[str, Any]], size: int) -> dict[str, Samples]:
    out = {k: Samples() for k in ("eps", "cpu_us", "rss", "server", "first_ms")}
    for run in runs:
        if "first" in run:
            out["first_ms"].add(run["first"] * 1e3)
        out["eps"].add(size / run["wall"])
        out["cpu_us"].add(run["cpu"] * 1e6 / size)
        out["rss"].add(run["max_rss_kib"] / 1024)
        out["server"].add(run["server_cpu"] / run["wall"])
    return out


def _ratio(a: float, b: float) -> str:
    if a != a or b != b or b == 0:
        return "-"
    return f"{a / b:.2f}x"


def stream_table(
    results: dict[tuple[int, str, str], list[dict[str, Any]]],
    size: int,
    mode: str,
    consumers: list[str],
) -> str:
    """One stream's table: every consumer, medians (min–max) and ratios to kai-client."""
    series = {c: _series(results[(size, mode, c)], size) for c in consumers}
    base = series.get("kai-client")
    rows = []
    for c in consumers:
        s = series[c]
        items = {run["items"] for run in results[(size, mode, c)]}
        rows.append(
            [
                c,
                fmt_range(s["eps"]),
                _ratio(s["eps"].median, base["eps"].median) if base else "-",
                fmt_range(s["cpu_us"], 2),
                _ratio(base["cpu_us"].median, s["cpu_us"].median) if base else "-",
                fmt_range(s["rss"], 1),
                fmt_num(max(s["server"].values) * 100) + " %",
                fmt_range(s["first_ms"], 1),
                ",".join(fmt_num(i) for i in sorted(items)) if items != {0} else "-",
            ]
        )
    headers = [
        "consumer",
        "events/s",
        "× kai-client",
        "CPU µs/event",
        "× less CPU",
        "peak RSS MiB",
        "server CPU",
        "first event ms",
        "items out",
    ]
    return table(headers, rows)


def memory_section(
    results: dict[tuple[int, str, str], list[dict[str, Any]]],
    sizes: list[int],
    modes: list[str],
    consumers: list[str],
) -> str:
    """Peak RSS growth from the smallest to the largest stream, per consumer and mode."""
    if len(sizes) < 2:
        return ""
    small, big = min(sizes), max(sizes)
    rows = []
    for c in consumers:
        row = [c]
        for mode in modes:
            a = _series(results[(small, mode, c)], small)["rss"].median
            b = _series(results[(big, mode, c)], big)["rss"].median
            row.append(f"{b - a:+.1f}")
        rows.append(row)
    head = ["consumer", *(f"{m}: MiB" for m in modes)]
    return (
        f"\n## Memory: peak RSS at {fmt_num(big)} events minus at {fmt_num(small)} (medians)\n\n"
        + table(head, rows)
        + f"\n\nTarget: `kai-nokeep` (the stream without the message it assembles) within "
        f"{MEMORY_LIMIT_MIB:.0f} MiB."
    )


def targets_section(
    results: dict[tuple[int, str, str], list[dict[str, Any]]],
    sizes: list[int],
    modes: list[str],
    consumers: list[str],
) -> str:
    """The figures of issue 7 against what this run measured (at the largest size)."""
    if "kai-client" not in consumers:
        return ""
    size = max(sizes)
    rows = []
    for (consumer, mode), target in TARGETS.items():
        if consumer not in consumers or mode not in modes:
            continue
        ours = _series(results[(size, mode, consumer)], size)["eps"]
        base = _series(results[(size, mode, "kai-client")], size)["eps"]
        ratio = ours.median / base.median
        worst = ours.low / base.high
        rows.append(
            [
                f"`{consumer}` events/s, {mode}",
                f"≥ {target:.1f}x",
                f"{ratio:.2f}x (worst pairing {worst:.2f}x)",
                "yes" if ratio >= target else "NO",
            ]
        )
    if "kai-aio" in consumers and "large" in modes:
        # Issue 17: under asyncio, the first event no later than kai-client's.
        ours = _series(results[(size, "large", "kai-aio")], size)["first_ms"]
        base = _series(results[(size, "large", "kai-client")], size)["first_ms"]
        rows.append(
            [
                "`kai-aio` first-event latency, large",
                "≤ kai-client's",
                f"{ours.median:.1f} ms vs {base.median:.1f} ms",
                "yes" if ours.median <= base.median else "NO",
            ]
        )
    if "kai-nokeep" in consumers and len(sizes) > 1:
        for mode in modes:
            a = _series(results[(min(sizes), mode, "kai-nokeep")], min(sizes))["rss"].median
            b = _series(results[(size, mode, "kai-nokeep")], size)["rss"].median
            rows.append(
                [
                    f"RSS growth {fmt_num(min(sizes))}→{fmt_num(size)}, {mode}",
                    f"≤ {MEMORY_LIMIT_MIB:.0f} MiB",
                    f"{b - a:+.1f} MiB",
                    "yes" if b - a <= MEMORY_LIMIT_MIB else "NO",
                ]
            )
    return f"\n## Targets (issues 7 and 17), at {fmt_num(size)} events\n\n" + table(
        ["figure", "target", "measured", "met"], rows
    )


if __name__ == "__main__":
    sys.exit(main())
