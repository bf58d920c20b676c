"""``reiqa convert``: PyTorch checkpoints to ours and back (the work is in ``reiqa_jax.convert``)."""
from __future__ import annotations

HELP = "convert PyTorch checkpoints to ours and back"
DESCRIPTION = ("Converts an official Re-IQA PyTorch checkpoint (.pth) into a reiqa-jax "
               "checkpoint folder, or with --to-torch one of our folders back into a .pth "
               "in the released layout. Exit status: 0 done, 2 error (nothing written), "
               "130/143 stopped by SIGINT/SIGTERM (nothing written).")


def add_arguments(p) -> None:
    p.add_argument("src", help=".pth file (or, with --to-torch, our checkpoint folder)")
    p.add_argument("out", help="output checkpoint folder (or, with --to-torch, .pth file)")
    p.add_argument("--ema", action="store_true",
                   help="convert the momentum model (model_ema) instead of the model")
    p.add_argument("--to-torch", action="store_true",
                   help="write our checkpoint folder SRC as a .pth in the released layout")


def run(args) -> int:
    from reiqa_jax.convert import convert

    return convert(args.src, args.out, ema=args.ema, to_torch=args.to_torch,
                   prog="reiqa convert")
