"""`reiqa demo` over several training seeds: the spread of what it measures.

Runs ``reiqa demo --seed S`` for each seed (one process each, timed as a
whole), then prints per seed the trained encoder's held-out SRCC, the
random-init mean and range, the margin, the classical statistics combined,
the splits on which the encoder is ahead of them, and the example photo's
check; then the mean, standard deviation and range over seeds.

  python benchmarks/demo_seeds.py                          # seeds 0, 1, 2 into out/demo_seeds
  python benchmarks/demo_seeds.py --record --commit        # + RESULTS.md block, committed files

``--commit`` copies the first seed's report to ``benchmarks/demo_report.json``
and writes the per-seed summary to ``benchmarks/demo_seeds.json`` (the
README's demo section is made from those two by ``benchmarks/demo_readme.py``).
A finished seed (its ``demo_report.json`` exists) is not run again.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))


def summary(report: dict, wall: float | None) -> dict:
    """What one seed's report says, in the numbers the table shows."""
    r = report["random_init"]
    return {"seed": report["train_seed"], "srcc": report["trained"]["srcc"],
            "plcc": report["trained"]["plcc"],
            "series_srcc": report["trained"]["series_srcc_mean"],
            "random_mean": r["srcc_mean"], "random_min": r["srcc_min"],
            "random_max": r["srcc_max"], "margin": report["margin_over_random"],
            "classical_combined": report["classical"]["combined"]["srcc"],
            "splits_ahead": report["splits_ahead_of_classical"],
            "n_splits": report["n_splits"],
            "example_pristine_above_all": report["example"]["pristine_above_strongest_all"],
            "example_above_count": sum(report["example"]["pristine_above_strongest"].values()),
            "example_series_srcc": report["example"]["series_srcc_mean"],
            "every_kind_rate": report["trained"]["pristine_above_every_kind"],
            "every_kind_rate_classical":
                report["classical"]["combined"]["pristine_above_every_kind"],
            "curve_srcc": [p["srcc"] for p in report["curve"]],
            "demo_seconds": report["seconds"]["total"], "process_seconds": wall,
            "created": report["created"], "machine": report["machine"]}


def table(rows: list[dict]) -> str:
    lines = ["| training seed | trained SRCC | random init: mean [min, max] | trained - random "
             "mean | classical combined | splits ahead of classical | example: pristine above "
             "level 4 | test photos with pristine above every kind's level 4: trained / classical | "
             "SRCC at 0 / 25 / 50 / 100 % | minutes |",
             "|---:|---:|---|---:|---:|---:|---:|---:|---|---:|"]
    for s in rows:
        minutes = (s["process_seconds"] or s["demo_seconds"]) / 60
        lines.append(
            f"| {s['seed']} | {s['srcc']:.3f} | {s['random_mean']:.3f} [{s['random_min']:.3f}, "
            f"{s['random_max']:.3f}] | {s['margin']:+.3f} | {s['classical_combined']:.3f} | "
            f"{s['splits_ahead']}/{s['n_splits']} | {s['example_above_count']}/10"
            f"{'' if s['example_pristine_above_all'] else ' (not all)'} | "
            f"{s['every_kind_rate']:.0%} / {s['every_kind_rate_classical']:.0%} | "
            + " / ".join(f"{v:.3f}" for v in s["curve_srcc"]) + f" | {minutes:.1f} |")
    srcc = np.array([s["srcc"] for s in rows])
    margin = np.array([s["margin"] for s in rows])
    lines.append("")
    lines.append(f"Over {len(rows)} seeds: trained SRCC {srcc.mean():.3f} +- {srcc.std(ddof=1) if len(rows) > 1 else 0:.3f} "
                 f"(range {srcc.min():.3f} to {srcc.max():.3f}); margin over the random-init mean "
                 f"{margin.mean():+.3f} (lowest {margin.min():+.3f}); ahead of the classical "
                 f"statistics combined on {sum(s['splits_ahead'] for s in rows)} of "
                 f"{sum(s['n_splits'] for s in rows)} splits in all.")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "demo_seeds")
    parser.add_argument("--train-steps", type=int, default=None)
    parser.add_argument("--record", action="store_true", help="write the table to RESULTS.md")
    parser.add_argument("--commit", action="store_true",
                        help="copy the first seed's report and the summary into benchmarks/")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",") if s]
    rows = []
    for seed in seeds:
        work = args.out.absolute() / f"seed_{seed}"
        report_path = work / "demo_report.json"
        wall_path = work / "process_seconds.json"
        if not report_path.exists():
            command = [sys.executable, "-m", "reiqa_jax.cli", "demo", "--workdir", str(work),
                       "--seed", str(seed)]
            if args.train_steps:
                command += ["--train-steps", str(args.train_steps)]
            print(f"demo_seeds: seed {seed}: {' '.join(command[2:])}", file=sys.stderr,
                  flush=True)
            started = time.time()
            subprocess.run(command, check=True, cwd=ROOT, env=os.environ.copy())
            wall_path.write_text(json.dumps(time.time() - started))
        wall = json.loads(wall_path.read_text()) if wall_path.exists() else None
        rows.append(summary(json.loads(report_path.read_text()), wall))
    text = table(rows)
    print(text)
    if args.commit:
        shutil.copyfile(args.out.absolute() / f"seed_{seeds[0]}" / "demo_report.json",
                        HERE / "demo_report.json")
        (HERE / "demo_seeds.json").write_text(json.dumps(rows, indent=1) + "\n")
    if args.record:
        from common import write_block

        m = rows[0]["machine"]
        created = [s["created"] for s in rows]  # same format: text order is time order
        loads = [v for s in rows for v in s["machine"].get("load_average", [])]
        # the demo alone keeps every core busy: a load well above the core count is others'
        shared = (f"; machine shared with other jobs (1-minute load average up to "
                  f"{max(loads):.1f} on {m['cores']} cores while the demos ran)"
                  if loads and max(loads) > m["cores"] + 1 else "")
        write_block("<!-- demo_seeds:begin -->", "<!-- demo_seeds:end -->",
                    f"### `reiqa demo` over {len(rows)} training seeds "
                    f"(`benchmarks/demo_seeds.py`)\n\n{m['cpu']}, {m['cores']} cores, "
                    f"{min(created)} to {max(created)}{shared}. Held-out test "
                    f"photos; the recipe was chosen on other photos (demo_sweep block).\n\n"
                    f"{text}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
