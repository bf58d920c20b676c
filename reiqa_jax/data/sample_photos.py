"""Photos that ship with scikit-image, for runs that must not download anything.

Natural photos only (scikit-image's bundled data, public domain / CC0):
colour ones as they are, greyscale ones as RGB. Used by the ``skimage``
training sources (``reiqa_jax.data.sources``) and by ``reiqa demo``.
"""
from __future__ import annotations

import numpy as np

# name -> callable name in skimage.data (a tuple result takes its first image)
COLOR = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field",
         "immunohistochemistry", "retina", "motorcycle_left", "motorcycle_right")
GREY = ("camera", "brick", "grass", "gravel", "moon", "coins", "clock")
ALL = COLOR + GREY


def load_sample_photo(name: str) -> np.ndarray:
    """(h, w, 3) uint8 RGB of one bundled photo."""
    from skimage import data

    if name.startswith("motorcycle_"):
        left, right, _ = data.stereo_motorcycle()
        image = left if name.endswith("left") else right
    else:
        image = getattr(data, name)()
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    return np.ascontiguousarray(image[..., :3]).astype(np.uint8)

