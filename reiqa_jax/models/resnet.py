"""ResNet encoders (torchvision v1.5 layout) as Flax NNX modules.

The Re-IQA encoders are torchvision-layout ResNets without the classifier:
stem (7x7/2 conv, BN, ReLU, 3x3/2 max-pool), four stages of residual blocks,
global average pool. This module reproduces that network exactly so that
converted PyTorch weights give the same features (see ``reiqa_jax.convert``).

Parity details (each one changes the numbers if done differently):

* Explicit torch padding everywhere, never ``'SAME'``: conv1 7x7/2 pads 3,
  3x3 convs pad 1, 1x1 convs pad 0, the max-pool 3x3/2 pads 1 with -inf.
  (``'SAME'`` pads asymmetrically for strided convs on even sizes.)
* v1.5 bottleneck: the stride sits on the 3x3 conv (``conv2``), and on the
  1x1 projection shortcut (``downsample_conv``).
* No conv biases; BatchNorm eps 1e-5, flax momentum 0.9 (== torch 0.1).
* Parameters are float32; activations are computed in ``dtype``; the pooled
  feature is returned as float32.

BatchNorm running statistics (train mode): ``TorchBatchNorm`` updates the
running variance with the *unbiased* batch variance (divides by n - 1, n =
N*H*W per channel, times the devices for synchronized BN), as torch does;
flax's own BatchNorm uses the biased one. The normalisation itself uses the
biased variance in both. Eval mode (running statistics) is flax's.
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

# Block type and number of blocks per stage for each supported depth. 18-101
# are torchvision's; 10 (one basic block per stage, the same four stages) is
# the smallest of the family, for tests and quick runs on a CPU.
STAGES: dict[int, tuple[str, tuple[int, int, int, int]]] = {
    10: ("basic", (1, 1, 1, 1)),
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
}
EXPANSION = {"basic": 1, "bottleneck": 4}

# torch's kaiming_normal_(mode='fan_out', nonlinearity='relu') used by the
# official ResNet for every conv; BN starts at scale 1, bias 0.
_conv_init = nnx.initializers.variance_scaling(2.0, "fan_out", "normal")


def stem_width(width: float) -> int:
    """Channels of the stem conv and of stage 1's base: ``int(64 * width)``."""
    return int(64 * width)


def _conv(cin, cout, k, stride, pad, dtype, rngs):
    return nnx.Conv(
        cin, cout, kernel_size=(k, k), strides=(stride, stride),
        padding=((pad, pad), (pad, pad)), use_bias=False,
        kernel_init=_conv_init, dtype=dtype, param_dtype=jnp.float32,
        rngs=rngs)


class TorchBatchNorm(nnx.BatchNorm):
    """``nnx.BatchNorm`` with torch's training-mode arithmetic.

    Train mode: batch mean and biased variance over all but the channel axis
    (float32, two-pass, ``pmean``-ed over ``axis_name`` when set:
    synchronized BN),
    normalise with them, and update the running statistics as torch does:
    ``mean <- m mean + (1 - m) batch_mean``, ``var <- m var + (1 - m)
    batch_var * n / (n - 1)`` (flax momentum m = 0.9 == torch 0.1). Eval
    mode is ``nnx.BatchNorm``'s. Same variables (scale, bias, mean, var).
    """

    def __call__(self, x, use_running_average=None, *, mask=None):
        use_running = self.use_running_average if use_running_average is None \
            else use_running_average
        if use_running or mask is not None:
            return super().__call__(x, use_running_average=use_running, mask=mask)
        axes = tuple(range(x.ndim - 1))
        xf = jnp.asarray(x, jnp.promote_types(x.dtype, jnp.float32))
        # Two passes (mean, then mean of squared deviations), not E[x^2] -
        # E[x]^2: the gradient of the one-pass form loses several digits
        # through deep stacks of BatchNorm (tests/test_train_step.py).
        mean = self._mean(xf, axes)
        var = self._mean(jnp.square(xf - mean), axes)
        count = 1
        for d in axes:
            count *= x.shape[d]
        if self.axis_name is not None:
            count *= jax.lax.axis_size(self.axis_name)
        m = self.momentum
        unbiased = var * (count / max(count - 1, 1))
        self.mean[...] = jax.lax.stop_gradient(m * self.mean[...] + (1 - m) * mean)
        self.var[...] = jax.lax.stop_gradient(m * self.var[...] + (1 - m) * unbiased)
        y = (xf - mean) * (jax.lax.rsqrt(var + self.epsilon) * self.scale[...])
        y = y + self.bias[...]
        return y.astype(self.dtype or x.dtype)

    def _mean(self, x, axes):
        mean = jnp.mean(x, axes)
        return mean if self.axis_name is None else jax.lax.pmean(mean, self.axis_name)


def _bn(c, dtype, rngs):
    return TorchBatchNorm(
        c, momentum=0.9, epsilon=1e-5, dtype=dtype, param_dtype=jnp.float32,
        rngs=rngs)


def max_pool_3x3_s2(x: jax.Array) -> jax.Array:
    """torch ``MaxPool2d(3, stride=2, padding=1)`` on (N,H,W,C).

    reduce_window pads with its init value, -inf, so padding never wins.
    Output spatial size: floor((H + 2 - 3) / 2) + 1. The init is a Python
    float so that JAX recognises the max monoid (and can differentiate it);
    an array init gives a generic reduce_window without a gradient.
    """
    return jax.lax.reduce_window(
        x, -jnp.inf, jax.lax.max,
        window_dimensions=(1, 3, 3, 1), window_strides=(1, 2, 2, 1),
        padding=((0, 0), (1, 1), (1, 1), (0, 0)))


class BasicBlock(nnx.Module):
    """Two 3x3 convs (ResNet-18/34). Stride on conv1 and on the shortcut."""

    def __init__(self, cin: int, planes: int, stride: int, *, dtype, rngs):
        self.conv1 = _conv(cin, planes, 3, stride, 1, dtype, rngs)
        self.bn1 = _bn(planes, dtype, rngs)
        self.conv2 = _conv(planes, planes, 3, 1, 1, dtype, rngs)
        self.bn2 = _bn(planes, dtype, rngs)
        if stride != 1 or cin != planes:
            self.downsample_conv = _conv(cin, planes, 1, stride, 0, dtype, rngs)
            self.downsample_bn = _bn(planes, dtype, rngs)
        else:
            self.downsample_conv = None
            self.downsample_bn = None

    def __call__(self, x):
        out = nnx.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x
        if self.downsample_conv is not None:
            shortcut = self.downsample_bn(self.downsample_conv(x))
        return nnx.relu(out + shortcut)


class Bottleneck(nnx.Module):
    """1x1 -> 3x3 (strided, v1.5) -> 1x1 (x4 channels) residual block."""

    def __init__(self, cin: int, planes: int, stride: int, *, dtype, rngs):
        cout = planes * EXPANSION["bottleneck"]
        self.conv1 = _conv(cin, planes, 1, 1, 0, dtype, rngs)
        self.bn1 = _bn(planes, dtype, rngs)
        self.conv2 = _conv(planes, planes, 3, stride, 1, dtype, rngs)
        self.bn2 = _bn(planes, dtype, rngs)
        self.conv3 = _conv(planes, cout, 1, 1, 0, dtype, rngs)
        self.bn3 = _bn(cout, dtype, rngs)
        if stride != 1 or cin != cout:
            self.downsample_conv = _conv(cin, cout, 1, stride, 0, dtype, rngs)
            self.downsample_bn = _bn(cout, dtype, rngs)
        else:
            self.downsample_conv = None
            self.downsample_bn = None

    def __call__(self, x):
        out = nnx.relu(self.bn1(self.conv1(x)))
        out = nnx.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        shortcut = x
        if self.downsample_conv is not None:
            shortcut = self.downsample_bn(self.downsample_conv(x))
        return nnx.relu(out + shortcut)


class ResNet(nnx.Module):
    """ResNet-{18,34,50,101} encoder without classifier, torchvision v1.5.

    Args:
      depth: 18, 34, 50 or 101.
      width: channel multiplier. Stem and stage-1 base width are
        ``int(64 * width)``. The official code uses ``max(int(64*width), 64)``
        for the stem, which is the same for every width >= 1 (all released
        models use width 1); below 1 ours shrinks the stem too.
      dtype: compute dtype (jnp.float32 or jnp.bfloat16; jnp.float64 with
        jax_enable_x64, for exactness tests). Params are created float32.
      rngs: nnx.Rngs for initialisation (torch-like: kaiming-normal fan-out
        convs, BN scale 1 / bias 0).

    Call: ``x`` (N, H, W, 3) float, any H, W >= 1 (RGB; [0,1] for the quality
    encoder, ImageNet-normalised for the content encoder — the model does not
    normalise). Returns (N, feat_dim) float32, the global average pool of the
    last stage (non-negative: it follows a ReLU).

    Attributes: ``feat_dim`` (2048*width for depth 50/101, 512*width for
    18/34, as an int), ``depth``, ``width``.
    """

    def __init__(self, depth: int = 50, width: float = 1.0, *,
                 dtype=jnp.float32, rngs: nnx.Rngs):
        if depth not in STAGES:
            raise ValueError(f"depth must be one of {sorted(STAGES)}, got {depth}")
        if int(64 * width) < 1:
            raise ValueError(f"width {width} gives no channels")
        kind, counts = STAGES[depth]
        block_cls = Bottleneck if kind == "bottleneck" else BasicBlock
        expansion = EXPANSION[kind]
        self.depth = depth
        self.width = width
        base = stem_width(width)
        self.conv1 = _conv(3, base, 7, 2, 3, dtype, rngs)
        self.bn1 = _bn(base, dtype, rngs)
        cin = base
        stages = []
        for i, n in enumerate(counts):
            planes = base * 2 ** i
            blocks = []
            for b in range(n):
                stride = 2 if (i > 0 and b == 0) else 1
                blocks.append(block_cls(cin, planes, stride, dtype=dtype, rngs=rngs))
                cin = planes * expansion
            stages.append(nnx.List(blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.feat_dim = cin
        self.dtype = dtype

    def stages(self) -> Sequence[nnx.List]:
        return (self.layer1, self.layer2, self.layer3, self.layer4)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = jnp.asarray(x).astype(self.dtype)
        x = nnx.relu(self.bn1(self.conv1(x)))
        x = max_pool_3x3_s2(x)
        for stage in self.stages():
            for block in stage:
                x = block(x)
        # Pool in (at least) float32 so bf16 compute still returns an accurate mean.
        return jnp.mean(x.astype(jnp.promote_types(x.dtype, jnp.float32)), axis=(1, 2))
