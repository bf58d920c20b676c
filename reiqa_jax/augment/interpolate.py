"""Cubic B-spline resampling with scipy's ``mode='reflect'``, in JAX.

``jax.scipy.ndimage.map_coordinates`` stops at order 1, but the official
jitter (``imwarpmap``) calls ``scipy.ndimage.map_coordinates(order=3,
mode='reflect')``: an interpolating cubic B-spline, i.e. a spline prefilter
followed by 4x4 taps, on the half-sample symmetric extension of the image
(``d c b a | a b c d | d c b a``). This module computes the same thing.

Prefilter. The B-spline coefficients c of a signal f solve
``(c[n-1] + 4 c[n] + c[n+1]) / 6 = f[n]``. On an infinite signal the bounded
solution is the two-sided geometric filter ``c[n] = sqrt(3) * sum_k z^|k|
f[n+k]`` with pole ``z = sqrt(3) - 2`` (|z| = 0.268), which factors as
``-6 z`` times a causal geometric filter ``1 / (1 - z q^-1)`` times its
anti-causal mirror. The half-sample symmetric extension of f is an infinite
signal, so filtering it gives the coefficients scipy's 'reflect' prefilter
computes (scipy runs the same causal / anti-causal recursion, with boundary
conditions for that extension). A recursion is a sequential scan; instead each
geometric filter is written as the product ``(1 + z q^-1)(1 + z^2 q^-2)
(1 + z^4 q^-4)(1 + z^8 q^-8)`` = its first 16 terms (q^-1 = one-sample
delay), four fused shift-and-add passes. The
neglected tail is |z|^16 < 1e-9 of the signal range, far below float32
rounding. Measured against scipy on 384x512 photos: five warps agree
within 0.01 grey levels (PSNR ~118 dB); after truncation to uint8 ~1.5e-4
of the values differ by one level.

Evaluation. Coordinates are first folded into [-0.5, n - 0.5] (the spline of
a symmetric signal is itself symmetric with the same period 2n, so this is
exact), then the four taps per axis read a coefficient array padded by 2
symmetric samples per side (coefficients of a half-sample symmetric signal are
half-sample symmetric too).

A picture smaller than its array (``valid_hw``, ``extent.py``): the
symmetric extension is taken at the picture's border (by folding indices,
``extent.symmetric_take``) wherever the prefilter or the taps read beyond
it, so the picture's pixels come out as for the picture alone.

All functions are pure and jit/vmap friendly.
"""

import math

import jax.numpy as jnp
from jax import lax

from reiqa_jax.augment.extent import symmetric_take

_POLE = math.sqrt(3.0) - 2.0
# Doubling stages per geometric filter: 2**4 = 16 terms of the series.
_PREFILTER_STAGES = (1, 2, 4, 8)
# Symmetric padding the two filters consume (15 samples each side) plus one.
_PREFILTER_PAD = 16
# Coefficient padding per side: folded coordinates reach floor(-0.5) - 1 = -2
# and floor(n - 0.5) + 2 = n + 1.
_TAP_PAD = 2


def _symmetric_pad(x, pad, axis):
    """Half-sample symmetric padding along ``axis`` (numpy mode 'symmetric')."""
    widths = [(0, 0)] * x.ndim
    widths[axis] = (pad, pad)
    return jnp.pad(x, widths, mode="symmetric")


def spline_prefilter_reflect(image, axes=(0, 1), valid_hw=None):
    """Cubic B-spline coefficients of ``image`` under 'reflect' boundaries.

    Args:
      image: float array (e.g. (H, W, C) float32), any range.
      axes: the spatial axes to filter (each must have length >= 1).
      valid_hw: optional int32 sizes, one per axis of ``axes``: the signal is
        the leading part of each axis (the coefficients beyond are junk).

    Returns:
      Array of the same shape and dtype: the coefficients scipy's
      ``spline_filter(image, order=3, mode='reflect')`` gives on those axes.
    """
    out = image
    for i, axis in enumerate(axes):
        n = out.shape[axis]
        if valid_hw is None:
            x = _symmetric_pad(out, _PREFILTER_PAD, axis)
        else:
            x = symmetric_take(out, valid_hw[i], axis, -_PREFILTER_PAD, n + 2 * _PREFILTER_PAD)
        # Causal pass: x[i] <- sum_{m<16} z^m x[i - m]; each stage drops its
        # first s samples, which lack a left neighbour at distance s.
        for s in _PREFILTER_STAGES:
            length = x.shape[axis]
            x = lax.slice_in_dim(x, s, length, axis=axis) + _POLE**s * lax.slice_in_dim(
                x, 0, length - s, axis=axis
            )
        # Anti-causal pass: x[i] <- sum_{m<16} z^m x[i + m]; drops the last s.
        for s in _PREFILTER_STAGES:
            length = x.shape[axis]
            x = lax.slice_in_dim(x, 0, length - s, axis=axis) + _POLE**s * lax.slice_in_dim(
                x, s, length, axis=axis
            )
        # Index i now holds padded sample i + 15, i.e. original sample i - 1.
        out = (-6.0 * _POLE) * lax.slice_in_dim(x, 1, 1 + n, axis=axis)
    return out


def _fold_reflect(x, n):
    """Fold coordinates into [-0.5, n - 0.5] by half-sample symmetry (period 2n)."""
    u = jnp.mod(x + 0.5, 2.0 * n)
    u = jnp.where(u > n, 2.0 * n - u, u)
    return u - 0.5


def _bspline_weights(t):
    """B-spline weights for taps floor(x) - 1 .. floor(x) + 2; t = x - floor(x)."""
    t2 = t * t
    t3 = t2 * t
    w0 = (1.0 - t) ** 3 / 6.0
    w1 = (3.0 * t3 - 6.0 * t2 + 4.0) / 6.0
    w2 = (-3.0 * t3 + 3.0 * t2 + 3.0 * t + 1.0) / 6.0
    w3 = t3 / 6.0
    return (w0, w1, w2, w3)


def sample_coefficients(coeffs, y, x, valid_hw=None):
    """Evaluate a cubic spline (from ``spline_prefilter_reflect``) at points.

    Args:
      coeffs: (H, W, C) float coefficients.
      y, x: float arrays of one shape S (row / column coordinates in pixels,
        any value: folded by 'reflect' symmetry).
      valid_hw: optional int32 (2,): the spline is that of coeffs[:h, :w].

    Returns:
      (*S, C) array, the spline value at each point, dtype of ``coeffs``.
    """
    h, w, c = coeffs.shape
    vh, vw = (h, w) if valid_hw is None else (valid_hw[0], valid_hw[1])
    y = _fold_reflect(y.astype(coeffs.dtype), vh)
    x = _fold_reflect(x.astype(coeffs.dtype), vw)
    fy = jnp.floor(y)
    fx = jnp.floor(x)
    wy = _bspline_weights(y - fy)
    wx = _bspline_weights(x - fx)
    if valid_hw is None:
        padded = _symmetric_pad(_symmetric_pad(coeffs, _TAP_PAD, 0), _TAP_PAD, 1)
    else:
        padded = symmetric_take(coeffs, vh, 0, -_TAP_PAD, h + 2 * _TAP_PAD)
        padded = symmetric_take(padded, vw, 1, -_TAP_PAD, w + 2 * _TAP_PAD)
    pw = w + 2 * _TAP_PAD
    flat = padded.reshape(-1, c)
    # Index of tap (0, 0), i.e. padded row fy - 1 + pad, column fx - 1 + pad.
    base = (fy.astype(jnp.int32) + _TAP_PAD - 1) * pw + (fx.astype(jnp.int32) + _TAP_PAD - 1)
    out = jnp.zeros(y.shape + (c,), coeffs.dtype)
    for a in range(4):
        row = jnp.zeros(y.shape + (c,), coeffs.dtype)
        for b in range(4):
            vals = jnp.take(flat, base + (a * pw + b), axis=0, mode="clip")
            row = row + wx[b][..., None] * vals
        out = out + wy[a][..., None] * row
    return out


def warp_cubic_reflect(image, dy, dx, valid_hw=None):
    """``out[i, j] = spline(image)(i - dy[i, j], j - dx[i, j])`` per channel.

    The official ``imwarpmap``: ``map_coordinates(im[..., k], [yy - sy,
    xx - sx], order=3, mode='reflect')`` for each channel k.

    Args:
      image: (H, W, C) float32, any range (the official passes 0-255 floats).
      dy, dx: (H, W) float32 displacements in pixels.
      valid_hw: optional int32 (2,): warp the picture image[:h, :w] alone.

    Returns:
      (H, W, C) float32, not clipped.
    """
    h, w, _ = image.shape
    yy = jnp.arange(h, dtype=image.dtype)[:, None]
    xx = jnp.arange(w, dtype=image.dtype)[None, :]
    coeffs = spline_prefilter_reflect(image, valid_hw=valid_hw)
    return sample_coefficients(coeffs, yy - dy, xx - dx, valid_hw)
