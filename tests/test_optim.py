"""LARS / SGD chains and the official schedules against the official formulas."""
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
from ml_collections import ConfigDict

from reference_moco_torch import lars_step
from reiqa_jax.config_file import load_config
from reiqa_jax import optim


def pycontrast_lr(epoch, idx, n_iter, *, lr, epochs, warm_epochs, warmup_from, decay=0.1):
    """PyContrast's adjust_learning_rate (epoch start) + warmup_learning_rate (per
    iteration), restated: epoch is 1-based, idx the iteration within it."""
    eta_min = lr * decay ** 3
    value = eta_min + (lr - eta_min) * (1 + math.cos(math.pi * epoch / epochs)) / 2
    if warm_epochs and epoch <= warm_epochs:
        warmup_to = eta_min + (lr - eta_min) * (1 + math.cos(math.pi * warm_epochs / epochs)) / 2
        p = (idx + (epoch - 1) * n_iter) / (warm_epochs * n_iter)
        value = warmup_from + p * (warmup_to - warmup_from)
    return value


def _config(**kw):
    base = dict(learning_rate=12.0, warmup_epochs=5, warmup_from=0.01, lr_decay_rate=0.1,
                lr_schedule="official", optimizer="lars", momentum=0.9, weight_decay=1e-4,
                trust_coefficient=1e-3)
    base.update(kw)
    return ConfigDict(base)


def test_official_schedule_every_step_of_the_official_recipe():
    spe, epochs = 37, 40
    schedule = optim.make_schedule(_config(), steps_per_epoch=spe, total_steps=spe * epochs)
    steps = np.arange(spe * epochs)
    ours = schedule(steps)
    want = [pycontrast_lr(s // spe + 1, s % spe, spe, lr=12.0, epochs=epochs, warm_epochs=5,
                          warmup_from=0.01) for s in steps]
    # float32 schedule: 1 + cos(pi e / E) cancels near the end (abs error ~1e-7)
    np.testing.assert_allclose(ours, want, rtol=2e-6, atol=1e-6)
    assert ours[0] == pytest.approx(0.01)
    # constant within an epoch after the warmup, a step at each epoch start
    assert len(set(np.round(ours[5 * spe:6 * spe], 6))) == 1
    assert ours[6 * spe] < ours[6 * spe - 1]


def test_num_steps_override_and_cosine_schedule():
    s = optim.make_schedule(_config(warmup_epochs=0), steps_per_epoch=10, total_steps=25)
    # 25 steps = 3 epochs for the per-epoch cosine
    assert float(s(24)) == pytest.approx(pycontrast_lr(3, 4, 10, lr=12.0, epochs=3,
                                                        warm_epochs=0, warmup_from=0.01))
    c = optim.make_schedule(_config(lr_schedule="cosine", warmup_epochs=1, warmup_from=0.0,
                                    lr_decay_rate=0.0, learning_rate=0.03),
                            steps_per_epoch=10, total_steps=100)
    values = c(np.arange(101))
    assert values[0] == 0 and values[10] == pytest.approx(0.03) and values[100] == pytest.approx(0)
    assert np.all(np.diff(values[:11]) > 0) and np.all(np.diff(values[10:]) <= 1e-9)
    with pytest.raises(ValueError, match="lr_schedule"):
        optim.make_schedule(_config(lr_schedule="linear"), steps_per_epoch=1, total_steps=1)


def pycontrast_step_lr(epoch, idx, n_iter, *, lr, decay_epochs, decay_rate, warm_epochs,
                       warmup_from):
    """PyContrast without --cosine, restated: adjust_learning_rate at the start
    of epoch ``epoch`` (1-based) = lr * rate ** (number of milestones the epoch
    is past), then warmup_learning_rate per iteration (warmup_to = lr)."""
    value = lr
    steps = sum(epoch > d for d in decay_epochs)
    if steps > 0:
        value = lr * decay_rate ** steps
    if warm_epochs and epoch <= warm_epochs:
        p = (idx + (epoch - 1) * n_iter) / (warm_epochs * n_iter)
        value = warmup_from + p * (lr - warmup_from)
    return value


def _content_config(**overrides):
    config = load_config(str(Path(__file__).resolve().parents[1] / "configs"
                             / "moco_v2_content_r50.py"))
    config.update(overrides)
    return config


def test_content_schedule_is_pycontrast_without_cosine_at_every_step():
    config = _content_config()
    assert (config.lr_schedule, config.learning_rate, config.num_epochs) == ("step", 0.03, 200)
    assert tuple(config.lr_decay_epochs) == (120, 160) and config.lr_decay_rate == 0.1
    assert config.warmup_epochs == 0 and config.optimizer == "sgd"
    # The recipe itself, at every epoch (the rate is constant within an epoch).
    spe = 3
    full = optim.make_schedule(config, steps_per_epoch=spe, total_steps=200 * spe)
    steps = np.arange(200 * spe)
    want = [pycontrast_step_lr(s // spe + 1, s % spe, spe, lr=0.03, decay_epochs=(120, 160),
                               decay_rate=0.1, warm_epochs=0, warmup_from=0.01) for s in steps]
    np.testing.assert_allclose(full(steps), want, rtol=1e-12)
    assert full(120 * spe - 1) == pytest.approx(0.03) and full(120 * spe) == pytest.approx(0.003)
    assert full(160 * spe) == pytest.approx(0.0003)
    # A short run with a warmup (as PyContrast forces for batches > 256) and
    # milestones inside it: every step, one at a time as the trainer asks.
    spe, epochs = 7, 10
    short = optim.make_schedule(_content_config(num_epochs=epochs, warmup_epochs=2,
                                                lr_decay_epochs=(6, 8)),
                                steps_per_epoch=spe, total_steps=epochs * spe)
    for s in range(epochs * spe):
        assert short(s) == pytest.approx(pycontrast_step_lr(
            s // spe + 1, s % spe, spe, lr=0.03, decay_epochs=(6, 8), decay_rate=0.1,
            warm_epochs=2, warmup_from=0.01), rel=1e-12), s


def _params(seed):
    rng = np.random.default_rng(seed)
    return {"conv": rng.normal(size=(3, 3, 4, 8)).astype(np.float32),
            "fc": rng.normal(size=(8, 5)).astype(np.float32),
            "zero": np.zeros((4, 4), np.float32),          # |p| = 0: no trust ratio
            "bn_scale": rng.uniform(0.5, 1.5, 8).astype(np.float32),
            "bias": rng.normal(size=5).astype(np.float32)}


def _grads(seed, params):
    rng = np.random.default_rng(100 + seed)
    return {k: rng.normal(size=v.shape).astype(np.float32) for k, v in params.items()}


def test_lars_chain_is_the_official_lars_with_a_changing_rate():
    lrs = [0.01, 2.5, 7.0, 12.0, 11.0, 3.0]
    tx = optim.lars()
    params = jax.tree.map(jnp.asarray, _params(0))
    state = tx.init(params)
    t_params = {k: torch.from_numpy(np.array(v)) for k, v in _params(0).items()}
    mus = {k: torch.zeros_like(v) for k, v in t_params.items()}
    for step, lr in enumerate(lrs):
        grads = _grads(step, _params(0))
        mu, state = tx.update(jax.tree.map(jnp.asarray, grads), state, params)
        params = optim.apply_learning_rate(params, mu, lr)
        keys = list(t_params)
        lars_step([t_params[k] for k in keys], [torch.from_numpy(grads[k]) for k in keys],
                  [mus[k] for k in keys], lr=lr)
    for k in t_params:
        np.testing.assert_allclose(params[k], t_params[k].numpy(), rtol=1e-5, atol=1e-6,
                                   err_msg=k)
        np.testing.assert_allclose(optim.momentum_buffer(state)[k], mus[k].numpy(), rtol=1e-5,
                                   atol=1e-6, err_msg=k)
    # optax.lars folds the rate into the momentum: a different trajectory
    other = optax.lars(lambda count: jnp.asarray(lrs)[count], weight_decay=1e-4, trust_coefficient=1e-3, momentum=0.9,
                       weight_decay_mask=optim.kernel_mask, trust_ratio_mask=optim.kernel_mask)
    p2 = jax.tree.map(jnp.asarray, _params(0))
    s2 = other.init(p2)
    for step in range(len(lrs)):
        u, s2 = other.update(jax.tree.map(jnp.asarray, _grads(step, _params(0))), s2, p2)
        p2 = optax.apply_updates(p2, u)
    assert not np.allclose(p2["conv"], params["conv"], rtol=1e-3)


def test_sgd_chain_is_torch_sgd():
    lrs = [0.03, 0.02, 0.01]
    tx = optim.sgd()
    params = jax.tree.map(jnp.asarray, _params(1))
    state = tx.init(params)
    names = sorted(_params(1))  # jax.tree.map returns dicts in sorted key order
    t_params = [torch.nn.Parameter(torch.from_numpy(np.array(_params(1)[k]))) for k in names]
    opt = torch.optim.SGD(t_params, lr=lrs[0], momentum=0.9, weight_decay=1e-4)
    for step, lr in enumerate(lrs):
        grads = _grads(step, _params(1))
        mu, state = tx.update(jax.tree.map(jnp.asarray, grads), state, params)
        params = optim.apply_learning_rate(params, mu, lr)
        for p, k in zip(t_params, names):
            p.grad = torch.from_numpy(grads[k])
        for group in opt.param_groups:
            group["lr"] = lr
        opt.step()
    for k, p in zip(names, t_params):
        np.testing.assert_allclose(params[k], p.detach().numpy(), rtol=1e-5, atol=1e-6, err_msg=k)


def test_momentum_buffer_replacement():
    tx = optim.lars()
    params = jax.tree.map(jnp.asarray, _params(2))
    state = tx.init(params)
    mu = jax.tree.map(jnp.ones_like, params)
    state = optim.with_momentum_buffer(state, mu)
    assert all(bool(jnp.all(a == 1)) for a in jax.tree.leaves(optim.momentum_buffer(state)))
    tx.update(jax.tree.map(jnp.zeros_like, params), state, params)  # still a valid state
