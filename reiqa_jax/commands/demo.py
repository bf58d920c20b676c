"""``reiqa demo``: train a small quality encoder here and measure it on held-out photos."""
from __future__ import annotations

import signal
import sys
from pathlib import Path

HELP = "train a small quality encoder and measure it on held-out photos (no download)"
DESCRIPTION = """\
Trains configs/demo.py (a quarter-width ResNet-10, the official Re-IQA recipe
scaled down to a 2-core CPU) on procedural dead-leaves pictures and
scikit-image's pictures of the moon, textures, microscopy and a page, then
measures it on the photos bundled with scikit-image, scikit-learn and
matplotlib, none of which it trained on: each photo pristine and at 5
levels of 10 distortion kinds whose levels are monotone in severity. The
regression protocol (20 splits by scene) compares the encoder at 0, 25, 50
and 100 % of training, the same network at random init (3 seeds) and
classical statistics. Writes WORKDIR/demo_report.json, WORKDIR/demo.png, a
model folder WORKDIR/model and WORKDIR/scored_examples.csv (a held-out photo
scored with reiqa score). About 10 minutes on 2 CPU cores (benchmarks/RESULTS.md).
"""


def add_arguments(p) -> None:
    p.add_argument("--workdir", type=Path, default=Path("out/demo"),
                   help="output folder (default: out/demo)")
    p.add_argument("--train-steps", type=int, default=None, metavar="N",
                   help="training steps (default: configs/demo.py's; fewer is quicker, and "
                        "learns less)")
    p.add_argument("--seed", type=int, default=0, help="training seed (default: 0)")


def run(args) -> int:
    from reiqa_jax.errors import error

    if args.train_steps is not None and args.train_steps < 4:
        return error("reiqa demo", "--train-steps must be at least 4 (the learning curve "
                                   "needs 25 % of them)")
    from reiqa_jax.compile_cache import enable_compile_cache
    from reiqa_jax.demo import run_demo
    from reiqa_jax.errors import ReiqaError

    enable_compile_cache()
    # SIGTERM outside the training (which takes both signals over and reports its
    # own stop) unwinds as Ctrl-C does, so that both say what to do next.
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        run_demo(args.workdir, train_steps=args.train_steps, seed=args.seed)
    except ReiqaError as exc:
        return error("reiqa demo", str(exc), status=exc.status)
    except (KeyboardInterrupt, _Terminated) as exc:
        name = "SIGTERM" if isinstance(exc, _Terminated) else "SIGINT"
        print(f"reiqa demo: stopped by {name}; what is finished stays in {args.workdir}: run "
              f"the same command again to go on", file=sys.stderr, flush=True)
        return 143 if isinstance(exc, _Terminated) else 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


class _Terminated(Exception):
    """SIGTERM, raised where the demo is (outside its training)."""


def _terminated(signum, frame):
    raise _Terminated
