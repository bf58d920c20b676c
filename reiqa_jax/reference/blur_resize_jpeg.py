"""CPU references for the blur, resize and JPEG distortions.

Each ``ref_<name>(rng, image_u8, level) -> uint8`` restates the official
``datasets/iqa_distortions.py`` computation with numpy / scipy / Pillow,
calling Pillow exactly as the official code does. Random choices the official
makes with Python ``random`` / ``np.random`` are drawn from ``rng``
(``np.random.Generator``). Used by the tests and by ``benchmarks/augment.py``.

Args (all): rng: np.random.Generator; image_u8: (H, W, 3) uint8; level: 0..4.
Returns: (H, W, 3) uint8.
"""

import io

import numpy as np
from PIL import Image, ImageFilter
from scipy import ndimage

from reiqa_jax.augment.blur import disk_kernel

GAUSSIAN_SIGMAS = (0.1, 0.5, 1, 2, 5)
LENS_RADII = (1, 2, 4, 6, 8)
MOTION_LENGTHS = (12, 16, 20, 24, 28)
DENOISE_VARIANCES = (0.001, 0.002, 0.003, 0.005, 0.01)
RESIZE_FACTORS = (2, 3, 4, 8, 16)
NEAREST_FACTORS = (2, 3, 4, 5, 6)
PIXELATE_PARAMS = (0.01, 0.05, 0.1, 0.2, 0.5)
JPEG_QUALITIES = (70, 43, 36, 24, 7)


def _convolve_channels_u8(image_u8, kernel):
    """Per-channel ``ndimage.convolve(mode='nearest')`` into a uint8 output.

    scipy accumulates in float64 and casts into the uint8 output array, which
    truncates (the official writes into a uint8 view of the image).
    """
    out = np.empty_like(image_u8)
    for c in range(3):
        ndimage.convolve(image_u8[:, :, c], kernel, output=out[:, :, c], mode="nearest")
    return out


def ref_gaussian_blur(rng, image_u8, level):
    """1: Pillow GaussianBlur(radius=sigma)."""
    del rng
    im = Image.fromarray(image_u8)
    return np.asarray(im.filter(ImageFilter.GaussianBlur(radius=GAUSSIAN_SIGMAS[level])))


def ref_lens_blur(rng, image_u8, level):
    """2: MATLAB fspecial('disk') kernel, scipy convolve into uint8.

    ``disk_kernel`` is the exact pixel/disk overlap area; it agrees with the
    official closed-form MATLAB port to 1e-15 for these radii (none of them
    reaches the official's special-case branch).
    """
    del rng
    return _convolve_channels_u8(image_u8, disk_kernel(LENS_RADII[level]))


def ref_motion_blur(rng, image_u8, level, angle=None):
    """26: line kernel of ones / N, column (angle 0) or row (90) (N-1)//2.

    ``angle`` overrides the random choice (tests pin each direction).
    """
    n = MOTION_LENGTHS[level]
    if angle is None:
        angle = (0, 90)[int(rng.integers(0, 2))]
    kernel = np.zeros((n, n))
    if angle == 0:
        kernel[:, (n - 1) // 2] = 1.0
    else:
        kernel[(n - 1) // 2, :] = 1.0
    kernel /= n
    return _convolve_channels_u8(image_u8, kernel)


def ref_denoise_noise(rng, image_u8, level):
    """12, first stage: additive Gaussian noise in [0,1] units, truncated."""
    im = np.float32(image_u8 / 255.0)
    noise = rng.normal(0.0, DENOISE_VARIANCES[level] ** 0.5, image_u8.shape)
    return np.clip((im + noise) * 255.0, 0, 255).astype(np.uint8)


def ref_denoise_filter(noisy_u8, which):
    """12, second stage: 0 -> GaussianBlur(3), 1 -> BoxBlur(2)."""
    filt = ImageFilter.GaussianBlur(radius=3) if which == 0 else ImageFilter.BoxBlur(radius=2)
    return np.asarray(Image.fromarray(noisy_u8).filter(filt))


def ref_denoise(rng, image_u8, level):
    """12: noise, then GaussianBlur(3) or BoxBlur(2) with equal odds."""
    noisy = ref_denoise_noise(rng, image_u8, level)
    return ref_denoise_filter(noisy, int(rng.integers(0, 2)))


def _down_up(image_u8, factor, resample):
    im = Image.fromarray(image_u8)
    w, h = im.size
    small = im.resize((int(w / factor), int(h / factor)), resample)
    return np.asarray(small.resize((w, h), resample))


def ref_resize_bicubic(rng, image_u8, level):
    """16: ``Image.resize`` with no filter argument (BICUBIC for RGB)."""
    del rng
    im = Image.fromarray(image_u8)
    w, h = im.size
    f = RESIZE_FACTORS[level]
    small = im.resize((int(w / f), int(h / f)))
    return np.asarray(small.resize((w, h)))


def ref_resize_bilinear(rng, image_u8, level):
    """23: BILINEAR down and up."""
    del rng
    return _down_up(image_u8, RESIZE_FACTORS[level], Image.BILINEAR)


def ref_resize_nearest(rng, image_u8, level):
    """24: NEAREST down (factors 2..6) and up."""
    del rng
    return _down_up(image_u8, NEAREST_FACTORS[level], Image.NEAREST)


def ref_resize_lanczos(rng, image_u8, level):
    """25: LANCZOS down and up."""
    del rng
    return _down_up(image_u8, RESIZE_FACTORS[level], Image.LANCZOS)


def ref_pixelate(rng, image_u8, level):
    """20: NEAREST to int(z * size), z = 0.95 - p**0.6, and back."""
    del rng
    im = Image.fromarray(image_u8)
    z = 0.95 - PIXELATE_PARAMS[level] ** 0.6
    small = im.resize((int(z * im.width), int(z * im.height)), resample=Image.NEAREST)
    return np.asarray(small.resize((im.width, im.height), resample=Image.NEAREST))


def ref_jpeg(rng, image_u8, level):
    """7: Pillow JPEG save at the level's quality, then decode."""
    del rng
    buf = io.BytesIO()
    Image.fromarray(image_u8).save(buf, format="JPEG", quality=JPEG_QUALITIES[level])
    return np.asarray(Image.open(buf).convert("RGB"))
