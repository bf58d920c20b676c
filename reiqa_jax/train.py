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

import concurrent.futures
import contextlib
import dataclasses
import itertools
import os
import signal
import sys
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
from reiqa_jax.errors import ReiqaError, error, one_line
from reiqa_jax.models import ReIQAModel

DATA_AXES = ("host", "local")


class TrainError(ReiqaError, RuntimeError):
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


def make_view_fn(config) -> Callable:
    """(key, local batch) -> (queries, keys): (n, P, P, 3) float32 crops, per device."""
    if config.branch == "quality":
        from reiqa_jax.augment.op_sets import op_set
        from reiqa_jax.augment.quality_views import make_quality_views

        qcfg = quality_view_config(config)
        ops = op_set(config.views.ops)  # a name in reiqa_jax.augment.op_sets

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


def check_init_from(config, directory) -> None:
    """``directory`` (``init_from``) is a checkpoint of the config's
    architecture: its header only, cheap, before anything is computed."""
    from reiqa_jax.checkpoint import read_header

    header = read_header(directory)
    want = {"depth": config.model.depth, "width": float(config.model.width),
            "feat_dim": config.model.feat_dim}
    got = {k: (float(v) if k == "width" else v) for k, v in header["arch"].items()}
    if got != want:
        raise TrainError(f"init_from {directory} has architecture {header['arch']}, "
                         f"the config asks for {dict(config.model)}")


def load_init(config, directory) -> dict:
    """Arrays of a converted official checkpoint (``reiqa convert`` output) for
    ``create_train_state(init=...)``: the model, and its momentum model, queue
    and LARS buffers when the checkpoint has them."""
    from reiqa_jax.checkpoint import load_model, load_training_state

    check_init_from(config, directory)
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

def batch_negatives(config, n_rows: int):
    """``moco.info_nce``'s ``batch_negatives`` for ``config.negatives`` on a
    device's ``n_rows`` queries: False (official), True or a static mask."""
    if config.negatives == "queue+batch":
        return True
    masks = {"queue+pristine": moco.pristine_negatives, "queue+siblings": moco.sibling_negatives}
    if config.negatives in masks:
        return masks[config.negatives](n_rows, config.views.n_aug + 1, config.views.n_scale)
    return False


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
    ``logits`` (all devices' rows, device-major, (rows, 1 + K); with
    ``negatives: queue+batch``, ``queue+pristine`` or ``queue+siblings`` N more columns, a device's
    N batch keys, -inf where a key is not a negative).
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

        extra = batch_negatives(config, x1.shape[0])

        def loss_fn(params):
            q, new_stats = forward(params, stats, x1)
            loss, acc, logits = moco.info_nce(q, k, state.queue, config.temperature,
                                              batch_negatives=extra)
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


# ----------------------------------------------------------------------------
# the loop

class NonFiniteLoss(TrainError):
    """A non-finite loss or weight: the run failed on the way (exit status 1)."""

    status = 1


class StopRequest:
    """SIGINT / SIGTERM -> a checkpoint at the next step boundary, then stop.

    The signals are ``interrupts.StopSignals``' (the first one is recorded,
    a second one stops at once). One process stops when it has one. Several
    must agree on the step, because saving a checkpoint is collective: JAX's
    preemption service takes SIGTERM on any process (it installs its own
    handler when the run joins the cluster) and ``reached_preemption_sync_point``
    names the same step on every process; a Ctrl-C of one process is handed
    to it as a SIGTERM of that process.
    """

    def __init__(self, signals):
        self.signals = signals
        self.multi = jax.process_count() > 1
        self._forwarded = False

    def __call__(self, step: int) -> bool:
        if not self.multi:
            return self.signals.received is not None
        from jax.experimental import multihost_utils

        if self.signals.received is not None and not self._forwarded:
            self._forwarded = True
            os.kill(os.getpid(), signal.SIGTERM)
        return multihost_utils.reached_preemption_sync_point(step)

    def during_start_up(self) -> None:
        """Raises StoppedDuringStartUp when a signal came (one process; those of
        a multi-process run must stop together, in the loop)."""
        if not self.multi and self.signals.received is not None:
            raise StoppedDuringStartUp

    @property
    def exit_status(self) -> int:
        return self.signals.exit_status if self.signals.received else 128 + signal.SIGTERM

    @property
    def name(self) -> str:
        return self.signals.name or "SIGTERM"


STOPPING = "stopping before the next step, with a checkpoint if steps have run"


class StoppedDuringStartUp(Exception):
    """A signal came before the first step: stop with nothing written."""


@dataclasses.dataclass(frozen=True)
class TrainingImages:
    """The image list (absolute paths, the data order's input) and its fingerprint."""

    paths: list[str]
    fingerprint: str


def training_images(config) -> TrainingImages:
    """The training images, listed and checked before anything is written."""
    from reiqa_jax.data import sources

    paths = sources.training_images(config.data)
    return TrainingImages(paths, sources.fingerprint(paths, sources.fingerprint_root(config.data)))


def report_small_pictures(config, paths: list[str], classes) -> None:
    """One line on stderr (process 0) naming the training pictures that are
    smaller than the largest scale-1 crop region, so that their crops hold
    zero padding, as the official CenterCrop's do, and those that cannot be
    used at all (unreadable header, a side under ``MIN_SIDE``: skipped when
    drawn). ``classes``: the quality pipeline's canvas classes, whose sizes
    come from the file headers; None (content branch) reports nothing."""
    if classes is None or jax.process_index() != 0:
        return
    from reiqa_jax.augment.crops import max_reach

    region = config.views.patch_size + max_reach(config.views.patch_size)
    small = [(p, hw) for p, hw in zip(paths, classes.sizes) if hw is not None and min(hw) < region]
    if small:
        examples = ", ".join(f"{Path(p).name} {hw[1]}x{hw[0]}" for p, hw in small[:3])
        print(f"reiqa train: {len(small)} of the {len(paths)} training images are under the "
              f"{region}-pixel crop region on a side, so their crops hold zero padding, as "
              f"the official CenterCrop's (e.g. {examples})", file=sys.stderr, flush=True)
    if classes.unusable:
        from reiqa_jax.data.pipeline import is_usable

        unusable = [Path(p).name for p, hw in zip(paths, classes.sizes) if not is_usable(hw)]
        print(f"reiqa train: {classes.unusable} of the {len(paths)} training images have an "
              f"unreadable header or a side under the size the distortions need; they are "
              f"skipped when drawn (e.g. {', '.join(unusable[:3])})", file=sys.stderr,
              flush=True)


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

    def announce(self, config, classes=None) -> None:
        """The plan on stdout (process 0): its numbers, the canvas classes of whole
        pictures (``data.canvases``), and a batch the devices cut down."""
        if jax.process_index() != 0:
            return
        print(f"reiqa train: {self.n_images} images, {self.devices} device(s) on "
              f"{jax.process_count()} process(es), {self.global_batch} images "
              f"({self.pairs_per_step} pairs) per step, {self.steps_per_epoch} steps per "
              f"epoch, {self.total_steps} steps", flush=True)
        if classes is not None:
            print(f"reiqa train: whole pictures in {len(classes.canvases)} canvas shape(s) "
                  + ", ".join(f"{h}x{w} ({n})" for (h, w), n in
                              zip(classes.canvases, classes.counts()))
                  + (f"; {classes.windowed} picture(s) larger than {config.canvas.max_side} px"
                     f" cut to a window" if classes.windowed else ""), flush=True)
        if self.global_batch != config.batch_size:
            print(f"reiqa train: batch_size {config.batch_size} is not a multiple of "
                  f"{self.devices} devices; using {self.global_batch} (as the official "
                  f"int(batch / world_size) per GPU)", file=sys.stderr, flush=True)

    def checkpoint_due(self, step: int, every: int) -> bool:
        return step % every == 0 or step % self.steps_per_epoch == 0 or step == self.total_steps

    def log_due(self, step: int, every: int) -> bool:
        return step % every == 0 or step in (1, self.total_steps)


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
    return Plan(n_images=n_images, devices=devices, global_batch=global_batch,
                local_batch=per_device * jax.local_device_count(),
                steps_per_epoch=steps_per_epoch, total_steps=total,
                pairs_per_step=global_batch * pairs_per_image(config))


def _input_spec(config, paths: list[str], sizes: Plan):
    """(InputSpec, canvas classes or None) of this process: which picture
    feeds which slot of which step (``data.pipeline.make_input_spec``; the
    batch sizes are those of ``sizes``, the epoch length is the pipeline's)."""
    from reiqa_jax.data.pipeline import make_input_spec

    return make_input_spec(config, paths, global_batch=sizes.global_batch,
                           local_batch=sizes.local_batch,
                           process_offset=jax.process_index() * sizes.local_batch)


def state_tree(state: TrainState) -> dict:
    """The state as a dict of its fields (what checkpoints save and restore)."""
    return {f.name: getattr(state, f.name) for f in dataclasses.fields(state)}


def _initial_state(config, mesh, tx, plan: Plan, manager, latest: int | None):
    """(state, unreadable images so far): the newest checkpoint's, or a fresh state."""
    from reiqa_jax.workdir import read_meta, restore_checkpoint

    if latest is None:
        init = load_init(config, config.init_from) if config.init_from else None
        return create_train_state(config, mesh, tx, init), 0
    meta = read_meta(manager, latest)
    if meta.get("devices") != plan.devices:
        raise TrainError(f"the checkpoint at step {latest} was written with "
                         f"{meta.get('devices')} devices, this run has {plan.devices} "
                         f"(per-device BatchNorm statistics); run on as many devices")
    target = abstract_state(config, tx, plan.devices, mesh)
    tree, meta = restore_checkpoint(manager, latest, state_tree(target))
    if jax.process_index() == 0:
        print(f"reiqa train: continuing from the checkpoint at step {latest}", flush=True)
    return TrainState(**tree), int(meta.get("skipped_images", 0))


def _batches(prefetch, first_step: int, stop: StopRequest):
    """The prefetcher's global batches; a failure of the input pipeline as one
    line, or the end of the batches when a signal came first (a terminal's
    Ctrl-C reaches the pipeline's worker processes too)."""
    step = first_step
    while True:
        try:
            batch = next(prefetch)
        except StopIteration:
            return
        except Exception as exc:  # noqa: BLE001 - grain re-raises workers' errors as is
            if stop.signals.received is not None:
                return
            raise TrainError(f"input pipeline failed before step {step}: "
                             f"{one_line(exc)}") from None
        yield batch
        step += 1


def _input(config, spec, start: int, total_steps: int, mesh: Mesh):
    """This process's batches of steps start + 1 ... as global arrays: decoded
    ahead by grain (``spec``: ``data.pipeline.InputSpec``), put on the devices
    ahead by a DevicePrefetcher."""
    from reiqa_jax.data.device import DevicePrefetcher
    from reiqa_jax.data.pipeline import make_local_batches

    batches = make_local_batches(spec, start, total_steps, workers=config.input.workers,
                                 threads=config.input.threads)
    with _interrupts_left_to_this_thread(config.input.workers):
        return DevicePrefetcher(batches, NamedSharding(mesh, P(DATA_AXES)),
                                size=config.input.prefetch)


def _start_resource_tracker() -> None:
    """multiprocessing's resource tracker, without its warning at exit about
    the shared-memory batches grain's workers leave to it: it unlinks them
    (nothing leaks), and the warning only added lines to every run's end."""
    from multiprocessing import resource_tracker

    previous = os.environ.get("PYTHONWARNINGS")
    quiet = "ignore::UserWarning:multiprocessing.resource_tracker"
    os.environ["PYTHONWARNINGS"] = f"{previous},{quiet}" if previous else quiet
    try:  # the tracker is a process of its own: it reads the variable at its start
        resource_tracker.ensure_running()
    finally:
        if previous is None:
            del os.environ["PYTHONWARNINGS"]
        else:
            os.environ["PYTHONWARNINGS"] = previous


@contextlib.contextmanager
def _interrupts_left_to_this_thread(workers: int):
    """Threads started inside block SIGINT, and so do the input worker
    processes they spawn (a mask is inherited, through exec too): a
    terminal's Ctrl-C, sent to every process of the group, is then this
    thread's alone, which stops the run and closes the workers, instead of
    a KeyboardInterrupt in each worker. multiprocessing's resource tracker
    unblocks SIGINT in the thread that first starts it, so it is started
    here, first."""
    if workers > 0:
        _start_resource_tracker()
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _checkpoint_meta(plan: Plan, step: int, skipped_images: int) -> dict:
    return {"step": step, "epoch": plan.epoch(step), "devices": plan.devices,
            "steps_per_epoch": plan.steps_per_epoch, "n_images": plan.n_images,
            "skipped_images": skipped_images}


def train_and_evaluate(config, workdir, stop=None) -> int:
    """Runs (or continues) the training described by ``config`` in ``workdir``.

    stop: the command's ``interrupts.StopSignals`` (entered before JAX is
    imported, so a Ctrl-C during start-up is recorded, not raised); without
    one, signals are taken here for the duration of the run.

    Returns the exit status: 0 when the run finished, 128 + the signal
    number when a signal stopped it (after a checkpoint, or before the
    first step with nothing written), 1 on a non-finite loss. Raises
    ReiqaError subclasses (one-line messages) for what is found up front:
    the config (``config_schema``), the data, the workdir (another run
    writing there, or a run made with another config), ``init_from``.
    """
    from reiqa_jax.interrupts import StopSignals

    workdir = Path(workdir).expanduser().absolute()
    with contextlib.ExitStack() as signals:
        stop = StopRequest(stop or signals.enter_context(StopSignals(
            "reiqa train", STOPPING, verbose=sys.stderr.isatty())))
        try:
            return _train(config, workdir, stop)
        except StoppedDuringStartUp:
            print(f"reiqa train: {stop.name} during start-up: stopped before the first step, "
                  f"nothing saved", file=sys.stderr, flush=True)
            return stop.exit_status


def _train(config, workdir: Path, stop: StopRequest) -> int:
    from reiqa_jax.config_schema import check
    from reiqa_jax.workdir import (MetricLog, Progress, RunLock, checkpoint_manager,
                                   ensure_writable, resume_record, save_checkpoint,
                                   save_run_info)

    config = check(config)
    images = training_images(config)
    mesh = make_mesh()
    sizes = make_plan(config, len(images.paths), mesh)  # batch sizes, checked up front
    if config.init_from:
        check_init_from(config, config.init_from)
    stop.during_start_up()

    with contextlib.ExitStack() as run:
        run.enter_context(RunLock(ensure_writable(workdir)))
        spec, classes = _input_spec(config, images.paths, sizes)
        plan = make_plan(config, len(images.paths), mesh, steps_per_epoch=spec.steps_per_epoch)
        schedule = optim.make_schedule(config, steps_per_epoch=plan.steps_per_epoch,
                                       total_steps=plan.total_steps)
        tx = optim.make_optimizer(config)
        manager = checkpoint_manager(workdir, keep=config.keep_checkpoints)
        run.callback(manager.close)
        latest = manager.latest_step()
        record = resume_record(workdir, config, images=len(images.paths),
                               images_sha256=images.fingerprint, checkpoint_step=latest,
                               total_steps=plan.total_steps)
        if latest is None:
            report_small_pictures(config, images.paths, classes)
        plan.announce(config, classes)
        state, skipped = _initial_state(config, mesh, tx, plan, manager, latest)
        start = int(_host(state.step))
        stop.during_start_up()

        prefetch = _input(config, spec, start, plan.total_steps, mesh)
        run.callback(prefetch.close)
        batches = _batches(prefetch, start + 1, stop)
        if start < plan.total_steps:  # compiled before the first step: see _compile
            first = next(batches, None)
            if first is None:
                stop.during_start_up()
                raise TrainError("the input pipeline stopped before the first step")
            train_step = _StepPrograms(make_train_step(config, mesh, tx, make_view_fn(config)))
            train_step.compile(state, first, np.float32(schedule(start)))
            batches = itertools.chain([first], batches)
        stop.during_start_up()
        save_run_info(workdir, config, record)  # the start has succeeded

        log = MetricLog(workdir, resume_step=start, total_steps=plan.total_steps)
        run.callback(log.close)
        progress = Progress(pairs_per_step=plan.pairs_per_step, skipped_images=skipped,
                            wait_seconds=lambda: prefetch.wait_seconds)
        pending = None  # the last step's metrics, read while the next step runs
        step = start
        try:
            for step, batch in zip(range(start + 1, plan.total_steps + 1), batches):
                state, metrics = train_step(state, batch, np.float32(schedule(step - 1)))
                if pending is not None:
                    _account(*pending, progress, log, plan, config)
                pending = (step, metrics)
                stopping = stop(step)
                if stopping or plan.checkpoint_due(step, config.checkpoint_every_steps):
                    # never checkpoint a state that a non-finite step made
                    _account(*pending, progress, log, plan, config)
                    pending = None
                    save_checkpoint(manager, step, state_tree(state),
                                    _checkpoint_meta(plan, step, progress.skipped_images))
                if stopping:
                    break
            if pending is not None:
                _account(*pending, progress, log, plan, config)
        except NonFiniteLoss as exc:
            last = manager.latest_step()
            return error("reiqa train", f"{exc}; stopped; the last good checkpoint is " + (
                f"step {last} in {workdir / 'checkpoints'}" if last is not None
                else "none (no checkpoint yet)"), status=exc.status)
        finally:
            manager.wait_until_finished()
        if step < plan.total_steps:  # a signal stopped the run
            if manager.latest_step() != step:  # (its input workers had gone first)
                save_checkpoint(manager, step, state_tree(state),
                                _checkpoint_meta(plan, step, progress.skipped_images))
                manager.wait_until_finished()
            if jax.process_index() == 0:
                print(f"reiqa train: {stop.name}: saved the checkpoint at step {step}; run the "
                      f"same command to continue", file=sys.stderr, flush=True)
            return stop.exit_status

        arrays = model_arrays_of(state)
        if jax.process_index() == 0:
            out = write_model(arrays, config, workdir / "model",
                              epoch=step // plan.steps_per_epoch,
                              meta={"workdir": str(workdir)})
            print(f"reiqa train: finished {step} steps; model -> {out}", flush=True)
        return 0


class _StepPrograms:
    """The train step compiled once per batch shape: whole pictures come in
    canvas classes of their own sizes (``data/canvases.py``), each a program
    of its own. Every compilation runs through ``_compile``."""

    def __init__(self, jitted):
        self._jitted = jitted
        self._programs = {}

    @staticmethod
    def _key(batch):
        leaves, tree = jax.tree.flatten(batch)  # the tree too: valid_hw may be absent
        return tree, tuple((x.shape, x.dtype) for x in leaves)

    def compile(self, state, batch, lr):
        key = self._key(batch)
        if key not in self._programs:
            self._programs[key] = _compile(self._jitted.lower(state, batch, lr))
        return self._programs[key]

    def __call__(self, state, batch, lr):
        return self.compile(state, batch, lr)(state, batch, lr)


def _compile(lowered):
    """``lowered.compile()`` in a worker thread. A compilation can take
    minutes and signal handlers run only in the main thread, between Python
    bytecodes; waiting on the worker keeps them running, so a Ctrl-C is
    answered at once (a second one exits, ``StopSignals``) and the first
    stops the run before its first step."""
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="compile") as pool:
        return pool.submit(lowered.compile).result()


def _account(step: int, metrics, progress, log, plan: Plan, config) -> None:
    """A finished step's numbers: stop on a non-finite one, count, log when due."""
    m = jax.device_get(metrics)
    if not bool(m["finite"]):
        raise NonFiniteLoss(f"loss or weights are not finite at step {step} "
                            f"(epoch {plan.epoch(step)}, loss {float(m['loss'])})")
    progress.count(skipped=int(m["skipped"]))
    if plan.log_due(step, config.log_every_steps):
        log.write(progress.record(step, plan.epoch(step), m))
