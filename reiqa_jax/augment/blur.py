"""Blur distortions: Gaussian (1), lens (2), motion (26) and denoise (12).

Each op is ``op(key, image, level) -> image`` with ``image`` float32
(H, W, 3) in [0, 1] on the uint8 grid and ``level`` a Python int 0..4 or a
traced int32 scalar. Per-level parameters live in constant tables padded to
the largest level's kernel, so one compiled program serves every level, under
``jit``, ``vmap`` and ``lax.switch``. Gaussian, lens and the denoise filters
also have per-level programs with only their own taps: a scalar level
(``jit``, ``lax.map``/``lax.switch`` as in ``distort_batch``) runs those
through a ``lax.switch``. Under ``vmap`` with per-sample levels, where a
switch would run every branch, ``filters.map_per_sample`` loops over the
samples with that switch on CPU and runs the padded table elsewhere
(``custom_vmap`` routes). All give identical results, except that lens blur
sums its float32 terms in another order in the padded program and may
truncate a rare pixel one level apart.

How each matches the official ``datasets/iqa_distortions.py``:

* Gaussian blur and the denoise filters are Pillow's ``GaussianBlur`` /
  ``BoxBlur``. Pillow does not convolve with a Gaussian: it runs 3 box-blur
  passes per axis (horizontal passes first), each box of radius ``r + a``
  (integer part weighted ``ww``, the two outer taps weighted ``fw``, both in
  24-bit fixed point) and rounds back to uint8 after every pass. We repeat
  that arithmetic in uint32, so results are bit-exact, not approximate.
* Lens and motion blur are ``scipy.ndimage.convolve(mode='nearest')`` into a
  uint8 output, which truncates the float64 sum. Motion blur sums integers
  exactly and returns the exact quotient; scipy's float64 sum of N terms
  ``x / N`` sometimes lands a hair below an exact integer and truncates one
  level lower (1-3% of pixels for lengths that are not powers of two).
  Lens blur convolves in float32; where the float64 sum lies within float32
  error of an integer the two may truncate differently (< 0.2% of pixels).
  Both differences are a single uint8 level; PSNR to scipy stays > 60 dB.

A picture smaller than its array (``valid_hw``, see ``extent.py``): both
border rules repeat the edge pixel, so the array beyond the picture is made
to repeat it before each filter pass (``extent.edge_extend``); the picture's
pixels then come out as for the picture alone.
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from reiqa_jax.augment.extent import edge_extend, edge_extend_axis
from reiqa_jax.augment.filters import level_dispatch, shifted_sum
from reiqa_jax.augment.quantize import truncate_u8
from reiqa_jax.normalize import to_unit_float

GAUSSIAN_SIGMAS = (0.1, 0.5, 1.0, 2.0, 5.0)
LENS_RADII = (1, 2, 4, 6, 8)
MOTION_LENGTHS = (12, 16, 20, 24, 28)
DENOISE_VARIANCES = (0.001, 0.002, 0.003, 0.005, 0.01)
DENOISE_GAUSSIAN_RADIUS = 3.0
DENOISE_BOX_RADIUS = 2.0

_ONE = 1 << 24  # Pillow's box blur works in 8.24 fixed point.


# --------------------------------------------------------------------------
# Pillow box blur, built in numpy at import time.


def pil_gaussian_box_radius(sigma, passes=3):
    """Box radius Pillow uses for ``GaussianBlur(sigma)`` (float32 arithmetic).

    Pillow converts sigma to a C float and computes the extended-box radius of
    Gwosdek et al. (2011) mostly in single precision; we follow the same
    precision so the 24-bit weights derived from it come out identical.
    """
    f = np.float32
    sigma = f(sigma)
    sigma2 = f(sigma * sigma) / f(passes)
    big_l = f(math.sqrt(12.0 * float(sigma2) + 1.0))
    l = f(math.floor((float(big_l) - 1.0) / 2.0))
    a = (f(2) * l + f(1)) * (l * (l + f(1)) - f(3) * sigma2)
    a = a / (f(6) * (sigma2 - (l + f(1)) * (l + f(1))))
    return f(l + a)


def pil_box_weights(radius, half_width):
    """Integer taps of one Pillow box-blur pass, length ``2 * half_width + 1``.

    Offsets -r..r get ``ww = 2^24 / (2 * radius + 1)`` (float32, truncated),
    offsets +-(r + 1) get the leftover ``fw`` (the fractional part of the
    radius); ``r = int(radius)``. Returns uint32 (2 * half_width + 1,).
    """
    radius = np.float32(radius)
    r = int(radius)
    if r + 1 > half_width:
        raise ValueError(f"pil_box_weights: a box of radius {float(radius)} needs "
                         f"half_width >= {r + 1}, got {half_width}")
    ww = int(np.float32(_ONE) / (radius * np.float32(2) + np.float32(1)))
    fw = (_ONE - (2 * r + 1) * ww) // 2
    taps = np.zeros(2 * half_width + 1, np.uint32)
    taps[half_width - r:half_width + r + 1] = ww
    taps[half_width - r - 1] = fw
    taps[half_width + r + 1] = fw
    return taps


def identity_weights(half_width):
    """A box pass that returns its input unchanged (pads a pass schedule)."""
    taps = np.zeros(2 * half_width + 1, np.uint32)
    taps[half_width] = _ONE
    return taps


def pil_box_blur_u32(x, weights, valid_hw=None):
    """Pillow's multi-pass box blur on integer pixels.

    Args:
      x: (H, W, C) uint32 with values 0..255.
      weights: (P, K) uint32, one row of taps per pass (K odd; may be traced).
        All P passes run horizontally, then all P vertically, each rounding
        back to 0..255 as Pillow's ``(sum + 2^23) >> 24`` does.
      valid_hw: optional int32 (2,): the picture is x[:h, :w]; each pass
        first repeats its edge along the pass's axis (Pillow's clamped window).

    Returns (H, W, C) uint32 in 0..255. Sums stay below 2^32 because the taps
    of a pass add up to at most 2^24 and pixels are at most 255.
    """
    center = weights.shape[1] // 2
    half = jnp.uint32(1 << 23)
    for axis in (1, 0):
        # scan over passes: one traced pass body instead of P copies.
        def one_pass(x, w, axis=axis):
            if valid_hw is not None:
                x = edge_extend_axis(x, valid_hw[axis], axis)
            s = shifted_sum(x, w, axis=axis, center=center)
            return (s + half) >> 24, None

        x, _ = lax.scan(one_pass, x, weights)
    return x


def _box_pass_fixed(x, taps, axis, n_valid=None):
    """One Pillow box pass with constant taps (numpy uint32, odd length).

    Equal taps (the box's inner ``ww`` run, the two outer ``fw``) are summed
    first and multiplied once; zero taps are skipped. Same uint32 result as
    ``shifted_sum`` + ``(s + 2^23) >> 24``. ``n_valid``: the picture's length
    along ``axis`` (its edge is repeated beyond it first).
    """
    if n_valid is not None:
        x = edge_extend_axis(x, n_valid, axis)
    half = len(taps) // 2
    nz = np.nonzero(taps)[0]
    lo, hi = int(nz.min()) - half, int(nz.max()) - half
    n = x.shape[axis]
    pad = [(0, 0)] * x.ndim
    pad[axis] = (max(-lo, 0), max(hi, 0))
    # Materialise the padded input: XLA would otherwise fuse the previous
    # pass into every shifted read of it (work growing with taps^passes).
    xp = lax.optimization_barrier(jnp.pad(x, pad, mode="edge"))
    groups = {}
    for j in nz:
        s = lax.slice_in_dim(xp, int(j) - half - lo, int(j) - half - lo + n, axis=axis)
        wgt = int(taps[j])
        groups[wgt] = s if wgt not in groups else groups[wgt] + s
    out = None
    for wgt, s in groups.items():
        t = s if wgt == 1 else jnp.uint32(wgt) * s
        out = t if out is None else out + t
    return (out + jnp.uint32(1 << 23)) >> 24


def pil_box_blur_fixed(x, weights, valid_hw=None):
    """``pil_box_blur_u32`` for constant (numpy) weights (P, K): each pass
    uses only its own taps. Bit-identical to ``pil_box_blur_u32``."""
    for axis in (1, 0):
        n_valid = None if valid_hw is None else valid_hw[axis]
        for taps in weights:
            if np.array_equal(taps, identity_weights(len(taps) // 2)):
                continue  # a padding pass: the pixels as they are
            x = _box_pass_fixed(x, np.asarray(taps, np.uint32), axis, n_valid)
    return x


def _box_blur_by_index(table):
    """(x, index, valid_hw=None) -> box blur of uint32 ``x`` with
    ``table[index]`` (L, P, K), of the picture x[:h, :w] when valid_hw is given.

    A scalar index (``jit``, ``lax.map``/``lax.switch``) runs a ``lax.switch``
    over ``pil_box_blur_fixed`` programs, each as short as its own taps. Under
    ``vmap`` with per-sample indices (where a switch would become a select
    running every branch) ``map_per_sample`` loops over the samples on CPU
    and elsewhere runs the padded ``pil_box_blur_u32`` for all of them.
    """
    table = np.asarray(table, np.uint32)

    def switch(x, index, *valid):
        branches = [lambda x, *v, w=w: pil_box_blur_fixed(x, w, *v) for w in table]
        return lax.switch(jnp.clip(index, 0, len(table) - 1), branches, x, *valid)

    def padded(x, index, *valid):
        return pil_box_blur_u32(x, jnp.asarray(table)[index], *valid)

    f = level_dispatch(switch, padded)

    def apply(x, index, valid_hw=None):
        valid = () if valid_hw is None else (jnp.asarray(valid_hw, jnp.int32),)
        if isinstance(index, (int, np.integer)):
            return pil_box_blur_fixed(x, table[int(index)], *valid)
        return f(x, jnp.asarray(index, jnp.int32), *valid)

    return apply


def _to_u32(image):
    return jnp.round(image * 255.0).astype(jnp.uint32)


_GAUSS_HALF = max(int(pil_gaussian_box_radius(s)) for s in GAUSSIAN_SIGMAS) + 1
# (5 levels, 3 passes, K taps)
_GAUSS_TABLE = np.stack([
    np.stack([pil_box_weights(pil_gaussian_box_radius(s), _GAUSS_HALF)] * 3)
    for s in GAUSSIAN_SIGMAS])


_gauss_blur = _box_blur_by_index(_GAUSS_TABLE)


def gaussian_blur(key, image, level, valid_hw=None):
    """Distortion 1: Pillow ``GaussianBlur(radius=sigma)``, sigma 0.1/0.5/1/2/5.

    Args:
      key: unused (deterministic op).
      image: (H, W, 3) float32 in [0, 1] on the uint8 grid.
      level: int or traced int32 scalar in 0..4.
      valid_hw: optional int32 (2,): blur the picture image[:h, :w] alone
        (``extent.py``); the rest of the output is unspecified.
    Returns (H, W, 3) float32 on the uint8 grid, bit-exact with Pillow.
    """
    del key
    return to_unit_float(_gauss_blur(_to_u32(image), level, valid_hw))


# --------------------------------------------------------------------------
# Denoise: white noise, then a Pillow Gaussian (r=3) or box (r=2) blur.

_DENOISE_HALF = max(int(pil_gaussian_box_radius(DENOISE_GAUSSIAN_RADIUS)),
                    int(DENOISE_BOX_RADIUS)) + 1
# Row 0: GaussianBlur(3) = 3 extended-box passes. Row 1: BoxBlur(2) = one
# plain box pass, padded with identity passes so both share one schedule.
_DENOISE_TABLE = np.stack([
    np.stack([pil_box_weights(pil_gaussian_box_radius(DENOISE_GAUSSIAN_RADIUS),
                              _DENOISE_HALF)] * 3),
    np.stack([pil_box_weights(DENOISE_BOX_RADIUS, _DENOISE_HALF),
              identity_weights(_DENOISE_HALF), identity_weights(_DENOISE_HALF)]),
])


_denoise_blur = _box_blur_by_index(_DENOISE_TABLE)


def denoise_noise(key, image, level):
    """Denoise, first stage: white noise of the level's variance, truncated.

    Variance per level: 0.001/0.002/0.003/0.005/0.01 (image in [0, 1]);
    truncated to uint8 as the official ``astype('uint8')`` does.
    Returns (H, W, 3) float32 on the uint8 grid.
    """
    sigma = jnp.sqrt(jnp.asarray(DENOISE_VARIANCES, jnp.float32)[level])
    return truncate_u8(image + sigma * jax.random.normal(key, image.shape))


def denoise_filter(image, which, valid_hw=None):
    """Denoise, second stage: 0 -> Pillow GaussianBlur(3), 1 -> BoxBlur(2).

    ``which`` may be traced; both filters share one 3-pass schedule.
    Returns (H, W, 3) float32 on the uint8 grid, bit-exact with Pillow.
    """
    return to_unit_float(_denoise_blur(_to_u32(image), which, valid_hw))


def denoise(key, image, level, valid_hw=None):
    """Distortion 12: additive white noise, then a random smoothing filter.

    ``denoise_noise``, then with equal probability Pillow
    ``GaussianBlur(radius=3)`` or ``BoxBlur(radius=2)`` (``denoise_filter``).
    Args/returns as ``gaussian_blur``; ``key`` draws the noise and the filter.
    """
    k_noise, k_filter = jax.random.split(key)
    which = jax.random.bernoulli(k_filter).astype(jnp.int32)
    return denoise_filter(denoise_noise(k_noise, image, level), which, valid_hw)


# --------------------------------------------------------------------------
# Lens blur: the pillbox of MATLAB fspecial('disk').


def _quadrant_area(a, b, radius):
    """Area of {x^2 + y^2 <= radius^2} within [0, a] x [0, b], odd in a and b."""
    sa, sb = np.sign(a), np.sign(b)
    a, b = abs(a), abs(b)
    # x where the circle crosses height b; below it the column is capped at b.
    xb = math.sqrt(max(radius * radius - b * b, 0.0))

    def prim(x):  # integral of sqrt(r^2 - t^2) dt from 0 to x
        x = min(x, radius)
        return 0.5 * (x * math.sqrt(max(radius * radius - x * x, 0.0))
                      + radius * radius * math.asin(x / radius))

    if a <= xb:
        area = a * b
    else:
        area = b * xb + prim(a) - prim(xb)
    return sa * sb * area


def disk_kernel(radius):
    """MATLAB ``fspecial('disk', radius)``: pixel-square coverage of a disk.

    Each tap is the exact area of the unit pixel square centred on (dy, dx)
    that lies inside the disk, normalised to sum 1. Returns float64
    (2c+1, 2c+1) with c = ceil(radius - 0.5).
    """
    c = int(math.ceil(radius - 0.5))
    k = np.zeros((2 * c + 1, 2 * c + 1))
    for i, dy in enumerate(range(-c, c + 1)):
        for j, dx in enumerate(range(-c, c + 1)):
            y0, y1, x0, x1 = dy - 0.5, dy + 0.5, dx - 0.5, dx + 0.5
            k[i, j] = (_quadrant_area(x1, y1, radius) - _quadrant_area(x0, y1, radius)
                       - _quadrant_area(x1, y0, radius) + _quadrant_area(x0, y0, radius))
    return k / k.sum()


_LENS_HALF = int(math.ceil(max(LENS_RADII) - 0.5))


def _padded_disk(radius):
    k = disk_kernel(radius)
    p = _LENS_HALF - k.shape[0] // 2
    return np.pad(k, p)


def _symmetrize(kernel):
    """Mean of the 8 flips/transpositions of a square kernel (float64).

    ``disk_kernel`` is symmetric up to float64 rounding (~1e-16); this makes
    the 8 taps that share a value share it exactly, so they can be summed
    before one multiply. Taps below 1e-12 are cancellation noise of the area
    formula for squares outside the disk (+-7e-17) and become 0.
    """
    k = (kernel + kernel[::-1] + kernel[:, ::-1] + kernel[::-1, ::-1]) / 4
    k = (k + k.T) / 2
    return np.where(np.abs(k) < 1e-12, 0.0, k)


_LENS_TABLE = np.stack([_symmetrize(_padded_disk(r)) for r in LENS_RADII]).astype(np.float32)


def _disk_octant(kernel):
    """Taps of a disk kernel up to its 8-fold symmetry.

    ``kernel``: (..., 2c+1, 2c+1), symmetric under flips of either axis and
    under transposition (see ``_symmetrize``). Returns the static list of
    (a, b), 0 <= a <= b <= c, whose tap is nonzero; tap (a, b) stands for all
    of (+-a, +-b) and (+-b, +-a).
    """
    c = kernel.shape[-1] // 2
    q = kernel[..., c:, c:]
    return [(a, b) for a in range(c + 1) for b in range(a, c + 1) if np.any(q[..., a, b] != 0)]


def _octant_sums(x, c, taps):
    """For each (a, b) in ``taps``: the sum of ``x`` over the 4 or 8 offsets
    (+-a, +-b), (+-b, +-a) with scipy's 'nearest' border.

    x: (H, W, C) float32 integers 0..255, so every sum is exact.
    Yields (a, b, (H, W, C) float32).
    """
    h, w, _ = x.shape
    xp = jnp.pad(x, ((c, c), (c, c), (0, 0)), mode="edge")
    rows = lambda s: lax.slice_in_dim(xp, c + s, c + s + h, axis=0)
    # Row pairs x[y + a] + x[y - a] (width W + 2c), materialised once: XLA
    # would otherwise recompute each pair inside the fused sum for every
    # tap that reads it.
    pairs = [rows(0)] + [rows(a) + rows(-a) for a in range(1, c + 1)]
    pairs = lax.optimization_barrier(jnp.stack(pairs))

    def cols(a, b):  # pair a at column offsets +-b
        p = pairs[a]
        mid = lax.slice_in_dim(p, c + b, c + b + w, axis=1)
        if b == 0:
            return mid
        return mid + lax.slice_in_dim(p, c - b, c - b + w, axis=1)

    for a, b in taps:
        s = cols(a, b)
        if a != b:
            s = s + cols(b, a)
        yield a, b, s


_LENS_TAPS = _disk_octant(_LENS_TABLE)
_LENS_QUADRANTS = _LENS_TABLE[:, _LENS_HALF:, _LENS_HALF:]


def _lens_padded(x, level):
    """All levels with one 17x17 table; ``level`` may be traced or batched."""
    q = jnp.asarray(_LENS_QUADRANTS)[level]
    out = None
    for a, b, s in _octant_sums(x, _LENS_HALF, _LENS_TAPS):
        t = q[a, b] * s
        out = t if out is None else out + t
    return out


def _lens_fixed(x, level):
    """One level (a Python int) with its own kernel size and constant taps.

    Taps of equal value (the disk's fully covered pixels) are summed exactly
    first and multiplied once.
    """
    kernel = _symmetrize(disk_kernel(LENS_RADII[level])).astype(np.float32)
    c = kernel.shape[0] // 2
    groups = {}
    for a, b, s in _octant_sums(x, c, _disk_octant(kernel)):
        wgt = float(kernel[c + a, c + b])
        groups[wgt] = s if wgt not in groups else groups[wgt] + s
    out = None
    for wgt, s in groups.items():
        t = jnp.float32(wgt) * s
        out = t if out is None else out + t
    return out


def _lens_switch(x, level):
    """Scalar ``level``: run only that level's (smaller) kernel."""
    return lax.switch(jnp.clip(level, 0, len(LENS_RADII) - 1),
                      [functools.partial(_lens_fixed, level=l) for l in range(len(LENS_RADII))],
                      x)


# Per-sample levels: a switch would become a select running all five
# kernels; loop over samples (CPU) or one padded 17x17 program.
_lens_sum = level_dispatch(_lens_switch, _lens_padded)


def lens_blur(key, image, level, valid_hw=None):
    """Distortion 2: disk (pillbox) blur, radius 1/2/4/6/8 px.

    ``ndimage.convolve(mode='nearest')`` into uint8: float sum, truncated.
    The disk is symmetric under flips and transposition, so pixels at the
    (up to) 8 offsets sharing a tap are summed first (exactly: integers) and
    multiplied once. A scalar ``level`` (``jit``, ``lax.map``/``lax.switch``)
    runs only its own kernel (3x3 ... 17x17); so does ``vmap`` with
    per-sample levels on CPU (a loop over samples); on other backends every
    sample there uses one 17x17 table (smaller disks zero-padded and centred,
    which for odd sizes keeps scipy's placement).
    Args/returns as ``gaussian_blur``.
    """
    del key
    x = jnp.round(image * 255.0)
    if valid_hw is not None:  # 'nearest' border at the picture's edge
        x = edge_extend(x, valid_hw)
    if isinstance(level, (int, np.integer)):
        blurred = _lens_fixed(x, int(level))
    else:
        blurred = _lens_sum(x, jnp.asarray(level, jnp.int32))
    return jnp.floor(jnp.clip(blurred, 0.0, 255.0)) / 255.0


# --------------------------------------------------------------------------
# Motion blur: a straight line of ones, vertical or horizontal.

# scipy puts an even-length kernel's origin at index N//2 while the official
# line sits at (N-1)//2. Convolution flips it, so the line averages offsets
# -(N-1)//2 .. N//2 along its direction and reads the neighbour one pixel
# *after* the output pixel across it (x+1 for a vertical line).
_MOTION_LO = max((n - 1) // 2 for n in MOTION_LENGTHS)
_MOTION_HI = max(n // 2 for n in MOTION_LENGTHS)
_MOTION_TABLE = np.stack([
    np.array([1.0 if -((n - 1) // 2) <= d <= n // 2 else 0.0
              for d in range(-_MOTION_LO, _MOTION_HI + 1)], np.float32)
    for n in MOTION_LENGTHS])


def _shift_clamped(x, axis):
    """x[i + 1] with the last index repeated (scipy 'nearest' border)."""
    n = x.shape[axis]
    idx = jnp.minimum(jnp.arange(n) + 1, n - 1)
    return jnp.take(x, idx, axis=axis)


def motion_blur(key, image, level, valid_hw=None):
    """Distortion 26: box line of length 12/16/20/24/28, vertical or horizontal.

    The direction is a fair coin from ``key`` (official
    ``random.choice([0, 90])``; 0 puts the line in a kernel column, i.e.
    blurs vertically). Integer sums are exact in float32, and
    ``floor((S + 0.5) / N)`` equals ``floor(S / N)`` for integer S without
    float ties. Both directions are computed and one is selected (cheaper
    than a branch under ``vmap``, which would run both anyway).
    Args/returns as ``gaussian_blur``.
    """
    weights = jnp.asarray(_MOTION_TABLE)[level]
    length = jnp.asarray(MOTION_LENGTHS, jnp.float32)[level]
    x = jnp.round(image * 255.0)
    if valid_hw is not None:  # 'nearest' border at the picture's edge
        x = edge_extend(x, valid_hw)
    vert = shifted_sum(_shift_clamped(x, axis=1), weights, axis=0, center=_MOTION_LO)
    horz = shifted_sum(_shift_clamped(x, axis=0), weights, axis=1, center=_MOTION_LO)
    vertical = jax.random.bernoulli(key)
    s = jnp.where(vertical, vert, horz)
    return jnp.floor((s + 0.5) / length) / 255.0
