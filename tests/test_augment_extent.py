"""Distortions of a picture smaller than its array (``valid_hw``): every one of
the 26 computes on the picture what it computes on the picture alone, and
the size-dependent draws (block and patch positions) cover the whole picture.

The exact-size ops are pinned to the official numpy / Pillow code by their
own tests (test_augment_*.py); here the canvas path is held to them.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from skimage import data

from reiqa_jax.augment import blur, color_ops, extent, registry, spatial

PIC_HW = (57, 83)        # an odd picture ...
CANVAS_HW = (64, 96)     # ... in a canvas that is larger in both sides
LEVELS = (1, 4)
# Ops drawing one random number per pixel: their draws have the canvas's
# shape, so they are compared on equal draws below, not here.
PER_PIXEL_DRAWS = {"white_noise", "white_noise_ycbcr", "impulse_noise",
                   "multiplicative_noise", "denoise", "jitter"}


def _picture():
    return data.astronaut()[180:180 + PIC_HW[0], 200:200 + PIC_HW[1]].astype(np.float32) / 255


def _canvas(picture, seed):
    """The picture at the top-left of a canvas of random junk."""
    rng = np.random.default_rng(seed)
    canvas = rng.integers(0, 256, CANVAS_HW + (3,)).astype(np.float32) / 255
    canvas[:PIC_HW[0], :PIC_HW[1]] = picture
    return canvas


@pytest.fixture(scope="module")
def all_ops():
    """Every op, at one level each (1 or 4, alternating; a level known at
    trace time compiles only its own program): on the picture alone, and
    twice (different junk around it) on canvases with the picture's size."""
    picture = _picture()
    canvases = [_canvas(picture, seed) for seed in (0, 1)]
    hw = jnp.asarray(PIC_HW, jnp.int32)
    out = {}
    for d in registry.DISTORTIONS:
        level = LEVELS[d.number % 2]
        key = jax.random.key(d.number)
        alone = jax.jit(lambda k, im, op=d.fn: op(k, im, level))(key, picture)
        if registry.takes_extent(d.fn):
            run = jax.jit(lambda k, im, v, op=d.fn: op(k, im, level, valid_hw=v))
            on = [run(key, c, hw) for c in canvases]
        else:
            on = [jax.jit(lambda k, im, op=d.fn: op(k, im, level))(key, c) for c in canvases]
        out[d.name] = (level, np.asarray(alone), *(np.asarray(o) for o in on))
    return out


def test_every_op_distorts_the_picture_alone(all_ops):
    h, w = PIC_HW
    for name, (level, alone, on_a, on_b) in all_ops.items():
        # Nothing outside the picture reaches its pixels ...
        np.testing.assert_array_equal(on_a[:h, :w], on_b[:h, :w], err_msg=name)
        # ... and they come out as for the picture alone.
        if name not in PER_PIXEL_DRAWS:
            np.testing.assert_array_equal(on_a[:h, :w], alone, err_msg=f"{name} {level}")
    # the ops did something (a mild level may leave a picture as it was)
    changed = [np.abs(alone - _picture()).max() > 0 for _, alone, _, _ in all_ops.values()]
    assert np.mean(changed) > 0.9
    # Exactly the ops that depend on the picture's extent take its size.
    pixelwise = {"color_saturation", "color_oversaturation", "white_noise", "white_noise_ycbcr",
                 "impulse_noise", "multiplicative_noise", "brighten", "darken", "mean_shift",
                 "contrast_change"}
    assert {d.name for d in registry.DISTORTIONS if not registry.takes_extent(d.fn)} == pixelwise


def test_dispatch_passes_sizes_and_zeroes_outside_the_picture():
    from augment_testing import STANDINS

    picture = _picture()
    kinds = jnp.array([0, 1, 19, 26], jnp.int32)  # pristine, stand-in, real colour block, ...
    ops = tuple(STANDINS[:18]) + (spatial.color_block,) + tuple(STANDINS[19:])
    images = jnp.stack([_canvas(picture, 0), _canvas(picture, 1)])
    hw = jnp.array([PIC_HW, (40, 50)], jnp.int32)
    out = np.asarray(registry.distort_batch(jax.random.key(0), images, kinds,
                                            jnp.full((4,), 4, jnp.int32), ops,
                                            source=jnp.array([0, 1, 0, 1]), valid_hw=hw))
    for i, (h, w) in enumerate(np.asarray(hw)[[0, 1, 0, 1]]):
        assert not out[i, h:].any() and not out[i, :, w:].any()
        assert out[i, :h, :w].any()
    np.testing.assert_array_equal(out[0, :57, :83], picture)  # pristine: as it was
    # colour blocks land on the picture only (the junk beyond would hide them)
    painted = np.any(out[2, :57, :83] != picture, axis=-1)
    assert 0.05 < painted.mean() < 10 * 32 * 32 / (57 * 83)
    # the balanced schedule's vmapped groups take the sizes too
    bal = np.asarray(registry.distort_balanced(jax.random.key(1), images,
                                               jnp.arange(1, 27, dtype=jnp.int32),
                                               jnp.full((2, 3), 2, jnp.int32), STANDINS,
                                               valid_hw=hw))
    for b, (h, w) in enumerate(np.asarray(hw)):
        assert not bal[b, :, h:].any() and not bal[b, :, :, w:].any() and bal[b, :, :h, :w].any()


def test_ops_with_per_pixel_draws_equal_on_equal_draws():
    # denoise: the noise is per pixel; the filter must be the picture's.
    picture, canvas = jnp.asarray(_picture()), jnp.asarray(_canvas(_picture(), 2))
    hw = jnp.asarray(PIC_HW, jnp.int32)
    h, w = PIC_HW
    f = jax.jit(lambda im, which, v: blur.denoise_filter(im, which, v))
    g = jax.jit(lambda im, which: blur.denoise_filter(im, which))
    for which in (0, 1):
        np.testing.assert_array_equal(np.asarray(f(canvas, which, hw))[:h, :w],
                                      np.asarray(g(picture, which)))
    # jitter: the same displacement fields on the picture's pixels.
    fields = 0.7 * jax.random.normal(jax.random.key(0), (5, 2) + CANVAS_HW)
    on_canvas = jax.jit(lambda im, fl, v: spatial.warp_sequence(im * 255, fl, v))(
        canvas, fields, hw)
    alone = jax.jit(lambda im, fl: spatial.warp_sequence(im * 255, fl))(
        picture, fields[:, :, :h, :w])
    # (float32 in 0..255, before rounding: another fusion may differ in the last bits;
    # jax 0.12 did, by up to 1.2e-4; a wrong field moves pixels by whole levels)
    np.testing.assert_allclose(np.asarray(on_canvas)[:h, :w], np.asarray(alone), rtol=0, atol=1e-3)


def test_masked_percentile_is_numpys():
    rng = np.random.default_rng(0)
    values = rng.random(64 * 96).astype(np.float32)
    f = jax.jit(lambda v, m: color_ops.upper_percentile(v, 99.0, m))
    for n in (49 * 49, 57 * 83, 64 * 96 - 7):
        mask = np.zeros(values.shape, bool)
        mask[rng.permutation(values.size)[:n]] = True
        got = float(f(values, mask))
        assert got == pytest.approx(np.percentile(values[mask], 99.0), abs=2e-7), n


def test_extension_helpers_match_numpy_padding():
    x = np.arange(7 * 5, dtype=np.float32).reshape(7, 5)
    got = np.asarray(extent.symmetric_take(jnp.asarray(x), 4, 0, -6, 20))
    want = np.pad(x[:4], ((6, 10), (0, 0)), mode="symmetric")  # period 2n, any distance
    np.testing.assert_array_equal(got, want)
    got = np.asarray(extent.edge_extend(jnp.asarray(x), jnp.array([4, 3])))
    np.testing.assert_array_equal(got, np.pad(x[:4, :3], ((0, 3), (0, 2)), mode="edge"))


def test_block_and_patch_positions_cover_the_whole_picture():
    # The official draws positions over the whole picture, so the count per
    # picture is fixed and the density per crop falls with the picture's area.
    keys = jax.random.split(jax.random.key(1), 3000)
    h, w = 768, 1024
    ys, xs, _ = jax.vmap(lambda k: spatial.draw_color_blocks(k, jnp.int32(h), jnp.int32(w)))(keys)
    ys, xs = np.asarray(ys), np.asarray(xs)
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (0, h - 33, 0, w - 33)
    # uniform: each quarter of the range holds about a quarter of the draws
    quarters = np.histogram(xs, bins=4, range=(0, w - 32))[0] / xs.size
    np.testing.assert_allclose(quarters, 0.25, atol=0.02)
    sy, sx, dy, dx = (np.asarray(a) for a in jax.vmap(
        lambda k: spatial.draw_patch_moves(k, jnp.int32(h), jnp.int32(w)))(keys))
    assert (sy.min(), sy.max()) == (16, h - 33) and (sx.min(), sx.max()) == (16, w - 33)
    assert set(np.unique(dy - sy)) == set(range(-8, 8))
    # Level 4 paints 10 blocks of 32 x 32 on the whole 768 x 1024 picture:
    # at most 1.3 % of it (a 384 x 512 window would hold them at 5.2 %).
    grey = jnp.full((h, w + 64, 3), 0.5).at[:, w:].set(0.0)
    paint = jax.jit(lambda k, v: spatial.color_block(k, grey, 4, valid_hw=v))
    painted = []
    for k in range(4):
        out = np.asarray(paint(jax.random.key(k), jnp.array([h, w])))
        assert not out[:, w:].any()  # nothing beyond the picture
        painted.append(np.mean(np.any(out[:, :w] != 0.5, axis=-1)))
    assert max(painted) <= 10 * 32 * 32 / (h * w) + 1e-9 and min(painted) > 0.008
