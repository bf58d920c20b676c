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
  and apply them as banded matrices: output rows in blocks, each block a
  small dense float32 matmul over just the input window its weights touch.
  A level known when the op runs (a Python int, or a scalar traced level,
  dispatched with ``lax.switch``: ``jit``, ``lax.map``, ``distort_batch``)
  uses that level's exact sizes and windows as static slices. So does
  ``vmap`` with per-sample levels on CPU, as a loop over samples
  (``filters.map_per_sample``; a switch under ``vmap`` would run all five
  levels). On other backends one program serves all levels there: per-level
  block tables padded to common shapes, windows and outputs gathered by
  level. ``custom_vmap`` routes; every path gives the same bits.
  To keep Pillow's integer sums exact (they need ~31 bits, float32 holds 24)
  each integer weight is split as ``w = hi * 2^k + lo`` with
  ``|lo| <= 2^(k-1)``. The weights of a row sum to 2^22 (their absolute
  values to less than 1.6 * 2^22), so both the ``hi`` and the ``lo`` sums
  stay below 2^24 for the tap counts involved (checked per table at trace
  time): each half's matmul is exact in float32, and the halves are
  recombined in int32. (Two matmuls instead of three 8-bit digits; an int32
  dot is slower on this CPU than three float32 ones.)
* NEAREST: source index ``int(x0)`` where ``x0`` starts at ``scale / 2`` and
  is advanced by repeated double-precision addition of ``scale``; we run the
  same accumulation in numpy, and fold down- and up-scaling into one gather.

A picture smaller than its array (``valid_hw``, ``extent.py``) is resized
by its own size: the tables then depend on traced sizes and are computed on
the device (``resize_valid.py``), one program per level behind a switch.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from reiqa_jax.augment import resize_valid
from reiqa_jax.augment.filters import level_dispatch

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


def _split_shift(weights):
    """Smallest ``k`` in 8..14 for which ``split_weights(weights, k)`` is exact.

    ``weights``: int64 (..., out, in) numpy. Both halves must keep
    ``255 * sum_j |part_ij|`` below 2^24 in every row, so that every partial
    sum of a float32 matmul with pixels 0..255 is an exactly held integer.
    """
    for k in range(8, 15):
        hi = (weights + (1 << (k - 1))) >> k
        lo = weights - (hi << k)
        if max(np.abs(hi).sum(-1).max(), np.abs(lo).sum(-1).max()) * 255 < 2**24:
            return k
    raise ValueError("resampling weights too wide for an exact float32 split")


def split_weights(weights, k):
    """Split int32 weights as ``w = hi * 2^k + lo``, ``lo`` in [-2^(k-1), 2^(k-1)).

    Done in the graph so the embedded constant tables stay int32.
    Returns (2, ...) float32 (hi, lo).
    """
    hi = (weights + (1 << (k - 1))) >> k
    lo = weights - (hi << k)
    return jnp.stack([hi, lo]).astype(jnp.float32)


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


def _round_clip(total):
    rounded = (total + (1 << (_PRECISION_BITS - 1))) >> _PRECISION_BITS
    return jnp.clip(rounded, 0, 255).astype(jnp.float32)


_BLOCK = 32  # output rows per band block


@functools.lru_cache(maxsize=256)
def _band_blocks(in_size, out_size, filter_name):
    """A Pillow weight matrix cut into bands for ``_band_pass``.

    Output rows are taken in blocks of ``_BLOCK``; block b only reads inputs
    ``starts[b] .. starts[b] + win`` (win: the widest block's nonzero span,
    windows clamped inside the input). Returns (starts tuple, int32 weights
    (nb, _BLOCK, win), split shift k).
    """
    m = pil_resample_weights(in_size, out_size, filter_name)
    nb = -(-out_size // _BLOCK)
    m = np.pad(m, ((0, nb * _BLOCK - out_size), (0, 0)))
    spans = []
    for b in range(nb):
        cols = np.nonzero(np.any(m[b * _BLOCK:(b + 1) * _BLOCK] != 0, axis=0))[0]
        spans.append((cols[0], cols[-1] + 1) if cols.size else (0, 1))
    win = max(hi - lo for lo, hi in spans)
    starts = tuple(int(min(lo, in_size - win)) for lo, _ in spans)
    blocks = np.stack([m[b * _BLOCK:(b + 1) * _BLOCK, s:s + win]
                       for b, s in enumerate(starts)])
    return starts, blocks.astype(np.int32), _split_shift(blocks)


def _band_pass(x, out_size, filter_name, axis):
    """``_pass`` for one static size: only each block's band of the matrix.

    x: (H, W, C) float32 0..255; resamples ``axis`` to ``out_size``.
    """
    starts, blocks, k = _band_blocks(x.shape[axis], out_size, filter_name)
    win = blocks.shape[-1]
    xs = jnp.stack([lax.slice_in_dim(x, s, s + win, axis=axis) for s in starts])
    parts = split_weights(jnp.asarray(blocks), k)  # (2, nb, B, win)
    spec = "dboi,biwc->dbowc" if axis == 0 else "dboi,bhic->dhboc"
    sums = jnp.einsum(spec, parts, xs, precision=lax.Precision.HIGHEST).astype(jnp.int32)
    out = _round_clip((sums[0] << k) + sums[1])
    if axis == 0:
        out = out.reshape((-1,) + out.shape[2:])[:out_size]
    else:
        out = out.reshape(out.shape[0], -1, out.shape[-1])[:, :out_size]
    return out


def _down_up_fixed(x, level, filter_name, factors):
    """Down and up at one static level; x (H, W, C) float32 0..255."""
    h, w, _ = x.shape
    sh, sw = int(h / factors[level]), int(w / factors[level])
    if min(sh, sw) < 1:  # Pillow raises here too
        raise ValueError(f"{h}x{w} is too small to shrink by {factors[level]}")
    x = _band_pass(x, sw, filter_name, axis=1)  # each Image.resize: horizontal,
    x = _band_pass(x, sh, filter_name, axis=0)  # then vertical
    x = _band_pass(x, w, filter_name, axis=1)
    return _band_pass(x, h, filter_name, axis=0)


@functools.lru_cache(maxsize=64)
def _banded_tables(h, w, filter_name, factors, which):
    """Per-level band blocks of table ``which`` (0 dx, 1 dy, 2 ux, 3 uy) of
    ``_resample_tables``, for a level that is only known at run time.

    Table t (L, out_pad, in) is cut, per level l, into ``n_blocks`` runs of
    ``bo_l = ceil(out_l / n_blocks)`` output rows; block b of level l reads
    inputs ``starts[l, b] + 0 .. win`` only. Returns int32 starts (L, nb),
    weights (L, nb, BO, win) with BO = max bo_l, gather indices (L, out_pad)
    from the (nb * BO) block outputs back to output order, and the split k.
    """
    t = _resample_tables(h, w, filter_name, factors)[which].astype(np.int64)
    n_lv, out_pad, n_in = t.shape
    # About 32 outputs per block going down (level 0), 16 going up: measured
    # best at 384x512 among a few choices.
    n_blocks = max(1, -(-out_pad // (32 if which < 2 else 16)))
    outs = [int(np.nonzero(np.any(t[l] != 0, axis=1))[0].max()) + 1 for l in range(n_lv)]
    bos = [-(-o // n_blocks) for o in outs]
    bo_max = max(bos)
    spans = np.zeros((n_lv, n_blocks, 2), np.int64)
    for l in range(n_lv):
        for b in range(n_blocks):
            rows = t[l, b * bos[l]:min((b + 1) * bos[l], outs[l])]
            cols = np.nonzero(np.any(rows != 0, axis=0))[0]
            spans[l, b] = (cols[0], cols[-1] + 1) if cols.size else (0, 1)
    win = int((spans[..., 1] - spans[..., 0]).max())
    starts = np.minimum(spans[..., 0], n_in - win)
    blocks = np.zeros((n_lv, n_blocks, bo_max, win), np.int64)
    gather = np.zeros((n_lv, out_pad), np.int64)
    for l in range(n_lv):
        for o in range(outs[l]):
            b, p = divmod(o, bos[l])
            blocks[l, b, p] = t[l, o, starts[l, b]:starts[l, b] + win]
            gather[l, o] = b * bo_max + p
        # Internal invariant: every nonzero weight of the level made it into its block.
        if not np.array_equal(np.abs(t[l]).sum(1)[:outs[l]],
                              np.abs(blocks[l]).sum(2).reshape(-1)[gather[l, :outs[l]]]):
            raise RuntimeError(f"banded {filter_name} table {which} of level {l} for "
                               f"{h}x{w} lost weights (a bug in _banded_tables)")
    k = _split_shift(blocks)
    return starts.astype(np.int32), blocks.astype(np.int32), gather.astype(np.int32), k


def _banded_pass(x, level, tables, axis):
    """One Pillow pass along ``axis`` for a traced level: gathers each block's
    input window, multiplies by its band of weights (exact float32 halves, as
    in ``_band_pass``), and gathers the outputs back in order.

    x: (H, W, C) float32 0..255 (padded sizes); tables from ``_banded_tables``.
    Returns (out_pad, W, C) or (H, out_pad, C) float32 0..255.
    """
    starts, blocks, gather, k = tables
    nb, win = blocks.shape[1], blocks.shape[3]
    idx = (jnp.asarray(starts)[level][:, None] + jnp.arange(win, dtype=jnp.int32)).reshape(-1)
    xs = jnp.take(x, idx, axis=axis)
    if axis == 0:
        xs = xs.reshape((nb, win) + x.shape[1:])
        spec = "dboi,biwc->dbowc"
    else:
        xs = xs.reshape((x.shape[0], nb, win, x.shape[2]))
        spec = "dboi,hbic->dhboc"
    parts = split_weights(jnp.asarray(blocks)[level], k)
    sums = jnp.einsum(spec, parts, xs, precision=lax.Precision.HIGHEST).astype(jnp.int32)
    out = _round_clip((sums[0] << k) + sums[1])
    if axis == 0:
        out = out.reshape((-1,) + out.shape[2:])
    else:
        out = out.reshape(out.shape[0], -1, out.shape[-1])
    return jnp.take(out, jnp.asarray(gather)[level], axis=axis)


def _down_up_padded(x, level, filter_name, factors):
    """Down and up with per-level tables padded to common shapes; ``level``
    traced and batchable (one program for every level)."""
    h, w, _ = x.shape
    for which, axis in enumerate((1, 0, 1, 0)):  # horizontal, then vertical
        x = _banded_pass(x, level, _banded_tables(h, w, filter_name, factors, which), axis)
    return x


def _down_up_switch(x, level, filter_name, factors):
    branches = [functools.partial(_down_up_fixed, level=l, filter_name=filter_name,
                                  factors=factors) for l in range(len(factors))]
    return lax.switch(jnp.clip(level, 0, len(factors) - 1), branches, x)


@functools.lru_cache(maxsize=None)
def _down_up_traced(filter_name, factors):
    """(x, level) -> x for a traced level, as a ``custom_vmap`` function.

    A scalar level (``jit``, ``lax.map``/``lax.switch`` in ``distort_batch``)
    runs only its own level, with banded matrices of the exact sizes. Under
    ``vmap`` with per-sample levels a switch would turn into a select running
    all five levels: there ``map_per_sample`` loops over the samples on CPU
    and elsewhere runs one program for all levels (``_down_up_padded``).
    """
    switch = functools.partial(_down_up_switch, filter_name=filter_name, factors=factors)
    padded = functools.partial(_down_up_padded, filter_name=filter_name, factors=factors)
    return level_dispatch(switch, padded)


def _down_up_valid_switch(x, level, valid_hw, filter_name, factors):
    branches = [functools.partial(resize_valid.down_up, filter_name=filter_name, kind="factor",
                                  value=float(f)) for f in factors]
    return lax.switch(jnp.clip(level, 0, len(factors) - 1),
                      [lambda x, v, b=b: b(x, v) for b in branches], x, valid_hw)


@functools.lru_cache(maxsize=None)
def _down_up_valid(filter_name, factors):
    """(x, level, valid_hw) -> x: a switch over per-level programs; under
    vmap with per-sample levels, a loop over samples (``level_dispatch``)."""
    switch = functools.partial(_down_up_valid_switch, filter_name=filter_name, factors=factors)
    return level_dispatch(switch, None)


def _down_up(image, level, filter_name, factors, valid_hw=None):
    if valid_hw is not None:
        x = jnp.round(image * 255.0)
        if isinstance(level, (int, np.integer)):
            x = resize_valid.down_up(x, jnp.asarray(valid_hw, jnp.int32), filter_name,
                                     "factor", float(factors[int(level)]))
        else:
            x = _down_up_valid(filter_name, factors)(x, jnp.asarray(level, jnp.int32),
                                                    jnp.asarray(valid_hw, jnp.int32))
        return x / 255.0
    h, w, _ = image.shape
    _resample_tables(h, w, filter_name, factors)  # size check for every level
    x = jnp.round(image * 255.0)
    if isinstance(level, (int, np.integer)):
        x = _down_up_fixed(x, int(level), filter_name, factors)
    else:
        x = _down_up_traced(filter_name, factors)(x, jnp.asarray(level, jnp.int32))
    return x / 255.0


def resize_bicubic(key, image, level, valid_hw=None):
    """Distortion 16: bicubic (a=-0.5) down by 2/3/4/8/16 and back up.

    Args: key unused; image (H, W, 3) float32 in [0, 1]; level int/int32 0..4;
    valid_hw: optional int32 (2,), resize the picture image[:h, :w] by its
    own size (the rest of the output is unspecified).
    Returns (H, W, 3) float32 on the uint8 grid.
    """
    del key
    return _down_up(image, level, "bicubic", RESIZE_FACTORS, valid_hw)


def resize_bilinear(key, image, level, valid_hw=None):
    """Distortion 23: bilinear (triangle) down by 2/3/4/8/16 and back up."""
    del key
    return _down_up(image, level, "bilinear", RESIZE_FACTORS, valid_hw)


def resize_lanczos(key, image, level, valid_hw=None):
    """Distortion 25: Lanczos-3 down by 2/3/4/8/16 and back up."""
    del key
    return _down_up(image, level, "lanczos", RESIZE_FACTORS, valid_hw)


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


def _nearest_valid(image, level, valid_hw, kind, values):
    """NEAREST down and up of the picture image[:h, :w] (traced sizes)."""
    branches = [functools.partial(resize_valid.nearest_down_up, kind=kind, value=float(v))
                for v in values]
    valid_hw = jnp.asarray(valid_hw, jnp.int32)
    if isinstance(level, (int, np.integer)):
        return branches[int(level)](image, valid_hw)
    return lax.switch(jnp.clip(jnp.asarray(level, jnp.int32), 0, len(values) - 1),
                      [lambda x, v, b=b: b(x, v) for b in branches], image, valid_hw)


def resize_nearest(key, image, level, valid_hw=None):
    """Distortion 24: NEAREST down by 2/3/4/5/6 (``int(w / f)``) and back up.

    Args/returns as ``resize_bicubic``; exact (a pure gather).
    """
    del key
    if valid_hw is not None:
        return _nearest_valid(image, level, valid_hw, "factor", NEAREST_FACTORS)
    h, w, _ = image.shape
    sizes = tuple((int(h / f), int(w / f)) for f in NEAREST_FACTORS)
    return _nearest_down_up(image, level, sizes)


def pixelate(key, image, level, valid_hw=None):
    """Distortion 20: NEAREST to ``int(z * size)``, z = 0.95 - p**0.6, and back.

    p = 0.01/0.05/0.1/0.2/0.5. Args/returns as ``resize_bicubic``.
    """
    del key
    zs = [0.95 - p ** 0.6 for p in PIXELATE_PARAMS]
    if valid_hw is not None:
        return _nearest_valid(image, level, valid_hw, "fraction", zs)
    h, w, _ = image.shape
    sizes = tuple((int(z * h), int(z * w)) for z in zs)
    return _nearest_down_up(image, level, sizes)


__all__ = ["resize_bicubic", "resize_bilinear", "resize_nearest",
           "resize_lanczos", "pixelate", "pil_resample_weights", "pil_resample_matrix",
           "pil_nearest_index"]
