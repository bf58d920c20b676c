"""The ResNet encoder on zero-padded images, exact for each image's own size.

Images of different sizes share one compiled program when they are padded to
one shape (see ``reiqa_jax.buckets``): one image at the top left of each
batch slot (a *bucket*), or several images side by side in one slot (a
*canvas*). Padding alone would change the features: the convolutions would
see image content where torch sees its zero padding, and the average pool
would count padded positions. This module runs the layers of an existing
:class:`~reiqa_jax.models.resnet.ResNet` (its convolutions, BatchNorms and
max-pool, unchanged) and, after every layer, puts back what the unpadded
computation has outside each image's valid region:

* the input and every activation that feeds a convolution are zero outside
  the valid regions, which is exactly torch's zero padding for the positions
  a valid output reads (a conv with kernel k, stride s, padding p maps a
  valid size n to ``floor((n + 2p - k) / s) + 1`` outputs; the last one reads
  input positions up to ``n + p - 1`` and the first down to ``-p``);
* the max-pool's input is -inf outside the valid regions, as torch pads it;
* the global average pool (:func:`pool_regions`, on the host) averages each
  image's valid positions only.

BatchNorm in eval mode, ReLU, residual sums and 1x1 convolutions never mix
positions, so only the inputs of the layers that do (3x3 and 7x7
convolutions, the max-pool) and each stage's output are masked: what is
computed outside the valid regions in between stays outside them. (Masking
after every layer gives the same features and is slower: the mixed-size
extraction benchmark went from 0.65x to 0.70x PyTorch's speed without it,
benchmarks/RESULTS.md.)
Images in one canvas sit at multiples of 32 pixels (so every stride-2 layer
samples them as it samples the image alone) with at least 32 pixels between
them (at 1/32 scale that still leaves the one zero the last 3x3 convs read
on each side), so they never see each other.

The valid regions after each layer depend only on the images' sizes and
places, so they are computed on the host (:func:`valid_regions`, numpy) and
enter the program as boolean maps, one per activation resolution: any mix of
sizes and layouts with the same padded shape runs in one compilation.

Peak memory: XLA's CPU fusion treats the residual sum + ReLU + mask as cheap
and recomputes it inside the next blocks' fusions instead of reading it
back, which keeps every conv output of a stage alive to the stage's end
(1.8x the memory). Each block's output is therefore divided by a runtime
1.0 (``ValidRegions.one``, exact in IEEE arithmetic): XLA never duplicates a
division, so the output is materialised once. ``optimization_barrier`` would
say this more plainly but the CPU pipeline removes it before fusion.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax import lax

from reiqa_jax.models.resnet import BasicBlock, Bottleneck, ResNet, max_pool_3x3_s2

# (top, left, height, width) of one image inside a padded slot.
Rect = tuple[int, int, int, int]
ALIGN = 32  # images in a canvas start at multiples of this (the encoder's total stride)


class ValidRegions(NamedTuple):
    """What the masked forward needs besides the pixels (a pytree of arrays).

    masks: one (B, H_l, W_l) bool map per activation resolution, input
    resolution first. one: float32 scalar 1.0, given at run time so that XLA
    cannot fold it (see the module docstring).
    """

    masks: tuple[np.ndarray, ...]
    one: np.ndarray


def _after(sizes: np.ndarray, kernel: int, stride: int, pad: int) -> np.ndarray:
    """floor((n + 2 * pad - kernel) / stride) + 1, and 0 for n = 0."""
    return np.where(sizes > 0, (sizes + 2 * pad - kernel) // stride + 1, 0)


def _size_changes(encoder: ResNet) -> list[tuple[int, int, int]]:
    """(kernel, stride, pad) of the layers that can change the spatial size, in order."""

    def geometry(conv: nnx.Conv) -> tuple[int, int, int]:
        (lo_h, hi_h), (lo_w, hi_w) = conv.padding
        if len({lo_h, hi_h, lo_w, hi_w}) != 1 or len(set(conv.kernel_size)) != 1 \
                or len(set(conv.strides)) != 1:
            raise ValueError("masked ResNet needs square kernels, strides and padding")
        return conv.kernel_size[0], conv.strides[0], lo_h

    layers = [geometry(encoder.conv1), (3, 2, 1)]  # the stem conv, the max-pool
    for stage in encoder.stages():
        for block in stage:
            layers.append(geometry(block.conv2 if isinstance(block, Bottleneck) else block.conv1))
    return layers


def valid_regions(encoder: ResNet, placements: Sequence[Sequence[Rect]],
                  shape: tuple[int, int]) -> tuple[ValidRegions, list[list[Rect]]]:
    """Host-side (numpy) masks of each resolution of ``encoder`` on padded ``shape``.

    placements: for each batch slot, the (top, left, height, width) of the
    images in it (none for an empty slot); tops and lefts are multiples of
    ALIGN, or 0. Returns the masks, and each image's rectangle at the last
    resolution (for :func:`pool_regions`).
    """
    shape = tuple(int(s) for s in shape)
    rects = [[tuple(int(v) for v in rect) for rect in slot] for slot in placements]
    for slot in rects:
        for top, left, height, width in slot:
            if (top % ALIGN or left % ALIGN or height < 0 or width < 0
                    or top + height > shape[0] or left + width > shape[1]):
                raise ValueError(f"image {(top, left, height, width)} does not lie in {shape} "
                                 f"at multiples of {ALIGN}")
    masks = []

    def add(size, slots):
        mask = np.zeros((len(slots), *size), bool)
        for b, slot in enumerate(slots):
            for top, left, height, width in slot:
                mask[b, top:top + height, left:left + width] = True
        if not masks or masks[-1].shape != mask.shape:
            masks.append(mask)

    size = np.asarray(shape)
    add(tuple(size), rects)
    for kernel, stride, pad in _size_changes(encoder):
        size = _after(size, kernel, stride, pad)
        rects = [[(top // stride, left // stride,
                   *(int(v) for v in _after(np.asarray([height, width]), kernel, stride, pad)))
                  for top, left, height, width in slot] for slot in rects]
        add(tuple(int(v) for v in size), rects)
    return ValidRegions(tuple(masks), np.float32(1.0)), rects


def mask_outside(x: jax.Array, mask: jax.Array, fill: float = 0.0) -> jax.Array:
    """``x`` (B, H, W, C) with ``fill`` where ``mask`` (B, H, W) is False."""
    # lax, not jnp: this runs ~50 times per trace, once per padded shape.
    inside = lax.broadcast_in_dim(mask, x.shape, (0, 1, 2))
    return lax.select(inside, x, lax.full_like(x, fill))


def _relu(x: jax.Array) -> jax.Array:
    return lax.max(x, lax.full_like(x, 0))


class _Masks:
    """The masks of one program, looked up by an activation's (H, W).

    Within one network a resolution always carries one valid region: two
    layers with the same padded size have the same valid sizes.
    """

    def __init__(self, regions: ValidRegions):
        self._by_shape = {mask.shape[1:]: mask for mask in regions.masks}
        self.one = regions.one

    def __call__(self, x: jax.Array, fill: float = 0.0) -> jax.Array:
        return mask_outside(x, self._by_shape[x.shape[1:3]], fill)


def _bottleneck(block: Bottleneck, x, mask: _Masks):
    # Only conv2 (3x3) mixes positions: its input is the one masked. conv1,
    # conv3 and the 1x1 shortcut are pointwise (the strided shortcut samples
    # valid positions from valid ones), so what they compute outside the
    # valid regions stays there, and the stage's output is masked.
    out = mask(_relu(block.bn1(block.conv1(x))))
    out = _relu(block.bn2(block.conv2(out)))
    out = block.bn3(block.conv3(out))
    shortcut = x
    if block.downsample_conv is not None:  # 1x1, stride s: the same output size as conv2
        shortcut = block.downsample_bn(block.downsample_conv(x))
    return _relu(out + shortcut)


def _basic(block: BasicBlock, x, mask: _Masks):
    # conv1 and conv2 are both 3x3: both inputs masked (the block's output
    # feeds the next block's conv1).
    out = mask(_relu(block.bn1(block.conv1(x))))
    out = block.bn2(block.conv2(out))
    shortcut = x
    if block.downsample_conv is not None:
        shortcut = block.downsample_bn(block.downsample_conv(x))
    return mask(_relu(out + shortcut))


def masked_stages(encoder: ResNet, x: jax.Array, regions: ValidRegions) -> list[jax.Array]:
    """Activations after the stem, the max-pool and each of the four stages.

    x: (B, H, W, 3) float padded images (values outside the valid regions are
    ignored); regions: from ``valid_regions(encoder, placements, (H, W))``.
    Each returned activation is zero outside its valid regions and, inside
    each, equals that image's own (unpadded) activation.
    """
    mask = _Masks(regions)
    x = mask(jnp.asarray(x).astype(encoder.dtype))
    x = _relu(encoder.bn1(encoder.conv1(x)))
    out = [mask(x)]
    x = mask(max_pool_3x3_s2(mask(x, -jnp.inf)))
    out.append(x)
    for stage in encoder.stages():
        for block in stage:
            x = (_bottleneck if isinstance(block, Bottleneck) else _basic)(block, x, mask)
            # Materialise each block's output once (see the module docstring).
            x = x / mask.one.astype(x.dtype)
        x = mask(x)
        out.append(x)
    return out


def pool_regions(last: np.ndarray, rects: Sequence[Sequence[Rect]]) -> list[list[np.ndarray]]:
    """The global average pool of each image: mean of its rectangle of ``last``.

    last: (B, H, W, C) the final activation (host array); rects: from
    :func:`valid_regions`. Returns, per slot, one (C,) float32 vector per
    image (zeros for an empty image). Sums in float64.
    """
    out = []
    for b, slot in enumerate(rects):
        vectors = []
        for top, left, height, width in slot:
            region = last[b, top:top + height, left:left + width]
            total = region.sum(axis=(0, 1), dtype=np.float64)
            vectors.append((total / max(1, height * width)).astype(np.float32))
        out.append(vectors)
    return out
