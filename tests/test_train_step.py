"""One training update against a plain-PyTorch restatement of the official step.

Same weights (a released-layout training checkpoint of a small ResNet,
converted with ``reiqa convert`` and loaded through ``init_from``), same
queue, LARS momentum buffers and crops (real photo patches), same shuffle
permutation, on one device and on two devices with shuffle BN.

* float64 on both sides: logits, loss, online weights after LARS, momentum
  buffers, EMA weights, both encoders' BatchNorm statistics (per device) and
  the queue agree to ~1e-9. This is the exact check of the algorithm.
* float32 (the CPU training dtype): the forward quantities (logits, loss,
  statistics, queue, EMA) agree to float32 tolerance. The raw gradients of
  the early BatchNorm layers of such a small random ResNet are not
  float32-stable (a 1e-6 change of the input pixels moves them by several
  percent in float64 PyTorch itself), so the float32 run is not asked to
  reproduce them; the float64 run is.
"""

import jax
import numpy as np
import pytest
import torch
from skimage import data

from reiqa_jax.reference.moco_torch import official_step
from reiqa_jax import moco, optim, train
from reiqa_jax.config_file import load_config
from reiqa_jax.convert import torch_to_reiqa
from reiqa_jax.torch_layout import flatten, model_layout, torch_from_ours
from reiqa_jax.reference.torch_model import ReIQANet, randomize, training_checkpoint

DEPTH, WIDTH, FEAT, K, P = 10, 0.25, 16, 64, 96


def _config(shuffle_bn="host"):
    c = load_config("smoke")
    c.model.depth, c.model.width, c.model.feat_dim = DEPTH, WIDTH, FEAT
    c.queue_size, c.shuffle_bn = K, shuffle_bn
    c.learning_rate, c.warmup_epochs = 12.0, 0  # the official rate: a visible LARS step
    return c


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """A released-layout training checkpoint (.pth) and its conversion."""
    root = tmp_path_factory.mktemp("released")
    model = randomize(ReIQANet(DEPTH, WIDTH, FEAT), 1)
    ema = randomize(ReIQANet(DEPTH, WIDTH, FEAT), 2)
    ckpt = training_checkpoint(model, ema, queue_size=K, epoch=3, seed=3)
    torch.save(ckpt, root / "train.pth")
    torch_to_reiqa(root / "train.pth", root / "ours")
    return ckpt, root / "ours"


def _crops(n):
    """n pairs of 64x64 crops of real photos, float32 NHWC in [0, 1]."""
    photos = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    x1, x2 = [], []
    for i in range(n):
        img = photos[i % 4].astype(np.float32) / 255.0
        y, x = 20 + 13 * i, 30 + 11 * i
        x1.append(img[y:y + P, x:x + P])
        x2.append(img[y + 20:y + 20 + P, x + 9:x + 9 + P])
    return np.stack(x1), np.stack(x2)


def _torch_models(ckpt):
    model = ReIQANet(DEPTH, WIDTH, FEAT)
    model.load_state_dict({k[len("module."):]: v for k, v in ckpt["model"].items()})
    ema = ReIQANet(DEPTH, WIDTH, FEAT)
    ema.load_state_dict(ckpt["model_ema"])
    return model, ema


def _as_torch(tree, collection, layout):
    flat = flatten(tree)
    return {e.torch_key: torch_from_ours(e.kind, np.asarray(flat[e.path]))
            for e in layout if e.collection == collection}


def _run(released, devices, shuffle_bn, dtype="float32"):
    ckpt, ours_dir = released
    config = _config(shuffle_bn)
    config.dtype = dtype
    mesh = train.make_mesh() if devices == len(jax.devices()) else None
    if mesh is None:
        from jax.sharding import AxisType, Mesh
        mesh = Mesh(np.array(jax.devices()[:devices]).reshape(1, devices), train.DATA_AXES,
                    axis_types=(AxisType.Auto, AxisType.Auto))
    schedule = optim.make_schedule(config, steps_per_epoch=10, total_steps=100)
    tx = optim.make_optimizer(config)
    state = train.create_train_state(config, mesh, tx, train.load_init(config, ours_dir))
    step = train.make_train_step(config, mesh, tx, view_fn=None, return_logits=True)
    x1, x2 = _crops(8)
    if dtype == "float64":
        state = jax.tree.map(lambda a: a.astype(np.float64)
                             if jax.numpy.issubdtype(a.dtype, np.floating) else a, state)
        x1, x2 = x1.astype(np.float64), x2.astype(np.float64)
    rng = np.asarray(jax.random.key_data(state.rng))
    new, metrics = step(state, {"x1": x1, "x2": x2}, schedule(0))
    return config, schedule, rng, jax.device_get(new), jax.device_get(metrics), x1, x2


def _reference(ckpt, schedule, config, rng, x1, x2, devices, dtype):
    # The same shuffle permutation: step 0's key, as train_step derives it.
    key = jax.random.wrap_key_data(rng)
    _, shuffle_key = jax.random.split(jax.random.fold_in(key, 0))
    perm, _ = moco.shuffle_permutation(shuffle_key, 8)
    model, ema = (m.to(dtype) for m in _torch_models(ckpt))
    queue = ckpt["contrast"]["memory"].clone().to(dtype)
    n_params = len(list(model.parameters()))
    mus = [ckpt["optimizer"]["state"][i]["mu"].clone().to(dtype) for i in range(n_params)]
    nchw = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))
    b = 8 // devices
    ref = official_step(model, ema, queue, 0,
                        [nchw(x1[g * b:(g + 1) * b]) for g in range(devices)],
                        [nchw(x2[g * b:(g + 1) * b]) for g in range(devices)],
                        torch.from_numpy(np.asarray(perm, np.int64)), mus,
                        lr=float(np.float32(schedule(0))), temperature=config.temperature,
                        alpha=config.ema_momentum)
    return model, ema, queue, mus, ref


def _check(new, metrics, model, ema, queue, mus, ref, devices, tol, *, weights):
    rtol, atol = tol
    np.testing.assert_allclose(metrics["logits"], ref["logits"].numpy(), rtol=rtol, atol=atol)
    np.testing.assert_allclose(metrics["loss"], np.mean(ref["losses"]), rtol=rtol)
    np.testing.assert_allclose(metrics["acc"], np.mean(ref["accs"]), atol=1e-4)
    layout = model_layout(DEPTH)
    sd, sd_ema = model.state_dict(), ema.state_dict()
    trees = [(new.ema_params, sd_ema)] + ([(new.params, sd)] if weights else [])
    for tree, state_dict in trees:
        for name, want in _as_torch(tree, "params", layout).items():
            np.testing.assert_allclose(want, state_dict[name].numpy(), rtol=rtol, atol=atol,
                                       err_msg=name)
    if weights:  # LARS momentum buffers (the official 'mu', learning rate not folded in)
        mu = flatten(optim.momentum_buffer(new.opt_state))
        params = [e for e in layout if e.collection == "params"]
        for e, want in zip(params, mus):
            np.testing.assert_allclose(torch_from_ours(e.kind, np.asarray(mu[e.path])),
                                       want.numpy(), rtol=rtol, atol=atol, err_msg=e.torch_key)
    # per-device BatchNorm statistics of both encoders = each GPU's buffers
    stat_names = [e.torch_key for e in layout if e.collection == "batch_stats"]
    buffer_names = [n for n, _ in model.named_buffers()]
    for g in range(devices):
        for stacked, buffers in ((new.batch_stats, ref["buffers"][g]),
                                 (new.ema_batch_stats, ref["ema_buffers"][g])):
            mine = _as_torch(jax.tree.map(lambda a: a[g], stacked), "batch_stats", layout)
            theirs = dict(zip(buffer_names, buffers))
            for name in stat_names:
                np.testing.assert_allclose(mine[name], theirs[name].numpy(), rtol=rtol,
                                           atol=atol, err_msg=f"device {g} {name}")
    # the queue: all keys pushed at the pointer, in shuffled order
    np.testing.assert_allclose(new.queue, queue.numpy(), rtol=rtol, atol=atol)
    assert int(new.queue_ptr) == ref["pointer"] == 8
    assert int(new.step) == 1


@pytest.mark.parametrize("devices", [1, 2])
def test_one_update_matches_official_pytorch_step_float64(released, devices):
    with jax.enable_x64(True):
        config, schedule, rng, new, metrics, x1, x2 = _run(released, devices, "host", "float64")
    assert new.queue.dtype == np.float64
    model, ema, queue, mus, ref = _reference(released[0], schedule, config, rng, x1, x2,
                                             devices, torch.float64)
    _check(new, metrics, model, ema, queue, mus, ref, devices, (1e-8, 1e-10), weights=True)


@pytest.fixture(scope="module")
def float32_two_devices(released):
    """The float32 update on two devices with shuffle BN (shared: it takes a compile)."""
    return _run(released, 2, "host")


def test_one_update_matches_official_pytorch_step_float32(released, float32_two_devices):
    config, schedule, rng, new, metrics, x1, x2 = float32_two_devices
    assert new.queue.dtype == np.float32
    model, ema, queue, mus, ref = _reference(released[0], schedule, config, rng, x1, x2,
                                             2, torch.float32)
    _check(new, metrics, model, ema, queue, mus, ref, 2, (1e-4, 2e-5), weights=False)
    assert float(metrics["lr"]) == np.float32(schedule(0))


def test_shuffle_bn_changes_statistics_but_not_the_official_mode_result(released,
                                                                      float32_two_devices):
    # With two devices, the key encoder's per-device BN statistics depend on
    # which rows each device encodes: 'none' (no shuffle) and 'host' differ,
    # while the online model's are the same in both.
    *_, shuffled, _, _, _ = float32_two_devices
    *_, plain, _, _, _ = _run(released, 2, "none")
    diff = lambda a, b: max(float(np.abs(x - y).max()) for x, y in
                            zip(jax.tree.leaves(a), jax.tree.leaves(b)))
    assert diff(shuffled.ema_batch_stats, plain.ema_batch_stats) > 1e-4
    assert diff(shuffled.batch_stats, plain.batch_stats) == 0.0


def test_bfloat16_compute_keeps_float32_state_and_tracks_the_float32_step(
        released, float32_two_devices):
    # The accelerator setting: bfloat16 activations, float32 parameters,
    # optimizer state, BatchNorm statistics, queue and loss.
    *_, new32, m32, _, _ = float32_two_devices
    *_, new16, m16, _, _ = _run(released, 2, "host", "bfloat16")
    for leaf in jax.tree.leaves((new16.params, new16.ema_params, new16.batch_stats,
                                 new16.ema_batch_stats, new16.opt_state, new16.queue)):
        if np.issubdtype(leaf.dtype, np.floating):
            assert leaf.dtype == np.float32
    assert np.asarray(m16["loss"]).dtype == np.float32
    assert np.isfinite(m16["loss"]) and bool(m16["finite"])
    # bfloat16 has 8 mantissa bits: the logits (|l| <= 1/T = 5) within ~0.1,
    # and not equal (the compute really ran in bfloat16)
    assert np.abs(m16["logits"] - m32["logits"]).max() > 1e-3
    np.testing.assert_allclose(m16["logits"], m32["logits"], atol=0.15)
    np.testing.assert_allclose(m16["loss"], m32["loss"], rtol=0.03)
    np.testing.assert_allclose(new16.queue, new32.queue, atol=0.05)
    # the parameter updates point the same way
    before = train.load_init(_config(), released[1])["params"]
    delta = lambda new: np.concatenate([np.ravel(a) - np.ravel(b) for a, b in
                                        zip(jax.tree.leaves(new), jax.tree.leaves(before))])
    d16, d32 = delta(new16.params), delta(new32.params)
    assert np.abs(d32).max() > 0
    cosine = d16 @ d32 / (np.linalg.norm(d16) * np.linalg.norm(d32))
    print(f"logits max diff {np.abs(m16['logits'] - m32['logits']).max():.4f}, "
          f"loss {float(m16['loss']):.5f} vs {float(m32['loss']):.5f}, update cosine {cosine:.6f}, "
          f"grad norm {float(m16['grad_norm']):.5f} vs {float(m32['grad_norm']):.5f}")
    assert cosine > 0.95
    np.testing.assert_allclose(m16["grad_norm"], m32["grad_norm"], rtol=0.1)
