"""Host-side (numpy) fixed-size tiles for the jitted quality views.

jit needs one shape, the official loader works on whole decoded pictures. The
host therefore hands over a fixed (H, W) = (384, 512) uint8 tile per picture
plus its valid size and orientation flag:

* Orientation: a portrait picture (h > w, tile landscape) is stored
  transposed with ``transposed=True``; ``crops.crop_pair`` applies the
  offsets as (x, y) and transposes the crops back, so crop geometry is the
  official one for the picture as it is. (Distortions then run on the
  transposed picture; they are isotropic or draw random directions, except
  that resize-type ops see the two axes swapped.)
* Exactly tile-sized (the typical 512x384 training picture, e.g. KADIS-700k):
  the tile *is* the picture; every statistic (crop offsets, random crop
  positions, the zero padding that torchvision's CenterCrop adds at scale 2,
  where the 192x256 half picture is smaller than the >= 272 crop region)
  equals the official pipeline.
* Larger: a uniformly random tile-sized window. Changed: scale-1 crops are
  drawn within the window (still uniform over the picture marginally only
  approximately); scale 2 halves the window, not the whole picture, so it
  sees the same content scale as a 512x384 picture rather than half the
  whole picture.
* Smaller in a dim: the picture sits at the top-left, the rest is filled by
  symmetric (mirror) padding, and ``valid_hw`` carries its size. Crop
  geometry and the scale-2 resize use ``valid_hw`` and read zeros outside the
  picture, exactly as the official code; only the distortions differ near
  the picture's right/bottom border and in global statistics, because they
  run on the padded tile (mirror padding keeps those differences small).
"""

from __future__ import annotations

import numpy as np

TILE_HW = (384, 512)


def sample_tile(rng: np.random.Generator, image: np.ndarray,
                tile_hw: tuple[int, int] = TILE_HW):
    """One tile from a decoded picture.

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
