"""Spatial ops (official 19 color_block, 21 non_eccentricity, 22 jitter) and
the cubic-spline resampler, against the numpy/scipy statement of the official.

Deterministic parts (painting, sequential patch copies, spline warps for a
given displacement field) are compared exactly or near-exactly on the same
random draws; the draws themselves are compared in distribution.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage
from skimage import data

from reiqa_jax.reference import noise_spatial as ref
from reiqa_jax.augment import spatial
from reiqa_jax.augment.interpolate import spline_prefilter_reflect
from augment_testing import (KEYS_PER_LEVEL, LEVELS, check_traced_levels, count_compiles,
                             level_sweep, psnr as _psnr, switch_dispatch,
                             assert_same_pixels, to_u8 as _u8)

OPS = ["color_block", "non_eccentricity", "jitter"]


@pytest.fixture(scope="module")
def photo_u8():
    # 128x192 crop of chelsea: fur texture, flat background, edges.
    return data.chelsea()[80:208, 100:292].copy()


@pytest.fixture(scope="module")
def outputs(photo_u8):
    """name -> jax outputs (20, H, W, 3) float32 for levels 0..4 x 4 keys."""
    return {name: level_sweep(getattr(spatial, name), photo_u8) for name in OPS}


@pytest.mark.parametrize("name", OPS)
def test_outputs_valid(outputs, photo_u8, name):
    out = outputs[name]
    assert out.shape == (len(LEVELS),) + photo_u8.shape and out.dtype == np.float32
    assert np.all(np.isfinite(out)) and out.min() >= 0.0 and out.max() <= 1.0
    np.testing.assert_allclose(out * 255.0, np.round(out * 255.0), atol=1e-3)


# --- cubic spline resampling (jitter's imwarpmap) ---------------------------


@pytest.fixture(scope="module")
def warp_sequence():
    return jax.jit(spatial.warp_sequence)


@pytest.mark.parametrize("sigma", [0.05, 1.0, 6.0])
def test_warp_matches_scipy_for_fixed_fields(warp_sequence, photo_u8, sigma):
    """Five warps by the same fields: ours vs scipy map_coordinates(order=3,
    mode='reflect'). sigma 6 sends many border pixels far outside the image,
    which exercises the 'reflect' folding of coordinates and coefficients."""
    h, w, _ = photo_u8.shape
    fields = sigma * np.random.default_rng(3).standard_normal((5, 2, h, w)).astype(np.float32)
    image = photo_u8.astype(np.float32)
    ours = np.asarray(warp_sequence(jnp.asarray(image), jnp.asarray(fields)))
    theirs = ref.ref_warp_sequence(image, fields)
    assert _psnr(ours, theirs) > 60.0
    assert np.abs(ours - theirs).max() < 0.05
    # The result after truncation to uint8 agrees almost everywhere.
    assert np.mean(np.floor(ours) != np.floor(theirs)) < 1e-3


def test_spline_interpolates_the_samples(warp_sequence, photo_u8):
    """Zero displacement reproduces the image: the prefilter inverts the
    B-spline (a plain 4x4 B-spline without it would blur)."""
    image = photo_u8.astype(np.float32)
    fields = np.zeros((5, 2) + photo_u8.shape[:2], np.float32)
    ours = np.asarray(warp_sequence(jnp.asarray(image), jnp.asarray(fields)))
    assert np.abs(ours - image).max() < 0.01


@pytest.mark.parametrize("shape", [(5, 8), (33, 40)])
def test_prefilter_matches_scipy_spline_filter(photo_u8, shape):
    """Coefficients equal scipy's spline_filter(order=3, mode='reflect'),
    also when the image is shorter than the filter's 16-sample reach."""
    x = photo_u8[: shape[0], : shape[1]].astype(np.float32)
    want = np.stack(
        [ndimage.spline_filter(x[..., c].astype(np.float64), order=3, mode="reflect") for c in range(3)], -1
    )
    np.testing.assert_allclose(np.asarray(spline_prefilter_reflect(jnp.asarray(x))), want, atol=2e-3)


# --- 22 jitter ---------------------------------------------------------------


def test_jitter_fields_are_standard_normal(photo_u8):
    f = np.asarray(jax.jit(spatial.jitter_fields, static_argnums=(1, 2))(jax.random.key(5), 128, 192))
    assert f.shape == (5, 2, 128, 192)
    assert abs(f.mean()) < 0.01 and abs(f.std() - 1.0) < 0.01
    # Fresh, independent fields per warp and axis.
    c = np.corrcoef(f.reshape(10, -1))
    assert np.abs(c - np.eye(10)).max() < 0.02


def test_jitter_matches_reference_distortion(outputs, photo_u8):
    """Per level, mean MSE to the pristine photo within 5% of the official's,
    and severity increasing with level for both."""
    out = _u8(outputs["jitter"])
    rng = np.random.default_rng(0)
    mse_jax, mse_ref = [], []
    for lv in range(5):
        sel = LEVELS == lv
        mse_jax.append(np.mean([10 ** (-_psnr(o, photo_u8) / 10) for o in out[sel]]))
        mse_ref.append(
            np.mean(
                [10 ** (-_psnr(ref.ref_jitter(rng, photo_u8, lv), photo_u8) / 10) for _ in range(KEYS_PER_LEVEL)]
            )
        )
    np.testing.assert_allclose(mse_jax, mse_ref, rtol=0.05)
    assert np.all(np.diff(mse_jax) > 0) and np.all(np.diff(mse_ref) > 0)


# --- 19 color_block ------------------------------------------------------------


def test_paint_blocks_matches_numpy(photo_u8):
    """Same draws -> identical image, later blocks on top; a traced count
    paints only the first `count` blocks."""
    h, w, _ = photo_u8.shape
    draws = spatial.draw_color_blocks(jax.random.key(11), h, w)
    ys, xs, colours = (np.asarray(d) for d in draws)
    paint = jax.jit(spatial.paint_blocks)
    image = jnp.asarray(photo_u8, jnp.float32) / 255.0
    with count_compiles() as compiles:
        for count in (10, 3):
            got = _u8(paint(image, *draws, jnp.int32(count)))
            want = ref.ref_paint_blocks(photo_u8, ys[:count], xs[:count], colours[:count])
            np.testing.assert_array_equal(got, want)
    assert compiles["paint_blocks"] == 1, compiles  # one program for every count


def test_color_block_draws_distribution():
    """Corners uniform on {0..H-33} x {0..W-33}, colours uniform on 0..255,
    as ``int(U * (H - 32))`` and ``random.randint(0, 255)``."""
    h, w = 128, 192
    keys = jax.random.split(jax.random.key(12), 400)
    ys, xs, colours = (np.asarray(d) for d in jax.jit(lambda ks: jax.lax.map(lambda k: spatial.draw_color_blocks(k, h, w), ks))(keys))
    for v, n in ((ys, h - 32), (xs, w - 32), (colours, 256)):
        assert v.min() == 0 and v.max() == n - 1
        np.testing.assert_allclose(v.mean(), (n - 1) / 2, rtol=0.05)
        np.testing.assert_allclose(v.std(), np.sqrt((n**2 - 1) / 12), rtol=0.05)


def test_color_block_structure_and_severity(outputs, photo_u8):
    """Changed pixels form at most `count` uniform colours, each inside one
    32x32 square; the changed area grows with the level."""
    out = _u8(outputs["color_block"])
    areas = []
    for o, lv in zip(out, LEVELS):
        changed = np.any(o != photo_u8, axis=-1)
        colours, inverse = np.unique(o[changed], axis=0, return_inverse=True)
        assert 1 <= len(colours) <= [2, 4, 6, 8, 10][lv]
        ys, xs = np.nonzero(changed)
        for c in range(len(colours)):
            sel = inverse.ravel() == c
            assert np.ptp(ys[sel]) < 32 and np.ptp(xs[sel]) < 32
        areas.append(changed.mean())
    mean_area = np.array(areas).reshape(5, KEYS_PER_LEVEL).mean(axis=1)
    assert np.all(np.diff(mean_area) > 0), mean_area


@pytest.mark.parametrize("hw", [(20, 20), (32, 64), (64, 32)])
def test_color_block_rejects_images_too_small(hw):
    with pytest.raises(ValueError, match=r"color_block needs H, W > 32, got \d+x\d+"):
        spatial.color_block(jax.random.key(0), jnp.zeros(hw + (3,), jnp.float32), 0)


# --- 21 non_eccentricity -----------------------------------------------------


def test_copy_patches_matches_numpy(photo_u8):
    """Sequential copies on a small crop where the 100 patches overlap
    heavily, so each copy reads earlier ones: identical to the numpy loop."""
    small = photo_u8[:64, :80].copy()
    moves = spatial.draw_patch_moves(jax.random.key(21), *small.shape[:2])
    moves_np = [np.asarray(m) for m in moves]
    copy = jax.jit(spatial.copy_patches)
    image = jnp.asarray(small, jnp.float32) / 255.0
    with count_compiles() as compiles:
        for count in (100, 37):
            got = _u8(copy(image, *moves, jnp.int32(count)))
            want = ref.ref_copy_patches(small, *(m[:count] for m in moves_np))
            np.testing.assert_array_equal(got, want)
            # Order matters here: the same moves applied all at once differ.
            assert not np.array_equal(want, _all_at_once(small, *(m[:count] for m in moves_np)))
    assert compiles["copy_patches"] == 1, compiles  # one program for every count


def _all_at_once(image_u8, sy, sx, dy, dx):
    out = image_u8.copy()
    for a, b, c, d in zip(sy, sx, dy, dx):
        out[c : c + 16, d : d + 16] = image_u8[a : a + 16, b : b + 16]
    return out


def test_patch_moves_distribution_matches_official():
    """Sources in [16, W-33], shifts uniform on {-8..7}: same ranges and
    spread as the official index arithmetic (``ref_patch_moves``)."""
    h, w = 128, 192
    keys = jax.random.split(jax.random.key(22), 100)
    ours = [np.asarray(m).ravel() for m in jax.jit(lambda ks: jax.lax.map(lambda k: spatial.draw_patch_moves(k, h, w), ks))(keys)]
    theirs = [np.asarray(m) for m in ref.ref_patch_moves(np.random.default_rng(0), h, w, ours[0].size)]
    for i in range(4):
        assert ours[i].min() == theirs[i].min() and ours[i].max() == theirs[i].max()
    for axis in (0, 1):
        d_ours = ours[2 + axis] - ours[axis]
        d_theirs = theirs[2 + axis] - theirs[axis]
        assert set(np.unique(d_ours)) == set(np.unique(d_theirs)) == set(range(-8, 8))
        np.testing.assert_allclose(np.abs(d_ours).mean(), np.abs(d_theirs).mean(), rtol=0.05)
        np.testing.assert_allclose(d_ours.std(), d_theirs.std(), rtol=0.05)
        np.testing.assert_allclose(ours[axis].mean(), theirs[axis].mean(), rtol=0.05)


def test_non_eccentricity_severity(outputs, photo_u8):
    """More patches, more change: mean MSE to the photo grows with level."""
    out = _u8(outputs["non_eccentricity"])
    mse = np.array([np.mean((o.astype(float) - photo_u8) ** 2) for o in out])
    mean = mse.reshape(5, KEYS_PER_LEVEL).mean(axis=1)
    assert np.all(np.diff(mean) > 0), mean


@pytest.mark.parametrize("hw", [(20, 20), (48, 64), (64, 48)])
def test_non_eccentricity_rejects_images_too_small(hw):
    with pytest.raises(ValueError, match=r"non_eccentricity needs H, W >= 49, got \d+x\d+"):
        spatial.non_eccentricity(jax.random.key(0), jnp.zeros(hw + (3,), jnp.float32), 0)


# --- jit / vmap / switch contract ---------------------------------------------


@pytest.mark.parametrize("name", OPS)
def test_traced_and_python_levels_match_vmap(outputs, photo_u8, name):
    """jit with a traced scalar level: one compilation for all levels, equal
    to the vmapped batch; a Python int level gives the same."""
    check_traced_levels(getattr(spatial, name), photo_u8, outputs[name], levels=(0, 4))


def test_ops_inside_switch(outputs, photo_u8):
    """Inside a scalar lax.switch over a traced kind, as the registry calls it."""
    idx = np.array([1, 3 * KEYS_PER_LEVEL + 2, 4 * KEYS_PER_LEVEL + 3])
    got = switch_dispatch([getattr(spatial, n) for n in OPS], photo_u8, idx)
    for j, name in enumerate(OPS):
        assert_same_pixels(got[j], outputs[name][idx[j]])
