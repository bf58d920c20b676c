"""Re-IQA / MoCo-v2 training: one jitted ``shard_map`` step over every device of every host.

The official step (``learning/contrast_trainer.py::_train_moco``), in its order:

1. views of the step's pictures, made on the device from uint8 tiles (the 26
   distortions, crop pairs, two scales; or MoCo-v2 augmentation "B");
2. keys: the momentum encoder (BatchNorm in train mode: batch statistics,
   its own running statistics updated) with shuffle BN (``moco.shuffle_bn_keys``);
3. queries: the online encoder (train mode);
4. InfoNCE against the queue as it was before this step (``moco.info_nce``);
5. gradients averaged over all devices (grad of the ``pmean`` of the loss);
6. the optimizer (LARS or SGD with the official schedules, ``optim``);
7. EMA of the parameters (``moco.momentum_update``, m = 0.999, head included);
8. push of all devices' keys, gathered in shuffled order, into the FIFO queue.

Layout: a 2-D mesh ('host', 'local') over all devices, process-major, so
that shuffling "within a host" is a collective over 'local'. Parameters,
optimizer state, EMA parameters and the queue are replicated; each device
keeps its own BatchNorm running statistics for both encoders (as each GPU
does in the official DDP run), stored stacked, one row per device. The
online model's statistics are averaged over devices when the model is
exported (the official keeps GPU 0's).

Everything random in step s comes from ``fold_in(state.rng, s)`` and the
device's index; everything read from disk in step s is fixed by the input
pipeline (``data.pipeline``); so a restarted run continues exactly.
"""
from __future__ import annotations

import dataclasses
import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax import lax
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

from reiqa_jax import moco, optim
from reiqa_jax.errors import error, one_line
from reiqa_jax.models import ReIQAModel

DATA_AXES = ("host", "local")
SHUFFLE_BN = ("host", "global", "none", "sync")


class TrainError(RuntimeError):
    """The run cannot go on; the message is one line."""


# ----------------------------------------------------------------------------
# config-derived static pieces

def compute_dtype(name: str):
    """'auto' = bfloat16 on GPU/TPU, float32 on CPU; or 'float32' / 'bfloat16'
    ('float64' needs jax_enable_x64 and float64 state: exactness tests only)."""
    if name == "auto":
        return jnp.float32 if jax.default_backend() == "cpu" else jnp.bfloat16
    if name not in ("float32", "bfloat16", "float64"):
        raise ValueError(f"dtype must be 'auto', 'float32' or 'bfloat16', got {name!r}")
    return jnp.dtype(name)


def make_mesh() -> Mesh:
    """('host', 'local') mesh: row p holds process p's devices, in id order."""
    per_process: dict[int, list] = {}
    for d in jax.devices():
        per_process.setdefault(d.process_index, []).append(d)
    counts = {len(v) for v in per_process.values()}
    if len(counts) != 1:
        raise TrainError(f"processes have different device counts {sorted(counts)}")
    grid = np.array([sorted(per_process[p], key=lambda d: d.id) for p in sorted(per_process)])
    return Mesh(grid, DATA_AXES, axis_types=(AxisType.Auto, AxisType.Auto))


def quality_view_config(config):
    from reiqa_jax.augment.quality_views import QualityViewConfig

    v = config.views
    return QualityViewConfig(patch_size=v.patch_size, n_aug=v.n_aug, n_scale=v.n_scale,
                             n_distortions=v.n_distortions, schedule=v.schedule,
                             crop_swap=config.crop_swap)


def pairs_per_image(config) -> int:
    if config.branch == "quality":
        return config.views.n_scale * (config.views.n_aug + 1)
    return 1


def _distortion_ops(spec: str):
    """``views.ops``: '' = the official 26 distortions, or 'module:NAME' naming
    a tuple of 26 replacement ops (``op(key, image, level)``)."""
    if not spec:
        return None
    import importlib

    module, _, name = spec.partition(":")
    ops = tuple(getattr(importlib.import_module(module), name))
    if len(ops) != 26:
        raise ValueError(f"views.ops {spec} has {len(ops)} ops, 26 are needed")
    return ops


def make_view_fn(config) -> Callable:
    """(key, local batch) -> (queries, keys): (n, P, P, 3) float32 crops, per device."""
    if config.branch == "quality":
        from reiqa_jax.augment.quality_views import make_quality_views

        qcfg = quality_view_config(config)
        ops = _distortion_ops(config.views.ops)

        def views(key, batch):
            # No valid_hw: every picture fills the canvas (static sizes).
            v, _ = make_quality_views(key, batch["pixels"], qcfg, batch.get("valid_hw"),
                                      batch.get("transposed"), ops=ops)
            v = v.reshape((-1,) + v.shape[2:])  # (b * pairs, P, P, 6), image-major
            return v[..., :3], v[..., 3:]
        return views
    if config.branch == "content":
        from reiqa_jax.augment.content import content_augment

        size = config.views.patch_size

        def views(key, batch):
            kq, kk = jax.random.split(key)
            return (content_augment(kq, batch["pixels"], batch["valid_hw"], size)[0],
                    content_augment(kk, batch["pixels"], batch["valid_hw"], size)[0])
        return views
    raise ValueError(f"branch must be 'quality' or 'content', got {config.branch!r}")


# ----------------------------------------------------------------------------
# state

@flax.struct.dataclass
class TrainState:
    """Everything a step reads and writes (a pytree of arrays).

    step: int32, completed updates. params / ema_params: online and momentum
    parameters (nnx pure dicts, replicated). batch_stats / ema_batch_stats:
    BatchNorm running statistics, leading axis = device. opt_state: optax
    state. queue: (K, feat_dim) float32; queue_ptr: int32. rng: the run's
    base key (step keys are ``fold_in(rng, step)``).
    """

    step: jax.Array
    params: Any
    batch_stats: Any
    ema_params: Any
    ema_batch_stats: Any
    opt_state: Any
    queue: jax.Array
    queue_ptr: jax.Array
    rng: jax.Array


def state_specs(state) -> TrainState:
    """PartitionSpecs: per-device statistics split over the mesh, the rest replicated."""
    rep = lambda tree: jax.tree.map(lambda _: P(), tree)
    dev = lambda tree: jax.tree.map(lambda _: P(DATA_AXES), tree)
    return TrainState(step=P(), params=rep(state.params), batch_stats=dev(state.batch_stats),
                      ema_params=rep(state.ema_params),
                      ema_batch_stats=dev(state.ema_batch_stats),
                      opt_state=rep(state.opt_state), queue=P(), queue_ptr=P(), rng=P())


def _model(config, dtype) -> ReIQAModel:
    m = config.model
    return ReIQAModel(m.depth, m.width, m.feat_dim, dtype=dtype, rngs=nnx.Rngs(config.seed))


def train_graphdef(config, dtype):
    """The static model structure with BatchNorm in train mode (and synchronized
    over all devices for ``shuffle_bn='sync'``)."""
    model = nnx.eval_shape(lambda: _model(config, dtype))
    model.train()
    if config.shuffle_bn == "sync":
        for _, module in nnx.iter_modules(model):
            if isinstance(module, nnx.BatchNorm):
                module.axis_name = DATA_AXES
    graphdef, _, _ = nnx.split(model, nnx.Param, nnx.BatchStat)
    return graphdef


def _per_device(tree, n: int):
    return jax.tree.map(lambda a: jnp.broadcast_to(a, (n,) + a.shape), tree)


def _fresh_state_fn(config, tx: optax.GradientTransformation, n_devices: int,
                    init: dict | None = None) -> Callable[[], TrainState]:
    root = jax.random.key(config.seed)

    def fresh():
        if init is None:
            _, p, s = nnx.split(_model(config, jnp.float32), nnx.Param, nnx.BatchStat)
            params, stats = nnx.to_pure_dict(p), nnx.to_pure_dict(s)
            ema_params, ema_stats, queue = params, stats, None
        else:
            params, stats = init["params"], init["batch_stats"]
            ema_params = init.get("ema_params", params)
            ema_stats = init.get("ema_batch_stats", stats)
            queue = init.get("queue")
        if queue is None:
            queue = moco.init_queue(jax.random.fold_in(root, 1), config.queue_size,
                                    config.model.feat_dim)
        # Separate buffers for the momentum encoder: the step donates both.
        ema_params, ema_stats = jax.tree.map(jnp.copy, (ema_params, ema_stats))
        opt_state = tx.init(params)
        if init is not None and "momentum" in init:
            opt_state = optim.with_momentum_buffer(opt_state, init["momentum"])
        return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                          batch_stats=_per_device(stats, n_devices), ema_params=ema_params,
                          ema_batch_stats=_per_device(ema_stats, n_devices),
                          opt_state=opt_state, queue=queue,
                          queue_ptr=jnp.zeros((), jnp.int32), rng=jax.random.fold_in(root, 2))

    return fresh


def _shardings(mesh: Mesh, abstract: TrainState):
    return jax.tree.map(lambda spec: NamedSharding(mesh, spec), state_specs(abstract))


def create_train_state(config, mesh: Mesh, tx: optax.GradientTransformation,
                       init: dict | None = None) -> TrainState:
    """A fresh state on ``mesh``: seeded init (kaiming fan-out convs, torch-style
    head), EMA = a copy of the online parameters (the official
    ``momentum_update(m=0)``; the momentum encoder's BatchNorm statistics
    start from their own init, which is the same), random unit-norm queue.

    init: optional arrays from a converted official checkpoint
      (``load_init``): params, batch_stats and, when present, ema_params,
      ema_batch_stats, queue, momentum.
    """
    fresh = _fresh_state_fn(config, tx, mesh.devices.size, init)
    # Compiled (and kept in the persistent compilation cache): run eagerly,
    # the initialisers compile one small program per shape, which is slower.
    return jax.jit(fresh, out_shardings=_shardings(mesh, jax.eval_shape(fresh)))()


def abstract_state(config, tx, n_devices: int, mesh: Mesh | None = None) -> TrainState:
    """ShapeDtypeStructs of a state with ``n_devices`` rows of statistics: the
    restore target (sharded over ``mesh``, else on the default device)."""
    abstract = jax.eval_shape(_fresh_state_fn(config, tx, n_devices))
    if mesh is None:
        return abstract
    return jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                        abstract, _shardings(mesh, abstract))


def load_init(config, directory) -> dict:
    """Arrays of a converted official checkpoint (``reiqa convert`` output) for
    ``create_train_state(init=...)``: the model, and its momentum model, queue
    and LARS buffers when the checkpoint has them."""
    from reiqa_jax.checkpoint import load_model, load_training_state, read_header

    header = read_header(directory)
    want = {"depth": config.model.depth, "width": float(config.model.width),
            "feat_dim": config.model.feat_dim}
    got = {k: (float(v) if k == "width" else v) for k, v in header["arch"].items()}
    if got != want:
        raise TrainError(f"init_from {directory} has architecture {header['arch']}, "
                         f"the config asks for {dict(config.model)}")
    model = load_model(directory)
    split = lambda m: [nnx.to_pure_dict(s) for s in nnx.split(m, nnx.Param, nnx.BatchStat)[1:]]
    out = dict(zip(("params", "batch_stats"), split(model)))
    extra = load_training_state(directory)
    if "ema_model" in extra:
        out["ema_params"], out["ema_batch_stats"] = split(extra["ema_model"])
    if "queue" in extra:
        if extra["queue"].shape[0] != config.queue_size:
            raise TrainError(f"init_from queue has {extra['queue'].shape[0]} keys, "
                             f"the config's queue_size is {config.queue_size}")
        out["queue"] = extra["queue"]
    if "opt_momentum" in extra:
        out["momentum"] = extra["opt_momentum"]
    return out


# ----------------------------------------------------------------------------
# the step

def make_train_step(config, mesh: Mesh, tx: optax.GradientTransformation,
                    view_fn: Callable | None = None, *, return_logits: bool = False):
    """The jitted step ``(state, batch, lr) -> (state, metrics)``; ``state`` is donated.

    lr: this step's learning rate (a float32 scalar computed on the host from
    the schedule, so the compiled step does not depend on the schedule).

    batch: global arrays split over the devices: pixels uint8 (B, H, W, 3),
    valid_hw int32 (B, 2), transposed bool (B,), skipped int32 (B,); or, with
    ``view_fn=None`` and a batch of ready crops, ``x1``/``x2`` float32
    (B, P, P, 3) query/key crops (used by the parity tests).
    metrics (replicated scalars): loss, acc (percent), lr (the rate this
    step used), skipped (unreadable images replaced in this batch), finite
    (loss, gradients and updated parameters finite), grad_norm; with ``return_logits`` also
    ``logits`` (all devices' rows, device-major, (rows, 1 + K)).
    """
    dtype = compute_dtype(config.dtype)
    graphdef = train_graphdef(config, dtype)
    shuffle_axes = {"host": ("local",), "global": DATA_AXES, "none": None,
                    "sync": None}[config.shuffle_bn]

    def forward(params, stats, x):
        model = nnx.merge(graphdef, params, stats)
        out = model(x.astype(dtype))
        return out, nnx.to_pure_dict(nnx.state(model, nnx.BatchStat))

    def per_device(state: TrainState, batch: dict, lr):
        device = lax.axis_index(DATA_AXES)
        step_key = jax.random.fold_in(state.rng, state.step)
        view_key, shuffle_key = jax.random.split(step_key)
        if view_fn is None:
            x1, x2 = batch["x1"], batch["x2"]
        else:
            x1, x2 = view_fn(jax.random.fold_in(view_key, device), batch)
        stats = jax.tree.map(lambda a: a[0], state.batch_stats)
        ema_stats = jax.tree.map(lambda a: a[0], state.ema_batch_stats)

        k, all_k, new_ema_stats = moco.shuffle_bn_keys(
            lambda x: forward(state.ema_params, ema_stats, x), x2, shuffle_key,
            shuffle_axes=shuffle_axes, all_axes=DATA_AXES)

        def loss_fn(params):
            q, new_stats = forward(params, stats, x1)
            loss, acc, logits = moco.info_nce(q, k, state.queue, config.temperature)
            return lax.pmean(loss, DATA_AXES), (acc, new_stats, logits)

        (loss, (acc, new_stats, logits)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.params)
        mu, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optim.apply_learning_rate(state.params, mu, lr)
        ema_params = moco.momentum_update(state.ema_params, params, config.ema_momentum)
        queue, queue_ptr = moco.queue_push(state.queue, state.queue_ptr, all_k)
        grad_norm = optax.tree.norm(grads)
        # One flag for "this step left a usable state": loss, gradients and
        # the updated parameters all finite (a huge step can overflow them).
        finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm) & jnp.isfinite(
            optax.tree.norm(params))
        skipped = batch["skipped"].sum() if "skipped" in batch else jnp.zeros((), jnp.int32)
        metrics = dict(loss=loss, acc=lax.pmean(acc, DATA_AXES), lr=lr,
                       skipped=lax.psum(skipped, DATA_AXES),
                       finite=finite, grad_norm=grad_norm)
        if return_logits:
            metrics["logits"] = lax.all_gather(logits, DATA_AXES, tiled=True, to="invarying")
        first = lambda tree: jax.tree.map(lambda a: a[None], tree)
        new_state = TrainState(step=state.step + 1, params=params,
                               batch_stats=first(new_stats), ema_params=ema_params,
                               ema_batch_stats=first(new_ema_stats), opt_state=opt_state,
                               queue=queue, queue_ptr=queue_ptr, rng=state.rng)
        return new_state, metrics

    def step(state, batch, lr):
        specs = state_specs(state)
        batch_specs = jax.tree.map(lambda _: P(DATA_AXES), batch)
        return jax.shard_map(per_device, mesh=mesh, in_specs=(specs, batch_specs, P()),
                             out_specs=(specs, P()))(state, batch, jnp.float32(lr))

    return jax.jit(step, donate_argnums=0)


# ----------------------------------------------------------------------------
# export

def _host(tree):
    """Replicated arrays -> numpy on every process (each holds a full copy)."""
    def one(a):
        local = a.addressable_shards[0].data
        if local.shape != a.shape:
            raise ValueError(f"array of shape {a.shape} is not replicated")
        return np.asarray(local)
    return jax.tree.map(one, tree)


def model_arrays_of(state: TrainState) -> dict:
    """The exported numbers of a state, as numpy on every process (collective):
    params, batch_stats and ema_* (statistics averaged over the device rows),
    queue, momentum (the optimizer's ``mu``), step."""
    stacked = (state.batch_stats, state.ema_batch_stats)
    sharding = state.queue.sharding
    if isinstance(sharding, NamedSharding):
        mean = jax.jit(lambda t: jax.tree.map(lambda a: jnp.mean(a, axis=0), t),
                       out_shardings=NamedSharding(sharding.mesh, P()))
        stats, ema_stats = _host(mean(stacked))
    else:
        stats, ema_stats = jax.tree.map(lambda a: np.mean(np.asarray(a), axis=0), stacked)
    return dict(params=_host(state.params), batch_stats=stats,
                ema_params=_host(state.ema_params), ema_batch_stats=ema_stats,
                queue=_host(state.queue), momentum=_host(optim.momentum_buffer(state.opt_state)),
                step=int(_host(state.step)))


def write_model(arrays: dict, config, directory, *, epoch: int | None,
                meta: dict | None = None) -> str:
    """Writes ``model_arrays_of`` output in the checkpoint format ``reiqa
    extract`` and ``reiqa convert --to-torch`` read: the online model (its
    BatchNorm statistics averaged over devices; the official keeps GPU 0's),
    the momentum model, the queue and the optimizer's momentum buffers. One
    process."""
    from reiqa_jax.checkpoint import build_model, save_model
    from reiqa_jax.torch_layout import flatten

    arch = {"depth": config.model.depth, "width": config.model.width,
            "feat_dim": config.model.feat_dim}
    model = build_model(arch, {"params": flatten(arrays["params"]),
                               "batch_stats": flatten(arrays["batch_stats"])})
    ema = build_model(arch, {"params": flatten(arrays["ema_params"]),
                             "batch_stats": flatten(arrays["ema_batch_stats"])})
    info = {"source": "reiqa train", "branch": config.branch, "step": arrays["step"],
            "batch_stats": "online statistics averaged over devices"}
    info.update(meta or {})
    return save_model(directory, model, ema_model=ema, queue=arrays["queue"],
                      opt_momentum=arrays["momentum"], epoch=epoch, meta=info, overwrite=True)


def export_run(workdir, out, *, step: int | None = None) -> str:
    """``reiqa export``: checkpoint ``step`` (default: the newest) of a run -> ``out``."""
    import json

    import ml_collections

    from reiqa_jax import workdir as wd

    workdir = Path(workdir)
    try:
        config = ml_collections.ConfigDict(json.loads((workdir / "config.json").read_text()))
    except (OSError, ValueError) as exc:
        raise TrainError(f"{workdir} is not a training workdir (config.json: {exc})") from None
    manager = wd.checkpoint_manager(workdir, keep=config.keep_checkpoints, read_only=True)
    try:
        step = manager.latest_step() if step is None else step
        if step is None or step not in manager.all_steps():
            raise TrainError(f"no checkpoint {'' if step is None else step} in "
                             f"{workdir / 'checkpoints'}")
        meta = wd.read_meta(manager, step)
        tx = optim.make_optimizer(config)
        target = abstract_state(config, tx, int(meta["devices"]))
        tree, meta = wd.restore_checkpoint(manager, step, _state_tree(target))
    finally:
        manager.close()
    arrays = model_arrays_of(TrainState(**tree))
    return write_model(arrays, config, out, epoch=int(meta["step"]) // int(meta["steps_per_epoch"]),
                       meta={"workdir": str(workdir.absolute())})


# ----------------------------------------------------------------------------
# the loop

class NonFiniteLoss(TrainError):
    pass


class StopRequest:
    """SIGTERM / SIGINT -> checkpoint at the next step boundary, then stop.

    One process: our own signal handlers. Several: JAX's preemption sync
    manager (it catches SIGTERM on any process and makes all of them agree on
    the step to stop at, so their collective checkpoint saves match).
    """

    def __init__(self):
        self.signal: int | None = None
        self._multi = jax.process_count() > 1
        self._previous = {}
        if not self._multi:
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, frame):
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        self.signal = signum

    def __call__(self, step: int) -> bool:
        if self._multi:
            from jax.experimental import multihost_utils

            if multihost_utils.reached_preemption_sync_point(step):
                self.signal = signal.SIGTERM
        return self.signal is not None

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _validate(config) -> None:
    if config.shuffle_bn not in SHUFFLE_BN:
        raise TrainError(f"shuffle_bn must be one of {SHUFFLE_BN}, got {config.shuffle_bn!r}")
    if config.crop_swap not in ("official", "clean", "none"):
        raise TrainError(f"crop_swap must be 'official', 'clean' or 'none', "
                         f"got {config.crop_swap!r}")
    for key in ("batch_size", "log_every_steps", "checkpoint_every_steps", "queue_size"):
        if config[key] < 1:
            raise TrainError(f"{key} must be at least 1, got {config[key]}")
    if config.num_steps < 0 or (config.num_steps == 0 and config.num_epochs < 1):
        raise TrainError("set num_epochs >= 1 or num_steps >= 1")
    compute_dtype(config.dtype)


def _training_images(config, workdir: Path) -> list[str]:
    from reiqa_jax.data import sources

    if config.data == "skimage":  # the smoke config: photos bundled with scikit-image
        from reiqa_jax.data.sample_photos import write_sample_photos

        folder = workdir / "photos"
        if jax.process_index() == 0:
            write_sample_photos(folder)
        if jax.process_count() > 1:
            from jax.experimental import multihost_utils

            multihost_utils.sync_global_devices("reiqa-sample-photos")
        return sources.training_images(str(folder))
    return sources.training_images(config.data)


@dataclasses.dataclass
class Plan:
    """The run's fixed numbers, from the config, the image list and the devices."""

    n_images: int
    devices: int
    global_batch: int
    local_batch: int
    steps_per_epoch: int
    total_steps: int
    pairs_per_step: int

    def epoch(self, completed: int) -> int:
        """1-based epoch of the update that made ``completed`` updates."""
        return (completed - 1) // self.steps_per_epoch + 1


def make_plan(config, n_images: int, mesh: Mesh, steps_per_epoch: int | None = None) -> Plan:
    """steps_per_epoch: the input pipeline's (canvas classes fill their last
    steps separately); default ceil(n_images / global batch)."""
    devices = mesh.devices.size
    per_device = config.batch_size // devices
    if per_device < 1:
        raise TrainError(f"batch_size {config.batch_size} is smaller than the {devices} devices")
    global_batch = per_device * devices
    steps_per_epoch = steps_per_epoch or -(-n_images // global_batch)
    total = config.num_steps or config.num_epochs * steps_per_epoch
    pairs = global_batch * pairs_per_image(config)
    if pairs > config.queue_size:
        raise TrainError(f"{pairs} keys per step do not fit queue_size {config.queue_size}")
    return Plan(n_images=n_images, devices=devices, global_batch=global_batch,
                local_batch=per_device * jax.local_device_count(),
                steps_per_epoch=steps_per_epoch, total_steps=total, pairs_per_step=pairs)


def _state_tree(state: TrainState) -> dict:
    return {f.name: getattr(state, f.name) for f in dataclasses.fields(state)}


def train_and_evaluate(config, workdir) -> int:
    """Runs (or continues) the training described by ``config`` in ``workdir``.

    Returns the exit status: 0 when the run finished or stopped on a signal
    with a checkpoint, 1 on a non-finite loss. Raises TrainError /
    WorkdirError / DataError (one-line messages) for problems found up front.
    """
    from reiqa_jax import workdir as wd
    from reiqa_jax.data.device import DevicePrefetcher
    from reiqa_jax.data.pipeline import make_input_spec, make_local_batches

    workdir = wd.ensure_writable(Path(workdir))
    _validate(config)
    paths = _training_images(config, workdir)
    mesh = make_mesh()
    plan = make_plan(config, len(paths), mesh)
    spec, classes = make_input_spec(config, paths, global_batch=plan.global_batch,
                                    local_batch=plan.local_batch,
                                    process_offset=jax.process_index() * plan.local_batch)
    plan = make_plan(config, len(paths), mesh, steps_per_epoch=spec.steps_per_epoch)
    schedule = optim.make_schedule(config, steps_per_epoch=plan.steps_per_epoch,
                                   total_steps=plan.total_steps)
    tx = optim.make_optimizer(config)
    wd.save_run_info(workdir, config)
    if jax.process_index() == 0:
        print(f"reiqa train: {plan.n_images} images, {plan.devices} device(s) on "
              f"{jax.process_count()} process(es), {plan.global_batch} images "
              f"({plan.pairs_per_step} pairs) per step, {plan.steps_per_epoch} steps per epoch, "
              f"{plan.total_steps} steps", flush=True)
        if classes is not None:
            print(f"reiqa train: whole pictures in {len(classes.canvases)} canvas shape(s) "
                  + ", ".join(f"{h}x{w} ({n})" for (h, w), n in
                              zip(classes.canvases, classes.counts()))
                  + (f"; {classes.windowed} picture(s) larger than {config.canvas.max_side} px"
                     f" cut to a window" if classes.windowed else ""), flush=True)
        if plan.global_batch != config.batch_size:
            print(f"reiqa train: batch_size {config.batch_size} is not a multiple of "
                  f"{plan.devices} devices; using {plan.global_batch} (as the official "
                  f"int(batch / world_size) per GPU)", file=sys.stderr, flush=True)

    manager = wd.checkpoint_manager(workdir, keep=config.keep_checkpoints)
    latest = manager.latest_step()
    skipped_total = 0
    if latest is not None:
        target = abstract_state(config, tx, plan.devices, mesh)
        meta = wd.read_meta(manager, latest)
        if meta.get("devices") != plan.devices:
            raise TrainError(f"the checkpoint at step {latest} was written with "
                             f"{meta.get('devices')} devices, this run has {plan.devices} "
                             f"(per-device BatchNorm statistics); run on as many devices")
        tree, meta = wd.restore_checkpoint(manager, latest, _state_tree(target))
        state = TrainState(**tree)
        skipped_total = int(meta.get("skipped_images", 0))
        if jax.process_index() == 0:
            print(f"reiqa train: continuing from the checkpoint at step {latest}", flush=True)
    else:
        init = load_init(config, config.init_from) if config.init_from else None
        state = create_train_state(config, mesh, tx, init)
    start = int(_host(state.step))

    batches = make_local_batches(spec, start, plan.total_steps, workers=config.input.workers,
                                 threads=config.input.threads)
    prefetch = DevicePrefetcher(batches, NamedSharding(mesh, P(DATA_AXES)),
                                size=config.input.prefetch)
    train_step = make_train_step(config, mesh, tx, make_view_fn(config))
    log = wd.MetricLog(workdir, resume_step=start, total_steps=plan.total_steps)
    stop = StopRequest()
    window = {"time": time.perf_counter(), "wait": 0.0, "steps": 0}

    def save(completed: int) -> None:
        meta = {"step": completed, "epoch": plan.epoch(completed), "devices": plan.devices,
                "steps_per_epoch": plan.steps_per_epoch, "skipped_images": skipped_total,
                "n_images": plan.n_images}
        wd.save_checkpoint(manager, completed, _state_tree(state), meta)

    def account(completed: int, metrics) -> None:
        nonlocal skipped_total
        m = jax.device_get(metrics)
        if not bool(m["finite"]):
            last = manager.latest_step()
            raise NonFiniteLoss(
                f"loss or weights are not finite at step {completed} (epoch "
                f"{plan.epoch(completed)}, loss {float(m['loss'])}); stopped; the last good "
                f"checkpoint is " + (f"step {last} in {workdir / 'checkpoints'}"
                                     if last is not None else "none (no checkpoint yet)"))
        skipped_total += int(m["skipped"])
        window["steps"] += 1
        if completed % config.log_every_steps and completed not in (1, plan.total_steps):
            return
        now = time.perf_counter()
        elapsed = max(now - window["time"], 1e-9)
        log.write({"step": completed, "epoch": plan.epoch(completed),
                   "loss": float(m["loss"]), "acc": float(m["acc"]), "lr": float(m["lr"]),
                   "pairs_per_sec": window["steps"] * plan.pairs_per_step / elapsed,
                   "data_wait_frac": min(1.0, (prefetch.wait_seconds - window["wait"]) / elapsed),
                   "skipped_images": skipped_total, "grad_norm": float(m["grad_norm"])})
        window.update(time=now, wait=prefetch.wait_seconds, steps=0)

    status, stopped, completed = 0, False, start
    try:
        pending = None
        for index in range(start, plan.total_steps):
            try:
                batch = next(prefetch)
            except Exception as exc:  # noqa: BLE001 - grain re-raises workers' errors as is
                raise TrainError(f"input pipeline failed before step {index + 1}: "
                                 f"{one_line(exc)}") from None
            state, metrics = train_step(state, batch, np.float32(schedule(index)))
            if pending is not None:  # the previous step's numbers, while this one runs
                account(*pending)
            completed, pending = index + 1, (index + 1, metrics)
            stopped = stop(completed)
            if (stopped or completed % config.checkpoint_every_steps == 0
                    or completed % plan.steps_per_epoch == 0 or completed == plan.total_steps):
                account(*pending)  # never checkpoint a state a non-finite step made
                pending = None
                save(completed)
            if stopped:
                break
        if pending is not None:
            account(*pending)
    except NonFiniteLoss as exc:
        status = error("reiqa train", str(exc), status=1)
    finally:
        stop.restore()
        prefetch.close()
        manager.wait_until_finished()
        log.close()
    if status == 0 and stopped:
        name = signal.Signals(stop.signal).name
        if jax.process_index() == 0:
            print(f"reiqa train: {name}: saved the checkpoint at step {completed}; run the same "
                  f"command to continue", file=sys.stderr, flush=True)
        manager.close()
        return 130 if stop.signal == signal.SIGINT else 0
    if status == 0:
        arrays = model_arrays_of(state)
        if jax.process_index() == 0:
            out = write_model(arrays, config, workdir / "model",
                              epoch=completed // plan.steps_per_epoch,
                              meta={"workdir": str(workdir)})
            print(f"reiqa train: finished {completed} steps; model -> {out}", flush=True)
    manager.close()
    return status
