"""Blur distortions (1 gaussian, 2 lens, 26 motion, 12 denoise) vs the official
computation (Pillow / scipy references), on crops of real photos."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from reiqa_jax.reference import blur_resize_jpeg as ref
from reiqa_jax.augment import blur
from augment_testing import counted_jit, photo_crops, psnr, switch_over_levels, to_f32, to_u8

LEVELS = range(5)


@pytest.fixture(scope="module")
def images():
    return photo_crops("astronaut", "coffee")


@pytest.fixture(scope="module")
def ops():
    return {name: counted_jit(getattr(blur, name))
            for name in ("gaussian_blur", "lens_blur", "motion_blur", "denoise")}


@pytest.fixture(scope="module")
def parts():
    """Jitted denoise stages (noise, filter), compiled once per module."""
    return jax.jit(blur.denoise_noise), jax.jit(blur.denoise_filter)


def run(ops, name, image_u8, level, seed=0):
    fn, _ = ops[name]
    return fn(jax.random.key(seed), to_f32(image_u8), jnp.int32(level))


def test_gaussian_blur_bit_exact_with_pillow(images, ops):
    for img in images.values():
        for level in LEVELS:
            out = to_u8(run(ops, "gaussian_blur", img, level))
            np.testing.assert_array_equal(out, ref.ref_gaussian_blur(None, img, level))
    assert ops["gaussian_blur"][1]["traces"] == 1  # one program for all levels


def test_pil_box_weights_rejects_a_too_narrow_table():
    assert blur.pil_box_weights(2.5, 3).sum() == 2**24  # radius 2 needs half_width >= 3
    with pytest.raises(ValueError, match=r"radius 2.5 needs half_width >= 3, got 2"):
        blur.pil_box_weights(2.5, 2)


def test_lens_blur_matches_scipy(images, ops):
    for img in images.values():
        for level in LEVELS:
            out = to_u8(run(ops, "lens_blur", img, level))
            expect = ref.ref_lens_blur(None, img, level)
            assert psnr(out, expect) >= 40
            # float32 vs float64 sums only differ next to integer boundaries
            assert np.mean(out != expect) < 0.01
    assert ops["lens_blur"][1]["traces"] == 1


def test_disk_kernel_is_pixel_coverage_of_disk():
    for radius in ref.LENS_RADII:
        k = blur.disk_kernel(radius)
        c = k.shape[0] // 2
        # Supersample each pixel square at 64x64 points.
        s = (np.arange(64) + 0.5) / 64 - 0.5
        off = np.arange(-c, c + 1)
        yy = (off[:, None] + s[None, :]).reshape(-1)
        inside = (yy[:, None] ** 2 + yy[None, :] ** 2) <= radius**2
        cover = inside.reshape(2 * c + 1, 64, 2 * c + 1, 64).mean(axis=(1, 3))
        np.testing.assert_allclose(k, cover / cover.sum(), atol=2e-3 / radius**2)
        np.testing.assert_allclose(k, k.T, atol=1e-12)
        assert k.sum() == pytest.approx(1.0)


def test_motion_blur_matches_scipy_in_both_directions(images, ops):
    img = images["astronaut"]
    for level in LEVELS:
        refs = {a: ref.ref_motion_blur(None, img, level, angle=a) for a in (0, 90)}
        seen = set()
        for seed in range(6):
            out = to_u8(run(ops, "motion_blur", img, level, seed))
            scores = {a: psnr(out, r) for a, r in refs.items()}
            best = max(scores, key=scores.get)
            # float64 sums that land exactly on an integer may truncate one
            # level lower in scipy; that is the only difference.
            assert scores[best] >= 40, scores
            assert scores[90 - best] < 35  # and the directions differ
            seen.add(best)
        assert seen == {0, 90}
    assert ops["motion_blur"][1]["traces"] == 1


def test_motion_blur_direction_is_a_fair_coin(images):
    img = images["coffee"][:12, :12]
    refs = np.stack([ref.ref_motion_blur(None, img, 0, angle=a) for a in (0, 90)])
    keys = jax.random.split(jax.random.key(1), 1000)
    out = jax.jit(jax.vmap(blur.motion_blur, in_axes=(0, None, None)))(keys, to_f32(img), 0)
    out = to_u8(out).astype(np.float64)
    err = ((out[:, None] - refs[None].astype(np.float64)) ** 2).mean(axis=(2, 3, 4))
    vertical = np.mean(err[:, 0] < err[:, 1])
    assert abs(vertical - 0.5) < 0.05


def test_denoise_filters_bit_exact_with_pillow(images, parts):
    rng = np.random.default_rng(0)
    for level in (0, 4):
        noisy = ref.ref_denoise_noise(rng, images["coffee"], level)
        for which in (0, 1):
            out = to_u8(parts[1](to_f32(noisy), jnp.int32(which)))
            np.testing.assert_array_equal(out, ref.ref_denoise_filter(noisy, which))


def test_denoise_noise_distribution_matches(images, parts):
    img = images["coffee"]
    rng = np.random.default_rng(1)
    for level in LEVELS:
        ours = to_u8(parts[0](jax.random.key(level), to_f32(img), jnp.int32(level)))
        theirs = ref.ref_denoise_noise(rng, img, level)
        d_ours = ours.astype(np.float64) - img
        d_theirs = theirs.astype(np.float64) - img
        assert d_ours.std() == pytest.approx(d_theirs.std(), rel=0.05)
        assert abs(d_ours.mean() - d_theirs.mean()) < 0.05 * d_theirs.std()


def test_denoise_severity_increases_with_level_per_filter(images, parts):
    img = images["astronaut"]
    key = jax.random.key(7)  # same normal draws, scaled by each level's sigma
    noise, filt = parts
    for which in (0, 1):
        scores = [psnr(to_u8(filt(noise(key, to_f32(img), jnp.int32(level)),
                                  jnp.int32(which))), img) for level in LEVELS]
        assert all(a > b for a, b in zip(scores, scores[1:])), scores


def test_denoise_output_distribution_matches(images, ops):
    img = images["astronaut"][:48, :64]
    filtered = [ref.ref_denoise_filter(img, w).astype(np.float64) for w in (0, 1)]
    rng = np.random.default_rng(2)
    fn = jax.jit(jax.vmap(blur.denoise, in_axes=(0, None, None)))
    for level in (0, 4):
        keys = jax.random.split(jax.random.key(level), 100)
        outs = to_u8(fn(
            keys, to_f32(img), jnp.int32(level))).astype(np.float64)
        # Which filter ran: the one whose output on the clean image is closest.
        err = np.stack([((outs - f) ** 2).mean(axis=(1, 2, 3)) for f in filtered], 1)
        which = np.argmin(err, axis=1)
        assert abs(np.mean(which) - 0.5) < 0.15  # 100 fair coins: sd 0.05
        for w in (0, 1):
            ours = np.mean([psnr(o, img) for o in outs[which == w][:10]])
            theirs = np.mean([psnr(ref.ref_denoise_filter(
                ref.ref_denoise_noise(rng, img, level), w), img) for _ in range(5)])
            assert ours == pytest.approx(theirs, rel=0.05)


@pytest.mark.parametrize("name", ["gaussian_blur", "lens_blur", "motion_blur"])
def test_severity_increases_with_level(images, ops, name):
    for img in images.values():
        scores = [psnr(to_u8(run(ops, name, img, level)), img) for level in LEVELS]
        assert all(a > b for a, b in zip(scores, scores[1:])), scores


def test_batched_traced_levels_under_vmap_and_switch(images, ops):
    names = ("gaussian_blur", "lens_blur", "motion_blur", "denoise")
    fns = [getattr(blur, n) for n in names]
    img = to_f32(images["coffee"])
    outs, keys = switch_over_levels(fns, img, jax.random.key(3))
    for kind, (name, out) in enumerate(zip(names, outs)):
        for level in LEVELS:
            single = np.asarray(ops[name][0](keys[level], img, jnp.int32(level)))
            # Lens blur truncates a float sum, whose last bit depends on how
            # XLA orders a batched vs. unbatched conv: allow rare 1-level flips.
            diff = np.abs(out[level] - single) * 255
            assert diff.max() < 1.01 and np.mean(diff > 0.5) < 0.01, name
        # A plain Python int level works too (a constant in the trace).
        small = img[:16, :16]
        np.testing.assert_allclose(
            np.asarray(jax.jit(lambda k, x: fns[kind](k, x, 2))(keys[2], small)),
            np.asarray(ops[name][0](keys[2], small, jnp.int32(2))), atol=1.01 / 255)


def test_convolve2d_nearest_matches_scipy_placement(images):
    # Asymmetric, even-sized kernel: catches flips and the origin offset.
    from scipy import ndimage

    from reiqa_jax.augment.filters import convolve2d_nearest

    img = images["astronaut"][:40, :50].astype(np.float32)
    kernel = np.random.default_rng(0).random((4, 5)).astype(np.float32)
    out = np.asarray(convolve2d_nearest(jnp.asarray(img), jnp.asarray(kernel)))
    for c in range(3):
        expect = ndimage.convolve(img[:, :, c].astype(np.float64), kernel, mode="nearest")
        np.testing.assert_allclose(out[:, :, c], expect, rtol=1e-5, atol=1e-3)


def test_padded_batched_paths_match_references(images):
    # On CPU, vmap with per-sample levels loops over samples
    # (filters.map_per_sample); other backends run these one-program paths.
    img = images["coffee"]
    batch = jnp.stack([jnp.round(to_f32(img) * 255.0)] * 5)
    levels = jnp.arange(5, dtype=jnp.int32)
    lens = np.asarray(jax.jit(jax.vmap(blur._lens_padded))(batch, levels))
    table = jnp.asarray(blur._GAUSS_TABLE)
    gauss = jax.jit(jax.vmap(lambda x, l: blur.pil_box_blur_u32(x, table[l])))(
        batch.astype(jnp.uint32), levels)
    for level in LEVELS:
        out = np.floor(np.clip(lens[level], 0, 255)).astype(np.uint8)
        expect = ref.ref_lens_blur(None, img, level)
        assert psnr(out, expect) >= 40
        assert np.mean(out != expect) < 0.01
        np.testing.assert_array_equal(np.asarray(gauss[level]).astype(np.uint8),
                                      ref.ref_gaussian_blur(None, img, level))
