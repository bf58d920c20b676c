"""ResNet / head / ReIQAModel behaviour: shapes, dtypes, BatchNorm modes."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from flax import nnx
from PIL import Image
from skimage import data as skdata

from reiqa_jax.checkpoint import build_model, expected_shapes
from reiqa_jax.models import ProjectionHead, ResNet, l2_normalize
from reiqa_jax.models.resnet import max_pool_3x3_s2
from model_testing import random_arrays
from reiqa_jax.reference.torch_model import Encoder


def _photos(h: int, w: int) -> np.ndarray:
    """(2, h, w, 3) float32 in [0, 1]: chelsea and rocket."""
    imgs = [Image.fromarray(i).resize((w, h), Image.BICUBIC) for i in (skdata.chelsea(), skdata.rocket())]
    return np.stack([np.asarray(i, np.float32) / 255.0 for i in imgs])


@pytest.mark.parametrize("depth,width,expected", [
    (18, 0.125, 64), (34, 0.125, 64), (50, 0.125, 256), (101, 0.125, 256), (50, 1, 2048)])
def test_output_dims(depth, width, expected):
    """Abstract evaluation (no compile): (N, feat_dim) float32 for an odd size."""
    model = nnx.eval_shape(lambda: ResNet(depth, width, rngs=nnx.Rngs(0)))
    assert model.feat_dim == expected
    if width == 1:
        return  # the full-size forward is covered by the parity tests
    y = nnx.eval_shape(lambda m, x: m(x), model, jax.ShapeDtypeStruct((3, 37, 53, 3), jnp.float32))
    assert y.shape == (3, expected) and y.dtype == jnp.float32


@pytest.mark.parametrize("depth", [10, 18, 34, 50, 101])
def test_parameter_count_matches_torch_statement(depth):
    """Same number of weights as the PyTorch statement (width 0.5 keeps torch fast)."""
    shapes = expected_shapes(dict(depth=depth, width=0.5, feat_dim=128))
    n_ours = sum(int(np.prod(s)) for p, s in shapes["params"].items() if p.startswith("encoder/"))
    n_torch = sum(p.numel() for p in Encoder(depth, 0.5).parameters())
    assert n_ours == n_torch


def test_init_is_torch_like():
    """Real init: He fan-out convs, BN (1, 0) with stats (0, 1), torch Linear bounds.

    A single bottleneck block and a head keep the eager init cheap; the full
    ReIQAModel uses the same constructors.
    """
    from reiqa_jax.models.resnet import Bottleneck
    rngs = nnx.Rngs(0)
    block = Bottleneck(64, 128, 2, dtype=jnp.float32, rngs=rngs)
    k = np.asarray(block.conv2.kernel[...])  # (3,3,128,128)
    assert k.shape == (3, 3, 128, 128)
    np.testing.assert_allclose(k.std(), np.sqrt(2.0 / (9 * 128)), rtol=0.05)
    assert block.downsample_conv.kernel[...].shape == (1, 1, 64, 512)
    bn = block.bn3
    assert np.all(np.asarray(bn.scale[...]) == 1) and np.all(np.asarray(bn.bias[...]) == 0)
    assert np.all(np.asarray(bn.mean[...]) == 0) and np.all(np.asarray(bn.var[...]) == 1)
    head = ProjectionHead(256, 16, rngs=rngs)
    bound = 1 / np.sqrt(256)
    for lin in (head.fc1, head.fc2):
        for p in (lin.kernel[...], lin.bias[...]):
            assert np.abs(np.asarray(p)).max() <= bound
            if p.size >= 1000:  # uniform over the full range
                assert np.abs(np.asarray(p)).max() > 0.9 * bound


def test_max_pool_pads_with_minus_inf():
    x = -1 - np.random.default_rng(0).random((1, 7, 9, 2)).astype(np.float32)  # all < 0
    ref = F.max_pool2d(torch.from_numpy(x.transpose(0, 3, 1, 2)), 3, stride=2, padding=1)
    np.testing.assert_array_equal(np.asarray(max_pool_3x3_s2(jnp.asarray(x))),
                                  ref.numpy().transpose(0, 2, 3, 1))


def test_l2_normalize_matches_torch():
    x = np.random.default_rng(1).standard_normal((4, 128)).astype(np.float32)
    x[2] = 0  # F.normalize keeps a zero row zero (eps clamp), no NaN
    np.testing.assert_allclose(np.asarray(l2_normalize(jnp.asarray(x))),
                               F.normalize(torch.from_numpy(x), dim=1).numpy(), atol=1e-7)


@pytest.fixture(scope="module")
def r50():
    """A width-1/4 ResNet-50 with random weights and BN stats, and a batch of
    photos x = [chelsea, rocket] plus x2 = [chelsea, rocket flipped] (same shape,
    so each jitted function compiles once per mode)."""
    arch = dict(depth=50, width=0.25, feat_dim=32)
    arrays = random_arrays(arch, seed=0)
    x = _photos(48, 56)
    x2 = np.stack([x[0], x[1, ::-1, ::-1]])
    return arch, arrays, x, x2


_forward = nnx.jit(lambda m, x: (m.encoder(x), m(x)))


def test_bfloat16_close_to_float32(r50):
    arch, arrays, x, _ = r50
    f32 = build_model(arch, arrays)
    b16 = build_model(arch, arrays, dtype=jnp.bfloat16)
    assert b16.encoder.conv1.kernel[...].dtype == jnp.float32  # params stay f32
    (fa, _), (fb, hb) = _forward(f32, x), _forward(b16, x)
    assert fb.dtype == jnp.float32 and hb.dtype == jnp.float32
    assert np.all(np.isfinite(fb)) and np.all(np.isfinite(hb))
    fa, fb = np.asarray(fa), np.asarray(fb)
    rel = np.abs(fa - fb).max() / np.abs(fa).max()
    cos = np.sum(fa * fb, 1) / np.linalg.norm(fa, axis=1) / np.linalg.norm(fb, axis=1)
    assert rel < 5e-2 and cos.min() > 0.999, (rel, cos)
    assert rel > 0  # bf16 really was used


def _stats(model):
    return jax.tree.map(np.asarray, nnx.to_pure_dict(nnx.state(model, nnx.BatchStat)))


def test_eval_uses_running_statistics(r50):
    arch, arrays, x, x2 = r50
    model = build_model(arch, arrays)  # eval mode
    before = _stats(model)
    f, _ = _forward(model, x)
    f2, _ = _forward(model, x2)
    # row 0 is the same image: in eval mode its feature ignores the batch mates
    np.testing.assert_allclose(np.asarray(f[0]), np.asarray(f2[0]), rtol=1e-5, atol=1e-6)
    jax.tree.map(np.testing.assert_array_equal, _stats(model), before)  # untouched


_encode = nnx.jit(lambda m, x: m.encoder(x))


def test_train_mode_batch_statistics_and_update_rule(r50):
    """Running stats: new = 0.9*old + 0.1*batch, var unbiased (torch's rule)."""
    arch, arrays, x, x2 = r50
    model = build_model(arch, arrays)
    # stem conv outputs (N, 24, 28, C): n = 2*24*28 = 1344 values per channel
    h = [np.asarray(model.encoder.conv1(jnp.asarray(v)), np.float64) for v in (x, x2)]
    m, v = np.asarray(model.encoder.bn1.mean[...]), np.asarray(model.encoder.bn1.var[...])
    before = _stats(model)
    model.train()
    f, f2 = _encode(model, x), _encode(model, x2)  # one BN update each
    model.eval()
    assert np.abs(np.asarray(f[0]) - np.asarray(f2[0])).max() > 1e-3  # depends on the batch
    v_flax = v
    for hi in h:  # two updates, in call order
        m = 0.9 * m + 0.1 * hi.mean(axis=(0, 1, 2))
        v = 0.9 * v + 0.1 * hi.var(axis=(0, 1, 2), ddof=1)
        v_flax = 0.9 * v_flax + 0.1 * hi.var(axis=(0, 1, 2))
    got_m = np.asarray(model.encoder.bn1.mean[...])
    got_v = np.asarray(model.encoder.bn1.var[...])
    np.testing.assert_allclose(got_m, m, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got_v, v, rtol=1e-4, atol=1e-5)
    # the rule is distinguishable from flax's biased one at this n
    assert np.abs(v_flax - got_v).max() > 10 * np.abs(v - got_v).max()
    moved = jax.tree.map(lambda a, b: bool(np.any(a != b)), _stats(model), before)
    assert all(jax.tree.leaves(moved))  # every BN layer updated


def test_train_mode_batchnorm_matches_torch():
    """TorchBatchNorm in train mode == torch.nn.BatchNorm2d: output and both
    running statistics after two updates, float32."""
    import torch

    from reiqa_jax.models.resnet import TorchBatchNorm

    rng = np.random.default_rng(0)
    xs = [rng.normal(0.5, 2.0, (3, 5, 7, 4)).astype(np.float32) for _ in range(2)]
    ours = TorchBatchNorm(4, momentum=0.9, epsilon=1e-5, rngs=nnx.Rngs(0))
    ours.scale[...] = jnp.asarray(rng.uniform(0.5, 1.5, 4), jnp.float32)
    ours.bias[...] = jnp.asarray(rng.normal(size=4), jnp.float32)
    ref = torch.nn.BatchNorm2d(4, eps=1e-5, momentum=0.1)
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(np.array(ours.scale[...])))
        ref.bias.copy_(torch.from_numpy(np.array(ours.bias[...])))
    ours.train()
    ref.train()
    for x in xs:
        y = np.asarray(ours(jnp.asarray(x)))
        y_ref = ref(torch.from_numpy(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).detach().numpy()
        np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=2e-6)
    np.testing.assert_allclose(np.asarray(ours.mean[...]), ref.running_mean.numpy(), rtol=1e-6,
                               atol=1e-7)
    np.testing.assert_allclose(np.asarray(ours.var[...]), ref.running_var.numpy(), rtol=1e-6)


def test_reiqa_model_is_head_of_encoder(r50):
    arch, arrays, x, _ = r50
    model = build_model(arch, arrays)
    f, h = _forward(model, x)
    assert f.shape == (2, 512) and h.shape == (2, 32)
    np.testing.assert_allclose(np.asarray(h), np.asarray(model.head(f)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(np.asarray(h), axis=1), 1, rtol=1e-5)
    assert isinstance(model.head, ProjectionHead) and model.arch == arch
