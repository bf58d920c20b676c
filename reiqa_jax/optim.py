"""Optimizers and learning-rate schedules of the official recipes.

LARS (``moco/optimizer.py`` of the official code), per parameter ``p`` with
gradient ``g``; parameters with ``ndim > 1`` (conv and linear kernels) get
weight decay and the trust ratio, the others (BatchNorm scale/bias, linear
biases) neither::

    dp = g + wd * p                                   (ndim > 1)
    dp = dp * tc * |p| / |dp|   if |p| > 0 and |dp| > 0 (ndim > 1)
    mu = momentum * mu + dp
    p  = p - lr * mu

``lars`` is the optax chain of the first three lines: its update *is* the
buffer ``mu``, and ``apply_learning_rate`` does the last line. The rate is
applied after the momentum, as the official code does, so it can change
every step (warmup, cosine) without touching the buffer; ``optax.lars``
folds the rate into the buffer instead, which differs whenever the rate
changes. The ``trace`` state is the official ``mu`` (what ``checkpoint.py``
stores as ``opt_momentum``). The trainer passes the rate of each step into
the jitted step as a number, so the compiled step does not depend on the
schedule.

``sgd`` is ``torch.optim.SGD(momentum, weight_decay)`` (the MoCo-v2 content
recipe): decay on every parameter, ``buf = m * buf + g + wd * p``, then
``p -= lr * buf`` the same way.

Schedules (``make_schedule``, plain numpy, evaluated on the host), both
PyContrast's (``learning/base_trainer.py``: ``adjust_learning_rate`` sets the
rate at the start of each epoch, ``warmup_learning_rate`` overrides it per
iteration during the warmup epochs):
``'official'`` is PyContrast with ``--cosine`` (the Re-IQA quality command):
per *epoch* cosine down to ``lr * lr_decay_rate**3``, warmup up to the cosine
value at ``warmup_epochs``; ``'step'`` is PyContrast without ``--cosine``
(its default, what the content encoder was trained with): the rate times
``lr_decay_rate`` for every epoch of ``lr_decay_epochs`` already passed
(default 120, 160), warmup up to ``lr``. ``'cosine'`` is ours: a per-step
linear warmup then a per-step cosine.
"""
from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

Schedule = Callable[[int], float]


def kernel_mask(params):
    """True for parameters with ndim > 1 (kernels), False for scales/biases."""
    return jax.tree.map(lambda p: jnp.ndim(p) > 1, params)


def lars(*, momentum: float = 0.9, weight_decay: float = 1e-4,
         trust_coefficient: float = 1e-3) -> optax.GradientTransformation:
    """The official LARS up to the momentum buffer (see the module docstring):
    its update is ``mu``; finish with ``apply_learning_rate``.

    State: ``named_chain`` state whose ``'momentum'`` entry is
    ``optax.TraceState(trace=mu)``, ``mu`` shaped like the params.
    """
    return optax.named_chain(
        ("weight_decay", optax.add_decayed_weights(weight_decay, mask=kernel_mask)),
        ("trust_ratio", optax.masked(
            optax.scale_by_trust_ratio(trust_coefficient=trust_coefficient), kernel_mask)),
        ("momentum", optax.trace(decay=momentum)),
    )


def sgd(*, momentum: float = 0.9, weight_decay: float = 1e-4) -> optax.GradientTransformation:
    """``torch.optim.SGD(momentum, weight_decay)`` up to its momentum buffer;
    same state layout as ``lars``."""
    return optax.named_chain(
        ("weight_decay", optax.add_decayed_weights(weight_decay)),
        ("momentum", optax.trace(decay=momentum)),
    )


def apply_learning_rate(params, mu, learning_rate):
    """``p - lr * mu`` for every parameter (the last line of LARS / SGD)."""
    return jax.tree.map(lambda p, m: p - learning_rate * m, params, mu)


def momentum_buffer(opt_state):
    """The ``mu`` buffers (params-shaped tree) of a ``lars`` / ``sgd`` state."""
    return opt_state["momentum"].trace


def with_momentum_buffer(opt_state, mu):
    """``opt_state`` with its ``mu`` buffers replaced (e.g. from a converted
    official checkpoint)."""
    state = type(opt_state)(opt_state)  # named_chain state: an OrderedDict
    state["momentum"] = optax.TraceState(trace=mu)
    return state


def _cosine(value, progress, floor):
    return floor + (value - floor) * (1.0 + np.cos(np.pi * progress)) / 2.0


def official_schedule(base_lr: float, *, steps_per_epoch: int, num_epochs: int,
                      warmup_epochs: int, warmup_from: float,
                      decay_rate: float = 0.1) -> Schedule:
    """PyContrast's schedule as a function of the 0-based update index.

    epoch e = step // steps_per_epoch + 1, idx = step % steps_per_epoch;
    eta_min = base_lr * decay_rate**3;
    cosine(e) = eta_min + (base_lr - eta_min) (1 + cos(pi e / num_epochs)) / 2;
    for e <= warmup_epochs (when > 0): warmup_from + p (cosine(warmup_epochs)
    - warmup_from) with p = (idx + (e - 1) steps_per_epoch) /
    (warmup_epochs steps_per_epoch); else cosine(e). Works on ints and
    numpy arrays of steps.
    """
    eta_min = base_lr * decay_rate ** 3
    warmup_to = eta_min + (base_lr - eta_min) * (
        1 + math.cos(math.pi * warmup_epochs / num_epochs)) / 2 if warmup_epochs else base_lr

    def schedule(step):
        step = np.asarray(step, np.int64)
        epoch = step // steps_per_epoch + 1
        lr = _cosine(base_lr, epoch / num_epochs, eta_min)
        if warmup_epochs > 0:
            p = step / (warmup_epochs * steps_per_epoch)
            lr = np.where(epoch <= warmup_epochs, warmup_from + p * (warmup_to - warmup_from), lr)
        return lr if lr.ndim else float(lr)

    return schedule


def step_schedule(base_lr: float, *, steps_per_epoch: int, decay_epochs, decay_rate: float = 0.1,
                  warmup_epochs: int = 0, warmup_from: float = 0.01) -> Schedule:
    """PyContrast's schedule without ``--cosine``, of the 0-based update index.

    epoch e = step // steps_per_epoch + 1, idx = step % steps_per_epoch;
    lr(e) = base_lr * decay_rate ** #{d in decay_epochs: e > d}; for
    e <= warmup_epochs (when > 0): warmup_from + p (base_lr - warmup_from),
    p = (idx + (e - 1) steps_per_epoch) / (warmup_epochs steps_per_epoch)
    (PyContrast's ``warmup_to`` is the plain rate without ``--cosine``).
    Works on ints and numpy arrays of steps.
    """
    milestones = np.asarray(sorted(int(d) for d in decay_epochs), np.int64)

    def schedule(step):
        step = np.asarray(step, np.int64)
        epoch = step // steps_per_epoch + 1
        passed = np.sum(epoch[..., None] > milestones, axis=-1)
        lr = base_lr * np.power(float(decay_rate), passed)
        if warmup_epochs > 0:
            p = step / (warmup_epochs * steps_per_epoch)
            lr = np.where(epoch <= warmup_epochs, warmup_from + p * (base_lr - warmup_from), lr)
        return lr if np.ndim(lr) else float(lr)

    return schedule


def cosine_schedule(base_lr: float, *, total_steps: int, warmup_steps: int = 0,
                    warmup_from: float = 0.0, decay_rate: float = 0.0) -> Schedule:
    """Per-step linear warmup (``warmup_from`` -> ``base_lr``) then per-step
    cosine down to ``base_lr * decay_rate**3`` at ``total_steps``."""
    eta_min = base_lr * decay_rate ** 3

    def schedule(step):
        t = np.asarray(step, np.float64)
        span = max(total_steps - warmup_steps, 1)
        lr = _cosine(base_lr, np.clip((t - warmup_steps) / span, 0.0, 1.0), eta_min)
        if warmup_steps > 0:
            lr = np.where(t < warmup_steps,
                          warmup_from + (t / warmup_steps) * (base_lr - warmup_from), lr)
        return lr if lr.ndim else float(lr)

    return schedule


def make_schedule(config, *, steps_per_epoch: int, total_steps: int) -> Schedule:
    """The schedule named by ``config.lr_schedule`` ('official' | 'step' | 'cosine').

    With ``num_steps > 0`` the official per-epoch cosine runs over
    ``ceil(total_steps / steps_per_epoch)`` epochs; the 'step' milestones
    (``config.lr_decay_epochs``) stay where they are.
    """
    epochs = max(1, -(-total_steps // steps_per_epoch))
    if config.lr_schedule == "official":
        return official_schedule(
            config.learning_rate, steps_per_epoch=steps_per_epoch, num_epochs=epochs,
            warmup_epochs=config.warmup_epochs, warmup_from=config.warmup_from,
            decay_rate=config.lr_decay_rate)
    if config.lr_schedule == "step":
        return step_schedule(
            config.learning_rate, steps_per_epoch=steps_per_epoch,
            decay_epochs=tuple(config.lr_decay_epochs), decay_rate=config.lr_decay_rate,
            warmup_epochs=config.warmup_epochs, warmup_from=config.warmup_from)
    if config.lr_schedule == "cosine":
        return cosine_schedule(
            config.learning_rate, total_steps=total_steps,
            warmup_steps=config.warmup_epochs * steps_per_epoch,
            warmup_from=config.warmup_from, decay_rate=config.lr_decay_rate)
    raise ValueError(f"lr_schedule must be 'official', 'step' or 'cosine', "
                     f"got {config.lr_schedule!r}")


def make_optimizer(config) -> optax.GradientTransformation:
    """``config.optimizer`` ('lars' | 'sgd') up to its momentum buffer, with the
    recipe's hyper-parameters (the rate is applied by ``apply_learning_rate``)."""
    if config.optimizer == "lars":
        return lars(momentum=config.momentum, weight_decay=config.weight_decay,
                    trust_coefficient=config.trust_coefficient)
    if config.optimizer == "sgd":
        return sgd(momentum=config.momentum, weight_decay=config.weight_decay)
    raise ValueError(f"optimizer must be 'lars' or 'sgd', got {config.optimizer!r}")
