"""Overlapping crop pairs and the half-scale resize of the official recipe.

Official code (``datasets/dataset.py IQAImageClass``), per scale:

* ``y = np.random.randint(P*(1-max_OLA), P*(1-min_OLA))`` and
  ``x = np.random.randint(max(0, ((1-max_OLA)P^2 - P y)/(P-y)),
  max(0, ((1-min_OLA)P^2 - P y)/(P-y)))``. numpy truncates float bounds
  toward zero, so the integer ranges are ``[int(lo), int(hi))``; they are
  computed here on the host with the same float expressions
  (``offset_table``). For P=160: y in [112, 143], x in [0, int(hi(y)) - 1],
  overlap (P-y)(P-x)/P^2 in [0.1009, 0.30].
* crop region of side ``S = P + max(y, x)``: ``RandomCrop(S)`` when the image
  is at least S in both dims, else ``CenterCrop(S)`` (torchvision: zero-pads
  the short dims, centre offset ``round((n - S) / 2)`` with Python's
  half-to-even rounding in the others).
* crop1 = the top-left P x P of the region, crop2 = the P x P at (y, x).

Scale 2 is ``torch.nn.functional.interpolate(mode='bicubic',
align_corners=True)`` to (H//2, W//2): a = -0.75, no antialias, clamped
border taps, values not clipped (``resize_half_bicubic``).

Images may carry a *valid size* (h, w) <= (H, W): only the top-left h x w is
the picture (the rest is tile padding, see ``reiqa_jax.data.tiles``); crop geometry then
follows the official rules for an h x w image and reads zeros outside it.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np


@functools.lru_cache(maxsize=None)
def offset_table(patch_size: int, min_ola: float = 0.10, max_ola: float = 0.30):
    """Integer ranges of the official offset draws, host side.

    Returns:
      (y_lo, y_hi, x_lo, x_hi): ints y_lo < y_hi (y in [y_lo, y_hi)), and
      int64 arrays (y_hi - y_lo,) with x in [x_lo[y - y_lo], x_hi[...]).
    """
    p = patch_size
    y_lo, y_hi = int(p * (1 - max_ola)), int(p * (1 - min_ola))
    ys = np.arange(y_lo, y_hi)
    x_lo = np.array([int(max(0, ((1 - max_ola) * p ** 2 - p * y) / (p - y))) for y in ys])
    x_hi = np.array([int(max(0, ((1 - min_ola) * p ** 2 - p * y) / (p - y))) for y in ys])
    if y_hi <= y_lo or np.any(x_hi <= x_lo):
        raise ValueError(f"empty offset range for patch_size={p}")
    return y_lo, y_hi, x_lo, x_hi


def overlap_fraction(y, x, patch_size: int):
    """Shared area of crop1 and crop2 over P^2: (P-y)(P-x)/P^2."""
    return (patch_size - y) * (patch_size - x) / patch_size ** 2


def sample_offsets(key, patch_size: int, min_ola: float = 0.10, max_ola: float = 0.30):
    """Draw (y, x) int32 scalars as ``choose_y`` / ``choose_x`` do."""
    y_lo, y_hi, x_lo, x_hi = offset_table(patch_size, min_ola, max_ola)
    ky, kx = jax.random.split(key)
    y = jax.random.randint(ky, (), y_lo, y_hi, dtype=jnp.int32)
    i = y - y_lo
    x = jax.random.randint(kx, (), jnp.asarray(x_lo, jnp.int32)[i],
                           jnp.asarray(x_hi, jnp.int32)[i], dtype=jnp.int32)
    return y, x


def _round_half_even_div2(d):
    # Python's round(d / 2) for an int32 d: ties go to the even neighbour.
    return jnp.round(d.astype(jnp.float32) / 2).astype(jnp.int32)


def region_origin(key, valid_hw, size):
    """Top-left (top, left) int32 of the S x S crop region in image coordinates.

    ``RandomCrop(S)`` if h >= S and w >= S (uniform top in [0, h-S]),
    else torchvision ``CenterCrop(S)``: a dim shorter than S is zero-padded by
    (S-n)//2 before (so top = -(S-n)//2), a dim at least S starts at
    round((n-S)/2). Negative / out-of-image coordinates read zeros.

    Args:
      key: PRNG key; valid_hw: int32 (2,) picture size (h, w);
      size: int32 scalar S.
    """
    h, w = valid_hw[0], valid_hw[1]
    kt, kl = jax.random.split(key)
    fits = (h >= size) & (w >= size)
    rand_top = jax.random.randint(kt, (), 0, jnp.maximum(h - size + 1, 1))
    rand_left = jax.random.randint(kl, (), 0, jnp.maximum(w - size + 1, 1))

    def centre(n):
        return jnp.where(n < size, -((size - n) // 2), _round_half_even_div2(n - size))

    top = jnp.where(fits, rand_top, centre(h))
    left = jnp.where(fits, rand_left, centre(w))
    return top.astype(jnp.int32), left.astype(jnp.int32)


def take_patch(stack, top, left, patch_size: int, valid_hw):
    """P x P window at (top, left) of every image in a stack, zeros outside.

    Args:
      stack: (N, H, W, C) float; top, left: int32 scalars (may be negative);
      valid_hw: int32 (2,), the picture is stack[:, :h, :w].
    Returns:
      (N, P, P, C), zero where the window leaves the valid picture.
    """
    r = top + jnp.arange(patch_size)
    c = left + jnp.arange(patch_size)
    rv = (r >= 0) & (r < valid_hw[0])
    cv = (c >= 0) & (c < valid_hw[1])
    rows = jnp.take(stack, jnp.clip(r, 0, stack.shape[1] - 1), axis=1)
    patch = jnp.take(rows, jnp.clip(c, 0, stack.shape[2] - 1), axis=2)
    # Keep XLA from fusing the gathers into later elementwise consumers
    # (swap / concatenate), which made them several times slower on CPU.
    patch = jax.lax.optimization_barrier(patch)
    mask = (rv[:, None] & cv[None, :])[None, :, :, None]
    return jnp.where(mask, patch, jnp.zeros((), patch.dtype))


def max_reach(patch_size: int, min_ola: float = 0.10, max_ola: float = 0.30) -> int:
    """Largest max(y, x) the offset draws can give (static): the crop region
    is at most ``patch_size + max_reach`` on a side."""
    y_lo, y_hi, x_lo, x_hi = offset_table(patch_size, min_ola, max_ola)
    return int(max(y_hi - 1, int(np.max(x_hi)) - 1))


def pair_geometry(key, patch_size: int, valid_hw, transposed=False,
                  min_ola: float = 0.10, max_ola: float = 0.30) -> dict:
    """Where one official crop pair lies, in the stack's (storage) frame.

    Returns a dict of int32 / bool scalars:
      y, x: the official offsets, in the picture frame;
      dy, dx: the same offsets in the storage frame (swapped when
        ``transposed``);
      top, left: origin of the S x S crop region, S = P + max(y, x);
      fits: the picture holds the region (``RandomCrop``: the region is a view
        of the picture); else ``CenterCrop`` zero-pads a copy.
    crop1 is the P x P window at (top, left), crop2 the one at
    (top + dy, left + dx).
    """
    ko, kr = jax.random.split(key)
    y, x = sample_offsets(ko, patch_size, min_ola, max_ola)
    dy, dx = jnp.where(transposed, x, y), jnp.where(transposed, y, x)
    size = patch_size + jnp.maximum(y, x)
    top, left = region_origin(kr, valid_hw, size)
    fits = (valid_hw[0] >= size) & (valid_hw[1] >= size)
    return dict(y=y, x=x, dy=dy, dx=dx, top=top, left=left, fits=fits)


def _transpose_back(c, transposed):
    return jnp.where(transposed, jnp.swapaxes(c, 1, 2), c)


def crop_pair(key, stack, patch_size: int, valid_hw, transposed=False,
              min_ola: float = 0.10, max_ola: float = 0.30):
    """One official overlapping crop pair for every version in a stack.

    Args:
      key: PRNG key.
      stack: (N, H, W, 3) versions of one picture.
      patch_size: P.
      valid_hw: int32 (2,) picture size in the stack's frame.
      transposed: bool scalar; True when the stack holds the picture
        transposed (portrait stored landscape, see ``data/tiles.py``). The
        offsets are then applied as (x, y) and the crops transposed back,
        which gives exactly the crops of the untransposed picture.
    Returns:
      crop1, crop2: (N, P, P, 3); (y, x) int32 offsets in the picture frame.
    """
    g = pair_geometry(key, patch_size, valid_hw, transposed, min_ola, max_ola)
    c1 = take_patch(stack, g["top"], g["left"], patch_size, valid_hw)
    c2 = take_patch(stack, g["top"] + g["dy"], g["left"] + g["dx"], patch_size, valid_hw)
    return (_transpose_back(c1, transposed), _transpose_back(c2, transposed),
            (g["y"], g["x"]))


def aliased_swap(rows, geometry, patch_size: int, valid_hw, reach: int):
    """The official crop "swap", which does not swap.

    ``datasets/dataset.py`` takes crop1 and crop2 as two *views* of one crop
    region tensor and runs, in place, ``x = x + y; y = x - y; x = x - y``.
    The two windows overlap (by 10-30 %), so every statement also changes
    part of the other view: outside the overlap the pair is swapped (up to
    float rounding), inside it the pixels are mixed (values leave [0, 1]).
    This replays the three statements on the region, each one reading the
    region as the previous one left it, exactly as the aliased memory does.

    Args:
      rows: (N, H, W, C) float32 versions to "swap" (storage frame).
      geometry: ``pair_geometry`` output.
      patch_size: P. valid_hw: int32 (2,). reach: static ``max_reach(P)``.
    Returns:
      crop1, crop2: (N, P, P, C) in the storage frame, and ``rows`` with the
      two windows written back when the region is a view of the picture
      (``geometry['fits']``; torchvision's ``RandomCrop`` slices, its
      ``CenterCrop`` pads a copy) — the official scale 2 is resized from the
      stack after these writes.
    """
    p = patch_size
    n, c = rows.shape[0], rows.shape[-1]
    top, left, dy, dx = geometry["top"], geometry["left"], geometry["dy"], geometry["dx"]
    region = take_patch(rows, top, left, p + reach, valid_hw)
    zero = jnp.zeros((), jnp.int32)

    def first(r):
        return r[:, :p, :p]

    def second(r):
        return jax.lax.dynamic_slice(r, (zero, dy, dx, zero), (n, p, p, c))

    def set_first(r, v):
        return jax.lax.dynamic_update_slice(r, v, (zero, zero, zero, zero))

    def set_second(r, v):
        return jax.lax.dynamic_update_slice(r, v, (zero, dy, dx, zero))

    region = set_first(region, first(region) + second(region))    # x = x + y
    region = set_second(region, first(region) - second(region))   # y = x - y
    region = set_first(region, first(region) - second(region))    # x = x - y
    c1, c2 = first(region), second(region)
    if rows.shape[1] < p or rows.shape[2] < p:
        # An array narrower than a crop holds no picture the region is a view
        # of (the region is larger than the crop): CenterCrop's copy, no write.
        return c1, c2, rows
    # In memory the overlap holds what was written last: crop1's values.
    written = jax.lax.dynamic_update_slice(rows, c2, (zero, top + dy, left + dx, zero))
    written = jax.lax.dynamic_update_slice(written, c1, (zero, top, left, zero))
    return c1, c2, jnp.where(geometry["fits"], written, rows)


def _keys_cubic_weights(t, a: float = -0.75):
    """Keys cubic weights of the 4 taps at offsets -1, 0, 1, 2 for frac t."""
    def near(d):  # |d| <= 1
        return ((a + 2) * d - (a + 3)) * d * d + 1

    def far(d):   # 1 < |d| < 2
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a

    return jnp.stack([far(t + 1), near(t), near(1 - t), far(2 - t)], axis=-1)


def _bicubic_taps(n_valid, n_out: int):
    """Tap indices int32 (n_out, 4) and weights float32 (n_out, 4) of one axis.

    torch's align_corners=True grid: source = i * (n_valid - 1) / (m - 1) for
    output i < m = n_valid // 2 (scale 0 when m == 1); taps at floor - 1 ..
    floor + 2 clamped to [0, n_valid - 1]. Rows i >= m are junk (callers
    mask them).
    """
    m = n_valid // 2
    scale = jnp.where(m > 1, (n_valid - 1).astype(jnp.float32)
                      / jnp.maximum(m - 1, 1).astype(jnp.float32), 0.0)
    real = scale * jnp.arange(n_out, dtype=jnp.float32)
    i0 = jnp.minimum(jnp.floor(real).astype(jnp.int32), n_valid - 1)
    t = jnp.clip(real - i0.astype(jnp.float32), 0.0, 1.0)
    idx = jnp.clip(i0[:, None] + jnp.arange(-1, 3)[None, :], 0, n_valid - 1)
    return idx, _keys_cubic_weights(t)


def _resample_axis(x, axis: int, n_valid, n_out: int):
    """Bicubic resample of ``axis`` of x to n_out points (see _bicubic_taps).

    For a half-size align_corners grid the step is 2 + 1/(m-1) (even
    n_valid) or 2 + 2/(m-1) (odd): the first tap of output i is 2i - 1 + d_i
    with d_i in {0, 1, 2}. So every tap is one of 6 stride-2 slices of the
    (edge-extended) input (offsets -1..4), weighted per row: no gathers, no
    dense matrices (both are far slower on CPU with a traced size).
    Rows at or beyond n_valid are replaced by row n_valid - 1 first, which is
    torch's clamping of the taps.
    """
    n = x.shape[axis]
    shape = [1] * x.ndim
    shape[axis] = n
    last = jax.lax.dynamic_slice_in_dim(x, n_valid - 1, 1, axis)
    x = jnp.where(jnp.arange(n).reshape(shape) < n_valid, x, last)
    pad = [(0, 0)] * x.ndim
    pad[axis] = (2, max(0, 2 * n_out + 3 - n))
    xp = jnp.pad(x, pad, mode="edge")
    idx, w = _bicubic_taps(n_valid, n_out)
    d = idx[:, 1] - 2 * jnp.arange(n_out)  # unclamped floor minus 2i (>= 0)
    wshape = [1] * x.ndim
    wshape[axis] = n_out
    out = None
    # Tap k of a row with shift dd reads 2i + o, o = dd + k - 1 in [-1, 4]:
    # six stride-2 slices, each with the weight of whichever (dd, k) hits it.
    for o in range(-1, 5):
        wo = sum(jnp.where(d == dd, w[:, o + 1 - dd], 0.0)
                 for dd in range(3) if 0 <= o + 1 - dd <= 3)
        sl = jax.lax.slice_in_dim(xp, 2 + o, 2 + o + 2 * (n_out - 1) + 1, 2, axis)
        term = wo.reshape(wshape) * sl
        out = term if out is None else out + term
    return out


def resize_half_bicubic(stack, valid_hw=None):
    """Half-size bicubic resize as torch ``interpolate(bicubic, align_corners=True)``.

    Args:
      stack: float32 (N, H, W, C).
      valid_hw: optional int32 (2,) picture size; default (H, W).
    Returns:
      (N, H//2, W//2, C) float32 (not clipped: bicubic overshoots slightly
      outside [0, 1], as in the official pipeline) and the new valid size
      int32 (2,) = valid_hw // 2. Pixels outside the new valid size are junk.
      Needs valid sizes >= 4 (torch's grid step is then <= 3). Do not vmap
      over a batched valid_hw (slices would become slow gathers): map.
    """
    n, hh, ww, c = stack.shape
    if valid_hw is None:
        valid_hw = jnp.array([hh, ww], jnp.int32)
    valid_hw = jnp.asarray(valid_hw, jnp.int32)
    out = _resample_axis(stack.astype(jnp.float32), 1, valid_hw[0], hh // 2)
    out = _resample_axis(jax.lax.optimization_barrier(out), 2, valid_hw[1], ww // 2)
    # Materialise once: fused into the crop gathers it would be recomputed.
    return jax.lax.optimization_barrier(out), valid_hw // 2
