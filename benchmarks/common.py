"""Helpers shared by the benchmark scripts (run as ``python benchmarks/X.py``,
so this folder is on ``sys.path`` and ``from common import ...`` works)."""

from __future__ import annotations

import platform
import time
from pathlib import Path


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo, else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def best_time(run, repeats: int) -> float:
    """Best-of-`repeats` seconds for one call of `run` (after one warm-up call)."""
    return best_times_interleaved({"run": run}, repeats)["run"]


def best_times_interleaved(runs: dict, repeats: int) -> dict:
    """Best-of-`repeats` seconds of each callable in `runs`, timed in rounds
    (one call of each per round, after one warm-up call of each), so that
    a change of machine load during the run affects all of them alike."""
    for run in runs.values():
        run()
    best = {name: float("inf") for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - start)
    return best
