"""Blur distortions: Gaussian (1), lens (2), motion (26) and denoise (12).

Each op is ``op(key, image, level) -> image`` with ``image`` float32
(H, W, 3) in [0, 1] on the uint8 grid and ``level`` a Python int 0..4 or a
traced int32 scalar. Per-level parameters live in constant tables padded to
the largest level's kernel, so one compiled program serves every level, under
``jit``, ``vmap`` and ``lax.switch``.

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
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from reiqa_jax.augment.filters import convolve2d_nearest, shifted_sum
from reiqa_jax.augment.quantize import truncate_u8

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
    assert r + 1 <= half_width
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


def pil_box_blur_u32(x, weights):
    """Pillow's multi-pass box blur on integer pixels.

    Args:
      x: (H, W, C) uint32 with values 0..255.
      weights: (P, K) uint32, one row of taps per pass (K odd; may be traced).
        All P passes run horizontally, then all P vertically, each rounding
        back to 0..255 as Pillow's ``(sum + 2^23) >> 24`` does.

    Returns (H, W, C) uint32 in 0..255. Sums stay below 2^32 because the taps
    of a pass add up to at most 2^24 and pixels are at most 255.
    """
    center = weights.shape[1] // 2
    half = jnp.uint32(1 << 23)
    for axis in (1, 0):
        # scan over passes: one traced pass body instead of P copies.
        def one_pass(x, w, axis=axis):
            s = shifted_sum(x, w, axis=axis, center=center)
            return (s + half) >> 24, None

        x, _ = lax.scan(one_pass, x, weights)
    return x


def _to_u32(image):
    return jnp.round(image * 255.0).astype(jnp.uint32)


def _from_u32(x):
    return x.astype(jnp.float32) / 255.0


_GAUSS_HALF = max(int(pil_gaussian_box_radius(s)) for s in GAUSSIAN_SIGMAS) + 1
# (5 levels, 3 passes, K taps)
_GAUSS_TABLE = np.stack([
    np.stack([pil_box_weights(pil_gaussian_box_radius(s), _GAUSS_HALF)] * 3)
    for s in GAUSSIAN_SIGMAS])


def gaussian_blur(key, image, level):
    """Distortion 1: Pillow ``GaussianBlur(radius=sigma)``, sigma 0.1/0.5/1/2/5.

    Args:
      key: unused (deterministic op).
      image: (H, W, 3) float32 in [0, 1] on the uint8 grid.
      level: int or traced int32 scalar in 0..4.
    Returns (H, W, 3) float32 on the uint8 grid, bit-exact with Pillow.
    """
    del key
    weights = jnp.asarray(_GAUSS_TABLE)[level]
    return _from_u32(pil_box_blur_u32(_to_u32(image), weights))


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


def denoise_noise(key, image, level):
    """Denoise, first stage: white noise of the level's variance, truncated.

    Variance per level: 0.001/0.002/0.003/0.005/0.01 (image in [0, 1]);
    truncated to uint8 as the official ``astype('uint8')`` does.
    Returns (H, W, 3) float32 on the uint8 grid.
    """
    sigma = jnp.sqrt(jnp.asarray(DENOISE_VARIANCES, jnp.float32)[level])
    return truncate_u8(image + sigma * jax.random.normal(key, image.shape))


def denoise_filter(image, which):
    """Denoise, second stage: 0 -> Pillow GaussianBlur(3), 1 -> BoxBlur(2).

    ``which`` may be traced; both filters share one 3-pass schedule.
    Returns (H, W, 3) float32 on the uint8 grid, bit-exact with Pillow.
    """
    weights = jnp.asarray(_DENOISE_TABLE)[which]
    return _from_u32(pil_box_blur_u32(_to_u32(image), weights))


def denoise(key, image, level):
    """Distortion 12: additive white noise, then a random smoothing filter.

    ``denoise_noise``, then with equal probability Pillow
    ``GaussianBlur(radius=3)`` or ``BoxBlur(radius=2)`` (``denoise_filter``).
    Args/returns as ``gaussian_blur``; ``key`` draws the noise and the filter.
    """
    k_noise, k_filter = jax.random.split(key)
    which = jax.random.bernoulli(k_filter).astype(jnp.int32)
    return denoise_filter(denoise_noise(k_noise, image, level), which)


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


_LENS_TABLE = np.stack([_padded_disk(r) for r in LENS_RADII]).astype(np.float32)


def lens_blur(key, image, level):
    """Distortion 2: disk (pillbox) blur, radius 1/2/4/6/8 px.

    ``ndimage.convolve(mode='nearest')`` into uint8: float sum, truncated.
    All levels use a 17x17 kernel (smaller disks zero-padded and centred, which
    for odd sizes keeps scipy's placement). Args/returns as ``gaussian_blur``.
    """
    del key
    kernel = jnp.asarray(_LENS_TABLE)[level]
    blurred = convolve2d_nearest(image * 255.0, kernel)
    return truncate_u8(blurred / 255.0)


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


def motion_blur(key, image, level):
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
    vert = shifted_sum(_shift_clamped(x, axis=1), weights, axis=0, center=_MOTION_LO)
    horz = shifted_sum(_shift_clamped(x, axis=0), weights, axis=1, center=_MOTION_LO)
    vertical = jax.random.bernoulli(key)
    s = jnp.where(vertical, vert, horz)
    return jnp.floor((s + 0.5) / length) / 255.0
