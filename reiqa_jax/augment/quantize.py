"""Back onto the uint8 grid, the way the official distortions leave it.

Every official distortion (``datasets/iqa_distortions.py``) returns a uint8 PIL
image, and it gets there in one of two ways: numpy's ``astype(np.uint8)`` after
a clip, which truncates, or a PIL filter, which rounds. The statistics the
encoder sees depend on which one, so each op picks the matching function.

Images are float32 in [0, 1] whose values are multiples of 1/255.
"""

import jax.numpy as jnp


def truncate_u8(x):
    """``np.clip(x * 255, 0, 255).astype(np.uint8) / 255`` for x in [0,1] units."""
    return jnp.floor(jnp.clip(x * 255.0, 0.0, 255.0)) / 255.0


def round_u8(x):
    """PIL-style rounding to the nearest uint8 level, clipped to [0, 255]."""
    return jnp.clip(jnp.round(x * 255.0), 0.0, 255.0) / 255.0
