"""Convolution helpers shared by the blur ops, with edge-replication borders.

The official blurs use two border rules, and both are "replicate the edge
pixel": scipy ``ndimage.convolve(mode='nearest')`` and Pillow's box blur
(which clamps its window indices). So every helper here pads with
``mode='edge'``.

Kernels may be traced values (per-sample weights picked by ``level`` from a
constant table) as long as their *shape* is static, which keeps one compiled
program for all levels and lets ``vmap`` batch them.
"""

import jax
import jax.numpy as jnp
from jax import custom_batching, lax


def shifted_sum(x, weights, axis, center):
    """Weighted sum of edge-clamped shifts of ``x`` along one axis.

    out[i] = sum_k weights[k] * x[clip(i + k - center, 0, n - 1)]

    Args:
      x: (..., n, ...) array, any numeric dtype (uint32 for Pillow's
        fixed-point box blur, float32 otherwise).
      weights: (K,) array of the same dtype as ``x``; may be traced.
      axis: the axis to filter along.
      center: static int, the tap index that lands on offset 0.

    Returns an array with the shape and dtype of ``x``.
    """
    k = weights.shape[0]
    n = x.shape[axis]
    pad = [(0, 0)] * x.ndim
    pad[axis] = (center, k - 1 - center)
    xp = jnp.pad(x, pad, mode="edge")
    out = jnp.zeros_like(x)
    # K static slices + FMAs: cheaper than a gather, and exact for integers.
    for j in range(k):
        out = out + weights[j] * lax.slice_in_dim(xp, j, j + n, axis=axis)
    return out


def convolve2d_nearest(image, kernel):
    """``scipy.ndimage.convolve(channel, kernel, mode='nearest')`` per channel.

    scipy's convolve flips the kernel and puts its origin at
    ``(kh // 2, kw // 2)``, so for even sizes the kernel lands one pixel off
    from "centred"; we keep exactly that placement:

      out[y, x] = sum_{a,b} kernel[a, b] * image[clip(y + kh//2 - a), clip(x + kw//2 - b)]

    Args:
      image: (H, W, C) float32.
      kernel: (kh, kw) float32, may be traced (static shape).

    Returns (H, W, C) float32, not rounded.
    """
    kh, kw = kernel.shape
    # Correlation with the flipped kernel == convolution. Correlation taps a
    # land on image[y + a - pad_top]; with flipped index a' = kh-1-a we need
    # pad_top = kh - 1 - kh//2 and pad_bottom = kh//2.
    top, left = kh - 1 - kh // 2, kw - 1 - kw // 2
    xp = jnp.pad(image, ((top, kh // 2), (left, kw // 2), (0, 0)), mode="edge")
    lhs = jnp.transpose(xp, (2, 0, 1))[:, None]  # (C, 1, H+, W+): channels as batch
    rhs = kernel[::-1, ::-1][None, None].astype(image.dtype)
    out = lax.conv_general_dilated(
        lhs, rhs, window_strides=(1, 1), padding="VALID",
        precision=lax.Precision.HIGHEST)
    return jnp.transpose(out[:, 0], (1, 2, 0))


def map_per_sample(single, padded, x, level, *extra):
    """Run a level-dependent op on a batch with per-sample levels.

    ``single(x_i, level_i, *extra_i)`` takes a scalar level and may
    ``lax.switch`` to a program specialised for it; ``padded(x_i, level_i,
    *extra_i)`` is one program for every level (tables padded to the
    largest), fit for ``vmap``. On CPU a ``lax.map`` of ``single`` is faster
    (each sample runs only its own level, and on this backend a loop over
    samples costs little); on other backends ``vmap(padded)`` keeps the batch
    in one parallel program. ``padded=None``: ``lax.map`` everywhere.

    Args: x (B, ...) batch; level (B,) int32; extra: arrays with leading B
    (e.g. the pictures' valid sizes). Returns the batched output.
    """
    mapped = lambda x, l, *e: lax.map(lambda a: single(*a), (x, l) + tuple(e))
    if padded is None:
        return mapped(x, level, *extra)
    return lax.platform_dependent(
        x, level, *extra, cpu=mapped,
        default=lambda x, l, *e: jax.vmap(padded)(x, l, *e))


def level_dispatch(single, padded):
    """(x, level, *extra) -> x, running only the chosen level's program wherever it can.

    ``single(x, level, *extra)`` takes a scalar level (typically a
    ``lax.switch`` over programs specialised per level); ``padded(x, level,
    *extra)`` is one program for every level (or None). ``extra``: arrays
    that go with x (a picture's valid size). A scalar level (``jit``,
    ``lax.map``/``lax.switch`` in ``distort_batch``) calls ``single``. Under
    ``vmap`` a shared level stays a switch around the batched op; per-sample
    levels, where a switch would become a select running every branch, go to
    ``map_per_sample``.
    """
    @custom_batching.custom_vmap
    def f(x, level, *extra):
        return single(x, level, *extra)

    @f.def_vmap
    def f_vmap(axis_size, in_batched, x, level, *extra):
        x_batched, level_batched, *extra_batched = in_batched
        if level_batched:
            args = [a if b else jnp.broadcast_to(a, (axis_size,) + jnp.shape(a))
                    for a, b in zip((x, level) + tuple(extra), in_batched)]
            return map_per_sample(single, padded, *args), True
        if x_batched or any(extra_batched):
            axes = tuple(0 if b else None for b in in_batched)
            return jax.vmap(single, in_axes=axes)(x, level, *extra), True
        return single(x, level, *extra), False

    return f
