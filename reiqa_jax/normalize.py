"""Pixel conventions shared by extraction, augmentation and the demo.

* ``to_unit_float``: uint8 pixels 0..255 -> float32 in [0, 1] (``x / 255``),
  the one uint8 -> float conversion of the package. The distortions' own
  quantisation steps (``jnp.floor(...) / 255``, ``truncate_u8``, Pillow's
  integer arithmetic) are not conversions of this kind and stay where they
  are: they reproduce the official code's exact arithmetic.
* ``IMAGENET_MEAN`` / ``IMAGENET_STD``: the normalisation of the content
  encoder's input (MoCo-v2 augmentation and ``reiqa extract``), applied to
  [0, 1] pixels.
"""

import jax.numpy as jnp

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def to_unit_float(pixels):
    """Integer pixels 0..255 -> float32 jax array in [0, 1] (``x / 255``).

    Float input is taken to be in [0, 1] already and only cast to float32.
    """
    pixels = jnp.asarray(pixels)
    if jnp.issubdtype(pixels.dtype, jnp.integer):
        return pixels.astype(jnp.float32) / 255.0
    return pixels.astype(jnp.float32)
