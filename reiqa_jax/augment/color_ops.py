"""Colour distortions: 3 colour diffusion, 4 colour shift, 5 HSV saturation,
6 Lab over-saturation (official ``imcolordiffuse``, ``imcolorshift``,
``imcolorsaturate``, ``imsaturate``).

Ops: ``op(key, image, level) -> image``; image (H, W, 3) float32 in [0, 1] on
the uint8 grid (H, W >= 12, the largest colour-shift padding);
level int 0-4 or traced int32 scalar; output same shape/dtype, truncated to
the uint8 grid like the official ``np.uint8(...)``. Only ``color_shift`` uses
``key``. Colour diffusion and colour shift depend on the picture's extent
(blur borders, global statistics, the shift's padding) and take an optional
``valid_hw`` (``extent.py``); the other two are per pixel.
"""

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from reiqa_jax.augment.extent import valid_mask
from reiqa_jax.augment.exact64 import rounded, runtime_zero

from reiqa_jax.augment.colorspace import (
    hsv_to_rgb,
    lab_to_rgb,
    rgb_to_gray,
    rgb_to_hsv,
    rgb_to_lab,
)
from reiqa_jax.augment.quantize import truncate_u8
from reiqa_jax.augment.sharpen import gradient

DIFFUSION_LEVELS = (1, 3, 6, 8, 12)
SHIFT_LEVELS = (1, 3, 6, 8, 12)
HSV_SATURATION_LEVELS = (0.4, 0.2, 0.1, 0.0, -0.4)
LAB_SATURATION_LEVELS = (1, 2, 3, 6, 9)

_TRUNCATE = 4.0  # skimage.filters.gaussian / scipy default


def _gauss_radius(sigma):
    """scipy.ndimage's kernel radius: int(truncate * sigma + 0.5)."""
    return int(_TRUNCATE * float(sigma) + 0.5)


def _diffusion_sigma(amount):
    return 1.5 * amount + 2.0


_DIFFUSION_SIGMAS = np.array([_diffusion_sigma(a) for a in DIFFUSION_LEVELS], np.float32)
_DIFFUSION_RADII = np.array([_gauss_radius(s) for s in _DIFFUSION_SIGMAS], np.int32)


def nearest_blur_matrix(n, sigma, radius, max_radius, n_valid=None):
    """(n, n) matrix B with B @ x == scipy gaussian_filter1d(x, sigma, mode='nearest').

    sigma, radius: scalars (may be traced); taps beyond ``radius`` are zero,
    ``max_radius`` (static int) bounds the tap count. 'nearest' = edge
    padding: taps that fall off either end add their weight to the first or
    last sample, so B holds cumulative tail weights in columns 0 and n-1.
    Valid for any n >= 2, including kernels longer than the signal.
    n_valid: optional int32 scalar: the signal is x[:n_valid] (its last
    sample takes the tail, later columns are zero; rows >= n_valid are junk).
    """
    last_col = n - 1 if n_valid is None else jnp.asarray(n_valid, jnp.int32) - 1
    d = jnp.arange(-max_radius, max_radius + 1, dtype=jnp.float32)
    w = jnp.where(jnp.abs(d) <= radius, jnp.exp(-0.5 * (d / sigma) ** 2), 0.0)
    w = w / jnp.sum(w)
    cdf = jnp.cumsum(w)  # cdf[k] = weight of offsets <= k - max_radius
    cdf = jnp.concatenate([jnp.zeros((1,), w.dtype), cdf])  # cdf[k] = offsets < k - max_radius

    i = jnp.arange(n)[:, None]
    j = jnp.arange(n)[None, :]
    off = j - i
    inner = jnp.where(jnp.abs(off) <= max_radius, w[jnp.clip(off + max_radius, 0, 2 * max_radius)], 0.0)

    def offsets_le(k):  # total weight of offsets <= k
        return cdf[jnp.clip(k + max_radius + 1, 0, 2 * max_radius + 1)]

    first = offsets_le(-i[:, 0])  # all taps landing at index <= 0
    last = 1.0 - offsets_le(last_col - 1 - i[:, 0])  # all taps landing at index >= last
    b = jnp.where(j == 0, first[:, None], inner)
    b = jnp.where(j == last_col, last[:, None], b)
    return b if n_valid is None else jnp.where(j > last_col, 0.0, b)


def gaussian_nearest(x, sigma, radius, max_radius, valid_hw=None):
    """skimage ``filters.gaussian(x, sigma, mode='nearest', truncate=4)`` over H, W.

    x: (H, W) or (H, W, C) float; channels are blurred independently.
    sigma/radius may be traced (per-level tables); max_radius is static.
    valid_hw: optional int32 (2,): blur the picture x[:h, :w] alone.
    """
    h, w = x.shape[:2]
    vh, vw = (None, None) if valid_hw is None else (valid_hw[0], valid_hw[1])
    bh = nearest_blur_matrix(h, sigma, radius, max_radius, vh)
    bw = nearest_blur_matrix(w, sigma, radius, max_radius, vw)
    hp = lax.Precision.HIGHEST  # no TF32/bf16 passes on accelerators
    y = jnp.tensordot(bh, x, axes=(1, 0), precision=hp)
    y = jnp.tensordot(bw, jnp.moveaxis(y, 1, 0), axes=(1, 0), precision=hp)
    return jnp.moveaxis(y, 0, 1)


def color_diffusion(key, image, level, valid_hw=None):
    """3: blur Lab a/b (sigma 1.5*amount + 2), scale them by amount, keep L.

    (The official blurs L too but then restores it.) Kernel radii 14..80 taps
    are padded to the largest so a traced level shares one computation.
    """
    del key
    lab = rgb_to_lab(image)
    amount = jnp.asarray(DIFFUSION_LEVELS, jnp.float32)[level]
    sigma = jnp.asarray(_DIFFUSION_SIGMAS)[level]
    radius = jnp.asarray(_DIFFUSION_RADII)[level]
    ab = gaussian_nearest(lab[..., 1:], sigma, radius, int(_DIFFUSION_RADII.max()),
                          valid_hw) * amount
    lab = jnp.concatenate([lab[..., :1], ab], axis=-1)
    return truncate_u8(lab_to_rgb(lab))


def _minmax(e, mask=None):
    """Official ``mapmm``: rescale to [0, 1] unless e is constant (the
    extremes over ``mask`` when given)."""
    if mask is None:
        lo, hi = jnp.min(e), jnp.max(e)
    else:
        lo = jnp.min(jnp.where(mask, e, jnp.inf))
        hi = jnp.max(jnp.where(mask, e, -jnp.inf))
    span = hi - lo
    return jnp.where(span > 0, (e - lo) / jnp.where(span > 0, span, 1.0), e)


def upper_percentile(v, q, valid=None):
    """numpy's default ('linear') percentile q of 1-D v, for static q >= 50.

    Only the order statistics at and above floor(q/100 * (n-1)) are needed,
    so this takes them with ``lax.top_k`` (~1% of the image for q = 99)
    instead of sorting everything: ~15x faster than ``jnp.sort`` on CPU.
    valid: optional bool like v: the percentile of v[valid] (a traced count).
    """
    if valid is not None:
        return _upper_percentile_masked(v, q, valid)
    n = v.shape[0]
    pos = q / 100.0 * (n - 1)
    k = int(np.floor(pos))
    frac = pos - k
    m = n - k
    top = lax.top_k(v, m)[0]  # descending: top[m-1] = sorted[k]
    # Read sorted[k] and sorted[k+1] with reductions, not top[-1]/top[-2]:
    # XLA rewrites "top_k then slice" into a full sort (~60 ms on CPU).
    below = jnp.min(top)
    if m < 2:
        return below
    above = jnp.min(jnp.where(jnp.arange(m) == m - 1, jnp.inf, top))
    return below + (above - below) * frac


def _upper_percentile_masked(v, q, valid):
    """``upper_percentile`` of v[valid]: the same order statistics, of a count
    known at run time (top_k over enough entries for the whole array)."""
    n_all = v.shape[0]
    m_all = n_all - int(np.floor(q / 100.0 * (n_all - 1)))  # >= m for any n <= n_all
    with jax.enable_x64(True):  # pos and frac as numpy computes them, in float64
        n = jnp.sum(valid, dtype=jnp.int64)
        pos = rounded((q / 100.0) * (n - 1).astype(jnp.float64), runtime_zero(n))
        k = jnp.floor(pos)
        frac = (pos - k).astype(jnp.float32)
        m = (n - k.astype(jnp.int64)).astype(jnp.int32)
    top = lax.top_k(jnp.where(valid, v, -jnp.inf), m_all)[0]
    idx = jnp.arange(m_all, dtype=jnp.int32)
    # Masked reductions, not top[m-1]: XLA turns "top_k then slice" into a sort.
    below = jnp.min(jnp.where(idx < m, top, jnp.inf))
    above = jnp.min(jnp.where(idx < m - 1, top, jnp.inf))
    return jnp.where(m < 2, below, below + (above - below) * frac)


def color_shift_edge_map(image, valid_hw=None):
    """Official edge weight e: |grad gray| blurred (sigma 4), normalised,
    floored at 0.1, percentile-clipped (1%/99%) and normalised. (H, W) in [0, 1]
    (of the picture image[:h, :w] when ``valid_hw`` is given)."""
    gray = rgb_to_gray(image)
    h, w = (None, None) if valid_hw is None else (valid_hw[0], valid_hw[1])
    mask = None if valid_hw is None else valid_mask(image.shape[:2], valid_hw)
    e = jnp.hypot(gradient(gray, 0, h), gradient(gray, 1, w))
    e = gaussian_nearest(e, 4.0, _gauss_radius(4.0), _gauss_radius(4.0), valid_hw)
    e = _minmax(jnp.clip(_minmax(e, mask), 0.1, 1.0), mask)
    flat = e.reshape(-1)
    flat_mask = None if mask is None else mask.reshape(-1)
    hi = upper_percentile(flat, 99.0, flat_mask)
    lo = 1.0 - upper_percentile(1.0 - flat, 99.0, flat_mask)  # the official's 1st percentile
    return _minmax(jnp.clip(e, lo, hi), mask)


def color_shift_amounts(draw, level):
    """int32 (2,) shift from a uniform [0, 1)^2 draw: round(amount * v / |v|)."""
    amount = jnp.asarray(SHIFT_LEVELS, jnp.float32)[level]
    unit = draw / jnp.maximum(jnp.linalg.norm(draw), 1e-12)
    return jnp.round(unit * amount).astype(jnp.int32)


def _symmetric_index(i, n):
    """numpy 'symmetric' padding index map, for overhangs of at most n."""
    i = jnp.where(i < 0, -i - 1, i)
    return jnp.where(i >= n, 2 * n - 1 - i, i)


def shift_green(green, shift, valid_hw=None):
    """The official shift of the green plane, reproduced index by index.

    Official: pad symmetrically by p = max(shift) on all sides, then
    ``np.roll(padded, shift)`` with no axis, which rolls the *flattened*
    array by shift[0] + shift[1], and crop the pad. So pixel (r, c) reads
    flat index (r + p) * (W + 2p) + (c + p) - s of the padded array: a
    horizontal shift by s that wraps into the previous padded row.
    green (H, W); shift int32 (2,) >= 0 with max >= 1; valid_hw: optional
    int32 (2,), the picture is green[:h, :w]. Returns (H, W).
    """
    r = jnp.arange(green.shape[0])[:, None]
    c = jnp.arange(green.shape[1])[None, :]
    h, w = green.shape if valid_hw is None else (valid_hw[0], valid_hw[1])
    p = jnp.max(shift)
    s = jnp.sum(shift)
    wp = w + 2 * p
    flat = (r + p) * wp + (c + p) - s  # always >= 0 since s <= 2p
    rows = _symmetric_index(flat // wp - p, h)
    cols = _symmetric_index(flat % wp - p, w)
    if valid_hw is not None:  # (outside the picture the indices are junk)
        rows = jnp.clip(rows, 0, green.shape[0] - 1)
        cols = jnp.clip(cols, 0, green.shape[1] - 1)
    return green[rows, cols]


def color_shift(key, image, level, valid_hw=None):
    """4: shift the green channel by a random vector of length ~amount
    (1, 3, 6, 8, 12 px), blended in where the edge map e is high."""
    e = color_shift_edge_map(image, valid_hw)
    shift = color_shift_amounts(jax.random.uniform(key, (2,)), level)
    green = image[..., 1]
    mixed = shift_green(green, shift, valid_hw) * e + green * (1.0 - e)
    return truncate_u8(image.at[..., 1].set(mixed))


def color_saturation(key, image, level):
    """5: scale HSV saturation by 0.4, 0.2, 0.1, 0, -0.4 (level 0..4)."""
    del key
    hsv = rgb_to_hsv(image)
    amount = jnp.asarray(HSV_SATURATION_LEVELS, jnp.float32)[level]
    return truncate_u8(hsv_to_rgb(hsv.at[..., 1].multiply(amount)))


def color_oversaturation(key, image, level):
    """6: scale Lab a, b by 1, 2, 3, 6, 9 (level 0..4); lab2rgb clips."""
    del key
    lab = rgb_to_lab(image)
    amount = jnp.asarray(LAB_SATURATION_LEVELS, jnp.float32)[level]
    return truncate_u8(lab_to_rgb(lab.at[..., 1:].multiply(amount)))
