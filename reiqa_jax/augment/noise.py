"""Noise distortions (official numbering 8-11), as pure JAX ops.

Each op is ``op(key, image, level) -> image``:
  key:   a JAX PRNG key (the official draws with ``np.random``).
  image: float32 (H, W, 3) in [0, 1] on the uint8 grid (k / 255).
  level: Python int 0-4 or a traced int32 scalar.
Returns float32 (H, W, 3) in [0, 1] on the uint8 grid. All ops are jit / vmap
/ ``lax.switch`` safe: the level only indexes constant tables.

Official definitions (``datasets/iqa_distortions.py``): the Gaussian ops add
float64 noise to ``float32(u8 / 255)``, scale by 255, clip and truncate with
``astype(uint8)``; we draw float32 noise, which changes nothing measurable.
"""

import jax
import jax.numpy as jnp
import numpy as np

from reiqa_jax.augment.colorspace import rgb_to_ycbcr, ycbcr_to_rgb
from reiqa_jax.augment.quantize import truncate_u8

# Per-level noise *variances* of the official, in [0, 1] image units
# (imnoisegauss, imnoisemultiplicative, imnoisecolormap); we store sigma.
_WHITE_SIGMA = np.sqrt([0.001, 0.002, 0.003, 0.005, 0.01])
_MULTIPLICATIVE_SIGMA = np.sqrt([0.001, 0.005, 0.01, 0.02, 0.05])
_YCBCR_SIGMA = np.sqrt([0.0001, 0.0005, 0.001, 0.002, 0.003])
# imnoiseimpulse: total fraction of pixels hit (half black, half white).
_IMPULSE_PROB = np.array([0.001, 0.005, 0.01, 0.02, 0.03])


def _lookup(table, level):
    """``table[level]`` as float32 for a Python or traced integer level."""
    return jnp.asarray(table, jnp.float32)[level]


def white_noise(key, image, level):
    """8: additive Gaussian noise, i.i.d. per pixel and channel.

    ``floor(clip(255 * (image + N(0, var)), 0, 255))`` with var =
    0.001 / 0.002 / 0.003 / 0.005 / 0.01 (sigma 8.1 - 25.5 grey levels).
    """
    sigma = _lookup(_WHITE_SIGMA, level)
    noise = sigma * jax.random.normal(key, image.shape, jnp.float32)
    return truncate_u8(image + noise)


def multiplicative_noise(key, image, level):
    """11: speckle noise ``image * (1 + N(0, var))``, truncated to uint8.

    var = 0.001 / 0.005 / 0.01 / 0.02 / 0.05, i.i.d. per pixel and channel.
    """
    sigma = _lookup(_MULTIPLICATIVE_SIGMA, level)
    noise = sigma * jax.random.normal(key, image.shape, jnp.float32)
    return truncate_u8(image + image * noise)


def impulse_noise(key, image, level):
    """10: salt and pepper on whole pixels (all three channels together).

    One uniform draw u per pixel: black where u < p/2, white where
    u > 1 - p/2, p = 0.001 / 0.005 / 0.01 / 0.02 / 0.03. Other pixels keep
    their exact value.
    """
    p = _lookup(_IMPULSE_PROB, level)
    u = jax.random.uniform(key, image.shape[:2], jnp.float32)
    black = (u < p / 2)[..., None]
    white = (u > 1.0 - p / 2)[..., None]
    return jnp.where(black, 0.0, jnp.where(white, 1.0, image)).astype(jnp.float32)


def white_noise_ycbcr(key, image, level):
    """9: Gaussian noise added in YCbCr (skimage's studio-swing units).

    The official divides skimage's YCbCr (Y 16-235) by 255, adds N(0, var)
    with var = 1e-4 / 5e-4 / 1e-3 / 2e-3 / 3e-3 to all three channels,
    multiplies back by 255, converts to RGB (no clip in skimage), then clips
    and truncates. Adding ``255 * N(0, var)`` in YCbCr units is the same.
    """
    sigma = _lookup(_YCBCR_SIGMA, level)
    h, w, c = image.shape
    # Drawn channel-first and added plane by plane: the colour conversion
    # reads each channel separately, and slicing the last axis of a fused
    # normal draw made XLA recompute the draw per use (2-4x slower on CPU).
    noise = (255.0 * sigma) * jax.random.normal(key, (c, h, w), jnp.float32)
    ycbcr = rgb_to_ycbcr(image)
    ycbcr = jnp.stack([ycbcr[..., i] + noise[i] for i in range(c)], axis=-1)
    return truncate_u8(ycbcr_to_rgb(ycbcr))
