"""``otpgate serve`` with the garbage collector's pauses counted, for the benchmarks.

    python benchmarks/gcprobe.py serve

Each collection's time is summed per generation; on ``SIGUSR2`` the counts
so far are written as JSON to ``$BENCH_GC_FILE`` and counting starts
afresh, so a benchmark reads the pauses of one phase (idle, holding waiters)
without the gateway knowing it is measured.
"""

from __future__ import annotations

import gc
import json
import os
import runpy
import signal
import sys
import time
from pathlib import Path
from typing import Any

OUT = Path(os.environ["BENCH_GC_FILE"])
started = [0.0]
pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}


def timed(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        started[0] = time.perf_counter()
    else:
        pauses[info["generation"]].append((time.perf_counter() - started[0]) * 1000)


def dump(_signum: int, _frame: Any) -> None:
    report = {
        str(gen): {"count": len(ms), "total_ms": sum(ms), "max_ms": max(ms, default=0.0)}
        for gen, ms in pauses.items()
    }
    report["tracked"] = {"objects": len(gc.get_objects())}
    for ms in pauses.values():
        ms.clear()
    tmp = OUT.with_suffix(".tmp")
    tmp.write_text(json.dumps(report))
    tmp.replace(OUT)


gc.callbacks.append(timed)
signal.signal(signal.SIGUSR2, dump)
sys.argv = ["otpgate", *sys.argv[1:]]
sys.path.insert(0, os.getcwd())  # as ``python -m gateway`` run from here
runpy.run_module("gateway", run_name="__main__")
