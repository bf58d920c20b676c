"""``reiqa export``: a training run's newest checkpoint as a model for 'reiqa extract'."""
from __future__ import annotations

from pathlib import Path

from reiqa_jax.errors import ReiqaError, error

HELP = "write a training run's newest checkpoint as a model 'reiqa extract' reads"
DESCRIPTION = ("Reads WORKDIR/config.json and the newest checkpoint of WORKDIR/checkpoints "
               "and writes OUT in the checkpoint format of 'reiqa extract' and 'reiqa convert "
               "--to-torch' (online encoder with BatchNorm statistics averaged over devices, "
               "momentum encoder, queue, optimizer momentum). Runs on any machine, one process. "
               "OUT is written under a temporary name and moved into place; an existing OUT "
               "is replaced only with --overwrite and only when it is a checkpoint folder "
               "(an earlier export); OUT may not be the workdir or hold it.")


def add_arguments(p) -> None:
    p.add_argument("workdir", type=Path, help="the --workdir of a 'reiqa train' run")
    p.add_argument("out", type=Path, help="output checkpoint directory")
    p.add_argument("--step", type=int, help="export this checkpoint step instead of the newest")
    p.add_argument("--overwrite", action="store_true",
                   help="replace OUT when it is an earlier export (otherwise an error)")


def run(args) -> int:
    from reiqa_jax.export import export_run

    try:
        out = export_run(args.workdir, args.out, step=args.step, overwrite=args.overwrite)
    except ReiqaError as exc:
        return error("reiqa export", str(exc), exc.status)
    print(f"reiqa export: {out}")
    return 0
