"""A picture smaller than the array that holds it: its valid extent.

jit needs static shapes, pictures come in every size. A picture of (h, w)
therefore travels in an (H, W) canvas (``reiqa_jax.data.tiles``): the
picture at the top-left, anything at all outside it. Every distortion whose
result depends on the picture's extent takes ``valid_hw`` (int32 (2,) =
(h, w), traced) and computes, on the top-left h x w, what it computes on
the h x w picture alone; what it leaves outside is unspecified (``distort``
zeroes it). The helpers here put the picture's own border rule where the
canvas holds something else:

* ``edge_extend``: every sample beyond the picture repeats the last row /
  column (scipy ``mode='nearest'``, Pillow's clamped box-blur window,
  libjpeg's edge filling);
* ``symmetric_index`` / ``symmetric_take``: half-sample symmetric extension
  (``d c b a | a b c d | d c b a``, numpy ``'symmetric'``, scipy
  ``'reflect'``), periodic with period 2n, to any distance;
* ``valid_mask`` / ``zero_outside``: the picture's pixels.

All functions are pure and jit / vmap friendly.
"""
from __future__ import annotations

import jax.numpy as jnp
from jax import lax


def _axis_iota(x, axis: int):
    shape = [1] * x.ndim
    shape[axis] = x.shape[axis]
    return jnp.arange(x.shape[axis], dtype=jnp.int32).reshape(shape)


def edge_extend_axis(x, n_valid, axis: int):
    """x with every index >= n_valid along ``axis`` replaced by index n_valid - 1."""
    n_valid = jnp.asarray(n_valid, jnp.int32)
    last = lax.dynamic_slice_in_dim(x, n_valid - 1, 1, axis)
    return jnp.where(_axis_iota(x, axis) < n_valid, x, last)


def edge_extend(x, valid_hw, axes=(0, 1)):
    """(H, W, ...) array -> the same with rows >= h repeating row h - 1 and
    columns >= w repeating column w - 1 (``axes`` picks which of the two)."""
    for axis in axes:
        x = edge_extend_axis(x, valid_hw[axis], axis)
    return x


def symmetric_index(index, n_valid):
    """Half-sample symmetric fold of int32 indices (any value) into [0, n_valid).

    Index i of the extended signal reads sample ``fold(i)``: period 2n, and
    ``fold(-1 - i) = fold(i) = fold(2n - 1 - i)``.
    """
    n = jnp.asarray(n_valid, jnp.int32)
    i = jnp.mod(jnp.asarray(index, jnp.int32), 2 * n)
    return jnp.where(i >= n, 2 * n - 1 - i, i)


def symmetric_take(x, n_valid, axis: int, start: int, size: int):
    """Samples ``start .. start + size - 1`` (static) of the half-sample
    symmetric extension of ``x[:n_valid]`` along ``axis``."""
    idx = symmetric_index(jnp.arange(start, start + size, dtype=jnp.int32), n_valid)
    return jnp.take(x, idx, axis=axis)


def valid_mask(shape_hw, valid_hw):
    """bool (H, W): True on the picture."""
    rows = jnp.arange(shape_hw[0], dtype=jnp.int32)[:, None] < valid_hw[0]
    cols = jnp.arange(shape_hw[1], dtype=jnp.int32)[None, :] < valid_hw[1]
    return rows & cols


def zero_outside(x, valid_hw):
    """(H, W, ...) -> zeros outside the picture (keeps junk from growing
    through later ops: 0 * inf is nan)."""
    mask = valid_mask(x.shape[:2], valid_hw).reshape(x.shape[:2] + (1,) * (x.ndim - 2))
    return jnp.where(mask, x, jnp.zeros((), x.dtype))
