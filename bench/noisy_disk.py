"""A neighbour that keeps the disk busy: writes and fsyncs in a loop until stopped.

``python bench/noisy_disk.py DIR`` writes 64 KiB blocks to a file in ``DIR``
(the same file system as the event log under test) and fsyncs after each,
starting over at 64 MiB, until SIGTERM or SIGINT; then it prints one JSON
line: ``{"fsyncs": n, "seconds": s, "mib": m}``. ``bench_stream.py
--noisy-disk`` runs it beside the measured consumers: a commit of the
durable log (an fsync of the WAL) then waits behind the neighbour's.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import time

BLOCK = 64 * 1024
WRAP = 64 * 1024 * 1024  # bytes after which the file starts over


def main(argv: list[str]) -> int:
    directory = argv[0] if argv else tempfile.gettempdir()
    stop = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    block = os.urandom(BLOCK)  # incompressible, whatever the file system does
    fd, path = tempfile.mkstemp(prefix="kai-bench-noisy-", dir=directory)
    fsyncs = 0
    written = 0
    started = time.perf_counter()
    print("READY", flush=True)
    try:
        while not stop:
            if written and written % WRAP == 0:
                os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, block)
            os.fsync(fd)
            written += BLOCK
            fsyncs += 1
    finally:
        os.close(fd)
        os.unlink(path)
    seconds = time.perf_counter() - started
    print(json.dumps({"fsyncs": fsyncs, "seconds": seconds, "mib": written / 2**20}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
