"""Registry, per-sample dispatch and the balanced grouped path.

Uses stand-in ops (cheap, kind- and level-dependent, keyed noise) so the
batching logic is tested independently of the real distortions; the real
registry is checked for completeness and run under the same dispatch.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from skimage import data
from skimage.transform import resize

from reiqa_jax import augment
from reiqa_jax.augment import registry
from augment_testing import STANDINS, count_compiles


def _small(img, hw=(48, 64)):
    return (resize(img, hw, anti_aliasing=True) * 255).round().astype(np.float32) / 255


@pytest.fixture(scope="module")
def photos():
    imgs = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    return jnp.asarray(np.stack([_small(i) for i in imgs]))


@pytest.fixture(scope="module")
def batch_fn():
    calls = {"n": 0}

    @jax.jit
    def f(key, images, kinds, levels):
        calls["n"] += 1
        return augment.distort_batch(key, images, kinds, levels, ops=STANDINS)

    return f, calls


def test_registry_order_and_names():
    assert len(augment.DISTORTIONS) == 26
    assert [d.number for d in augment.DISTORTIONS] == list(range(1, 27))
    # Spot checks against the official numbering.
    assert augment.DISTORTIONS[0].name == "gaussian_blur"
    assert augment.DISTORTIONS[6].name == "jpeg"
    assert augment.DISTORTIONS[21].name == "jitter"
    assert augment.DISTORTIONS[25].name == "motion_blur"
    assert augment.number_of("resize_lanczos") == 25
    assert augment.number_of("pristine") == 0
    with pytest.raises(ValueError):
        augment.number_of(27)


def test_distort_refuses_unknown_kinds_and_levels_in_one_line():
    image = jnp.zeros((8, 8, 3), jnp.float32)
    with pytest.raises(ValueError) as info:
        augment.distort(jax.random.key(0), image, "nosuch", 2)
    message = str(info.value)
    assert "\n" not in message and message.startswith("unknown distortion 'nosuch'; ")
    assert all(name in message for name in ("pristine", *augment.NAMES))
    for level in (7, -1, np.int32(5)):
        with pytest.raises(ValueError, match=f"level must be 0..4, got {level}$"):
            augment.distort(jax.random.key(0), image, "darken", level)


def test_distort_jits_as_the_readme_says(photos):
    """README: ``jax.jit(distort, static_argnames="kind")`` with a name gives
    the op-by-op result (a traced kind: ``test_real_ops_batch_one_compile_any_mix``)."""
    key = jax.random.key(4)
    eager = np.asarray(augment.distort(key, photos[1], "darken", 3))
    out = jax.jit(augment.distort, static_argnames="kind")(key, photos[1], "darken", level=3)
    assert np.abs(np.asarray(out) - eager).max() <= 1.01 / 255  # fused vs op-by-op rounding


def test_distort_static_and_traced_agree(photos):
    key = jax.random.key(0)
    img = photos[0]
    traced = jax.jit(lambda k, i, kd, lv: augment.distort(k, i, kd, lv, ops=STANDINS))
    for kind in (0, 5, "brighten", 26):
        n = augment.number_of(kind)
        a = augment.distort(key, img, kind, 3, ops=STANDINS)
        b = traced(key, img, jnp.int32(n), jnp.int32(3))
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(
        np.asarray(augment.distort(key, img, 0, 4, ops=STANDINS)), np.asarray(img))


def test_distort_batch_equals_per_sample_one_compile(photos, batch_fn):
    f, calls = batch_fn
    rng = np.random.default_rng(0)
    key = jax.random.key(1)
    imgs = jnp.concatenate([photos, photos[::-1]])  # B = 8
    for trial in range(3):
        kinds = rng.integers(0, 27, size=8).astype(np.int32)
        levels = rng.integers(0, 5, size=8).astype(np.int32)
        out = f(key, imgs, kinds, levels)
        keys = jax.random.split(key, 8)
        for i in range(8):
            ref = augment.distort(keys[i], imgs[i], int(kinds[i]), int(levels[i]),
                                  ops=STANDINS)
            np.testing.assert_array_equal(np.asarray(out[i]), np.asarray(ref))
        assert out.shape == imgs.shape and np.all(np.isfinite(out))
        assert out.min() >= 0 and out.max() <= 1
    assert calls["n"] == 1


def test_distort_batch_runs_only_the_chosen_branch(photos):
    # Structure, not timing: a scan whose body holds a scalar `cond` (one
    # branch executes), and no select over 27 branch results.
    jaxpr = jax.make_jaxpr(lambda k, i, kd, lv: augment.distort_batch(
        k, i, kd, lv, ops=STANDINS))(jax.random.key(0), photos,
                                     jnp.zeros(4, jnp.int32), jnp.zeros(4, jnp.int32))
    text = str(jaxpr)
    assert "scan" in text and "cond" in text
    assert "select_n" not in text.split("cond")[0]


def test_balanced_schedule_properties():
    rng = np.random.default_rng(0)
    for batch, n_aug in [(4, 11), (6, 13), (1, 26), (3, 5)]:
        perm = rng.permutation(26) + 1
        kinds = np.asarray(registry.balanced_kinds(perm, batch, n_aug))
        assert kinds.shape == (batch, n_aug)
        for row in kinds:
            assert len(set(row.tolist())) == n_aug  # distinct per image
        counts = np.bincount(kinds.ravel(), minlength=27)[1:]
        assert counts.max() - counts.min() <= 1
        assert counts.sum() == batch * n_aug


def test_distort_balanced_equals_per_sample(photos):
    batch, n_aug = 4, 11
    key = jax.random.key(3)
    perm = np.random.default_rng(1).permutation(26).astype(np.int32) + 1
    levels = np.random.default_rng(2).integers(0, 5, (batch, n_aug)).astype(np.int32)
    out = jax.jit(lambda k, im, p, lv: augment.distort_balanced(k, im, p, lv, ops=STANDINS))(
        key, photos, perm, levels)
    assert out.shape == (batch, n_aug) + photos.shape[1:]
    kinds = np.asarray(registry.balanced_kinds(perm, batch, n_aug))
    keys = jax.random.split(key, batch * n_aug)
    for b in range(batch):
        for k in range(n_aug):
            ref = augment.distort(keys[b * n_aug + k], photos[b], int(kinds[b, k]),
                                  int(levels[b, k]), ops=STANDINS)
            np.testing.assert_allclose(np.asarray(out[b, k]), np.asarray(ref), atol=1e-6)


def test_two_distortion_schedule_frequencies():
    from reiqa_jax.augment import quality_views as qv
    cfg = qv.QualityViewConfig(n_aug=11, n_distortions=2)
    s = jax.jit(lambda k: qv.sample_schedule(k, 2000, cfg))(jax.random.key(0))
    k1, l1, k2, l2 = (np.asarray(s[n]).ravel() for n in ("kind1", "level1", "kind2", "level2"))
    n = k1.size
    second = k2 > 0
    # 10% get a second distortion (binomial, 5 sigma).
    assert abs(second.sum() - 0.1 * n) < 5 * np.sqrt(n * 0.09)
    assert np.all(l2[~second] == 0)
    total = l1 + l2
    # The level budget is a uniform 0..4 draw for both branches.
    for part in (second, ~second):
        c = np.bincount(total[part], minlength=5)
        assert c.size == 5 and np.all(np.abs(c - part.sum() / 5) < 5 * np.sqrt(part.sum() * 0.16))
    # level2 | total is uniform on 0..total: for total = 4, each of 5 values.
    c4 = np.bincount(l2[second & (total == 4)], minlength=5)
    assert c4.size == 5 and c4.min() > 0.5 * c4.mean()
    # second kind uniform over 1..26, may repeat the first.
    c = np.bincount(k2[second], minlength=27)[1:]
    assert c.min() > 0 and c.max() < 3 * c.mean()
    # first kinds: distinct per picture, uniform marginally.
    rows = np.asarray(s["kind1"])
    assert all(len(set(r)) == 11 for r in rows.tolist())
    c = np.bincount(k1, minlength=27)[1:]
    assert np.all(np.abs(c - n / 26) < 5 * np.sqrt(n / 26))


def test_two_distortion_stack_composes(photos):
    from reiqa_jax.augment import quality_views as qv
    cfg = qv.QualityViewConfig(n_aug=5, n_distortions=2)
    key = jax.random.key(4)
    sched = {k: v for k, v in qv.sample_schedule(key, 4, cfg).items() if v is not None}
    # force a mix of single and double distortions
    sched["kind2"] = sched["kind2"].at[:, ::2].set(jnp.array([3, 0, 26], jnp.int32))
    stack = jax.jit(lambda k, im, s: qv.distort_stack(k, im, s, cfg, STANDINS))(key, photos, sched)
    assert stack.shape == (4, 6) + photos.shape[1:]
    np.testing.assert_array_equal(np.asarray(stack[:, 0]), np.asarray(photos))
    k1, k2 = jax.random.split(key)
    keys1, keys2 = jax.random.split(k1, 20), jax.random.split(k2, 20)
    for b in range(4):
        for a in range(5):
            t = b * 5 + a
            ref = augment.distort(keys1[t], photos[b], int(sched["kind1"][b, a]),
                                  int(sched["level1"][b, a]), ops=STANDINS)
            ref = augment.distort(keys2[t], ref, int(sched["kind2"][b, a]),
                                  int(sched["level2"][b, a]), ops=STANDINS)
            np.testing.assert_array_equal(np.asarray(stack[b, a + 1]), np.asarray(ref))


@pytest.fixture(scope="module")
def real_batch():
    """The real 26 ops under one jitted distort_batch (small photos)."""
    imgs = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    photos = np.stack([_small(i, (96, 128)) for i in imgs])
    f = jax.jit(augment.distort_batch)
    return jnp.asarray(np.tile(photos, (7, 1, 1, 1))[:26]), f


def test_real_ops_batch_one_compile_any_mix(real_batch):
    photos, f = real_batch
    rng = np.random.default_rng(5)
    key = jax.random.key(9)
    with count_compiles() as compiles:
        for trial in range(2):
            kinds = (rng.permutation(27)[:26]).astype(np.int32)  # 0..26, 0 = pristine
            levels = rng.integers(0, 5, 26).astype(np.int32)
            out = np.asarray(f(key, photos, kinds, levels))
            assert out.shape == photos.shape and np.all(np.isfinite(out))
            assert out.min() >= 0 and out.max() <= 1
            np.testing.assert_allclose(out * 255, np.round(out * 255), atol=1e-3)  # uint8 grid
            zero = np.nonzero(kinds == 0)[0]
            np.testing.assert_array_equal(out[zero], np.asarray(photos)[zero])
            changed = [np.abs(out[i] - np.asarray(photos[i])).max() > 0 for i in range(26)
                       if kinds[i] != 0]
            assert np.mean(changed) > 0.8  # distortions do something
            if trial == 0:
                # Per-sample equality for the ops that are cheap to run eagerly
                # (the dispatch itself is checked exactly with stand-ins above).
                keys = jax.random.split(key, 26)
                cheap = {"darken", "mean_shift", "sharpen", "contrast_change",
                         "resize_bilinear", "resize_nearest", "resize_lanczos"}
                for i in range(26):
                    if kinds[i] == 0 or augment.NAMES[kinds[i] - 1] not in cheap:
                        continue
                    ref = np.asarray(augment.distort(keys[i], photos[i], int(kinds[i]),
                                                     int(levels[i])))
                    # Fused (jit) and op-by-op float arithmetic may land on
                    # opposite sides of a uint8 rounding boundary: allow 1/255 on
                    # a tiny fraction of values.
                    diff = np.abs(out[i] - ref)
                    assert diff.max() <= 1.01 / 255, (int(kinds[i]), diff.max())
                    assert np.mean(diff > 1e-6) < 0.01, int(kinds[i])
    assert compiles["distort_batch"] == 1, compiles  # one program for any mix


def test_balanced_schedule_sampling():
    from reiqa_jax.augment import quality_views as qv
    cfg = qv.QualityViewConfig(n_aug=11, schedule="balanced")
    counts = []
    for seed in range(3):
        s = qv.sample_schedule(jax.random.key(seed), 8, cfg)
        k1 = np.asarray(s["kind1"])
        assert all(len(set(r)) == 11 for r in k1.tolist())
        c = np.bincount(k1.ravel(), minlength=27)[1:]
        assert c.min() >= 3 and c.max() <= 4  # 88 slots over 26 kinds
        counts.append(c)
    # the permutation changes per draw: which kinds get the extra slot varies
    assert not all(np.array_equal(counts[0], c) for c in counts[1:])


def test_only_fills_the_26_slots_with_the_named_official_ops_in_turn():
    from collections import Counter

    from reiqa_jax.augment.op_sets import op_set

    ops = op_set("only:jpeg,pixelate,color_block")
    official = {d.name: d.fn for d in registry.DISTORTIONS}
    assert len(ops) == len(official) == 26
    assert all(op is official[op.__name__] for op in ops)
    assert [op.__name__ for op in ops[:4]] == ["jpeg", "pixelate", "color_block", "jpeg"]
    assert Counter(op.__name__ for op in ops) == {"jpeg": 9, "pixelate": 9, "color_block": 8}
    assert {op.__name__ for op in op_set("only:pixelate")} == {"pixelate"}
    with pytest.raises(ValueError, match="unknown kind 'jpg'; the kinds are gaussian_blur"):
        op_set("only:jpg")
    with pytest.raises(ValueError, match="names no kind"):
        op_set("only:")
