"""The MoCo pieces: queue FIFO, shuffle permutation, InfoNCE, EMA, shuffle BN."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

from reiqa_jax import moco


def test_queue_is_fifo_with_wrap_around():
    q = jnp.zeros((10, 2))
    ptr = jnp.zeros((), jnp.int32)
    pushed = []
    for i in range(4):  # 4 pushes of 3 rows into 10 slots: wraps at the 4th push
        keys = jnp.full((3, 2), float(i + 1)) + jnp.arange(3)[:, None] / 10
        q, ptr = moco.queue_push(q, ptr, keys)
        pushed.append(np.asarray(keys))
    rows = np.concatenate(pushed)  # 12 rows written at 0..11 mod 10
    want = np.zeros((10, 2))
    for i, r in enumerate(rows):
        want[i % 10] = r
    np.testing.assert_array_equal(q, want)
    assert int(ptr) == 2
    with pytest.raises(ValueError, match="do not fit"):
        moco.queue_push(q, ptr, jnp.zeros((11, 2)))


def test_init_queue_rows_are_unit_normal_directions():
    q = np.asarray(moco.init_queue(jax.random.key(0), 4096, 128))
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1, rtol=1e-5)
    assert abs(q.mean()) < 2e-3 and abs(q.std() - 128 ** -0.5) < 1e-3


def test_shuffle_permutation_and_inverse():
    perm, inv = moco.shuffle_permutation(jax.random.key(3), 50)
    perm, inv = np.asarray(perm), np.asarray(inv)
    assert sorted(perm) == list(range(50)) and not np.array_equal(perm, np.arange(50))
    np.testing.assert_array_equal(perm[inv], np.arange(50))
    x = np.random.default_rng(0).normal(size=(50, 3))
    np.testing.assert_array_equal(x[perm][inv], x)


def test_info_nce_is_cross_entropy_with_label_zero():
    rng = np.random.default_rng(0)
    unit = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)
    q, k, queue = (unit(rng.normal(size=s)).astype(np.float32) for s in ((6, 8), (6, 8), (20, 8)))
    loss, acc, logits = moco.info_nce(jnp.asarray(q), jnp.asarray(k), jnp.asarray(queue), 0.2)
    want = torch.cat([(torch.from_numpy(q) * torch.from_numpy(k)).sum(1, keepdim=True),
                      torch.from_numpy(q) @ torch.from_numpy(queue).T], 1) / 0.2
    np.testing.assert_allclose(logits, want.numpy(), rtol=1e-5, atol=1e-6)
    ce = torch.nn.functional.cross_entropy(want, torch.zeros(6, dtype=torch.long))
    assert float(loss) == pytest.approx(float(ce), rel=1e-5)
    assert float(acc) == pytest.approx(100 * np.mean(want.numpy().argmax(1) == 0))
    # no gradient flows into the keys or the queue
    gk = jax.grad(lambda k: moco.info_nce(jnp.asarray(q), k, jnp.asarray(queue), 0.2)[0])(
        jnp.asarray(k))
    assert float(jnp.abs(gk).max()) == 0.0


def test_batch_negatives_add_every_other_key_of_the_batch():
    """negatives='queue+batch': row i's extra columns are q_i . k_j / T for every
    j != i; its own key stays the positive only (masked out of the extra columns)."""
    rng = np.random.default_rng(1)
    unit = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)
    q, k, queue = (unit(rng.normal(size=s)).astype(np.float32) for s in ((5, 8), (5, 8), (7, 8)))
    loss, _, logits = moco.info_nce(jnp.asarray(q), jnp.asarray(k), jnp.asarray(queue), 0.2,
                                    batch_negatives=True)
    qt, kt = torch.from_numpy(q), torch.from_numpy(k)
    batch = (qt @ kt.T).masked_fill(torch.eye(5, dtype=torch.bool), float("-inf"))
    want = torch.cat([(qt * kt).sum(1, keepdim=True), qt @ torch.from_numpy(queue).T,
                      batch], 1) / 0.2
    np.testing.assert_allclose(logits, want.numpy(), rtol=1e-5, atol=1e-6)
    ce = torch.nn.functional.cross_entropy(want, torch.zeros(5, dtype=torch.long))
    assert float(loss) == pytest.approx(float(ce), rel=1e-5)
    plain = moco.info_nce(jnp.asarray(q), jnp.asarray(k), jnp.asarray(queue), 0.2)[0]
    assert float(loss) > float(plain)  # more negatives, larger loss


def _masked_info_nce_matches_torch(mask, want, seed):
    """info_nce with ``batch_negatives=mask`` against PyTorch: the batch's keys
    masked_fill'ed outside ``want`` (the mask restated by the test), appended to
    the queue's columns; the loss is their cross-entropy with label 0."""
    n = mask.shape[0]
    rng = np.random.default_rng(seed)
    unit = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)
    q, k, queue = (unit(rng.normal(size=s)).astype(np.float32) for s in ((n, 8), (n, 8), (7, 8)))
    loss, _, logits = moco.info_nce(jnp.asarray(q), jnp.asarray(k), jnp.asarray(queue), 0.2,
                                    batch_negatives=mask)
    qt, kt = torch.from_numpy(q), torch.from_numpy(k)
    batch = (qt @ kt.T).masked_fill(~torch.from_numpy(want), float("-inf"))
    full = torch.cat([(qt * kt).sum(1, keepdim=True), qt @ torch.from_numpy(queue).T,
                      batch], 1) / 0.2
    np.testing.assert_allclose(logits, full.numpy(), rtol=1e-5, atol=1e-6)
    ce = torch.nn.functional.cross_entropy(full, torch.zeros(n, dtype=torch.long))
    assert float(loss) == pytest.approx(float(ce), rel=1e-5)


def test_pristine_negatives_add_only_the_own_pristine_key_at_the_same_scale():
    """negatives='queue+pristine': 2 pictures x 2 scales x 3 versions (version 0
    pristine) = 12 rows; a distorted row's one extra column is its own picture's
    pristine key at its scale, a pristine row gets none."""
    versions, scales, pictures = 3, 2, 2
    n = versions * scales * pictures
    mask = moco.pristine_negatives(n, versions, scales)
    want = np.zeros((n, n), dtype=bool)
    for i in range(n):
        picture, rest = divmod(i, versions * scales)
        scale, version = divmod(rest, versions)
        if version:
            want[i, picture * versions * scales + scale * versions] = True
    np.testing.assert_array_equal(mask, want)
    assert mask.sum() == pictures * scales * (versions - 1)

    _masked_info_nce_matches_torch(mask, want, seed=2)
    with pytest.raises(ValueError, match="not whole pictures"):
        moco.pristine_negatives(n + 1, versions, scales)


def test_sibling_negatives_are_the_own_pictures_other_versions_at_the_same_scale():
    """negatives='queue+siblings': 2 pictures x 2 scales x 3 versions = 12 rows; row
    i's extra columns are the keys of its own picture and scale but another
    version (pristine included); never its own key, its own version at the other
    scale, or another picture's key."""
    versions, scales, pictures = 3, 2, 2
    n = versions * scales * pictures
    mask = moco.sibling_negatives(n, versions, scales)
    want = np.zeros((n, n), dtype=bool)
    for i in range(n):
        for j in range(n):
            (pi, ri), (pj, rj) = divmod(i, versions * scales), divmod(j, versions * scales)
            want[i, j] = pi == pj and ri // versions == rj // versions and i != j
    np.testing.assert_array_equal(mask, want)
    assert mask.sum(axis=1).tolist() == [versions - 1] * n
    assert not mask[0, versions]  # row 0's version at scale 2 is not its negative
    assert not (moco.pristine_negatives(n, versions, scales) & ~mask).any()  # pristine is a part

    _masked_info_nce_matches_torch(mask, want, seed=3)
    with pytest.raises(ValueError, match="not whole pictures"):
        moco.sibling_negatives(n - 1, versions, scales)


def test_the_trainer_builds_the_pristine_mask_for_its_views_layout():
    """train.batch_negatives follows config.views (n_aug + 1 versions, n_scale scales):
    the quality views are picture-major, scale-major, version 0 pristine."""
    from reiqa_jax import train
    from reiqa_jax.config_file import load_config

    config = load_config("smoke")
    assert train.batch_negatives(config, 10) is False  # official: the queue alone
    config.negatives = "queue+batch"
    assert train.batch_negatives(config, 10) is True
    config.negatives = "queue+pristine"
    versions, scales = config.views.n_aug + 1, config.views.n_scale
    rows = 2 * versions * scales
    mask = train.batch_negatives(config, rows)
    np.testing.assert_array_equal(mask, moco.pristine_negatives(rows, versions, scales))
    config.negatives = "queue+siblings"
    np.testing.assert_array_equal(train.batch_negatives(config, rows),
                                  moco.sibling_negatives(rows, versions, scales))
    assert train.pairs_per_image(config) == versions * scales


def test_momentum_update_is_one_tree_map():
    ema = {"a": jnp.ones(3), "b": {"c": jnp.zeros(2)}}
    new = {"a": jnp.zeros(3), "b": {"c": jnp.ones(2)}}
    out = moco.momentum_update(ema, new, 0.999)
    np.testing.assert_allclose(out["a"], 0.999)
    np.testing.assert_allclose(out["b"]["c"], 0.001, rtol=1e-6)


def _mesh(hosts, local):
    devices = np.array(jax.devices()[:hosts * local]).reshape(hosts, local)
    return Mesh(devices, ("host", "local"), axis_types=(AxisType.Auto, AxisType.Auto))


@pytest.mark.parametrize("mode", ["host", "global", "none"])
def test_shuffle_bn_keys_unshuffles_and_gathers_in_shuffled_order(mode):
    mesh = _mesh(1, 2)
    axes = ("host", "local")
    shuffle_axes = {"host": ("local",), "global": axes, "none": None}[mode]
    n = 5
    x = np.arange(2 * n * 3, dtype=np.float32).reshape(2 * n, 3)

    def encode(rows):  # row-wise keys; aux = the batch mean (a BN-like statistic)
        return rows * 2.0 + 1.0, rows.mean(axis=0)

    def per_device(x, key):
        k, all_k, aux = moco.shuffle_bn_keys(encode, x, key, shuffle_axes=shuffle_axes,
                                            all_axes=axes)
        return k, all_k, aux[None]

    f = jax.jit(jax.shard_map(per_device, mesh=mesh, in_specs=(P(axes), P()),
                              out_specs=(P(axes), P(), P(axes))))
    key = jax.random.key(7)
    k, all_k, aux = (np.asarray(a) for a in f(jax.device_put(x, NamedSharding(mesh, P(axes))),
                                              key))
    np.testing.assert_array_equal(k, x * 2 + 1)  # every device gets its own rows' keys back
    if mode == "none":
        np.testing.assert_array_equal(all_k, x * 2 + 1)
        np.testing.assert_allclose(aux, [x[:n].mean(0), x[n:].mean(0)])
    else:
        perm, _ = moco.shuffle_permutation(key, 2 * n)
        perm = np.asarray(perm)
        np.testing.assert_array_equal(all_k, x[perm] * 2 + 1)  # the queue gets shuffled order
        # each device's statistics come from its slice of the shuffled rows
        np.testing.assert_allclose(aux, [x[perm[:n]].mean(0), x[perm[n:]].mean(0)])
        assert not np.allclose(aux, [x[:n].mean(0), x[n:].mean(0)])
