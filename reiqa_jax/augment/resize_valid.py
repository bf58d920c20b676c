"""Pillow's resizing of a picture whose size is known only at run time.

``resize.py`` builds Pillow's tables in numpy from the static array size.
A picture of (h, w) inside a larger canvas (``extent.py``) has traced sizes,
so here the same tables are computed on the device, from h and w:

* Convolution filters (bilinear, bicubic, Lanczos): Pillow's
  ``precompute_coeffs`` per output pixel (window ``[int(c - s + 0.5),
  int(c + s + 0.5))`` around ``c = (i + 0.5) * scale``, kernel values
  normalised by their sequential sum, rounded to 22-bit integers) in
  float64, as Pillow computes them, then applied as integer sums (each
  output reads its window with one gather; int32 holds every sum exactly:
  255 * sum|w| < 1.7e9), rounded and clipped like Pillow's 8-bit passes.
* NEAREST: Pillow's affine scaling walks the source position by repeated
  double-precision additions of the step, which lands a hair below an
  integer now and then (about 1 in 6 size pairs differ from the exact
  ``floor((i + 0.5) * in / out)`` somewhere). ``accumulated_positions``
  reproduces those sums without a loop: inside one binade [2^e, 2^(e+1))
  every sum rounds to the same grid, so after the first addition the
  increment is a constant; a static unrolled pass over the binades gives
  every position exactly.

float64 as Pillow rounds it: ``exact64.py`` (every product that feeds a
sum is rounded first, so no fused multiply-add moves a window bound). The
sizes of the down-scaled picture are ``int(n / f)`` or ``int(z * n)`` in
float64, as in Python.
Tables are sized for the canvas (static) and valid for any picture side in
``[MIN_SIDE, canvas side]``.
"""
from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
from jax import lax

from reiqa_jax.augment.exact64 import rounded, runtime_zero

MIN_SIDE = 49  # the smallest picture side the tables are sized for (non_eccentricity's floor)
SUPPORTS = {"bilinear": 1.0, "bicubic": 2.0, "lanczos": 3.0}  # Pillow's, at scale 1
_PRECISION_BITS = 22  # Pillow's 8-bit resampling weights


# --- convolution filters ---------------------------------------------------------

def _kernel(filter_name: str, x, zero):
    """The float64 kernels of ``resize.FILTERS`` (Pillow's), same expressions and
    roundings (``x`` already rounded)."""
    _rounded = lambda v: rounded(v, zero)
    if filter_name == "bilinear":
        x = jnp.abs(x)
        return jnp.where(x < 1.0, 1.0 - x, 0.0)
    if filter_name == "bicubic":
        a = -0.5
        x = jnp.abs(x)
        near = _rounded(_rounded(_rounded((a + 2.0) * x) - (a + 3.0)) * x) * x + 1.0
        far = (_rounded(_rounded(_rounded((x - 5.0) * x) + 8.0) * x) - 4.0) * a
        return jnp.where(x < 1.0, near, jnp.where(x < 2.0, far, 0.0))
    if filter_name == "lanczos":
        def sinc(v):  # numpy's sinc: sin(pi v) / (pi v), 1e-20 for v == 0
            y = jnp.pi * jnp.where(v == 0, 1.0e-20, v)
            return jnp.sin(y) / y
        return jnp.where((x >= -3.0) & (x < 3.0), sinc(x) * sinc(x / 3.0), 0.0)
    raise ValueError(f"unknown filter {filter_name!r}")


def pillow_ksize(in_size: int, out_size: int, filter_name: str) -> int:
    """Pillow's taps per output pixel (``ksize``) for one resize, host side."""
    support = SUPPORTS[filter_name] * max(in_size / out_size, 1.0)
    return int(math.ceil(support)) * 2 + 1


@functools.lru_cache(maxsize=256)
def down_bounds(canvas: int, filter_name: str, kind: str, value: float) -> tuple[int, int]:
    """Static (out_max, taps) of the down pass for any picture side n in
    [MIN_SIDE, canvas] (small side ``small_size_fn(kind, value)(n)``)."""
    size_fn = small_size_fn(kind, value)
    sizes = [(n, size_fn(n)) for n in range(min(MIN_SIDE, canvas), canvas + 1)]
    out_max = max(m for _, m in sizes)
    taps = max(pillow_ksize(n, m, filter_name) for n, m in sizes if m >= 1)
    return out_max, taps


def pillow_weights(n_in, n_out, filter_name: str, out_max: int, taps: int):
    """Pillow's fixed-point resampling coefficients for traced sizes.

    Args:
      n_in, n_out: int32 scalars (traced), the two sizes of one pass.
      out_max, taps: static bounds (outputs computed, window length).
    Returns:
      xmin int32 (out_max,): first input of each output's window;
      weights int32 (out_max, taps): 22-bit weights of inputs xmin + k
      (zero beyond the window). Rows >= n_out are junk.
    """
    support = SUPPORTS[filter_name]
    with jax.enable_x64(True):
        n_in64 = jnp.asarray(n_in).astype(jnp.float64)
        zero = runtime_zero(n_in)
        _rounded = lambda v: rounded(v, zero)
        scale = n_in64 / jnp.asarray(n_out).astype(jnp.float64)
        filterscale = jnp.maximum(scale, 1.0)
        sup = _rounded(support * filterscale)
        center = _rounded((jnp.arange(out_max, dtype=jnp.float64) + 0.5) * scale)
        ss = 1.0 / filterscale
        xmin = jnp.maximum(jnp.trunc(center - sup + 0.5), 0.0)  # C's (int): toward zero
        xmax = jnp.minimum(jnp.trunc(center + sup + 0.5), n_in64)
        tap = xmin[:, None] + jnp.arange(taps, dtype=jnp.float64)[None, :]
        w = _kernel(filter_name, _rounded((tap - center[:, None] + 0.5) * ss), zero)
        w = jnp.where(tap < xmax[:, None], w, 0.0)
        # Pillow's sequential sum (a loop: XLA keeps its order)
        total = lax.fori_loop(1, taps, lambda k, t: t + lax.dynamic_index_in_dim(
            w, k, axis=1, keepdims=False), w[:, 0])
        w = jnp.where(total[:, None] != 0.0, w / total[:, None], w)
        one = float(1 << _PRECISION_BITS)
        scaled = _rounded(w * one)
        fixed = jnp.where(w < 0, -jnp.floor(-scaled + 0.5), jnp.floor(scaled + 0.5))
        return xmin.astype(jnp.int32), fixed.astype(jnp.int32)


def pillow_pass(x, n_in, n_out, filter_name: str, axis: int, out_max: int, taps: int):
    """One Pillow 8-bit resampling pass along ``axis`` for traced sizes.

    x: int32 (H, W, C) in 0..255, the picture's n_in samples first along
    ``axis``. Returns int32 with ``out_max`` samples along ``axis`` (the first
    n_out are Pillow's), 0..255.
    """
    xmin, weights = pillow_weights(n_in, n_out, filter_name, out_max, taps)
    moved = jnp.moveaxis(x, axis, 0)
    last = moved.shape[0] - 1
    wshape = (out_max,) + (1,) * (moved.ndim - 1)

    # A loop over the taps, not one gather of every window: its operand is
    # materialised, so XLA cannot fuse the previous pass into each tap's
    # read (four passes fused that way took minutes).
    def tap(k, total):
        rows = jnp.take(moved, jnp.minimum(xmin + k, last), axis=0)
        w = lax.dynamic_index_in_dim(weights, k, axis=1, keepdims=False)
        return total + w.reshape(wshape) * rows

    # (the rounding half, shaped and typed like the sum, varying like the data
    # under shard_map: a loop's carry must keep its type)
    half = jnp.zeros_like(tap(0, 0)) + (1 << (_PRECISION_BITS - 1))
    total = lax.fori_loop(0, taps, tap, half)
    out = jnp.clip(total >> _PRECISION_BITS, 0, 255)
    return jnp.moveaxis(out, 0, axis)


def small_size_fn(kind: str, value: float):
    """``n -> int(n / f)`` ('factor') or ``n -> int(z * n)`` ('fraction'), host side."""
    if kind == "factor":
        return lambda n: int(n / value)
    return lambda n: int(value * n)


def small_size(n, kind: str, value: float):
    """The same on the device: float64 arithmetic, truncated, int32."""
    with jax.enable_x64(True):
        n64 = jnp.asarray(n).astype(jnp.float64)
        s = n64 / value if kind == "factor" else value * n64
        return jnp.trunc(s).astype(jnp.int32)


def down_up(x, valid_hw, filter_name: str, kind: str, value: float):
    """Pillow ``resize`` of the picture x[:h, :w] to its small size and back.

    x: float32 (H, W, C) in 0..255 (integers); valid_hw int32 (2,).
    Each ``Image.resize`` runs the horizontal pass first, then the vertical.
    Returns float32 (H, W, C); the picture's pixels as Pillow's.
    """
    hh, ww, _ = x.shape
    h, w = valid_hw[0], valid_hw[1]
    sh, sw = small_size(h, kind, value), small_size(w, kind, value)
    sh_max, taps_h = down_bounds(hh, filter_name, kind, value)
    sw_max, taps_w = down_bounds(ww, filter_name, kind, value)
    up_taps = pillow_ksize(1, 2, filter_name)  # upscaling: the plain support
    y = x.astype(jnp.int32)
    y = pillow_pass(y, w, sw, filter_name, 1, sw_max, taps_w)
    y = pillow_pass(y, h, sh, filter_name, 0, sh_max, taps_h)
    y = pillow_pass(y, sw, w, filter_name, 1, ww, up_taps)
    y = pillow_pass(y, sh, h, filter_name, 0, hh, up_taps)
    return y.astype(jnp.float32)


# --- NEAREST -------------------------------------------------------------------

_E_LO, _E_HI = -6, 13  # binades of the positions: steps >= 1/32, sides < 2^13


def accumulated_positions(step, count: int):
    """Pillow's NEAREST source positions: p_0 = step * 0.5, p_i = p_{i-1} + step
    (each sum rounded to float64), for i < count. float64 (count,), call
    under ``jax.enable_x64``; step a float64 scalar in [2^-5, 2^8].

    In the binade [2^e, 2^(e+1)) every sum rounds to multiples of the same
    ulp, so once a sum has been rounded there (a tie may round the first sum
    differently) every further addition adds the same amount ``delta``. Per
    binade: its first position p, then q = p + step, then q + k delta while
    below 2^(e+1); the next binade starts at (last + step).
    """
    i = jnp.arange(count, dtype=jnp.int64)
    # 2^(e+1) for each binade, exact (a table, not jnp.ldexp: jax 0.12 lowers
    # ldexp under a local enable_x64 with float32 bit twiddling)
    tops = jnp.asarray([2.0 ** (e + 1) for e in range(_E_LO, _E_HI)], jnp.float64)

    def binade(e, carry):
        pos, start, p = carry
        top = tops[e - _E_LO]
        here = p < top                      # the binade holds p (else skip it)
        q = p + step
        delta = (q + step) - q
        room = top - q                      # exact: multiples of one ulp below top
        c = jnp.where(q < top, jnp.ceil(room / delta), 0.0)
        c = jnp.where((c > 0) & ((c - 1) * delta >= room), c - 1, c)
        c = jnp.where((q < top) & (c * delta < room), c + 1, c)
        c = jnp.where(here, c, 0.0)
        k = (i - start - 1).astype(jnp.float64)
        value = jnp.where(i == start, p, q + k * delta)
        inside = here & (i >= start) & (i <= start + c.astype(jnp.int64))
        pos = jnp.where(inside, value, pos)
        last = jnp.where(c > 0, q + (c - 1) * delta, p)
        nxt = jnp.where(c > 0, last + step, q)
        start = jnp.where(here, start + 1 + c.astype(jnp.int64), start)
        return pos, start, jnp.where(here, nxt, p)

    none = step * 0.0  # zeros that vary with ``step`` under shard_map (loop carries)
    init = (jnp.zeros((count,), jnp.float64) + none, none.astype(jnp.int64), step * 0.5)
    return lax.fori_loop(_E_LO, _E_HI, binade, init)[0]


def nearest_index(n_in, n_out, count: int):
    """Pillow NEAREST source index of each output, int32 (count,), traced sizes
    (``resize.pil_nearest_index``); entries >= n_out are junk."""
    with jax.enable_x64(True):
        step = jnp.asarray(n_in).astype(jnp.float64) / jnp.asarray(n_out).astype(jnp.float64)
        idx = jnp.trunc(accumulated_positions(step, count)).astype(jnp.int32)
    return jnp.clip(idx, 0, jnp.asarray(n_in, jnp.int32) - 1)


def nearest_down_up(image, valid_hw, kind: str, value: float):
    """NEAREST resize of the picture image[:h, :w] to its small size and back:
    one composite gather per axis. image (H, W, C) any dtype."""
    out = image
    for axis in (0, 1):
        n_all = image.shape[axis]
        n = valid_hw[axis]
        m = small_size(n, kind, value)
        m_max = max(small_size_fn(kind, value)(k) for k in range(1, n_all + 1))
        down = nearest_index(n, m, max(m_max, 1))
        up = nearest_index(m, n, n_all)
        out = jnp.take(out, jnp.take(down, up), axis=axis)
    return out


__all__ = ["pillow_weights", "pillow_pass", "down_up", "accumulated_positions",
           "nearest_index", "nearest_down_up", "MIN_SIDE"]
