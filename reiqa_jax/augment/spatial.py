"""Spatial distortions (official numbering 19, 21, 22), as pure JAX ops.

Each op is ``op(key, image, level) -> image``:
  key:   a JAX PRNG key (the official draws with Python ``random`` /
         ``np.random``).
  image: float32 (H, W, 3) in [0, 1] on the uint8 grid (k / 255), static H, W.
  level: Python int 0-4 or a traced int32 scalar.
Returns float32 (H, W, 3) in [0, 1] on the uint8 grid. All ops are jit / vmap
/ ``lax.switch`` safe: counts that depend on the level are loops to the
largest count with a mask (or a traced trip count), never Python branches.

Integer draws. The official places things at ``int(U * n)`` with U uniform in
[0, 1): that is uniform on {0, ..., n-1}, so we draw ``randint(0, n)``
directly (``U * n`` in float32 can round up to n for U near 1).

All three depend on the picture's extent: colour blocks and patch moves are
placed anywhere on the whole picture, jitter reflects at its border. They
take an optional ``valid_hw`` (int32 (2,), ``extent.py``): the picture is
image[:h, :w] and is distorted as the h x w picture alone (the counts are
per picture, as in the official code).
"""

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from reiqa_jax.augment.interpolate import warp_cubic_reflect
from reiqa_jax.normalize import to_unit_float

# --- 19 color_block ---------------------------------------------------------
_BLOCK_SIZE = 32
_BLOCK_COUNTS = np.array([2, 4, 6, 8, 10])

# --- 21 non_eccentricity ----------------------------------------------------
_PATCH_SIZE = 16
_PATCH_RADIUS = 16
_PATCH_COUNTS = np.array([20, 40, 60, 80, 100])

# --- 22 jitter --------------------------------------------------------------
_JITTER_SIGMA = np.array([0.05, 0.1, 0.2, 0.5, 1.0])
_JITTER_WARPS = 5


def draw_color_blocks(key, height, width):
    """Random draws of ``color_block`` for the largest level (10 blocks).

    Returns (ys, xs, colours): int32 (10,), (10,), (10, 3); ys in
    [0, H - 33], xs in [0, W - 33] (``int(U * (H - 32))``), colours in
    [0, 255] (``random.randint(0, 255)``, inclusive).
    """
    n = int(_BLOCK_COUNTS.max())
    k_y, k_x, k_c = jax.random.split(key, 3)
    ys = jax.random.randint(k_y, (n,), 0, height - _BLOCK_SIZE)
    xs = jax.random.randint(k_x, (n,), 0, width - _BLOCK_SIZE)
    colours = jax.random.randint(k_c, (n, 3), 0, 256)
    return ys, xs, colours


def paint_blocks(image, ys, xs, colours, count):
    """Paint the first ``count`` 32x32 blocks in order (later ones on top).

    Args:
      image: float32 (H, W, 3) in [0, 1].
      ys, xs: int32 (N,) top-left corners, in range; colours: int32 (N, 3)
        in 0-255.
      count: int or traced int32 scalar, 0 <= count <= N.
    Returns: float32 (H, W, 3).
    """
    fill = to_unit_float(colours)
    for i in range(ys.shape[0]):
        start = (ys[i], xs[i], 0)
        old = lax.dynamic_slice(image, start, (_BLOCK_SIZE, _BLOCK_SIZE, 3))
        new = jnp.where(i < count, jnp.broadcast_to(fill[i], old.shape), old)
        image = lax.dynamic_update_slice(image, new, start)
    return image


def color_block(key, image, level, valid_hw=None):
    """19: 2 / 4 / 6 / 8 / 10 opaque 32x32 blocks of uniform random colour.

    Block i sits at ``(int(U * (H - 32)), int(U * (W - 32)))``; later blocks
    overwrite earlier ones. Needs H, W > 32 (the picture's, with valid_hw).
    """
    h, w, _ = image.shape
    if h <= _BLOCK_SIZE or w <= _BLOCK_SIZE:
        raise ValueError(f"color_block needs H, W > {_BLOCK_SIZE}, got {h}x{w}")
    if valid_hw is not None:
        h, w = valid_hw[0], valid_hw[1]
    ys, xs, colours = draw_color_blocks(key, h, w)
    count = jnp.asarray(_BLOCK_COUNTS, jnp.int32)[level]
    return paint_blocks(image, ys, xs, colours, count)


def draw_patch_moves(key, height, width):
    """Random draws of ``non_eccentricity`` for the largest level (100 moves).

    The official draws, per patch, ``w_start = int(U * (w_max - w_min)) +
    w_min`` with w_min = 16, w_max = W - 32 (same for rows), then a target
    ``int((U - 0.5) * 16 + w_start)``. For H, W >= 49 every start lies in
    [16, W - 33] and ``(U - 0.5) * 16 + w_start >= 8 > 0``, so ``int()``
    truncates a positive number (= floor) and the target is ``w_start + d``
    with d uniform on {-8, ..., 7}: target in [8, W - 26], the 16x16 patch
    ends at most at W - 10. No negative index and no slice clipped at the
    border can occur, so numpy's slice semantics never come into play.

    Returns:
      (src_y, src_x, dst_y, dst_x): int32 (100,) each.
    """
    n = int(_PATCH_COUNTS.max())
    lo = _PATCH_RADIUS
    k_sy, k_sx, k_dy, k_dx = jax.random.split(key, 4)
    src_y = lo + jax.random.randint(k_sy, (n,), 0, height - _PATCH_SIZE - 2 * _PATCH_RADIUS)
    src_x = lo + jax.random.randint(k_sx, (n,), 0, width - _PATCH_SIZE - 2 * _PATCH_RADIUS)
    half = _PATCH_RADIUS // 2
    dst_y = src_y + jax.random.randint(k_dy, (n,), -half, half)
    dst_x = src_x + jax.random.randint(k_dx, (n,), -half, half)
    return src_y, src_x, dst_y, dst_x


def copy_patches(image, src_y, src_x, dst_y, dst_x, count):
    """Copy 16x16 patches src -> dst one after the other, for i < count.

    Each copy reads the image as left by the earlier copies (the official
    loop writes in place). All corners must be in range (see
    ``draw_patch_moves``).

    Args:
      image: float32 (H, W, 3).
      src_y, src_x, dst_y, dst_x: int32 (N,).
      count: int or traced int32 scalar, 0 <= count <= N.
    Returns: float32 (H, W, 3).
    """
    size = (_PATCH_SIZE, _PATCH_SIZE, 3)

    def move(i, im):
        dst = (dst_y[i], dst_x[i], 0)
        patch = lax.dynamic_slice(im, (src_y[i], src_x[i], 0), size)
        # Mask the 16x16 patch, not the image: a traced trip count under
        # vmap would become a while loop selecting the whole image on every
        # step (measured ~50x slower for a batch of 8 384x512 tiles).
        patch = jnp.where(i < count, patch, lax.dynamic_slice(im, dst, size))
        return lax.dynamic_update_slice(im, patch, dst)

    return lax.fori_loop(0, src_y.shape[0], move, image)


def non_eccentricity(key, image, level, valid_hw=None):
    """21: 20 / 40 / 60 / 80 / 100 16x16 patches each moved by up to 8 px.

    Each patch is read at a random position at least 16 px from the border
    and written back shifted by d in {-8..7} on each axis, sequentially.
    Needs H, W >= 49 (see ``draw_patch_moves``; the picture's, with valid_hw).
    """
    h, w, _ = image.shape
    if h < 49 or w < 49:
        raise ValueError(f"non_eccentricity needs H, W >= 49, got {h}x{w}")
    if valid_hw is not None:
        h, w = valid_hw[0], valid_hw[1]
    moves = draw_patch_moves(key, h, w)
    count = jnp.asarray(_PATCH_COUNTS, jnp.int32)[level]
    return copy_patches(image, *moves, count)


def jitter_fields(key, height, width):
    """Unit-variance displacement fields of the five warps: float32 (5, 2, H, W).

    Index [i, 0] is the row shift, [i, 1] the column shift of warp i; the
    op multiplies them by the level's sigma.
    """
    return jax.random.normal(key, (_JITTER_WARPS, 2, height, width), jnp.float32)


def warp_sequence(image255, fields, valid_hw=None):
    """The official jitter loop on 0-255 floats, given displacement fields.

    Args:
      image255: float32 (H, W, 3) in [0, 255].
      fields: float32 (K, 2, H, W) displacements in pixels (row, column).
      valid_hw: optional int32 (2,): warp the picture image255[:h, :w] alone
        (reflecting at its border).
    Returns:
      float32 (H, W, 3) in [0, 255], not quantized: each warp is
      ``clip(map_coordinates(J, [yy - dy, xx - dx], order=3,
      mode='reflect'), 0, 255)`` and the float result feeds the next warp.
    """

    def warp(j, field):
        return jnp.clip(warp_cubic_reflect(j, field[0], field[1], valid_hw),
                        0.0, 255.0), None

    out, _ = lax.scan(warp, image255, fields)
    return out


def jitter(key, image, level, valid_hw=None):
    """22: five successive random warps with cubic-spline resampling.

    Every warp displaces each pixel by an independent N(0, s^2) shift per
    axis, s = 0.05 / 0.1 / 0.2 / 0.5 / 1 px; the official then truncates
    the float result to uint8 once, after the fifth warp.
    """
    h, w, _ = image.shape
    sigma = jnp.asarray(_JITTER_SIGMA, jnp.float32)[level]
    fields = sigma * jitter_fields(key, h, w)
    out = warp_sequence(image * 255.0, fields, valid_hw)
    # Already clipped to [0, 255]: floor in 0-255 units (astype(uint8)).
    return jnp.floor(out) / 255.0
