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
    uv run python bench/bench_stream.py --noisy-disk       # a neighbour fsyncing on the log's disk

Besides the stream tables it prints, per stream, each round's ratio to
kai-client (rounds alternate the consumers, so a round's figures were
measured side by side), the durable log's cost (``kai-log`` wall ÷ ``kai``
wall − 1), the time to the first event against this server and against the
emulator (``kai serve``, ``--emulator-rounds``), and the goals of issue 16.

"events" are the wire chunks of the stream (100,000 or 1,000,000, ``[DONE]``
not counted), whatever a consumer hands out for them; CPU is the consumer
process's user + system time during the read (imports excluded); peak RSS is
the kernel's figure for the whole consumer process.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
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
    "kai-log-nokeep",
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
    "kai-log-nokeep": "ours, durable log on, assembled message emptied as it goes",
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
# Issue 16: ratios of events/s to kai-client's (durable log on), the log's cost,
# the worst round beside a disk-heavy neighbour, memory and the first event.
GOALS_16 = {("kai-log", "large"): 2.5, ("kai-log", "per-event"): 5.0}
NOISY_FLOOR = 1.8  # no round of kai-log, large writes, below this with --noisy-disk
LOG_COST_GOAL = 0.25
RSS_GOAL_MIB = 1.0
FIRST_EVENT = ["kai-client", "kai", "kai-log"]  # the consumers timed against the emulator
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


class NoisyDisk:
    """``noisy_disk.py`` writing and fsyncing beside the consumers, for a ``with``.

    It writes in the directory where the consumers put their event logs (the
    default temporary directory), so each commit's fsync queues behind its own.
    """

    def __enter__(self) -> NoisyDisk:
        self.directory = tempfile.gettempdir()
        self.proc = subprocess.Popen(
            [sys.executable, str(BENCH_DIR / "noisy_disk.py"), self.directory],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "READY":
            self.proc.kill()
            raise RuntimeError("the noisy disk writer did not start")
        self.report: dict[str, Any] = {}
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=30)
        lines = out.strip().splitlines()
        if lines:
            self.report = json.loads(lines[-1])


class EmulatorProcess:
    """``kai serve`` (the emulator, kai-assistant flavour) on a free port, for a ``with``."""

    def __enter__(self) -> EmulatorProcess:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        kai = Path(sys.executable).with_name("kai")
        argv = [str(kai)] if kai.exists() else [sys.executable, "-m", "kai_shell._entry"]
        self.proc = subprocess.Popen(
            [*argv, "serve", "--backend", "assistant", "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return self
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.proc.kill()
                    raise RuntimeError("the emulator (kai serve) did not start") from None
                time.sleep(0.05)

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
    p.add_argument(
        "--noisy-disk",
        action="store_true",
        help="during the measured rounds, run a second process that writes and fsyncs "
        "in a loop on the file system of the consumers' event logs (bench/noisy_disk.py)",
    )
    p.add_argument(
        "--emulator-rounds",
        type=int,
        default=5,
        help="rounds of time to first event against the emulator (kai serve) for "
        f"{', '.join(FIRST_EVENT)} (0: skip)",
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
        noisy = NoisyDisk() if args.noisy_disk else None
        if noisy is not None:
            noisy.__enter__()
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
        noise: dict[str, Any] = {}
        if noisy is not None:
            noisy.__exit__(None, None, None)
            noise = noisy.report
    first_runs = first_event_runs(args, consumers, pythons)

    for size in sizes:
        for mode in modes:
            print(f"\n## {fmt_num(size)} events, {mode} writes\n")
            print(stream_table(results, size, mode, consumers))
    print(memory_section(results, sizes, modes, consumers))
    print(rounds_section(results, sizes, modes, consumers, noise))
    print(first_event_section(results, first_runs, consumers))
    print(targets_section(results, sizes, modes, consumers))
    print(goals_16_section(results, sizes, modes, consumers, first_runs, noise))
    print(f"\nload average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
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
                    "noisy_disk": noise,
                    "first_event_emulator": first_runs,
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


def first_event_runs(
    args: argparse.Namespace, consumers: list[str], pythons: dict[str, str]
) -> dict[str, list[float]]:
    """Seconds to the first event against the emulator, per consumer (rounds rotate)."""
    chosen = [c for c in FIRST_EVENT if c in consumers]
    out: dict[str, list[float]] = {c: [] for c in chosen}
    if args.emulator_rounds <= 0 or not chosen:
        return out
    with EmulatorProcess() as emulator:
        for consumer in chosen:  # unmeasured: byte code written, caches warm
            run_child(
                [pythons[consumer], str(BENCH_DIR / "consumers.py"), consumer, emulator.url],
                timeout=args.timeout,
            ).json()
        for r in range(args.emulator_rounds):
            order = chosen[r % len(chosen) :] + chosen[: r % len(chosen)]
            for consumer in order:
                report = run_child(
                    [pythons[consumer], str(BENCH_DIR / "consumers.py"), consumer, emulator.url],
                    timeout=args.timeout,
                ).json()
                if "first" in report:
                    out[consumer].append(report["first"])
    return out


def _per_round(
    results: dict[tuple[int, str, str], list[dict[str, Any]]],
    size: int,
    mode: str,
    consumer: str,
    base: str,
) -> list[float]:
    """Each round's events/s of ``consumer`` over ``base``'s (the same round: side by side)."""
    ours = results[(size, mode, consumer)]
    theirs = results[(size, mode, base)]
    return [b["wall"] / a["wall"] for a, b in zip(ours, theirs, strict=False)]


def _span(values: list[float], fmt: str = "{:.2f}") -> str:
    if not values:
        return "-"
    return f"{fmt.format(min(values))}–{fmt.format(max(values))}"


def rounds_section(
    results: dict[tuple[int, str, str], list[dict[str, Any]]],
    sizes: list[int],
    modes: list[str],
    consumers: list[str],
    noise: dict[str, Any],
) -> str:
    """Per stream: each round's ratio to kai-client, and the durable log's cost per round."""
    rows = []
    for size in sizes:
        for mode in modes:
            if "kai-client" in consumers:
                for c in ("kai", "kai-log"):
                    if c in consumers:
                        ratios = _per_round(results, size, mode, c, "kai-client")
                        rows.append(
                            [
                                f"{fmt_num(size)} {mode}",
                                f"`{c}` ÷ `kai-client`",
                                ", ".join(f"{x:.2f}" for x in ratios),
                                _span(ratios),
                            ]
                        )
            if "kai" in consumers and "kai-log" in consumers:
                # log cost = log-on wall / log-off wall - 1 = (events/s off / on) - 1
                costs = [x - 1 for x in _per_round(results, size, mode, "kai", "kai-log")]
                rows.append(
                    [
                        f"{fmt_num(size)} {mode}",
                        "log cost (`kai-log` wall ÷ `kai` wall − 1)",
                        ", ".join(f"{x:.2f}" for x in costs),
                        _span(costs),
                    ]
                )
    if not rows:
        return ""
    head = "\n## Round by round\n\n"
    if noise:
        rate = noise["fsyncs"] / noise["seconds"] if noise.get("seconds") else 0.0
        head += (
            f"With a noisy disk: a second process wrote {noise['mib']:,.0f} MiB in "
            f"64 KiB blocks, each fsynced ({rate:,.0f} fsyncs/s), on the event logs' "
            "file system during every round.\n\n"
        )
    return head + table(["stream", "figure", "each round", "min–max"], rows)


def _first_ms(runs: list[dict[str, Any]]) -> Samples:
    out = Samples()
    for run in runs:
        if "first" in run:
            out.add(run["first"] * 1e3)
    return out


def first_event_section(
    results: dict[tuple[int, str, str], list[dict[str, Any]]],
    first_runs: dict[str, list[float]],
    consumers: list[str],
) -> str:
    """Time from creating the client to the first event: this server, and the emulator."""
    rows = []
    server = {
        c: _first_ms([run for (_, _, k), runs in results.items() if k == c for run in runs])
        for c in FIRST_EVENT
        if c in consumers
    }
    emulator: dict[str, Samples] = {}
    for c, values in first_runs.items():
        emulator[c] = Samples([v * 1e3 for v in values])
    for c in FIRST_EVENT:
        if c not in server:
            continue
        row = [c, fmt_range(server[c], 1)]
        base = server.get("kai-client")
        row.append(_ratio(server[c].median, base.median) if base else "-")
        e = emulator.get(c)
        row.append(fmt_range(e, 1) if e else "-")
        eb = emulator.get("kai-client")
        row.append(_ratio(e.median, eb.median) if e and eb and eb.values else "-")
        rows.append(row)
    if not rows:
        return ""
    return (
        "\n## Time to first event (ms, from creating the client)\n\n"
        + table(
            ["consumer", "benchmark server", "÷ kai-client", "emulator", "÷ kai-client"],
            rows,
        )
        + "\n\nBenchmark server: every run above (both modes, every size); emulator: "
        "`kai serve --backend assistant`, a plain answer, rounds alternating."
    )


def goals_16_section(  # noqa: C901 - one row per goal, read top to bottom
    results: dict[tuple[int, str, str], list[dict[str, Any]]],
    sizes: list[int],
    modes: list[str],
    consumers: list[str],
    first_runs: dict[str, list[float]],
    noise: dict[str, Any],
) -> str:
    """The figures of issue 16 this run measured: figure | goal | measured | min–max."""
    rows: list[list[str]] = []
    if "kai-client" in consumers:
        for (consumer, mode), goal in GOALS_16.items():
            if consumer not in consumers or mode not in modes:
                continue
            for size in sizes:
                # The median of the rounds' own ratios: each pairs two runs made
                # side by side, as the min–max beside it does.
                per_round = _per_round(results, size, mode, consumer, "kai-client")
                ratio = statistics.median(per_round) if per_round else float("nan")
                rows.append(
                    [
                        f"`{consumer}` ÷ `kai-client`, {mode}, {fmt_num(size)}"
                        + (" (noisy disk)" if noise else ""),
                        f"≥ {goal:.1f}x",
                        f"{ratio:.2f}x {'yes' if ratio >= goal else 'NO'}",
                        _span(per_round),
                    ]
                )
                if noise and mode == "large":
                    worst = min(per_round) if per_round else float("nan")
                    rows.append(
                        [
                            f"worst round, `{consumer}`, large, {fmt_num(size)}, noisy disk",
                            f"≥ {NOISY_FLOOR:.1f}x",
                            f"{worst:.2f}x {'yes' if worst >= NOISY_FLOOR else 'NO'}",
                            _span(per_round),
                        ]
                    )
    if "kai" in consumers and "kai-log" in consumers:
        for mode in modes:
            for size in sizes:
                per_round = [x - 1 for x in _per_round(results, size, mode, "kai", "kai-log")]
                cost = statistics.median(per_round) if per_round else float("nan")
                rows.append(
                    [
                        f"log cost, {mode}, {fmt_num(size)}",
                        f"≤ {LOG_COST_GOAL:.2f}",
                        f"{cost:.2f} {'yes' if cost <= LOG_COST_GOAL else 'NO'}",
                        _span(per_round),
                    ]
                )
    if len(sizes) > 1:
        for c in ("kai-nokeep", "kai-log-nokeep"):
            if c not in consumers:
                continue
            for mode in modes:
                small = _series(results[(min(sizes), mode, c)], min(sizes))["rss"]
                big = _series(results[(max(sizes), mode, c)], max(sizes))["rss"]
                grow = big.median - small.median
                rows.append(
                    [
                        f"peak RSS `{c}`, {fmt_num(max(sizes))} − {fmt_num(min(sizes))}, {mode}",
                        f"≤ +{RSS_GOAL_MIB:.0f} MiB",
                        f"{grow:+.1f} MiB {'yes' if grow <= RSS_GOAL_MIB else 'NO'}",
                        f"{big.low - small.high:+.1f}–{big.high - small.low:+.1f}",
                    ]
                )
    if "kai-client" in consumers:
        base_server = _first_ms(
            [run for (_, _, k), runs in results.items() if k == "kai-client" for run in runs]
        )
        base_emu = Samples([v * 1e3 for v in first_runs.get("kai-client", [])])
        for c in ("kai", "kai-log"):
            if c not in consumers:
                continue
            ours = _first_ms([run for (_, _, k), runs in results.items() if k == c for run in runs])
            for where, a, b in (
                ("benchmark server", ours, base_server),
                ("emulator", Samples([v * 1e3 for v in first_runs.get(c, [])]), base_emu),
            ):
                if not a.values or not b.values:
                    continue
                rows.append(
                    [
                        f"first event, `{c}`, {where}",
                        "≤ kai-client's",
                        f"{a.median:.1f} vs {b.median:.1f} ms "
                        f"{'yes' if a.median <= b.median else 'NO'}",
                        f"{_span(a.values, '{:.1f}')} vs {_span(b.values, '{:.1f}')} ms",
                    ]
                )
    if not rows:
        return ""
    return "\n## Issue 16 goals\n\n" + table(["figure", "goal", "measured", "min–max"], rows)


if __name__ == "__main__":
    sys.exit(main())
