"""Crop pairs, scale 2, swap pattern and the assembled quality views.

Checked against the official rules re-derived in numpy here (offset ranges
from numpy's own ``randint`` on the official float bounds, torchvision's
CenterCrop padding, torch ``interpolate``), on real photos.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from skimage import data

from reiqa_jax import augment
from reiqa_jax.augment import crops
from reiqa_jax.data import tiles
from augment_testing import STANDINS, count_compiles

P = 160


def _u8_to_f(x):
    return np.asarray(x, np.float32) / 255.0


def _official_crop_region(h, w, s):
    """Centre-crop origin of torchvision CenterCrop(s) on an h x w picture
    (pad (s-n)//2 before a short dim, round-half-even elsewhere)."""
    def one(n):
        return -((s - n) // 2) if n < s else int(round((n - s) / 2.0))
    return one(h), one(w)


def _window(img, top, left, p):
    """p x p window of (h, w, c) img at (top, left), zeros outside."""
    h, w = img.shape[:2]
    out = np.zeros((p, p, img.shape[2]), img.dtype)
    r0, c0 = max(top, 0), max(left, 0)
    r1, c1 = min(top + p, h), min(left + p, w)
    if r1 > r0 and c1 > c0:
        out[r0 - top:r1 - top, c0 - left:c1 - left] = img[r0:r1, c0:c1]
    return out


@pytest.fixture(scope="module")
def coffee_tile():
    t = tiles.sample_tile(np.random.default_rng(0), data.coffee())
    return t


def test_offset_ranges_match_numpy_randint():
    y_lo, y_hi, x_lo, x_hi = crops.offset_table(P)
    assert (y_lo, y_hi) == (112, 144)
    rs = np.random.RandomState(0)
    lo_, hi_ = P * (1 - 0.30), P * (1 - 0.10)
    ys = rs.randint(low=lo_, high=hi_, size=20000)
    assert (ys.min(), ys.max() + 1) == (y_lo, y_hi)
    for y in (112, 120, 131, 143):
        lo = np.maximum(0, ((1 - 0.30) * P ** 2 - P * y) / (P - y))
        hi = np.maximum(0, ((1 - 0.10) * P ** 2 - P * y) / (P - y))
        xs = [rs.randint(low=lo, high=hi) for _ in range(3000)]
        assert (min(xs), max(xs) + 1) == (x_lo[y - y_lo], x_hi[y - y_lo])


def test_overlap_always_in_range_over_many_draws():
    for p in (160, 224, 96):
        keys = jax.random.split(jax.random.key(p), 4000)
        y, x = jax.vmap(lambda k: crops.sample_offsets(k, p))(keys)
        ola = np.asarray(crops.overlap_fraction(y, x, p))
        # numpy truncates the float bounds, so when 0.7 P is not an integer
        # a few (y, x) slightly exceed 0.30 (P=224: 0.3009 at y=156, x=2,
        # in the official code too); P=160 (the recipe) stays within.
        y_lo, y_hi, x_lo, x_hi = crops.offset_table(p)
        table_max = max(crops.overlap_fraction(y_lo + i, x_lo[i], p)
                        for i in range(y_hi - y_lo))
        upper = 0.30 if p == 160 else table_max
        assert table_max < 0.305
        assert ola.min() >= 0.10 and ola.max() <= upper + 1e-6, (p, ola.min(), ola.max())
        assert int(y.min()) == y_lo and int(y.max()) == y_hi - 1


def test_region_origin_centre_crop_rules():
    key = jax.random.key(0)
    for h, w, s in [(192, 256, 272), (300, 256, 272), (192, 400, 273), (191, 191, 303)]:
        top, left = crops.region_origin(key, jnp.array([h, w]), jnp.int32(s))
        assert (int(top), int(left)) == _official_crop_region(h, w, s)
    # Random crop when the picture is large enough: uniform over [0, n-S].
    keys = jax.random.split(key, 3000)
    tops, lefts = jax.vmap(lambda k: crops.region_origin(
        k, jnp.array([384, 512]), jnp.int32(300)))(keys)
    assert int(tops.min()) == 0 and int(tops.max()) == 84
    assert int(lefts.min()) == 0 and int(lefts.max()) == 212


@pytest.mark.parametrize("hw", [(384, 512), (301, 451)])
def test_half_bicubic_matches_torch(coffee_tile, hw):
    img = _u8_to_f(coffee_tile["pixels"])
    h, w = hw
    stack = jnp.asarray(img)[None]
    out, half_hw = crops.resize_half_bicubic(stack, jnp.array(hw, jnp.int32))
    assert tuple(np.asarray(half_hw)) == (h // 2, w // 2)
    t = torch.from_numpy(img[:h, :w]).permute(2, 0, 1)[None]
    ref = torch.nn.functional.interpolate(t, size=(h // 2, w // 2), mode="bicubic",
                                          align_corners=True)[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(np.asarray(out[0, :h // 2, :w // 2]), ref, atol=2e-6)


def test_crop_pair_geometry_on_photo(coffee_tile):
    img = _u8_to_f(coffee_tile["pixels"])
    stack = jnp.asarray(img)[None]
    valid = jnp.array([384, 512], jnp.int32)
    f = jax.jit(lambda k, tr: crops.crop_pair(k, stack, P, valid, tr))
    for seed in range(6):
        c1, c2, (y, x) = f(jax.random.key(seed), False)
        c1, c2, y, x = np.asarray(c1[0]), np.asarray(c2[0]), int(y), int(x)
        # crop2 is crop1 shifted by (y, x): the overlap is the same pixels.
        np.testing.assert_array_equal(c1[y:, x:], c2[:P - y, :P - x])
        # crop1 is a window of the picture inside an S x S random region.
        s = P + max(y, x)
        hits = np.argwhere(np.all(img[:384 - s + 1, :512 - s + 1] == c1[0, 0], axis=-1))
        assert any(np.array_equal(img[r:r + P, c:c + P], c1) for r, c in hits)


def test_crop_pair_transposed_is_picture_frame(coffee_tile):
    # A portrait picture stored transposed: crops come back in picture frame
    # and keep the official (y, x) relation.
    img = _u8_to_f(coffee_tile["pixels"]).transpose(1, 0, 2)  # 512 x 384 picture
    stored = jnp.asarray(img.transpose(1, 0, 2))[None]
    c1, c2, (y, x) = crops.crop_pair(jax.random.key(5), stored, P,
                                     jnp.array([384, 512]), True)
    c1, c2, y, x = np.asarray(c1[0]), np.asarray(c2[0]), int(y), int(x)
    np.testing.assert_array_equal(c1[y:, x:], c2[:P - y, :P - x])
    hits = np.argwhere(np.all(img == c1[0, 0], axis=-1))
    assert any(np.array_equal(img[r:r + P, c:c + P], c1) for r, c in hits)


def _shift_ok(q, k, y, x):
    """True when k is q shifted by (y, x) (k = crop2 relative to q = crop1)."""
    return np.array_equal(q[y:, x:], k[:P - y, :P - x])


@pytest.fixture(scope="module")
def quality_out(coffee_tile):
    cfg = augment.QualityViewConfig(n_aug=3, crop_swap="clean")
    t = tiles.stack_tiles([coffee_tile, tiles.sample_tile(np.random.default_rng(1),
                                                          data.rocket())])

    def run(key):
        return augment.make_quality_views(key, t["pixels"], cfg, t["valid_hw"],
                                          t["transposed"], ops=STANDINS)

    with count_compiles() as compiles:
        outs = [run(jax.random.key(s)) for s in range(2)]
    return cfg, t, outs, compiles


def test_quality_views_layout_swap_and_scale2(quality_out):
    cfg, t, outs, compiles = quality_out
    n = cfg.n_aug + 1
    swap = n // 2
    for views, info in outs:
        views = np.asarray(views)
        assert views.shape == (2, 2 * n, P, P, 6)
        assert np.all(np.isfinite(views))
        s1 = views[:, :n]
        assert s1.min() >= 0.0 and s1.max() <= 1.0
        offs = np.asarray(info["offsets"])
        for b in range(2):
            for scale in range(2):
                y, x = offs[b, scale]
                for v in range(n):
                    q, k = views[b, scale * n + v, ..., :3], views[b, scale * n + v, ..., 3:]
                    swapped = (v < swap) if scale == 0 else (v >= swap)
                    if swapped:
                        assert _shift_ok(k, q, y, x), (b, scale, v)
                    else:
                        assert _shift_ok(q, k, y, x), (b, scale, v)
            # Scale 2, pristine row: torch half resize + official CenterCrop
            # (192x256 half picture < S, so zero padding), version 0 not swapped.
            img = _u8_to_f(t["pixels"][b])
            tt = torch.from_numpy(img).permute(2, 0, 1)[None]
            half = torch.nn.functional.interpolate(tt, size=(192, 256), mode="bicubic",
                                                   align_corners=True)[0].permute(1, 2, 0).numpy()
            y, x = offs[b, 1]
            top, left = _official_crop_region(192, 256, P + max(y, x))
            np.testing.assert_allclose(views[b, n, ..., :3], _window(half, top, left, P), atol=2e-6)
            np.testing.assert_allclose(views[b, n, ..., 3:], _window(half, top + y, left + x, P),
                                       atol=2e-6)
        # Distinct kinds per picture, levels 0..4, pristine row 0 untouched.
        k1 = np.asarray(info["kind1"])
        assert all(len(set(r)) == cfg.n_aug for r in k1.tolist())
        assert k1.min() >= 1 and k1.max() <= 26
    # Different draws, same compiled function.
    assert not np.array_equal(np.asarray(outs[0][0]), np.asarray(outs[1][0]))
    assert compiles["make_quality_views"] == 1, compiles


def test_small_picture_valid_region(coffee_tile):
    # chelsea is 300 x 451 (< 384 x 512): crops follow the official rules for
    # a 300 x 451 picture and never read the mirror padding of the tile.
    t = tiles.sample_tile(np.random.default_rng(0), data.chelsea())
    assert tuple(t["valid_hw"]) == (300, 451) and t["pixels"].shape == (384, 512, 3)
    b = tiles.stack_tiles([t, coffee_tile])  # B = 2: reuses the compiled views
    cfg = augment.QualityViewConfig(n_aug=3, crop_swap="clean")
    img = _u8_to_f(data.chelsea())
    seen = set()
    for seed in range(4):
        views, info = augment.make_quality_views(
            jax.random.key(seed), b["pixels"], cfg, b["valid_hw"], b["transposed"],
            ops=STANDINS)
        crop1 = np.asarray(views[0, 0, ..., 3:])  # row 0 is swapped at scale 1
        y, x = np.asarray(info["offsets"])[0, 0]
        s = P + max(y, x)
        if s <= 300:
            seen.add("random")
            # (uint8 -> float on device may differ from numpy by an ulp)
            near = np.abs(img[:300 - s + 1, :451 - s + 1] - crop1[0, 0]) < 1e-6
            hits = np.argwhere(np.all(near, axis=-1))
            assert any(np.allclose(img[r:r + P, c:c + P], crop1, atol=1e-6) for r, c in hits)
        else:
            seen.add("centre")
            top, left = _official_crop_region(300, 451, s)
            np.testing.assert_allclose(crop1, _window(img, top, left, P), atol=1e-6)
    assert seen == {"random", "centre"}


def test_tiles_policy():
    rng = np.random.default_rng(0)
    big = tiles.sample_tile(rng, data.astronaut())          # 512 x 512
    assert big["pixels"].shape == (384, 512, 3) and not big["transposed"]
    assert tuple(big["valid_hw"]) == (384, 512)
    portrait = data.coffee().transpose(1, 0, 2)              # 600 x 400
    pt = tiles.sample_tile(rng, portrait)
    assert pt["transposed"] and tuple(pt["valid_hw"]) == (384, 512)
    # The window is a true window of the transposed picture.
    src = portrait.transpose(1, 0, 2)
    hits = np.argwhere(np.all(src == pt["pixels"][0, 0], axis=-1))
    assert any(np.array_equal(src[r:r + 384, c:c + 512], pt["pixels"]) for r, c in hits)
    exact = tiles.sample_tile(rng, data.coffee()[:384, :512])
    np.testing.assert_array_equal(exact["pixels"], data.coffee()[:384, :512])
    small = tiles.sample_tile(rng, data.chelsea())
    np.testing.assert_array_equal(small["pixels"][:300, :451], data.chelsea())
    batch = tiles.stack_tiles([big, pt, exact, small])
    assert batch["pixels"].shape == (4, 384, 512, 3) and batch["valid_hw"].dtype == np.int32


def test_official_recipe_with_real_ops(coffee_tile):
    # The real 26 distortions, official recipe (P=160, 11 augs, 2 scales).
    t = tiles.stack_tiles([coffee_tile, tiles.sample_tile(np.random.default_rng(3),
                                                          data.astronaut())])
    cfg = augment.QualityViewConfig()
    # Both pictures fill their arrays, so the static-size program is the same
    # computation; the sized ops on a canvas
    # are tested in test_augment_extent.py and test_data_pipeline.py.
    assert t["valid_hw"].tolist() == [[384, 512]] * 2
    views, info = augment.make_quality_views(jax.random.key(11), t["pixels"], cfg,
                                             None, t["transposed"])
    views = np.asarray(views)
    n = cfg.n_aug + 1
    assert views.shape == (2, 2 * n, P, P, 6) and np.all(np.isfinite(views))
    # Scale 1: the versions the official swap leaves alone stay in [0, 1];
    # the "swapped" ones mix overlapping pixels: sums and differences of up to
    # four picture values, within [-2, 2] (see crops.aliased_swap).
    assert views[:, n // 2:n].min() >= 0 and views[:, n // 2:n].max() <= 1
    assert views[:, :n // 2].min() >= -2 and views[:, :n // 2].max() <= 2
    # Scale 2 is not clipped (as official): Keys a=-0.75 weights sum to 1.375
    # in |.| per axis (negative lobes 0.445 over both axes), so the [-2, 2]
    # stack rows left by the scale-1 swap resize into [-3.79, 3.79], and the
    # scale-2 swap of [-0.445, 1.445] crops stays within that too.
    assert views[:, n:].min() >= -3.79 and views[:, n:].max() <= 3.79
    k1 = np.asarray(info["kind1"])
    assert all(len(set(r)) == 11 for r in k1.tolist())
    # every version keeps the official crop relation, so the distorted
    # crops line up with the pristine ones
    for b in range(2):
        y, x = np.asarray(info["offsets"])[b, 0]
        q, k = views[b, 1 + n // 2, ..., :3], views[b, 1 + n // 2, ..., 3:]  # unswapped
        assert _shift_ok(q, k, y, x)
    # distorted versions differ from the pristine crop (most kinds visibly)
    diffs = [np.abs(views[b, v, ..., :3] - views[b, 0, ..., :3]).mean()
             for b in range(2) for v in range(1, n)]
    assert np.mean(np.array(diffs) > 1e-3) > 0.7
