"""``reiqa convert``: PyTorch checkpoints to ours and back (the work: ``reiqa_jax.convert``).

Also a program of its own: ``tools/convert_torch_ckpt.py`` runs :func:`main`.
"""
from __future__ import annotations

import os
import shutil
import sys

from reiqa_jax.errors import ReiqaError, error, one_line

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


def run(args, prog: str = "reiqa convert") -> int:
    """0 on success, 2 on error, 128 + the signal when SIGINT / SIGTERM stopped it.

    A signal stops the conversion at its next step; what it wrote is removed
    (an output folder that was empty before is left empty).
    """
    from reiqa_jax.interrupts import StopSignals, Stopped

    out = os.fspath(args.out)
    temporary = f"{out}.tmp-{os.getpid()}"  # where both directions write before renaming
    was_empty_dir = os.path.isdir(out) and not os.listdir(out)
    fresh = was_empty_dir or not os.path.exists(out)

    with StopSignals(prog, "stopping after the current step",
                     on_second=lambda: _remove(temporary),
                     verbose=sys.stderr.isatty()) as stop:
        try:
            # Imported under the handlers: Ctrl-C during the seconds that jax and
            # torch take to load stops here too, in one line.
            from reiqa_jax.convert import reiqa_to_torch, torch_to_reiqa

            stop.check()
            if args.to_torch:
                if args.ema:
                    return error(prog, "--ema applies to torch -> ours only (--to-torch "
                                       "writes 'model_ema' when present)")
                written = reiqa_to_torch(args.src, out, check=stop.check)
            else:
                written = torch_to_reiqa(args.src, out, ema=args.ema, check=stop.check)
            stop.check()
        except Stopped:
            _remove(temporary)
            if fresh:
                _remove(out)
                if was_empty_dir:
                    os.mkdir(out)
            print(f"{prog}: interrupted by {stop.name}; nothing written", file=sys.stderr)
            return stop.exit_status
        except ReiqaError as exc:
            return error(prog, one_line(exc, first_line=True), exc.status)
    print(f"wrote {written}")
    return 0


def _remove(path: str) -> None:
    if os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.remove(path)


def main(argv=None, *, prog: str | None = None) -> int:
    """``SRC OUT [--ema] [--to-torch]`` as a program of its own (the same as ``reiqa convert``).

    prog: program name for the usage line and messages (default: the script's name).
    """
    import argparse

    from reiqa_jax.interrupts import finish_quietly

    parser = argparse.ArgumentParser(prog=prog, description=DESCRIPTION)
    add_arguments(parser)
    try:
        return run(parser.parse_args(argv), prog=parser.prog)
    finally:
        if argv is None:  # the program itself: its status is decided, whatever comes now
            finish_quietly()
