"""Resize distortions: down by a factor, back up, as Pillow ``Image.resize``.

Ops (official numbering): 16 ``resize_bicubic`` (Pillow's default filter for
RGB ``resize`` is BICUBIC), 23 ``resize_bilinear``, 24 ``resize_nearest``,
25 ``resize_lanczos`` and 20 ``pixelate``. Each is
``op(key, image, level) -> image``: ``image`` float32 (H, W, 3) in [0, 1] on
the uint8 grid, ``level`` a Python int 0..4 or a traced int32 scalar,
``key`` unused.

How Pillow resizes an 8-bit image (what we reproduce):

* Convolution filters: per output pixel a window of input pixels centred at
  ``(i + 0.5) * scale``; on downscale the filter is stretched by the scale
  (antialiasing). Weights are normalised to sum 1, then rounded to 22-bit
  fixed point. The horizontal pass runs first and is rounded and clipped to
  uint8 before the vertical pass, which rounds and clips again.
  We build those fixed-point weights in numpy at trace time (H, W are static)
  as dense (out, in) matrices, one per level, zero-padded to the largest
  level's size and stacked, and apply them with float32 matmuls. To keep
  Pillow's integer sums exact (they need ~31 bits, float32 holds 24) each
  integer weight is split into three signed 8-bit digits; each digit's
  matmul is exact in float32 and the digits are recombined in int32.
* NEAREST: source index ``int(x0)`` where ``x0`` starts at ``scale / 2`` and
  is advanced by repeated double-precision addition of ``scale``; we run the
  same accumulation in numpy, and fold down- and up-scaling into one gather.
"""

import functools

import jax.numpy as jnp
import numpy as np
from jax import lax

RESIZE_FACTORS = (2, 3, 4, 8, 16)            # bicubic, bilinear, lanczos
NEAREST_FACTORS = (2, 3, 4, 5, 6)
PIXELATE_PARAMS = (0.01, 0.05, 0.1, 0.2, 0.5)

_PRECISION_BITS = 22  # Pillow: 32 - 8 bits of result - 2 bits of headroom


def _bilinear(x):
    x = np.abs(x)
    return np.where(x < 1.0, 1.0 - x, 0.0)


def _bicubic(x, a=-0.5):
    x = np.abs(x)
    near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    far = (((x - 5.0) * x + 8.0) * x - 4.0) * a
    return np.where(x < 1.0, near, np.where(x < 2.0, far, 0.0))


def _sinc(x):
    return np.sinc(x)  # sin(pi x) / (pi x), 1 at 0


def _lanczos(x):
    return np.where((x >= -3.0) & (x < 3.0), _sinc(x) * _sinc(x / 3.0), 0.0)


# name -> (kernel, support in input pixels at scale 1)
FILTERS = {"bilinear": (_bilinear, 1.0), "bicubic": (_bicubic, 2.0),
           "lanczos": (_lanczos, 3.0)}


def pil_resample_weights(in_size, out_size, filter_name):
    """Pillow's 22-bit fixed-point resampling weights as a dense matrix.

    Returns int64 (out_size, in_size); Pillow's output for a row ``x`` is
    ``clip((W @ x + 2^21) >> 22, 0, 255)``.
    """
    kernel, support = FILTERS[filter_name]
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = support * filterscale
    m = np.zeros((out_size, in_size), np.int64)
    for i in range(out_size):
        center = (i + 0.5) * scale
        lo = max(int(center - support + 0.5), 0)   # C int(): toward zero
        hi = min(int(center + support + 0.5), in_size)
        taps = np.arange(lo, hi)
        w = kernel((taps - center + 0.5) * (1.0 / filterscale))
        if w.sum() != 0.0:
            w = w / w.sum()
        # Pillow rounds half away from zero into 22-bit integers.
        w = np.where(w < 0, -np.floor(-w * 2**_PRECISION_BITS + 0.5),
                     np.floor(w * 2**_PRECISION_BITS + 0.5))
        m[i, lo:hi] = w.astype(np.int64)
    return m


def pil_resample_matrix(in_size, out_size, filter_name):
    """``pil_resample_weights / 2^22`` as float64 (out_size, in_size)."""
    return pil_resample_weights(in_size, out_size, filter_name) / 2.0**_PRECISION_BITS


def _digits(weights):
    """Split int32 weights into signed base-256 digits: w = 65536 d2 + 256 d1 + d0.

    |d0|, |d1| <= 128, so every digit-times-pixel product and the sum over a
    filter's taps stay below 2^24 and are exact in float32. Done in the graph
    so the embedded constant tables stay int32 (a third of the float digits).
    Returns (3, ...) float32.
    """
    d0 = weights - (((weights + 128) >> 8) << 8)
    rest = (weights - d0) >> 8
    d1 = rest - (((rest + 128) >> 8) << 8)
    d2 = (rest - d1) >> 8
    return jnp.stack([d2, d1, d0]).astype(jnp.float32)


def pil_nearest_index(in_size, out_size):
    """Source index of each output pixel for Pillow NEAREST, (out_size,) int."""
    step = float(in_size) / out_size
    pos = step * 0.5
    idx = np.empty(out_size, np.int64)
    for i in range(out_size):  # same double accumulation as Pillow's loop
        idx[i] = int(pos)
        pos += step
    return np.minimum(idx, in_size - 1)


def _down_up_sizes(size, factors):
    return [int(size / f) for f in factors]


@functools.lru_cache(maxsize=64)
def _resample_tables(h, w, filter_name, factors):
    """Per-level down/up weights, zero-padded to level 0's (largest) size.

    Returns int32 weight tables dx (L, ws, W), dy (L, hs, H), ux (L, W, ws),
    uy (L, H, hs), with ws, hs the small size at the mildest factor.
    """
    ws_all, hs_all = _down_up_sizes(w, factors), _down_up_sizes(h, factors)
    if min(ws_all + hs_all) < 1:  # Pillow raises here too
        raise ValueError(f"{h}x{w} is too small to shrink by {max(factors)}")
    ws, hs = max(ws_all), max(hs_all)
    n = len(factors)
    dx = np.zeros((n, ws, w), np.int64)
    dy = np.zeros((n, hs, h), np.int64)
    ux = np.zeros((n, w, ws), np.int64)
    uy = np.zeros((n, h, hs), np.int64)
    for l, (sw, sh) in enumerate(zip(ws_all, hs_all)):
        dx[l, :sw] = pil_resample_weights(w, sw, filter_name)
        dy[l, :sh] = pil_resample_weights(h, sh, filter_name)
        ux[l, :, :sw] = pil_resample_weights(sw, w, filter_name)
        uy[l, :, :sh] = pil_resample_weights(sh, h, filter_name)
    return tuple(a.astype(np.int32) for a in (dx, dy, ux, uy))


def _pass(digits, x, axis):
    """One Pillow pass along ``axis`` (0 rows, 1 cols): exact sum, round, clip.

    digits: (3, out, in) float32 weight digits; x: (H, W, C) float32 0..255.
    """
    spec = "doh,hwc->dowc" if axis == 0 else "dow,hwc->dhoc"
    # HIGHEST: TF32/bf16 matmuls would not be exact.
    parts = jnp.einsum(spec, digits, x, precision=lax.Precision.HIGHEST)
    parts = parts.astype(jnp.int32)  # exact integers
    total = (parts[0] << 16) + (parts[1] << 8) + parts[2]
    rounded = (total + (1 << (_PRECISION_BITS - 1))) >> _PRECISION_BITS
    return jnp.clip(rounded, 0, 255).astype(jnp.float32)


def _down_up(image, level, filter_name, factors):
    h, w, _ = image.shape
    dx, dy, ux, uy = (_digits(jnp.asarray(t)[level])
                      for t in _resample_tables(h, w, filter_name, factors))
    x = jnp.round(image * 255.0)
    x = _pass(dx, x, axis=1)  # each Image.resize: horizontal, then vertical
    x = _pass(dy, x, axis=0)
    x = _pass(ux, x, axis=1)
    x = _pass(uy, x, axis=0)
    return x / 255.0


def resize_bicubic(key, image, level):
    """Distortion 16: bicubic (a=-0.5) down by 2/3/4/8/16 and back up.

    Args: key unused; image (H, W, 3) float32 in [0, 1]; level int/int32 0..4.
    Returns (H, W, 3) float32 on the uint8 grid.
    """
    del key
    return _down_up(image, level, "bicubic", RESIZE_FACTORS)


def resize_bilinear(key, image, level):
    """Distortion 23: bilinear (triangle) down by 2/3/4/8/16 and back up."""
    del key
    return _down_up(image, level, "bilinear", RESIZE_FACTORS)


def resize_lanczos(key, image, level):
    """Distortion 25: Lanczos-3 down by 2/3/4/8/16 and back up."""
    del key
    return _down_up(image, level, "lanczos", RESIZE_FACTORS)


@functools.lru_cache(maxsize=64)
def _nearest_tables(h, w, small_sizes):
    """Composite gather indices (L, H) and (L, W) for down-then-up NEAREST."""
    if min(min(p) for p in small_sizes) < 1:  # Pillow raises here too
        raise ValueError(f"{h}x{w} is too small for sizes {small_sizes}")
    rows, cols = [], []
    for sh, sw in small_sizes:
        rows.append(pil_nearest_index(h, sh)[pil_nearest_index(sh, h)])
        cols.append(pil_nearest_index(w, sw)[pil_nearest_index(sw, w)])
    return np.stack(rows).astype(np.int32), np.stack(cols).astype(np.int32)


def _nearest_down_up(image, level, small_sizes):
    h, w, _ = image.shape
    rows, cols = _nearest_tables(h, w, small_sizes)
    out = jnp.take(image, jnp.asarray(rows)[level], axis=0)
    return jnp.take(out, jnp.asarray(cols)[level], axis=1)


def resize_nearest(key, image, level):
    """Distortion 24: NEAREST down by 2/3/4/5/6 (``int(w / f)``) and back up.

    Args/returns as ``resize_bicubic``; exact (a pure gather).
    """
    del key
    h, w, _ = image.shape
    sizes = tuple((int(h / f), int(w / f)) for f in NEAREST_FACTORS)
    return _nearest_down_up(image, level, sizes)


def pixelate(key, image, level):
    """Distortion 20: NEAREST to ``int(z * size)``, z = 0.95 - p**0.6, and back.

    p = 0.01/0.05/0.1/0.2/0.5. Args/returns as ``resize_bicubic``.
    """
    del key
    h, w, _ = image.shape
    zs = [0.95 - p ** 0.6 for p in PIXELATE_PARAMS]
    sizes = tuple((int(z * h), int(z * w)) for z in zs)
    return _nearest_down_up(image, level, sizes)


__all__ = ["resize_bicubic", "resize_bilinear", "resize_nearest",
           "resize_lanczos", "pixelate", "pil_resample_weights", "pil_resample_matrix",
           "pil_nearest_index"]
