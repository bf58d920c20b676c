"""Noise ops (official 8-11) against the numpy statement of the official code.

Every op is compiled once per module as ``jit(vmap(op))`` over a batch that
holds all five levels (traced levels), and once as ``jit(op)`` with a traced
scalar level. Statistics are compared on a real photo (skimage coffee).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from skimage import data

from reiqa_jax.reference import noise_spatial as ref
from reiqa_jax.augment import noise
from augment_testing import (KEYS_PER_LEVEL, LEVELS, check_traced_levels, level_sweep,
                             psnr as _psnr, switch_dispatch,
                             assert_same_pixels)

OPS = ["white_noise", "multiplicative_noise", "impulse_noise", "white_noise_ycbcr"]


@pytest.fixture(scope="module")
def photo_u8():
    # A 256x384 crop: smooth background, dark and bright areas, strong edges.
    return data.coffee()[64:320, 64:448].copy()


@pytest.fixture(scope="module")
def outputs(photo_u8):
    """name -> (jax outputs (B,H,W,3) float32, reference uint8), B = 5 x 4."""
    result = {}
    for i, name in enumerate(OPS):
        out = level_sweep(getattr(noise, name), photo_u8)
        rng = np.random.default_rng(i)
        r = np.stack([getattr(ref, "ref_" + name)(rng, photo_u8, int(lv)) for lv in LEVELS])
        result[name] = (out, r)
    return result


def _u8(x):
    return np.round(np.asarray(x) * 255.0).astype(np.int16)


@pytest.mark.parametrize("name", OPS)
def test_outputs_valid(outputs, photo_u8, name):
    out, _ = outputs[name]
    assert out.shape == (len(LEVELS),) + photo_u8.shape
    assert out.dtype == np.float32
    assert np.all(np.isfinite(out)) and out.min() >= 0.0 and out.max() <= 1.0
    # On the uint8 grid, as every official op leaves its output.
    np.testing.assert_allclose(out * 255.0, np.round(out * 255.0), atol=1e-3)


@pytest.mark.parametrize("name", ["white_noise", "multiplicative_noise", "white_noise_ycbcr"])
def test_gaussian_noise_statistics_match_reference(outputs, photo_u8, name):
    """Per level and channel: std of (out - in) within 5%, mean within 0.1
    grey or 4 standard errors of the difference of the two means."""
    out, r = outputs[name]
    d_jax = _u8(out) - photo_u8
    d_ref = r.astype(np.int16) - photo_u8
    for lv in range(5):
        sel = LEVELS == lv
        s_jax = d_jax[sel].reshape(-1, 3).std(axis=0)
        s_ref = d_ref[sel].reshape(-1, 3).std(axis=0)
        np.testing.assert_allclose(s_jax, s_ref, rtol=0.05, err_msg=f"level {lv}")
        # The truncation bias (about -0.5 grey) and clipping show in the mean.
        m_jax = d_jax[sel].reshape(-1, 3).mean(axis=0)
        m_ref = d_ref[sel].reshape(-1, 3).mean(axis=0)
        n = d_jax[sel].size // 3
        se = np.sqrt((s_jax**2 + s_ref**2) / n)
        assert np.all(np.abs(m_jax - m_ref) <= np.maximum(0.1, 4 * se)), (lv, m_jax, m_ref, se)


def test_white_noise_sigma_is_official(outputs, photo_u8):
    """Away from clipping the added noise has sigma = 255 sqrt(var)."""
    out, _ = outputs["white_noise"]
    d = _u8(out) - photo_u8.astype(np.int16)
    mid = (photo_u8 > 100) & (photo_u8 < 155)
    for lv, var in enumerate([0.001, 0.002, 0.003, 0.005, 0.01]):
        sel = LEVELS == lv
        s = d[sel][np.broadcast_to(mid, d[sel].shape)].std()
        # Truncation adds uniform quantization noise of variance 1/12.
        expected = np.sqrt((255.0**2) * var + 1.0 / 12.0)
        np.testing.assert_allclose(s, expected, rtol=0.05, err_msg=f"level {lv}")


@pytest.mark.parametrize("name", OPS)
def test_severity_increases_with_level(outputs, photo_u8, name):
    out, r = outputs[name]
    for o in (_u8(out), r):
        psnr = [np.mean([_psnr(x, photo_u8) for x in o[LEVELS == lv]]) for lv in range(5)]
        assert np.all(np.diff(psnr) < 0), psnr


def test_impulse_whole_pixels_rest_kept(outputs, photo_u8):
    """Hits set all three channels to 0 or 255; every other pixel is kept."""
    out, r = outputs["impulse_noise"]
    for o in (_u8(out), r.astype(np.int16)):
        hit = np.all(o == 0, axis=-1) | np.all(o == 255, axis=-1)
        assert np.array_equal(o[~hit], np.broadcast_to(photo_u8, o.shape)[~hit])
        partial = np.any((o == 0) | (o == 255), axis=-1) & ~hit
        photo_partial = np.any((photo_u8 == 0) | (photo_u8 == 255), axis=-1)
        assert not np.any(partial & ~photo_partial)


IMPULSE_KEYS = 32


@pytest.fixture(scope="module")
def impulse_counts(photo_u8):
    """(black, white) hit counts summed over 32 keys per level: jax, reference.

    Pixels that were already black / white in the photo cannot show a hit
    and are left out. ``lax.map`` keeps only one image alive at a time.
    """
    image = jnp.asarray(photo_u8, jnp.float32) / 255.0
    black0 = np.all(photo_u8 == 0, axis=-1)
    white0 = np.all(photo_u8 == 255, axis=-1)

    @jax.jit
    def count(keys, level):
        def one(key):
            o = noise.impulse_noise(key, image, level)
            black = jnp.all(o == 0.0, axis=-1) & ~black0
            white = jnp.all(o == 1.0, axis=-1) & ~white0
            return jnp.stack([black.sum(), white.sum()])

        return jax.lax.map(one, keys).sum(axis=0)

    rng = np.random.default_rng(7)
    jax_counts, ref_counts = [], []
    for lv in range(5):
        keys = jax.random.split(jax.random.key(100 + lv), IMPULSE_KEYS)
        jax_counts.append(np.asarray(count(keys, jnp.int32(lv))))
        c = np.zeros(2)
        for _ in range(IMPULSE_KEYS):
            o = ref.ref_impulse_noise(rng, photo_u8, lv)
            c += [(np.all(o == 0, axis=-1) & ~black0).sum(), (np.all(o == 255, axis=-1) & ~white0).sum()]
        ref_counts.append(c)
    n_eligible = np.array([(~black0).sum(), (~white0).sum()])
    return np.array(jax_counts), np.array(ref_counts), n_eligible


def test_impulse_fractions(impulse_counts):
    """Black and white hit fractions are p/2 each, for ours and the reference."""
    jax_counts, ref_counts, n_eligible = impulse_counts
    for lv, p in enumerate([0.001, 0.005, 0.01, 0.02, 0.03]):
        expected = IMPULSE_KEYS * n_eligible * p / 2
        # 5%, or 4 binomial standard deviations where hits are few (level 0).
        rtol = np.maximum(0.05, 4.0 / np.sqrt(expected))
        for counts in (jax_counts[lv], ref_counts[lv]):
            assert np.all(np.abs(counts / expected - 1) <= rtol), (lv, counts, expected)


@pytest.mark.parametrize("name", OPS)
def test_traced_and_python_levels_match_vmap(outputs, photo_u8, name):
    """jit with a traced scalar level: one compilation serves every level and
    agrees with the vmapped batch; a Python int level gives the same."""
    check_traced_levels(getattr(noise, name), photo_u8, outputs[name][0], levels=(0, 2, 4))


def test_ops_inside_switch(outputs, photo_u8):
    """Inside a scalar lax.switch over a traced kind, as the registry calls it."""
    # Op j on sweep entry 4j + 3 (level j, a different key each).
    idx = np.arange(len(OPS)) * KEYS_PER_LEVEL + 3
    got = switch_dispatch([getattr(noise, n) for n in OPS], photo_u8, idx)
    for j, name in enumerate(OPS):
        assert_same_pixels(got[j], outputs[name][0][idx[j]])
