"""numpy / scipy / scikit-image statements of the official noise and spatial
distortions (``datasets/iqa_distortions.py``: imnoisegauss, imnoisecolormap,
imnoiseimpulse, imnoisemultiplicative, imcolorblock, imnoneccentricity,
imjitter), written from what the official computes.

Uniform signature ``ref_<name>(rng, image_u8, level) -> uint8 (H, W, 3)``;
``rng`` is a ``np.random.Generator`` and stands in for both the official's
``np.random`` and Python ``random`` (``random.uniform(0, 1)`` ->
``rng.random()``, ``random.randint(0, 255)`` -> ``rng.integers(0, 256)``).
Used by the tests and by ``benchmarks/augment.py`` (the CPU baseline).
"""

import numpy as np
from scipy import ndimage
from skimage import color

_WHITE_VAR = [0.001, 0.002, 0.003, 0.005, 0.01]
_YCBCR_VAR = [0.0001, 0.0005, 0.001, 0.002, 0.003]
_IMPULSE_PROB = [0.001, 0.005, 0.01, 0.02, 0.03]
_MULTIPLICATIVE_VAR = [0.001, 0.005, 0.01, 0.02, 0.05]
_BLOCK_COUNTS = [2, 4, 6, 8, 10]
_PATCH_COUNTS = [20, 40, 60, 80, 100]
_JITTER_SIGMA = [0.05, 0.1, 0.2, 0.5, 1.0]


def ref_white_noise(rng, image_u8, level):
    """8 (imnoisegauss): float32 image / 255 + float64 N(0, var), truncated."""
    im = np.float32(image_u8 / 255.0)
    noisy = im + rng.normal(0.0, _WHITE_VAR[level] ** 0.5, im.shape)
    return np.clip(noisy * 255.0, 0, 255).astype(np.uint8)


def ref_white_noise_ycbcr(rng, image_u8, level):
    """9 (imnoisecolormap): N(0, var) on skimage YCbCr / 255."""
    ycbcr = color.rgb2ycbcr(image_u8) / 255.0
    noisy = ycbcr + rng.normal(0.0, _YCBCR_VAR[level] ** 0.5, ycbcr.shape)
    rgb = color.ycbcr2rgb(noisy * 255.0) * 255.0
    return np.clip(rgb, 0, 255).astype(np.uint8)


def ref_impulse_noise(rng, image_u8, level):
    """10 (imnoiseimpulse): whole pixels to black / white with prob p/2 each."""
    p = _IMPULSE_PROB[level]
    out = image_u8.copy()
    u = rng.random(out.shape[:2])
    out[u < p / 2] = 0
    out[u > 1 - p / 2] = 255
    return out


def ref_multiplicative_noise(rng, image_u8, level):
    """11 (imnoisemultiplicative): im + im * N(0, var), truncated."""
    im = np.float32(image_u8 / 255.0)
    noisy = im + im * rng.normal(0.0, _MULTIPLICATIVE_VAR[level] ** 0.5, im.shape)
    return np.clip(noisy * 255.0, 0, 255).astype(np.uint8)


def ref_paint_blocks(image_u8, ys, xs, colours):
    """Paint 32x32 blocks in order; returns a new uint8 image."""
    im = image_u8.astype(np.float32)
    for y, x, c in zip(ys, xs, colours):
        im[y : y + 32, x : x + 32, :] = np.asarray(c, np.float32)
    return im.astype(np.uint8)


def ref_color_block(rng, image_u8, level):
    """19 (imcolorblock)."""
    h, w, _ = image_u8.shape
    ys, xs, colours = [], [], []
    for _ in range(_BLOCK_COUNTS[level]):
        colours.append([int(rng.integers(0, 256)) for _ in range(3)])
        xs.append(int(rng.random() * (w - 32)))
        ys.append(int(rng.random() * (h - 32)))
    return ref_paint_blocks(image_u8, ys, xs, colours)


def ref_copy_patches(image_u8, src_y, src_x, dst_y, dst_x):
    """Sequential 16x16 copies with numpy slice semantics, in place on a
    float32 copy as the official; returns uint8."""
    im = image_u8.astype(np.float32)
    for sy, sx, dy, dx in zip(src_y, src_x, dst_y, dst_x):
        patch = im[sy : sy + 16, sx : sx + 16, :]
        # numpy copies an overlapping source before assigning, as here.
        im[dy : dy + 16, dx : dx + 16, :] = patch
    return im.astype(np.uint8)


def ref_patch_moves(rng, h, w, count):
    """The official draws of imnoneccentricity: (src_y, src_x, dst_y, dst_x)
    lists, index arithmetic verbatim (int() truncates toward zero)."""
    radius = 16
    h_min, w_min = radius, radius
    h_max, w_max = h - 16 - radius, w - 16 - radius
    moves = []
    for _ in range(count):
        w_start = int(rng.random() * (w_max - w_min)) + w_min
        h_start = int(rng.random() * (h_max - h_min)) + h_min
        rand_w = int((rng.random() - 0.5) * radius + w_start)
        rand_h = int((rng.random() - 0.5) * radius + h_start)
        moves.append((h_start, w_start, rand_h, rand_w))
    return [list(m) for m in zip(*moves)]


def ref_non_eccentricity(rng, image_u8, level):
    """21 (imnoneccentricity)."""
    h, w, _ = image_u8.shape
    return ref_copy_patches(image_u8, *ref_patch_moves(rng, h, w, _PATCH_COUNTS[level]))


def ref_warp(image255, dy, dx):
    """One official imwarpmap: per-channel cubic spline, 'reflect', clipped.

    image255: float32 (H, W, 3) 0-255; dy, dx: (H, W). Returns float32.
    """
    h, w = dy.shape
    yy, xx = np.meshgrid(range(h), range(w), indexing="ij")
    coords = [(yy - dy).ravel(), (xx - dx).ravel()]
    out = np.empty_like(image255)
    for k in range(image255.shape[2]):
        out[:, :, k] = ndimage.map_coordinates(
            image255[:, :, k], coords, order=3, mode="reflect"
        ).reshape(h, w)
    return np.clip(out, 0, 255)


def ref_warp_sequence(image255, fields):
    """Warps by fields (K, 2, H, W) in turn; float32 0-255 out, unquantized."""
    j = image255.astype(np.float32)
    for f in fields:
        j = ref_warp(j, f[0], f[1])
    return j


def ref_jitter(rng, image_u8, level):
    """22 (imjitter): five warps by N(0, s^2) fields, truncated at the end."""
    h, w, _ = image_u8.shape
    s = _JITTER_SIGMA[level]
    j = image_u8.astype(np.float32)
    for _ in range(5):
        shifts = rng.standard_normal((h, w, 2)) * s
        j = ref_warp(j, shifts[:, :, 0], shifts[:, :, 1])
    return j.astype(np.uint8)
