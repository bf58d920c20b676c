"""reiqa_jax.augment.colorspace against scikit-image, on real photos.

Pixels: four skimage photos (subsampled) plus a 16^3 grid of colours, which
covers the pure greys (HSV delta == 0), primaries, ties between channels and
both sides of every piecewise threshold.
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from skimage import color, data

from reiqa_jax.augment import colorspace as cs


@pytest.fixture(scope="module")
def pixels_u8():
    photos = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    rows = [p[::7, ::7].reshape(-1, 3) for p in photos]
    grid = np.stack(
        np.meshgrid(*[np.linspace(0, 255, 16).astype(np.uint8)] * 3, indexing="ij"), -1
    ).reshape(-1, 3)
    rows.append(grid)
    flat = np.concatenate(rows, 0)
    # (N, 1, 3): skimage wants an image-shaped array; our functions accept any (..., 3).
    return flat[:, None, :]


def _f32(x):
    return jnp.asarray(x, jnp.float32)


def _maxerr(ours, ref):
    return float(np.max(np.abs(np.asarray(ours, np.float64) - ref)))


def test_rgb_to_lab_matches_skimage(pixels_u8):
    ref = color.rgb2lab(pixels_u8)
    ours = jax.jit(cs.rgb_to_lab)(_f32(pixels_u8 / 255.0))
    assert ours.dtype == jnp.float32 and ours.shape == ref.shape
    # L spans 0-100: 2e-4 is ~2e-6 relative, float32 round-off.
    assert _maxerr(ours, ref) < 2e-4


def test_rgb_to_lab_on_0_255_floats_matches_skimage(pixels_u8):
    # The official sharpen feeds float32 RGB in 0..255 to rgb2lab, which
    # skimage does not rescale; the formulas must extend the same way.
    x = pixels_u8.astype(np.float32)
    ref = color.rgb2lab(x).astype(np.float64)
    ours = cs.rgb_to_lab(_f32(x))
    # Values reach ~6000 here and a, b are differences of such numbers, so
    # float32 cancellation gives absolute errors of a few 1e-2 (~1e-5 of
    # the scale); sharpen clips L to [0, 100] afterwards anyway.
    scale = np.abs(ref).max()
    np.testing.assert_allclose(np.asarray(ours), ref, rtol=2e-5, atol=1e-5 * scale)


def test_lab_to_rgb_matches_skimage_including_clipping(pixels_u8):
    lab = color.rgb2lab(pixels_u8)
    # Scale a, b (as the saturation ops do) so that many colours leave the
    # gamut and some give negative Z: exercises both of skimage's clips.
    for scale in (1.0, 3.0, 9.0):
        scaled = lab * np.array([1.0, scale, scale])
        with warnings.catch_warnings():  # skimage warns when it zeroes Z < 0
            warnings.simplefilter("ignore", UserWarning)
            ref = color.lab2rgb(scaled)
        ours = jax.jit(cs.lab_to_rgb)(_f32(scaled))
        assert _maxerr(ours, ref) < 1e-4
        assert float(ours.min()) >= 0.0 and float(ours.max()) <= 1.0


def test_lab_roundtrip(pixels_u8):
    x = _f32(pixels_u8 / 255.0)
    assert _maxerr(cs.lab_to_rgb(cs.rgb_to_lab(x)), np.asarray(x)) < 1e-4


def test_rgb_to_hsv_matches_skimage(pixels_u8):
    ref = color.rgb2hsv(pixels_u8)
    ours = jax.jit(cs.rgb_to_hsv)(_f32(pixels_u8 / 255.0))
    assert _maxerr(ours, ref) < 1e-5


def test_hsv_to_rgb_matches_skimage_with_negative_saturation(pixels_u8):
    hsv = color.rgb2hsv(pixels_u8)
    for amount in (0.4, 0.0, -0.4):  # the official saturation levels span these
        scaled = hsv * np.array([1.0, amount, 1.0])
        ref = color.hsv2rgb(scaled)
        assert _maxerr(jax.jit(cs.hsv_to_rgb)(_f32(scaled)), ref) < 1e-5


def test_ycbcr_matches_skimage(pixels_u8):
    ref = color.rgb2ycbcr(pixels_u8)
    ours = cs.rgb_to_ycbcr(_f32(pixels_u8 / 255.0))
    assert _maxerr(ours, ref) < 1e-4
    # Noise takes YCbCr off the valid range; ycbcr2rgb must not clip.
    noisy = ref + np.random.default_rng(0).normal(0, 8.0, ref.shape)
    assert _maxerr(cs.ycbcr_to_rgb(_f32(noisy)), color.ycbcr2rgb(noisy)) < 1e-5


def test_rgb_to_gray_uses_matlab_weights(pixels_u8):
    x = pixels_u8 / 255.0
    ref = 0.2989 * x[..., 0] + 0.5870 * x[..., 1] + 0.1140 * x[..., 2]
    assert _maxerr(cs.rgb_to_gray(_f32(x)), ref) < 1e-6


def test_conversions_vmap_over_images():
    imgs = np.stack([data.astronaut()[:32, :32], data.coffee()[:32, :32]]) / 255.0
    x = _f32(imgs)
    for f in (cs.rgb_to_lab, cs.rgb_to_hsv, cs.rgb_to_ycbcr):
        batched = jax.jit(jax.vmap(f))(x)
        single = jnp.stack([jax.jit(f)(x[0]), jax.jit(f)(x[1])])
        np.testing.assert_allclose(np.asarray(batched), np.asarray(single), atol=1e-5)
