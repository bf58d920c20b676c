"""``reiqa export``: a checkpoint of a training run -> a model folder ``reiqa extract`` reads.

``check_export_target`` says, before anything is read, whether OUT may be
written (never the run itself, a file, or a folder of the user's);
``export_run`` restores the checkpoint onto this process's first device
(the run may have had more) and writes it with ``train.write_model``.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import jax

from reiqa_jax.checkpoint import JSON_NAME
from reiqa_jax.errors import ReiqaError, one_line
from reiqa_jax.output_paths import check_output_folder


class ExportError(ReiqaError):
    """The run cannot be exported to OUT; the message is one line."""


def check_export_target(workdir, out, *, overwrite: bool = False) -> Path:
    """Where ``reiqa export`` may write, checked before anything is read.

    ``out`` may be new, an empty folder or, with ``overwrite``, a checkpoint
    folder (one holding ``reiqa.json``, e.g. an earlier export or the run's own
    ``model/``). Never a file, the workdir itself, a folder holding the
    workdir, or a part of the run other than ``model/``. ExportError (one line).
    """
    workdir, out = Path(workdir).absolute(), Path(out).absolute()
    real_workdir, real_out = workdir.resolve(), out.resolve()
    if real_workdir.is_relative_to(real_out):
        what = "the workdir" if real_out == real_workdir else "a folder holding the workdir"
        raise ExportError(f"OUT {out} is {what} {workdir}; give a new folder for the "
                          f"exported model")
    if real_out.is_relative_to(real_workdir) and real_out != real_workdir / "model":
        raise ExportError(f"OUT {out} is inside the workdir {workdir}; give a folder outside "
                          f"it (or {workdir / 'model'})")
    return check_output_folder(out, kind="checkpoint", marker=JSON_NAME, overwrite=overwrite,
                               error=ExportError, label="OUT ", what="exported model")


def export_run(workdir, out, *, step: int | None = None, overwrite: bool = False) -> str:
    """``reiqa export``: checkpoint ``step`` (default: the newest) of a run -> ``out``
    (where it may write: :func:`check_export_target`)."""
    import ml_collections

    from reiqa_jax import optim
    from reiqa_jax.train import (TrainState, abstract_state, model_arrays_of, state_tree,
                                 write_model)
    from reiqa_jax.workdir import RECORD, checkpoint_manager, read_meta, restore_checkpoint

    workdir = Path(workdir).absolute()  # orbax takes absolute paths only
    try:
        stored = json.loads((workdir / "config.json").read_text())
        stored.pop(RECORD, None)  # how the run was made, not a config key
        config = ml_collections.ConfigDict(stored)
    except (OSError, ValueError, AttributeError) as exc:
        raise ExportError(f"{workdir} is not a training workdir (config.json: "
                          f"{one_line(exc)})") from None
    out = check_export_target(workdir, out, overwrite=overwrite)
    manager = checkpoint_manager(workdir, keep=config.keep_checkpoints, read_only=True)
    try:
        steps = sorted(manager.all_steps())
        if not steps:
            raise ExportError(f"no checkpoint in {workdir / 'checkpoints'} yet")
        step = steps[-1] if step is None else step
        if step not in steps:
            raise ExportError(f"no checkpoint {step} in {workdir / 'checkpoints'}; it holds "
                              f"steps {', '.join(map(str, steps))}")
        # A failed read leaves orbax's other reads to end on its closed event loop,
        # each with an "Event loop is closed" error, from the first failure on:
        # those are dropped (the failure itself is reported below, in one line).
        previous_hook = _quiet_closed_loop_callbacks()
        try:
            meta = read_meta(manager, step)
            tx = optim.make_optimizer(config)
            # Everything onto this process's first device: the run may have had others.
            one = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
            target = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=one),
                                  abstract_state(config, tx, int(meta["devices"])))
            tree, meta = restore_checkpoint(manager, step, state_tree(target))
        except ReiqaError:
            raise
        except (OSError, ValueError, RuntimeError) as exc:
            # e.g. a running `reiqa train` pruned the checkpoint while it was read
            reason = one_line(exc, first_line=True).split(" [tensorstore_spec")[0]
            raise ExportError(f"could not read checkpoint {step} of {workdir} (if reiqa train "
                              f"is still running there, it may have replaced it: run export "
                              f"again): {reason}") from None
        sys.unraisablehook = previous_hook  # read whole: nothing left to drop
    finally:
        manager.close()
    arrays = model_arrays_of(TrainState(**tree))
    return write_model(arrays, config, out, epoch=int(meta["step"]) // int(meta["steps_per_epoch"]),
                       meta={"workdir": str(workdir)})


def _quiet_closed_loop_callbacks():
    """Drops, from now on, the "Event loop is closed" errors that the pending
    reads of a failed orbax restore raise in the background (reported through
    ``sys.unraisablehook``); every other one is reported as before. Returns the
    hook it replaced."""
    previous = sys.unraisablehook

    def hook(unraisable):
        if not (isinstance(unraisable.exc_value, RuntimeError)
                and "Event loop is closed" in str(unraisable.exc_value)):
            previous(unraisable)

    sys.unraisablehook = hook
    return previous
