"""JPEG distortion (7) vs Pillow's own libjpeg encode/decode, on real photos."""

import io

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import skimage.data
from jax import lax
from PIL import Image

from reiqa_jax.reference import blur_resize_jpeg as ref
from reiqa_jax.augment import jpeg
from augment_testing import photo_crops, psnr, to_f32, to_u8

LEVELS = range(5)


@pytest.fixture(scope="module")
def images():
    return photo_crops("astronaut", "coffee", "chelsea", "rocket")


@pytest.fixture(scope="module")
def jpeg_jit():
    return jax.jit(jpeg.jpeg)


def test_bit_exact_with_pillow_encode_decode(images, jpeg_jit):
    for img in images.values():
        for level in LEVELS:
            out = to_u8(jpeg_jit(jax.random.key(0), to_f32(img), jnp.int32(level)))
            expect = ref.ref_jpeg(None, img, level)
            assert psnr(out, expect) >= 32  # the brief's bar ...
            np.testing.assert_array_equal(out, expect)  # ... and what we reach


def test_sizes_not_multiple_of_16(jpeg_jit):
    # 83 x 117: odd height and width, partial MCUs on both edges.
    img = skimage.data.chelsea()[60:143, 120:237]
    for level in (1, 4):
        out = to_u8(jpeg_jit(jax.random.key(0), to_f32(img), jnp.int32(level)))
        np.testing.assert_array_equal(out, ref.ref_jpeg(None, img, level))


def test_quant_tables_match_libjpeg():
    img = skimage.data.astronaut()[:16, :16]
    for quality in jpeg.JPEG_QUALITIES:
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=quality)
        tables = Image.open(buf).quantization  # natural (row-major) order
        np.testing.assert_array_equal(
            jpeg.quant_table(jpeg.LUMA_TABLE, quality).ravel(), tables[0])
        np.testing.assert_array_equal(
            jpeg.quant_table(jpeg.CHROMA_TABLE, quality).ravel(), tables[1])


def test_islow_matrices_are_scaled_dcts():
    # libjpeg's integer passes approximate sqrt(8) * orthonormal DCT-II.
    k = np.arange(8)
    dct = np.sqrt(2 / 8) * np.cos((2 * k[None, :] + 1) * k[:, None] * np.pi / 16)
    dct[0] /= np.sqrt(2)
    np.testing.assert_allclose(jpeg.FDCT_MATRIX / 2**13, np.sqrt(8) * dct, atol=2e-4)
    np.testing.assert_allclose(jpeg.IDCT_MATRIX / 2**13, np.sqrt(8) * dct.T, atol=2e-4)


@pytest.fixture(scope="module")
def roundtrip_jit():
    return jax.jit(jpeg.jpeg_roundtrip)


@pytest.mark.parametrize("quality", [100, 90, 50, 1])
def test_other_qualities_bit_exact(roundtrip_jit, quality):
    # Fine quantisation exposes every rounding in the DCTs; quality 1 clamps
    # every step at 255.
    img = skimage.data.coffee()[150:182, 200:248]
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=quality)
    expect = np.asarray(Image.open(buf))
    out = to_u8(roundtrip_jit(to_f32(img), *jpeg.quality_tables(quality)))
    np.testing.assert_array_equal(out, expect)


def test_severity_increases_with_level(images, jpeg_jit):
    for name in ("astronaut", "coffee"):
        img = images[name]
        scores = [psnr(to_u8(jpeg_jit(jax.random.key(0), to_f32(img), jnp.int32(lv))), img)
                  for lv in LEVELS]
        assert all(a > b for a, b in zip(scores, scores[1:])), scores


def test_batched_traced_levels_under_vmap_and_switch(images, jpeg_jit):
    img = to_f32(images["rocket"])
    batch = jnp.stack([img] * 5)
    keys = jax.random.split(jax.random.key(0), 5)
    levels = jnp.arange(5, dtype=jnp.int32)
    identity = lambda k, x, l: x

    @jax.jit
    def apply(kind, keys, batch, levels):
        one = lambda k, x, l: lax.switch(kind, [identity, jpeg.jpeg], k, x, l)
        return jax.vmap(one)(keys, batch, levels)

    out = np.asarray(apply(1, keys, batch, levels))
    assert out.shape == batch.shape and out.dtype == np.float32
    assert np.all(np.isfinite(out)) and out.min() >= 0 and out.max() <= 1
    np.testing.assert_allclose(out * 255, np.round(out * 255), atol=1e-3)
    for level in LEVELS:
        single = jpeg_jit(keys[level], img, jnp.int32(level))
        np.testing.assert_array_equal(out[level], single)
    # A plain Python int level (a constant in the trace) gives the same.
    small = img[:16, :24]
    np.testing.assert_array_equal(
        jax.jit(lambda x: jpeg.jpeg(None, x, 3))(small),
        jax.jit(jpeg.jpeg)(None, small, jnp.int32(3)))
