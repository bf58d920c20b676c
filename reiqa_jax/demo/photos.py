"""The photos the demo measures on, and their roles. None of them is trained on.

Every test photo here ships with a package ``reiqa-jax`` installs
(scikit-image's ``skimage.data``, scikit-learn's ``load_sample_images``,
matplotlib's ``sample_data``), so nothing is downloaded. The demo trains on
procedural dead-leaves pictures and on the bundled pictures that are not
photographs of everyday scenes (``configs/demo.py``: the moon, textures,
microscopy, a retina, astronomy, a scanned page), never on a photo here.
Each photo has one role:

* **TEST** (reported by ``reiqa demo``): the natural photographs, 11 photos of
  10 scenes. ``motorcycle_left`` and ``motorcycle_right`` are the two views of
  one stereo pair, so they are one scene (``SCENE``): splits keep them
  together.
* **VALIDATION** (the recipe was chosen on these, ``benchmarks/demo_sweep.py``):
  11 photographs from Debian's ``plasma-workspace-wallpapers`` package (a
  package registry, not a download from the web), none of them bundled or
  trained on; the sweep says how to get them.

Each photo is resized (PIL bicubic) to cover ``IMAGE_HW`` and centre-cropped.
"""
from __future__ import annotations

import numpy as np

TEST = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle_left", "motorcycle_right",
        "camera", "coins", "china", "flower", "grace_hopper")
VALIDATION = ("BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow",
              "FallenLeaf", "Grey", "Kite", "OneStandsOut", "Path", "summer_1am")
SCENE = {"motorcycle_left": "motorcycle", "motorcycle_right": "motorcycle"}
IMAGE_HW = (192, 256)

_SKLEARN = ("china", "flower")
_MATPLOTLIB = ("grace_hopper",)


def scene_of(photo: str) -> str:
    """The scene (the group splits are made by) of a photo."""
    return SCENE.get(photo, photo)


def file_name(photo: str) -> str:
    """A name for the photo's files: the photo's own, or an image file's stem."""
    if "/" in photo:
        return photo.rstrip("/").rsplit("/", 1)[1].rsplit(".", 1)[0]
    return photo.replace(":", "_")


def load_photo(name: str) -> np.ndarray:
    """(h, w, 3) uint8 RGB of one bundled photo (greyscale ones as RGB), or of
    ``dead_leaves:I``: procedural picture I (seed 1, 384 x 512; never one of
    the training set's, which use seed 0), or of an image file (a name with a
    ``/``)."""
    if "/" in name:
        from reiqa_jax.images import open_image

        return np.asarray(open_image(name))
    if name.startswith("dead_leaves:"):
        from reiqa_jax.data.synthetic import dead_leaves, rng_for

        return dead_leaves(rng_for(1, int(name.split(":", 1)[1])), (384, 512))
    if name in _SKLEARN:
        from sklearn.datasets import load_sample_image

        return np.ascontiguousarray(load_sample_image(f"{name}.jpg")[..., :3]).astype(np.uint8)
    if name in _MATPLOTLIB:
        from matplotlib import cbook
        from PIL import Image

        with cbook.get_sample_data(f"{name}.jpg") as f:
            return np.asarray(Image.open(f).convert("RGB"))
    from reiqa_jax.data.sample_photos import load_sample_photo

    return load_sample_photo(name)


def cover_crop(image: np.ndarray, hw=IMAGE_HW) -> np.ndarray:
    """Resize (PIL bicubic) so the picture covers ``hw``, then centre-crop: uint8 (H, W, 3)."""
    from PIL import Image

    h, w = image.shape[:2]
    s = max(hw[0] / h, hw[1] / w)
    size = (max(hw[1], round(w * s)), max(hw[0], round(h * s)))
    image = np.asarray(Image.fromarray(image).resize(size, Image.BICUBIC))
    top, left = (image.shape[0] - hw[0]) // 2, (image.shape[1] - hw[1]) // 2
    return np.ascontiguousarray(image[top:top + hw[0], left:left + hw[1]])
