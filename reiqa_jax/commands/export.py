"""``reiqa export``: a training run's newest checkpoint as a model for 'reiqa extract'."""
from __future__ import annotations

from pathlib import Path

from reiqa_jax.errors import error

HELP = "write a training run's newest checkpoint as a model 'reiqa extract' reads"
DESCRIPTION = ("Reads WORKDIR/config.json and the newest checkpoint of WORKDIR/checkpoints "
               "and writes OUT in the checkpoint format of 'reiqa extract' and 'reiqa convert "
               "--to-torch' (online encoder with BatchNorm statistics averaged over devices, "
               "momentum encoder, queue, optimizer momentum). Runs on any machine, one process.")


def add_arguments(p) -> None:
    p.add_argument("workdir", type=Path, help="the --workdir of a 'reiqa train' run")
    p.add_argument("out", type=Path, help="output checkpoint directory")
    p.add_argument("--step", type=int, help="export this checkpoint step instead of the newest")


def run(args) -> int:
    from reiqa_jax.checkpoint import CheckpointError
    from reiqa_jax.train import TrainError, export_run

    try:
        out = export_run(args.workdir, args.out, step=args.step)
    except (TrainError, CheckpointError) as exc:
        return error("reiqa export", str(exc))
    print(f"reiqa export: {out}")
    return 0
