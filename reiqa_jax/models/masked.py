"""The ResNet encoder on zero-padded images, exact for each image's own size.

Images of different sizes share one compiled program when they are padded to
one bucket shape (see ``reiqa_jax.buckets``). Padding alone would change the
features: the convolutions would see image content where torch sees its zero
padding, and the average pool would count padded positions. This module runs
the layers of an existing :class:`~reiqa_jax.models.resnet.ResNet` (its
convolutions, BatchNorms and max-pool, unchanged) and, after every layer,
puts back what the unpadded computation has outside each image's valid
(top-left) region:

* the input and every activation that feeds a convolution are zero outside
  the valid region, which is exactly torch's zero padding for the positions a
  valid output reads (a conv with kernel k, stride s, padding p maps a valid
  size n to ``floor((n + 2p - k) / s) + 1`` outputs; the last one reads input
  positions up to ``n + p - 1`` and no further);
* the max-pool's input is -inf outside the valid region, as torch pads it;
* the global average pool sums the valid positions only and divides by their
  number.

BatchNorm in eval mode and ReLU are elementwise, so masking after them (and
after each residual sum) is enough; 1x1 convolutions never mix positions.

The valid sizes after each layer depend only on the input sizes, so they are
computed on the host (:func:`valid_regions`, numpy) and enter the program as
small boolean row/column masks, one pair per activation resolution: any mix
of sizes up to the padded shape runs in one compilation, and the program
stays nearly as small as the unmasked one. (Within one network a resolution
always carries one valid size: two layers with the same padded size have the
same valid size.) An image of size 0x0 (an empty batch slot) gives a zero
feature.

Peak memory: XLA's CPU fusion treats the residual sum + ReLU + mask as cheap
and recomputes it inside the next blocks' fusions instead of reading it
back, which keeps every conv output of a stage alive to the stage's end
(1.8x the memory). Each block's output is therefore divided by a runtime
1.0 (``ValidRegions.one``, exact in IEEE arithmetic): XLA never duplicates a
division, so the output is materialised once. ``optimization_barrier`` would
say this more plainly but the CPU pipeline removes it before fusion.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from reiqa_jax.models.resnet import BasicBlock, Bottleneck, ResNet, max_pool_3x3_s2

# (rows (B, H) bool, cols (B, W) bool): the valid region at one resolution.
Mask = tuple[jax.Array, jax.Array]


class ValidRegions(NamedTuple):
    """What the masked forward needs besides the pixels (a pytree of arrays).

    masks: one (rows (B, H_l) bool, cols (B, W_l) bool) pair per activation
    resolution, input resolution first. one: float32 scalar 1.0, given at
    run time so that XLA cannot fold it (see the module docstring).
    """

    masks: tuple[Mask, ...]
    one: np.ndarray


def _after(sizes: np.ndarray, kernel: int, stride: int, pad: int) -> np.ndarray:
    """floor((n + 2 * pad - kernel) / stride) + 1, and 0 for n = 0."""
    return np.where(sizes > 0, (sizes + 2 * pad - kernel) // stride + 1, 0)


def _conv_after(conv: nnx.Conv, sizes: np.ndarray) -> np.ndarray:
    (lo_h, hi_h), (lo_w, hi_w) = conv.padding
    if lo_h != hi_h or lo_w != hi_w or conv.kernel_size[0] != conv.kernel_size[1] \
            or conv.strides[0] != conv.strides[1]:
        raise ValueError("masked ResNet needs square kernels, strides and symmetric padding")
    return _after(sizes, conv.kernel_size[0], conv.strides[0], lo_h)


def _size_changes(encoder: ResNet) -> list:
    """The layers that change the spatial size, in order: convs, or "pool"."""
    layers: list = [encoder.conv1, "pool"]
    for stage in encoder.stages():
        for block in stage:
            layers.append(block.conv2 if isinstance(block, Bottleneck) else block.conv1)
    return layers


def valid_regions(encoder: ResNet, sizes: np.ndarray, shape: tuple[int, int]) -> ValidRegions:
    """Host-side (numpy) masks of each resolution of ``encoder`` on padded ``shape``.

    sizes: (B, 2) int valid (h, w) per image, each at most ``shape`` (H, W).
    """
    sizes = np.asarray(sizes, np.int64).reshape(-1, 2)
    padded = np.asarray(shape, np.int64)[None]
    if (sizes < 0).any() or (sizes > padded).any():
        raise ValueError(f"valid sizes must lie in [0, {tuple(shape)}]")
    masks, seen = [], set()

    def add(valid, full):
        key = (int(full[0, 0]), int(full[0, 1]))
        if key not in seen:
            seen.add(key)
            masks.append((np.arange(key[0])[None, :] < valid[:, :1],
                          np.arange(key[1])[None, :] < valid[:, 1:]))

    add(sizes, padded)
    for layer in _size_changes(encoder):
        if layer == "pool":
            sizes, padded = _after(sizes, 3, 2, 1), _after(padded, 3, 2, 1)
        else:
            sizes, padded = _conv_after(layer, sizes), _conv_after(layer, padded)
        add(sizes, padded)
    return ValidRegions(tuple(masks), np.float32(1.0))


def mask_outside(x: jax.Array, mask: Mask, fill: float = 0.0) -> jax.Array:
    """``x`` (B, H, W, C) with ``fill`` outside the valid region given by ``mask``."""
    rows, cols = mask
    inside = rows[:, :, None, None] & cols[:, None, :, None]
    return jnp.where(inside, x, jnp.asarray(fill, x.dtype))


class _Masks:
    """The masks of one program, looked up by an activation's (H, W)."""

    def __init__(self, regions: ValidRegions):
        self._by_shape = {(rows.shape[1], cols.shape[1]): (rows, cols)
                          for rows, cols in regions.masks}
        self.one = regions.one

    def __call__(self, x: jax.Array, fill: float = 0.0) -> jax.Array:
        return mask_outside(x, self._by_shape[x.shape[1:3]], fill)

    def count(self, x: jax.Array) -> jax.Array:
        """(B,) float32 number of valid positions at ``x``'s resolution."""
        rows, cols = self._by_shape[x.shape[1:3]]
        return (rows.sum(1) * cols.sum(1)).astype(jnp.float32)


def _bottleneck(block: Bottleneck, x, mask: _Masks):
    out = mask(nnx.relu(block.bn1(block.conv1(x))))
    out = mask(nnx.relu(block.bn2(block.conv2(out))))
    out = block.bn3(block.conv3(out))
    shortcut = x
    if block.downsample_conv is not None:  # 1x1, stride s: the same output size as conv2
        shortcut = block.downsample_bn(block.downsample_conv(x))
    return mask(nnx.relu(out + shortcut))


def _basic(block: BasicBlock, x, mask: _Masks):
    out = mask(nnx.relu(block.bn1(block.conv1(x))))
    out = block.bn2(block.conv2(out))
    shortcut = x
    if block.downsample_conv is not None:
        shortcut = block.downsample_bn(block.downsample_conv(x))
    return mask(nnx.relu(out + shortcut))


def masked_stages(encoder: ResNet, x: jax.Array, regions: ValidRegions) -> list[jax.Array]:
    """Activations after the stem, the max-pool and each of the four stages.

    x: (B, H, W, 3) float padded images (values outside the valid region are
    ignored); regions: ``valid_regions(encoder, sizes, (H, W))``. Each returned
    activation is zero outside its valid region and, inside it, equals the
    unpadded image's activation.
    """
    mask = _Masks(regions)
    x = mask(jnp.asarray(x).astype(encoder.dtype))
    x = nnx.relu(encoder.bn1(encoder.conv1(x)))
    out = [mask(x)]
    x = mask(max_pool_3x3_s2(mask(x, -jnp.inf)))
    out.append(x)
    for stage in encoder.stages():
        for block in stage:
            x = (_bottleneck if isinstance(block, Bottleneck) else _basic)(block, x, mask)
            # Materialise each block's output once (see the module docstring).
            x = x / mask.one.astype(x.dtype)
        out.append(x)
    return out


def masked_features(encoder: ResNet, x: jax.Array, regions: ValidRegions) -> jax.Array:
    """The encoder's (B, feat_dim) float32 features of padded images, each at its own size.

    x: (B, H, W, 3) float, normalised as the encoder expects; regions:
    ``valid_regions(encoder, sizes, (H, W))``. Equals ``encoder(image[:h, :w])``
    per image up to float32 summation order; 0x0 images give zeros.
    """
    last = masked_stages(encoder, x, regions)[-1]
    total = jnp.sum(last.astype(jnp.float32), axis=(1, 2))
    return total / jnp.maximum(_Masks(regions).count(last), 1.0)[:, None]
