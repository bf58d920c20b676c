"""Helpers shared by the benchmark scripts (run as ``python benchmarks/X.py``,
so this folder is on ``sys.path`` and ``from common import ...`` works)."""

from __future__ import annotations

import os
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


RESULTS = Path(__file__).with_name("RESULTS.md")


def write_block(begin: str, end: str, text: str, before: str | None = None) -> None:
    """Puts ``text`` between the markers ``begin`` and ``end`` in RESULTS.md.

    An existing block is replaced; a new one goes just before the marker
    ``before`` when that is given, else at the end of the file.
    """
    content = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    block = f"{begin}\n{text.strip(chr(10))}\n{end}"
    if begin in content and end in content:
        head, rest = content.split(begin, 1)
        content = head + block + rest.split(end, 1)[1]
    elif before is not None and before in content:
        head, tail = content.split(before, 1)
        content = head.rstrip("\n") + "\n\n" + block + "\n" + before + tail
    else:
        content = content.rstrip("\n") + "\n\n" + block + "\n"
    RESULTS.write_text(content)


def pythonpath_with(first) -> str:
    """A PYTHONPATH value: ``first`` ahead of the caller's PYTHONPATH, which is kept
    (a lent machine or a CI may put the package there)."""
    return os.pathsep.join(p for p in (str(first), os.environ.get("PYTHONPATH", "")) if p)
