"""Our checkpoint format: an orbax directory plus a small JSON (no pickle).

Layout of a checkpoint directory ``D``::

    D/reiqa.json      {"format": "reiqa-jax-checkpoint", "version": 1,
                       "arch": {"depth": 50, "width": 1, "feat_dim": 128},
                       "items": ["model", ...], "epoch": 12 | null,
                       "meta": {...provenance, free-form JSON...}}
    D/state/          orbax composite checkpoint, one item per entry of "items":
      model           {"params": P, "batch_stats": B}
      ema_model       {"params": P, "batch_stats": B}   momentum (key) model
      queue           {"memory": (K, feat_dim) float32}  MoCo negatives queue
      opt_momentum    {"params": P}                      LARS momentum buffers

``P`` / ``B`` are ``nnx.state(model, nnx.Param)`` / ``nnx.state(model,
nnx.BatchStat)`` as nested dicts with string keys (list indices become "0",
"1", ...), all float32. ``opt_momentum`` has exactly the params' tree and
shapes: the official LARS buffer ``mu`` (``mu = m*mu + dp; p -= lr*mu``),
which is the ``optax.trace`` state of the trainer's optimizer chain
(:mod:`reiqa_jax.optim`), with the learning rate *not* folded in.
``epoch`` is the last *completed* epoch (the official trainer saves after
epoch e and resumes at e + 1). The queue's write
pointer is not stored (the official code does not save it either).

``reiqa.json`` is written last, so a directory without it is incomplete.
Saving goes to a temporary sibling that is renamed into place.
Single-process: each call reads or writes on its own, also inside a
multi-process JAX run (orbax sees plain numpy arrays).
"""
from __future__ import annotations

import functools
import json
import logging
import math
import os
import shutil
import sys
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from reiqa_jax.errors import ReiqaError
from reiqa_jax.models import ReIQAModel
from reiqa_jax.models.resnet import STAGES
from reiqa_jax.torch_layout import flatten, nest, unflatten_like

FORMAT = "reiqa-jax-checkpoint"
VERSION = 1
JSON_NAME = "reiqa.json"
STATE_NAME = "state"
ITEMS = ("model", "ema_model", "queue", "opt_momentum")


class CheckpointError(ReiqaError, ValueError):
    """A checkpoint is missing, not ours, or does not fit its architecture."""


class WrongBranch(CheckpointError):
    """The checkpoint's ``reiqa.json`` says it holds the other encoder
    (``found``: "quality" or "content") than the one asked for."""

    def __init__(self, message: str, found: str):
        super().__init__(message)
        self.found = found


# ----------------------------------------------------------------------------
# model <-> flat arrays

def model_arrays(model: ReIQAModel) -> dict[str, dict[str, np.ndarray]]:
    """{"params": {path: array}, "batch_stats": {path: array}} as float32 numpy."""
    out = {}
    for coll, filt in (("params", nnx.Param), ("batch_stats", nnx.BatchStat)):
        pure = nnx.to_pure_dict(nnx.state(model, filt))
        out[coll] = {k: np.asarray(v, np.float32) for k, v in flatten(pure).items()}
    return out


def _arch_key(arch: Mapping) -> tuple:
    return (int(arch["depth"]), float(arch["width"]), int(arch["feat_dim"]))


@functools.lru_cache(maxsize=16)
def _abstract_split(key: tuple, dtype) -> tuple:
    """(graphdef, params, batch_stats) of an abstract model; traced once per arch.

    Tracing a ResNet-50 constructor costs ~1 s, so it is cached; callers copy
    the states before filling them.
    """
    depth, width, feat_dim = key
    width = int(width) if width == int(width) else width
    m = nnx.eval_shape(lambda: ReIQAModel(depth, width, feat_dim, dtype=dtype,
                                          rngs=nnx.Rngs(0)))
    return nnx.split(m, nnx.Param, nnx.BatchStat)


def _templates(arch: Mapping) -> dict[str, dict]:
    """Pure-dict templates (ShapeDtypeStruct leaves) of params and batch_stats."""
    _, params, stats = _abstract_split(_arch_key(arch), jnp.float32)
    return {"params": nnx.to_pure_dict(params), "batch_stats": nnx.to_pure_dict(stats)}


def expected_shapes(arch: Mapping) -> dict[str, dict[str, tuple[int, ...]]]:
    """Shapes of ``model_arrays`` for ``arch``, per collection."""
    return {coll: {k: tuple(v.shape) for k, v in flatten(t).items()}
            for coll, t in _templates(arch).items()}


def build_model(arch: Mapping, arrays: Mapping[str, Mapping[str, Any]],
                dtype=jnp.float32, *, where: str = "") -> ReIQAModel:
    """A ReIQAModel of ``arch`` holding ``arrays`` (as from ``model_arrays``).

    No random init is run. Raises CheckpointError naming missing, unexpected
    or wrongly shaped entries. The model is returned in eval mode.
    """
    check_arch(arch, where)
    graphdef, *abstract = _abstract_split(_arch_key(arch), dtype)
    states = []
    for coll, state in zip(("params", "batch_stats"), abstract):
        template = nnx.to_pure_dict(state)
        want = {k: tuple(v.shape) for k, v in flatten(template).items()}
        got = arrays.get(coll, {})
        check_tree(f"{where}{coll} do not fit arch {dict(arch)}", want,
                   {k: tuple(np.shape(v)) for k, v in got.items()})
        check_finite(f"{where}{coll}", got)
        pure = unflatten_like({k: jnp.asarray(v, jnp.float32) for k, v in got.items()},
                              template)
        state = jax.tree.map(lambda x: x, state)  # a copy: the cached one stays abstract
        nnx.replace_by_pure_dict(state, pure)
        states.append(state)
    model = nnx.merge(graphdef, *states)
    model.eval()
    return model


def check_arch(arch: Any, where: str = "") -> None:
    """Raises CheckpointError unless ``arch`` names a model we can build.

    depth: one of STAGES; width: a positive number giving at least one stem
    channel; feat_dim: a positive integer.
    """
    if not isinstance(arch, Mapping) or not {"depth", "width", "feat_dim"} <= set(arch):
        raise CheckpointError(f"{where}architecture must have depth, width and feat_dim, "
                              f"got {arch!r}")
    depth, width, feat_dim = arch["depth"], arch["width"], arch["feat_dim"]

    def is_int(v):
        return isinstance(v, int) and not isinstance(v, bool)

    problems = []
    if not (is_int(depth) and depth in STAGES):
        problems.append(f"depth {depth!r} is not one of {sorted(STAGES)}")
    if not (isinstance(width, (int, float)) and not isinstance(width, bool)
            and math.isfinite(width) and int(64 * width) >= 1):
        problems.append(f"width {width!r} is not a number >= 1/64")
    if not (is_int(feat_dim) and feat_dim >= 1):
        problems.append(f"feat_dim {feat_dim!r} is not a positive integer")
    if problems:
        raise CheckpointError(f"{where}bad architecture: " + "; ".join(problems))


def check_finite(what: str, arrays: Mapping[str, Any]) -> None:
    """Raises CheckpointError naming the arrays that hold NaN or Inf."""
    bad = [k for k, v in arrays.items() if not np.isfinite(np.asarray(v)).all()]
    if bad:
        raise CheckpointError(f"{what} hold NaN or Inf values in {few(bad)} (a damaged "
                              f"checkpoint or a diverged training run); refused")


def tree_mismatch(want: Mapping[str, tuple], got: Mapping[str, tuple]) -> list[str]:
    """Missing, unexpected and wrong-shape names of ``got`` against ``want``, one entry each."""
    missing = [k for k in want if k not in got]
    unexpected = [k for k in got if k not in want]
    wrong = [f"{k} {tuple(got[k])} != expected {tuple(want[k])}" for k in want
             if k in got and tuple(got[k]) != tuple(want[k])]
    problems = []
    if missing:
        problems.append(f"missing {few(missing)}")
    if unexpected:
        problems.append(f"unexpected {few(unexpected)}")
    if wrong:
        problems.append(f"wrong shape {few(wrong)}")
    return problems


def check_tree(what: str, want: Mapping[str, tuple], got: Mapping[str, tuple]) -> None:
    """Raises CheckpointError naming every mismatch of ``got`` against ``want``."""
    problems = tree_mismatch(want, got)
    if problems:
        raise CheckpointError(f"{what}: " + "; ".join(problems))


def few(names, n=6) -> str:
    """The first ``n`` names, and how many more."""
    names = list(names)
    more = f" (+{len(names) - n} more)" if len(names) > n else ""
    return ", ".join(names[:n]) + more


def _as_flat_params(tree) -> dict[str, np.ndarray]:
    if isinstance(tree, nnx.State):
        tree = nnx.to_pure_dict(tree)
    return {k: np.asarray(v, np.float32) for k, v in flatten(tree).items()}


def _checkpointer(names):
    """An orbax Checkpointer for composite items ``names`` that this process
    reads or writes on its own: in a multi-process JAX run orbax would
    otherwise wait at barriers for processes that never call it."""
    import orbax.checkpoint as ocp

    if jax.process_count() == 1:
        mp = ocp.options.MultiprocessingOptions()
    else:
        me = jax.process_index()
        mp = ocp.options.MultiprocessingOptions(primary_host=me, active_processes={me})
    # Name the handler of each item, or orbax cannot read their metadata.
    handler = ocp.CompositeCheckpointHandler(
        composite_options=ocp.CompositeOptions(multiprocessing_options=mp),
        **{n: ocp.StandardCheckpointHandler(multiprocessing_options=mp) for n in names})
    return ocp.Checkpointer(handler, multiprocessing_options=mp)


# ----------------------------------------------------------------------------
# save

def save_model(directory, model: ReIQAModel, *, meta: Mapping | None = None,
               ema_model: ReIQAModel | None = None, queue=None, opt_momentum=None,
               epoch: int | None = None, overwrite: bool = False) -> str:
    """Write ``model`` (and optional training state) as a checkpoint directory.

    Args:
      directory: target path; must not exist (or be empty) unless ``overwrite``.
      model: the ReIQAModel (online/query model).
      meta: JSON-serialisable provenance (source file, converter, ...).
      ema_model: momentum model of the same architecture.
      queue: (K, feat_dim) float array, the MoCo queue.
      opt_momentum: LARS momentum buffers, a tree shaped like
        ``nnx.state(model, nnx.Param)`` (an nnx.State or its pure dict).
      epoch: last completed epoch.
    Returns the directory path (str). Raises CheckpointError on bad inputs.
    """
    directory = os.path.abspath(os.fspath(directory))
    if os.path.exists(directory) and os.listdir(directory) and not overwrite:
        raise CheckpointError(f"{directory} exists and is not empty (pass overwrite=True)")
    arch = model.arch
    mine = model_arrays(model)
    items = {"model": mine}
    if ema_model is not None:
        if ema_model.arch != arch:
            raise CheckpointError(f"ema_model arch {ema_model.arch} != model arch {arch}")
        items["ema_model"] = model_arrays(ema_model)
    if queue is not None:
        q = np.asarray(queue, np.float32)
        if q.ndim != 2 or q.shape[1] != arch["feat_dim"]:
            raise CheckpointError(f"queue shape {q.shape} is not (K, {arch['feat_dim']})")
        items["queue"] = {"memory": q}
    if opt_momentum is not None:
        mom = _as_flat_params(opt_momentum)
        check_tree("opt_momentum", {k: v.shape for k, v in mine["params"].items()},
                   {k: v.shape for k, v in mom.items()})
        items["opt_momentum"] = {"params": mom}

    header = {"format": FORMAT, "version": VERSION, "arch": arch,
              "items": list(items), "epoch": None if epoch is None else int(epoch),
              "meta": dict(meta or {})}
    try:
        json.dumps(header)
    except TypeError as e:
        raise CheckpointError(f"meta is not JSON-serialisable: {e}") from None

    import orbax.checkpoint as ocp  # heavy import, only when saving/loading

    tmp = f"{directory}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
        args = {}
        for name, tree in items.items():
            nested = {coll: nest(flat) for coll, flat in tree.items()} \
                if name != "queue" else tree
            args[name] = ocp.args.StandardSave(nested)
        with _checkpointer(list(args)) as ck:
            ck.save(os.path.join(tmp, STATE_NAME), args=ocp.args.Composite(**args))
        with open(os.path.join(tmp, JSON_NAME), "w") as f:
            json.dump(header, f, indent=1)
        if os.path.exists(directory):
            shutil.rmtree(directory)
        os.replace(tmp, directory)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return directory


# ----------------------------------------------------------------------------
# load

def read_header(directory, *, branch: str | None = None) -> dict:
    """The parsed ``reiqa.json`` of a checkpoint; CheckpointError if not one.

    branch: "quality" or "content", the encoder the caller wants; a checkpoint
    whose ``meta.branch`` (written by ``reiqa train`` / ``reiqa export``)
    names the other one raises :class:`WrongBranch`. Checkpoints that do not
    say (converted ones) are taken as given.
    """
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise CheckpointError(f"no checkpoint directory at {directory}")
    path = os.path.join(directory, JSON_NAME)
    if not os.path.isfile(path):
        raise CheckpointError(f"{directory} is not a reiqa-jax checkpoint (no {JSON_NAME})")
    try:
        with open(path, encoding="utf-8") as f:
            header = json.load(f)
    except (OSError, ValueError) as e:  # ValueError: bad JSON or not UTF-8
        raise CheckpointError(f"{path} is unreadable: {' '.join(str(e).split())}") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a reiqa-jax checkpoint header")
    if header.get("version") != VERSION:
        raise CheckpointError(f"{path}: unsupported version {header.get('version')!r}")
    items = header.get("items")
    if not (isinstance(items, list) and all(isinstance(i, str) for i in items)
            and "model" in items and set(items) <= set(ITEMS)):
        raise CheckpointError(f"{path}: bad item list {items!r}")
    arch = header.get("arch")
    if not (isinstance(arch, dict) and {"depth", "width", "feat_dim"} <= set(arch)):
        raise CheckpointError(f"{path}: missing architecture (depth, width, feat_dim)")
    check_arch(arch, f"{path}: ")
    epoch = header.get("epoch")
    if epoch is not None and not (isinstance(epoch, int) and not isinstance(epoch, bool)):
        raise CheckpointError(f"{path}: epoch {epoch!r} is not an integer")
    if not isinstance(header.get("meta", {}), dict):
        raise CheckpointError(f"{path}: meta is not a JSON object")
    found = header.get("meta", {}).get("branch")
    if branch is not None and isinstance(found, str) and found != branch:
        raise WrongBranch(f"{directory} is a {found} encoder (its {JSON_NAME} says branch: "
                          f"{found}), not a {branch} one", found)
    return header


def _restore(directory, names, present) -> dict[str, dict]:
    """Restore items ``names`` (of the ``present`` ones) as nested numpy dicts.

    Without a target tree orbax restores each item as it was saved, as numpy
    arrays, reading its metadata once; the callers check the arrays against
    the architecture.
    """
    import orbax.checkpoint as ocp

    state_dir = os.path.join(os.path.abspath(os.fspath(directory)), STATE_NAME)
    _quiet_leftovers_of_failed_reads(state_dir)  # before reading: they can beat the error
    try:
        with _checkpointer(present) as ck:
            restored = ck.restore(state_dir, args=ocp.args.Composite(
                **{n: ocp.args.StandardRestore() for n in names}))
    except CheckpointError:
        raise
    except Exception as e:  # orbax raises many types; keep the message one line
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CheckpointError(f"cannot read {state_dir}: {msg}") from None
    return {n: restored[n] for n in names}


class _FailedReadLeftovers(logging.Filter):
    """Drops asyncio's "Task exception was never retrieved" for reads of our checkpoints.

    When one array of a damaged checkpoint cannot be read, orbax stops its
    asyncio loop while tensorstore is still reading the others. Those reads
    fail too, and asyncio logs each as a task whose exception nobody took,
    with a traceback, when the task is collected (often at exit). The read has
    already failed with a one-line error naming the checkpoint, so exactly the
    records whose exception names a checkpoint folder read here are dropped.
    """

    def __init__(self):
        super().__init__()
        self.state_dirs: set[str] = set()

    def filter(self, record):
        if not str(record.msg).startswith("Task exception was never retrieved"):
            return True
        exc = record.exc_info[1] if record.exc_info else None
        return not (exc is not None and any(d in str(exc) for d in self.state_dirs))


_LEFTOVERS = _FailedReadLeftovers()


def _quiet_leftovers_of_failed_reads(state_dir: str) -> None:
    """Silences what a failed orbax read of ``state_dir`` leaves behind.

    Two kinds, both after the read has already raised its one clear error:
    the other reads' tasks, which asyncio logs as never retrieved (see
    :class:`_FailedReadLeftovers`), and their callbacks into the closed loop,
    which Python prints as unraisable ``RuntimeError('Event loop is closed')``
    up to exit. Every other log record and unraisable exception is reported as
    before.
    """
    _LEFTOVERS.state_dirs.update({state_dir, os.path.realpath(state_dir)})
    asyncio_log = logging.getLogger("asyncio")
    if _LEFTOVERS not in asyncio_log.filters:
        asyncio_log.addFilter(_LEFTOVERS)
    previous = sys.unraisablehook
    if getattr(previous, "quiets_closed_loop", False):
        return

    def hook(unraisable):
        exc = unraisable.exc_value
        if isinstance(exc, RuntimeError) and str(exc) == "Event loop is closed":
            return
        previous(unraisable)

    hook.quiets_closed_loop = True
    sys.unraisablehook = hook


def _flat_item(item) -> dict[str, dict[str, np.ndarray]]:
    return {coll: {k: np.asarray(v) for k, v in flatten(tree).items()}
            for coll, tree in item.items()}


def load_model(directory, *, dtype=jnp.float32, branch: str | None = None) -> ReIQAModel:
    """Load the (online) model of a checkpoint, in eval mode.

    dtype: compute dtype of the encoder (params are float32 regardless).
    branch: the encoder wanted, "quality" or "content" (see :func:`read_header`).
    Raises CheckpointError (one line) if ``directory`` is missing, is not a
    reiqa-jax checkpoint, holds the other branch's encoder, or its arrays do
    not fit the recorded architecture.
    """
    header = read_header(directory, branch=branch)
    arrays = _flat_item(_restore(directory, ["model"], header["items"])["model"])
    return build_model(header["arch"], arrays, dtype, where=f"{directory}: ")


def load_training_state(directory, *, dtype=jnp.float32) -> dict:
    """The training items present in a checkpoint.

    Returns a dict with only the keys that were saved:
      ``ema_model``: ReIQAModel (eval mode);
      ``queue``: (K, feat_dim) float32 jax array;
      ``opt_momentum``: pure dict shaped like
        ``nnx.to_pure_dict(nnx.state(model, nnx.Param))`` (jax float32 arrays;
        use ``nnx.replace_by_pure_dict``);
      ``epoch``: int, the last completed epoch.
    """
    header = read_header(directory)
    arch = header["arch"]
    names = [n for n in ("ema_model", "queue", "opt_momentum") if n in header["items"]]
    out: dict[str, Any] = {}
    restored = _restore(directory, names, header["items"]) if names else {}
    if "ema_model" in restored:
        out["ema_model"] = build_model(arch, _flat_item(restored["ema_model"]), dtype,
                                        where=f"{directory}: ema_model ")
    if "queue" in restored:
        q = np.asarray(restored["queue"]["memory"], np.float32)
        if q.ndim != 2 or q.shape[1] != arch["feat_dim"]:
            raise CheckpointError(f"{directory}: queue shape {q.shape} is not "
                                  f"(K, {arch['feat_dim']})")
        out["queue"] = jnp.asarray(q)
    if "opt_momentum" in restored:
        template = _templates(arch)["params"]
        want = {k: tuple(v.shape) for k, v in flatten(template).items()}
        got = _flat_item(restored["opt_momentum"])["params"]
        check_tree(f"{directory}: opt_momentum", want,
                   {k: tuple(v.shape) for k, v in got.items()})
        out["opt_momentum"] = unflatten_like(
            {k: jnp.asarray(v, jnp.float32) for k, v in got.items()}, template)
    if header.get("epoch") is not None:
        out["epoch"] = int(header["epoch"])
    return out
