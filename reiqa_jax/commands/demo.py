"""``reiqa demo``: train a small quality encoder here and measure how well it scores quality."""
from __future__ import annotations

from pathlib import Path

HELP = "train a small quality encoder on bundled photos and measure it (no download)"
DESCRIPTION = """\
Trains configs/smoke.py (a small ResNet, the official Re-IQA recipe scaled
down) on photos bundled with scikit-image, makes a small synthetic IQA set by
distorting held-out photos at 5 levels, and compares the trained encoder,
the same network untrained, and simple no-reference statistics with the
regression protocol (SRCC, splits disjoint by photo). Writes
WORKDIR/demo_report.json, WORKDIR/demo.png, a model folder WORKDIR/model and
example scores WORKDIR/scored_examples.csv. A few minutes on 2 CPU cores.
"""


def add_arguments(p) -> None:
    p.add_argument("--workdir", type=Path, default=Path("out/demo"),
                   help="output folder (default: out/demo)")
    p.add_argument("--train-steps", type=int, default=None, metavar="N",
                   help="training steps (default: 120; fewer is quicker and noisier)")


def run(args) -> int:
    from reiqa_jax.errors import error
    from reiqa_jax.demo import DEFAULT_TRAIN_STEPS, run_demo

    steps = DEFAULT_TRAIN_STEPS if args.train_steps is None else args.train_steps
    if steps < 1:
        return error("reiqa demo", "--train-steps must be at least 1")
    from reiqa_jax.compile_cache import enable_compile_cache

    enable_compile_cache()
    run_demo(args.workdir, train_steps=steps)
    return 0
