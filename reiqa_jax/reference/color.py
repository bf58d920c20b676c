"""NumPy/scikit-image/SciPy statements of the official colour, tone and
sharpen distortions (Re-IQA ``datasets/iqa_distortions.py``; numbers are the
official distortion ids from ``datasets/dataset.py``).

Each ``ref_<name>(rng, image_u8, level)`` takes an (H, W, 3) uint8 image and a
level 0-4 and returns (H, W, 3) uint8, computing what the official function
computes: the same input dtype and units into each skimage call, the same
clipping and the same final uint8 cast (truncation). The official code draws
randomness from numpy's global RNG; here it comes from ``rng``.

Used by the tests and by ``benchmarks/augment.py`` as the CPU baseline.
"""

import warnings

import numpy as np
from scipy.interpolate import UnivariateSpline
from skimage import color, filters

DIFFUSION_AMOUNTS = (1, 3, 6, 8, 12)
SHIFT_AMOUNTS = (1, 3, 6, 8, 12)
HSV_SATURATION = (0.4, 0.2, 0.1, 0.0, -0.4)
LAB_SATURATION = (1, 2, 3, 6, 9)
BRIGHTEN = (0.1, 0.2, 0.4, 0.7, 1.1)
DARKEN = (0.05, 0.1, 0.2, 0.4, 0.8)
MEAN_SHIFT = (0.15, 0.08, 0.0, -0.08, -0.15)
SHARPEN = (1, 2, 3, 6, 12)
CONTRAST = (0.3, 0.15, 0.0, -0.4, -0.6)


def _to_u8(x):
    """``np.uint8`` / ``astype(np.uint8)`` of values already in [0, 255]: truncation."""
    return x.astype(np.uint8)


def _lab2rgb(lab):
    """skimage lab2rgb without its negative-Z warning (the official module
    silences all warnings)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return color.lab2rgb(lab)


def _minmax(e):
    """Official ``mapmm``: rescale to [0, 1] unless constant."""
    lo, hi = np.min(e), np.max(e)
    if lo < hi:
        e = (e - lo) / (hi - lo)
    return e


# --- 3: colour diffusion ----------------------------------------------------
def ref_color_diffusion(rng, image_u8, level):
    """Blur Lab (a, b; L restored) with sigma 1.5*amount+2, scale by amount."""
    amount = DIFFUSION_AMOUNTS[level]
    lab = color.rgb2lab(image_u8)  # uint8 in: float64 Lab
    lightness = lab[:, :, 0].copy()
    # skimage gaussian: mode 'nearest', truncate 4.0, channels not mixed.
    lab = filters.gaussian(lab, sigma=1.5 * amount + 2, channel_axis=-1) * amount
    lab[:, :, 0] = lightness
    rgb = np.clip(255 * _lab2rgb(lab), 0, 255)
    return _to_u8(rgb)


# --- 4: colour shift ----------------------------------------------------------
def color_shift_edge_map(image_u8):
    """The official edge weight map e (H, W) float32 in [0, 1]."""
    im = np.float32(image_u8 / 255.0)
    gray = 0.2989 * im[:, :, 0] + 0.5870 * im[:, :, 1] + 0.1140 * im[:, :, 2]
    e = np.hypot(np.gradient(gray, axis=0), np.gradient(gray, axis=1))
    e = filters.gaussian(e, sigma=4)
    e = _minmax(e)
    e = np.clip(e, 0.1, 1)
    e = _minmax(e)
    hi = np.percentile(e, 99)
    lo = 1 - np.percentile(1 - e, 99)
    e = np.clip(e, lo, hi)
    return _minmax(e)


def color_shift_amounts(draw, level):
    """Integer shift pair from a uniform [0,1)^2 draw: round(amount * v/|v|)."""
    v = np.asarray(draw, np.float64).reshape(2)
    return np.uint8(np.round(v / np.linalg.norm(v) * SHIFT_AMOUNTS[level])).astype(int)


def color_shift_given(image_u8, level, draw):
    """Colour shift with the random pair ``draw`` (2,) uniform [0, 1) given."""
    im = np.float32(image_u8 / 255.0)
    e = color_shift_edge_map(image_u8)
    shift = color_shift_amounts(draw, level)
    pad = int(np.max(shift))
    g = im[:, :, 1]
    padded = np.pad(g, pad, "symmetric")
    # The official np.roll(y, [s0, s1]) has no axis: numpy flattens the
    # array and rolls it by s0 + s1, i.e. a horizontal shift that wraps
    # into the previous row of the padded array.
    rolled = np.roll(padded.ravel(), int(shift.sum())).reshape(padded.shape)
    shifted = rolled[pad:-pad, pad:-pad]
    out = im.copy()
    out[:, :, 1] = shifted * e + out[:, :, 1] * (1 - e)
    return _to_u8(out * 255.0)


def ref_color_shift(rng, image_u8, level):
    """Shift green by a random vector of length ~amount, weighted by edges."""
    return color_shift_given(image_u8, level, rng.random((1, 2)))


# --- 5: colour saturation (HSV) ---------------------------------------------
def ref_color_saturation(rng, image_u8, level):
    hsv = color.rgb2hsv(image_u8)
    hsv[:, :, 1] *= HSV_SATURATION[level]
    return _to_u8(np.clip(color.hsv2rgb(hsv) * 255.0, 0, 255))


# --- 6: colour over-saturation (Lab) ------------------------------------------
def ref_color_oversaturation(rng, image_u8, level):
    lab = color.rgb2lab(image_u8)
    lab[:, :, 1:] *= LAB_SATURATION[level]
    return _to_u8(np.clip(_lab2rgb(lab) * 255.0, 0, 255))


# --- tone curves ---------------------------------------------------------------
def brighten_spline(level):
    """The official ``curvefit`` spline: k=2 through (0,0), (.5,c), (1,1)."""
    coef = 0.5 + 0.5 * BRIGHTEN[level]
    return UnivariateSpline([0, 0.5, 1], [0, coef, 1], k=2)


def darken_spline(level):
    return UnivariateSpline([0, 0.5, 1], [0, 0.5 - DARKEN[level] / 2, 1], k=2)


def contrast_spline(level):
    p = CONTRAST[level]
    # Default k=3, s=len(x): a smoothing spline, not an interpolant.
    return UnivariateSpline([0, 0.3, 0.5, 0.7, 1], [0, 0.25 - p / 4, 0.5, 0.75 + p / 4, 1])


# --- 13: brighten ---------------------------------------------------------------
def ref_brighten(rng, image_u8, level):
    spline = brighten_spline(level)
    im = np.float32(image_u8 / 255.0)
    lab = color.rgb2lab(im)  # float32 Lab
    lab[:, :, 0] = np.clip(spline(lab[:, :, 0] / 100.0), 0, 1) * 100.0
    curve_rgb = np.clip(spline(im), 0, 1)
    out = (2 * curve_rgb + np.clip(_lab2rgb(lab), 0, 1)) / 3.0
    return _to_u8(np.clip(out * 255.0, 0, 255))


# --- 14: darken -------------------------------------------------------------------
def ref_darken(rng, image_u8, level):
    im = image_u8.astype(np.float32) / 255.0
    out = np.clip(darken_spline(level)(im), 0, 1)
    return _to_u8(out * 255)


# --- 15: mean shift ---------------------------------------------------------------
def ref_mean_shift(rng, image_u8, level):
    im = np.float32(image_u8 / 255.0)
    im = (im + MEAN_SHIFT[level]) * 255.0
    return _to_u8(np.clip(im, 0, 255))


# --- 17: sharpen ------------------------------------------------------------------
def ref_sharpen(rng, image_u8, level):
    """L - amount * (d2/dy2 + d2/dx2) with np.gradient twice, L clipped to [0, 100].

    As in the official code the RGB passed to rgb2lab is float32 in 0..255;
    skimage does not rescale float input, so Lab comes out far out of range
    (L in the thousands) and the result is a strongly colour-distorted image.
    """
    im = image_u8.astype(np.float32)
    lab = color.rgb2lab(im)
    lightness = lab[:, :, 0]
    lap = np.gradient(np.gradient(lightness, axis=0), axis=0) + np.gradient(
        np.gradient(lightness, axis=1), axis=1
    )
    lab[:, :, 0] = np.clip(lightness - SHARPEN[level] * lap, 0, 100)
    return _to_u8(255 * _lab2rgb(lab))


# --- 18: contrast change ------------------------------------------------------------
def ref_contrast_change(rng, image_u8, level):
    im = image_u8.astype(np.float32) / 255.0
    out = np.clip(contrast_spline(level)(im), 0, 1)
    return _to_u8(out * 255)


REFERENCES = {
    "color_diffusion": ref_color_diffusion,
    "color_shift": ref_color_shift,
    "color_saturation": ref_color_saturation,
    "color_oversaturation": ref_color_oversaturation,
    "brighten": ref_brighten,
    "darken": ref_darken,
    "mean_shift": ref_mean_shift,
    "sharpen": ref_sharpen,
    "contrast_change": ref_contrast_change,
}
