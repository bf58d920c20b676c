"""Host-side (numpy) arrays of one shape for the jitted views.

Quality branch (``picture_canvas``): the whole decoded picture at the
top-left of a canvas of its class's shape (``data.canvases``), zeros around
it, and its size ``valid_hw``. Every op of the quality views honours the
valid size, so the device distorts, resizes and crops the picture exactly as
the official loader does the picture alone. Only a picture larger than the
largest canvas is cut, to a uniformly random window of the canvas size.

``sample_tile`` is the earlier policy, kept for comparison
(``benchmarks/train_step.py``) and for tests of the crop geometry: a fixed
(384, 512) tile per picture, portrait pictures stored transposed
(``transposed=True``; ``crops.crop_pair`` transposes the crops back), a
random window of larger pictures, mirror padding around smaller ones. On
pictures larger than the tile it differs from the official recipe: the
distortions see a window (per-picture counts such as colour blocks get
denser) and scale 2 halves the window, not the picture.

Content branch (``content_canvas``): the whole picture shrunk to fit.
"""

from __future__ import annotations

import numpy as np

TILE_HW = (384, 512)


def picture_canvas(rng: np.random.Generator, image: np.ndarray, canvas_hw: tuple[int, int]):
    """A decoded picture in a canvas (the quality branch's host step).

    Args:
      rng: numpy Generator; draws only for a picture larger than the canvas
        (the window's position).
      image: uint8 (h, w, 3) RGB.
      canvas_hw: (H, W).
    Returns:
      dict(pixels=uint8 (H, W, 3): the picture (or its window) at the
      top-left, zeros elsewhere; valid_hw=int32 (2,) its size).
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected uint8 (h, w, 3), got {image.dtype} {image.shape}")
    th, tw = canvas_hw
    h, w = image.shape[:2]
    vh, vw = min(h, th), min(w, tw)
    if (vh, vw) != (h, w):
        top = int(rng.integers(0, h - vh + 1))
        left = int(rng.integers(0, w - vw + 1))
        image = image[top:top + vh, left:left + vw]
    pixels = np.zeros((th, tw, 3), np.uint8)
    pixels[:vh, :vw] = image
    return dict(pixels=pixels, valid_hw=np.array([vh, vw], np.int32))


def sample_tile(rng: np.random.Generator, image: np.ndarray,
                tile_hw: tuple[int, int] = TILE_HW):
    """One tile from a decoded picture (the earlier policy, see the module
    docstring).

    Args:
      rng: numpy Generator (host randomness for the window position).
      image: uint8 (h, w, 3) RGB.
      tile_hw: (H, W) of the tile.
    Returns:
      dict(pixels=uint8 (H, W, 3), valid_hw=int32 (2,), transposed=bool).
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected uint8 (h, w, 3), got {image.dtype} {image.shape}")
    th, tw = tile_hw
    transposed = (image.shape[0] > image.shape[1]) != (th > tw) and \
        image.shape[0] != image.shape[1]
    if transposed:
        image = image.transpose(1, 0, 2)
    h, w = image.shape[:2]
    vh, vw = min(h, th), min(w, tw)
    top = int(rng.integers(0, h - vh + 1))
    left = int(rng.integers(0, w - vw + 1))
    window = image[top:top + vh, left:left + vw]
    if (vh, vw) != (th, tw):
        window = np.pad(window, ((0, th - vh), (0, tw - vw), (0, 0)), mode="symmetric")
    return dict(pixels=np.ascontiguousarray(window),
                valid_hw=np.array([vh, vw], np.int32),
                transposed=bool(transposed))


def stack_tiles(tiles):
    """List of ``sample_tile`` dicts -> batched dict (pixels (B, H, W, 3) uint8,
    valid_hw (B, 2) int32, transposed (B,) bool), the keyword arguments of
    ``make_quality_views`` besides key/config."""
    return dict(pixels=np.stack([t["pixels"] for t in tiles]),
                valid_hw=np.stack([t["valid_hw"] for t in tiles]),
                transposed=np.array([t["transposed"] for t in tiles], bool))


def content_canvas(image: np.ndarray, canvas_hw: tuple[int, int] = (512, 512)):
    """Fixed-size canvas for ``content.content_augment`` (ImageNet-style pictures).

    RandomResizedCrop draws its box relative to the whole picture, so the
    whole picture must be there: a picture larger than the canvas is shrunk
    (PIL bilinear, aspect kept) to fit, which keeps the crop statistics (area
    fraction, ratio) and only lowers the source resolution of large pictures;
    the picture sits top-left with mirror padding and ``valid_hw`` its size.

    Returns:
      dict(pixels=uint8 (H, W, 3), valid_hw=int32 (2,)).
    """
    from PIL import Image

    th, tw = canvas_hw
    h, w = image.shape[:2]
    if h > th or w > tw:
        s = min(th / h, tw / w)
        nh, nw = max(1, min(th, round(h * s))), max(1, min(tw, round(w * s)))
        image = np.asarray(Image.fromarray(image).resize((nw, nh), Image.BILINEAR))
        h, w = nh, nw
    pixels = np.pad(image, ((0, th - h), (0, tw - w), (0, 0)), mode="symmetric")
    return dict(pixels=pixels, valid_hw=np.array([h, w], np.int32))
