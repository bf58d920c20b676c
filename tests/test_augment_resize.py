"""Resize distortions (16 bicubic, 23 bilinear, 24 nearest, 25 lanczos,
20 pixelate) vs Pillow ``Image.resize``, on crops of real photos."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import skimage.data
from PIL import Image

import reference_blur_resize_jpeg as ref
from reiqa_jax.augment import resize
from augment_testing import counted_jit, photo_crops, psnr, switch_over_levels, to_f32, to_u8

LEVELS = range(5)
NAMES = ("resize_bicubic", "resize_bilinear", "resize_nearest", "resize_lanczos",
         "pixelate")


@pytest.fixture(scope="module")
def images():
    return {
        # Even size, divisible by every factor's neighbourhood: 96 x 128.
        **photo_crops("astronaut"),
        # Odd size, so int(w / f) rounds and scales are not integers.
        "chelsea": skimage.data.chelsea()[60:143, 120:237],
    }


@pytest.fixture(scope="module")
def ops():
    return {name: counted_jit(getattr(resize, name)) for name in NAMES}


@pytest.mark.parametrize("name", NAMES)
def test_matches_pillow(images, ops, name):
    fn, count = ops[name]
    ref_fn = getattr(ref, "ref_" + name)
    for img in images.values():
        for level in LEVELS:
            out = to_u8(fn(jax.random.key(0), to_f32(img), jnp.int32(level)))
            expect = ref_fn(None, img, level)
            assert psnr(out, expect) >= 40, (level, psnr(out, expect))
            # Integer arithmetic as Pillow's: bit-exact.
            np.testing.assert_array_equal(out, expect)
    assert count["traces"] == len(images)  # one program per image size


@pytest.mark.parametrize("filt,resample", [("bicubic", Image.BICUBIC),
                                           ("bilinear", Image.BILINEAR),
                                           ("lanczos", Image.LANCZOS)])
def test_one_pass_matches_pillow_on_a_row(filt, resample):
    # A single horizontal pass on a 1-row image isolates the weights.
    row = skimage.data.camera()[200:201, :300]
    for out_w in (7, 75, 150, 299, 301, 640):
        expect = np.asarray(Image.fromarray(row).resize((out_w, 1), resample))[0]
        m = resize.pil_resample_weights(row.shape[1], out_w, filt)
        got = np.clip((m @ row[0].astype(np.int64) + 2**21) >> 22, 0, 255)
        np.testing.assert_array_equal(got, expect)


def test_nearest_index_matches_pillow():
    line = np.arange(250, dtype=np.uint8)[None]
    for in_w, out_w in ((250, 41), (250, 83), (250, 125), (41, 250), (83, 250)):
        src = line[:, :in_w]
        expect = np.asarray(Image.fromarray(src).resize((out_w, 1), Image.NEAREST))[0]
        np.testing.assert_array_equal(resize.pil_nearest_index(in_w, out_w), expect)


@pytest.mark.parametrize("name", NAMES)
def test_severity_increases_with_level(images, ops, name):
    fn, _ = ops[name]
    img = images["astronaut"]
    scores = [psnr(to_u8(fn(jax.random.key(0), to_f32(img), jnp.int32(lv))), img)
              for lv in LEVELS]
    assert all(a > b for a, b in zip(scores, scores[1:])), scores


def test_batched_traced_levels_under_vmap_and_switch(images, ops):
    fns = [getattr(resize, n) for n in NAMES]
    img = to_f32(images["chelsea"])
    outs, keys = switch_over_levels(fns, img, jax.random.key(0))
    for kind, (name, out) in enumerate(zip(NAMES, outs)):
        for level in LEVELS:
            single = ops[name][0](keys[level], img, jnp.int32(level))
            np.testing.assert_array_equal(out[level], single)
        # A plain Python int level (a constant in the trace) gives the same.
        small = img[:32, :48]
        np.testing.assert_array_equal(
            jax.jit(lambda x: fns[kind](None, x, 1))(small),
            jax.jit(fns[kind])(None, small, jnp.int32(1)))


@pytest.mark.parametrize("filt", ["bicubic", "bilinear", "lanczos"])
def test_padded_batched_path_matches_pillow(images, filt):
    # On CPU, vmap with per-sample levels loops over samples
    # (filters.map_per_sample); other backends run this one-program path.
    img = images["chelsea"]
    batch = jnp.stack([jnp.round(to_f32(img) * 255.0)] * 5)
    fn = jax.jit(jax.vmap(lambda x, l: resize._down_up_padded(
        x, l, filt, resize.RESIZE_FACTORS)))
    out = np.asarray(fn(batch, jnp.arange(5, dtype=jnp.int32))).astype(np.uint8)
    for level in LEVELS:
        expect = getattr(ref, "ref_resize_" + filt)(None, img, level)
        np.testing.assert_array_equal(out[level], expect)


def test_tables_for_sizes_known_at_run_time_are_pillows():
    """resize_valid computes Pillow's tables on the device from traced sizes
    (float64, products rounded before sums): they equal the host tables,
    which the tests above hold to Pillow, over sizes of pictures the ops see."""
    from reiqa_jax.augment import resize_valid as rv

    zs = [0.95 - p ** 0.6 for p in resize.PIXELATE_PARAMS]
    pairs = []
    for n in list(range(rv.MIN_SIDE, 1025, 5)) + [427, 480, 640]:
        for m in [int(n / f) for f in resize.NEAREST_FACTORS] + [int(z * n) for z in zs]:
            pairs += [(n, m), (m, n)]
    pairs = np.asarray(pairs, np.int32)
    index = np.asarray(jax.jit(jax.vmap(lambda a, b: rv.nearest_index(a, b, 1024)))(
        pairs[:, 0], pairs[:, 1]))
    for (a, b), got in zip(pairs, index):
        assert np.array_equal(got[:b], resize.pil_nearest_index(int(a), int(b))), (a, b)
    # Convolution weights, down (every factor) and up, over a range of sizes:
    # every table in one compiled program.
    ns = np.array(list(range(rv.MIN_SIDE, 300, 13)) + [384, 427, 480, 512, 640], np.int32)
    cases = []
    for filt in ("bilinear", "bicubic", "lanczos"):
        for f in resize.RESIZE_FACTORS:
            ms = (ns / f).astype(np.int32)
            out_max, taps = rv.down_bounds(int(ns.max()), filt, "factor", float(f))
            cases += [(filt, ns, ms, out_max, taps),
                      (filt, ms, ns, int(ns.max()), rv.pillow_ksize(1, 2, filt))]

    @jax.jit
    def tables(sizes):
        return [jax.vmap(lambda x, y, c=c: rv.pillow_weights(x, y, c[0], c[3], c[4]))(a, b)
                for c, (a, b) in zip(cases, sizes)]

    results = tables([(c[1], c[2]) for c in cases])
    for (filt, a, b, _, k), (xmin, w) in zip(cases, results):
        xmin, w = np.asarray(xmin), np.asarray(w)
        for i in range(len(ns)):
            dense = np.zeros((b[i], a[i]), np.int64)
            rows = np.repeat(np.arange(b[i]), k)
            cols = (xmin[i, :b[i], None] + np.arange(k)).reshape(-1)
            keep = w[i, :b[i]].reshape(-1) != 0
            np.add.at(dense, (rows[keep], cols[keep]), w[i, :b[i]].reshape(-1)[keep])
            assert np.array_equal(dense, resize.pil_resample_weights(
                int(a[i]), int(b[i]), filt)), (filt, a[i], b[i])
