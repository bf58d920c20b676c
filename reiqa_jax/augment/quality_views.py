"""Quality-branch training views: the official ``IQAImageClass.__getitem__``.

Per picture: the pristine version plus ``n_aug`` distorted versions
(distinct kinds, level uniform 0..4), one overlapping crop pair per scale for
the whole stack (see ``crops.py``), crop swapping, and a half-size bicubic
scale 2 made from the full-size distorted stack.

Pictures of any size come whole, at the top-left of arrays of one shape,
with their sizes ``valid_hw`` (``reiqa_jax.data.canvases``): the
distortions then work on each picture alone (``extent.py``), scale 2 resizes
the picture's stack and the crops are drawn over the picture, so the views
are the official ones of the picture. Without ``valid_hw`` every picture
fills its array.

Crop swapping (``QualityViewConfig.crop_swap``): the official code swaps the
two crops of versions [0, (n_aug+1)//2) at scale 1 and of the rest at scale 2
with an in-place ``x = x + y; y = x - y; x = x - y`` on two overlapping views
of one crop region. That does not swap: it mixes the overlapping pixels and,
at scale 1 when the picture holds the crop region, writes back into the
full-size stack that scale 2 is then resized from. ``'official'`` replays
that arithmetic exactly (what the released weights were trained on,
``crops.aliased_swap``); ``'clean'`` is the evident intent, a true swap;
``'none'`` keeps crop1 as the query everywhere.

Output layout (NHWC): ``views`` float32 (B, n_scale * (n_aug + 1), P, P, 6);
channels 0-2 are the query crop (``chunk_1`` after swapping), 3-5 the key
crop (``chunk_2``); rows [0, n_aug] are scale 1 (row 0 pristine), rows
[n_aug + 1, 2 n_aug + 1] scale 2. The official per-sample tensor is
``views[b].transpose(0, 3, 1, 2)`` ((2*(n_aug+1), 6, P, P)); its trainer
flattens to (B * 2 (n_aug+1), 6, P, P) and splits channels [3, 3].
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Sequence

import jax
import jax.numpy as jnp

from reiqa_jax.augment import crops, registry
from reiqa_jax.normalize import to_unit_float


@dataclasses.dataclass(frozen=True)
class QualityViewConfig:
    """Static recipe (hashable, a jit static argument). Defaults: the
    official Re-IQA quality-encoder recipe (P=160, 11 augs, 2 scales, one
    distortion per version, the official aliased crop swap).

    crop_swap: 'official' (the released arithmetic on aliased views),
      'clean' (a true swap) or 'none' (see the module docstring).

    schedule: 'independent' = official per-picture shuffle, run with
      ``distort_batch`` (scan); 'balanced' = one permutation per batch, run
      with ``distort_balanced`` (grouped vmap, see registry docstring).
    """

    patch_size: int = 160
    n_aug: int = 11
    n_scale: int = 2
    n_distortions: int = 1
    crop_swap: str = "official"
    schedule: str = "independent"
    min_ola: float = 0.10
    max_ola: float = 0.30


def sample_schedule(key, batch: int, config: QualityViewConfig):
    """Kinds and levels for every distorted version, as the official loop.

    Returns dict of int32 (batch, n_aug) arrays:
      kind1, level1: first distortion (kinds 1..26, distinct per picture);
      kind2, level2: second distortion, kind2 = 0 (none) unless
        n_distortions == 2 picked it (10%): then level1 + level2 = a uniform
        0..4 draw, level2 uniform in [0, that draw], kind2 uniform 1..26
        (may repeat kind1), as ``choices[j]`` with j = randint(0, 25).
    """
    n_aug = config.n_aug
    kp, kl, k2, kj, ks = jax.random.split(key, 5)
    if config.schedule == "balanced":
        perm = jax.random.permutation(kp, registry.NUM_KINDS) + 1
        kind1 = registry.balanced_kinds(perm, batch, n_aug)
    elif config.schedule == "independent":
        perms = jax.vmap(lambda k: jax.random.permutation(k, registry.NUM_KINDS))(
            jax.random.split(kp, batch)) + 1
        kind1 = perms[:, :n_aug].astype(jnp.int32)
        perm = None
    else:
        raise ValueError(f"unknown schedule {config.schedule!r}")
    total = jax.random.randint(kl, (batch, n_aug), 0, registry.NUM_LEVELS, jnp.int32)
    zeros = jnp.zeros((batch, n_aug), jnp.int32)
    out = dict(kind1=kind1, level1=total, kind2=zeros, level2=zeros, perm=perm)
    if config.n_distortions == 2:
        second = jax.random.uniform(ks, (batch, n_aug)) <= 0.1  # random() > 0.1 fails
        # level2 = randint(0, level1) inclusive, then level1 -= level2.
        level2 = jnp.floor(jax.random.uniform(k2, (batch, n_aug))
                           * (total + 1).astype(jnp.float32)).astype(jnp.int32)
        level2 = jnp.minimum(level2, total)
        kind2 = jax.random.randint(kj, (batch, n_aug), 1, registry.NUM_KINDS + 1, jnp.int32)
        out.update(kind2=jnp.where(second, kind2, 0),
                   level2=jnp.where(second, level2, 0),
                   level1=jnp.where(second, total - level2, total))
    elif config.n_distortions != 1:
        raise ValueError("n_distortions must be 1 or 2")
    return out


def distort_stack(key, images, sched, config: QualityViewConfig, ops=None, valid_hw=None):
    """(B, H, W, 3) float32 pictures -> (B, n_aug + 1, H, W, 3) stack.

    Row 0 is the pristine picture, rows 1.. its distorted versions: kind1 at
    level1 (keys ``split(k1, B * n_aug)``), then kind2 at level2 (kind 0 =
    nothing; keys ``split(k2, B * n_aug)``), with ``k1, k2 = split(key)``.
    valid_hw: optional int32 (B, 2): picture b is images[b, :h, :w] and each
    version is distorted as that picture alone (zero outside it).
    """
    batch, n_aug = sched["kind1"].shape
    k1, k2 = jax.random.split(key)
    flat = lambda a: a.reshape(-1)
    if config.schedule == "balanced":
        dist = registry.distort_balanced(k1, images, sched["perm"], sched["level1"], ops,
                                         valid_hw=valid_hw)
    else:
        src = jnp.repeat(jnp.arange(batch, dtype=jnp.int32), n_aug)
        dist = registry.distort_batch(k1, images, flat(sched["kind1"]),
                                      flat(sched["level1"]), ops, source=src,
                                      valid_hw=valid_hw)
        dist = dist.reshape((batch, n_aug) + images.shape[1:])
    if config.n_distortions == 2:
        # Kind 0 (identity) for the ~90% without a second distortion: the
        # scan runs only the cheap identity branch for them.
        d2 = registry.distort_batch(
            k2, dist.reshape((-1,) + images.shape[1:]), flat(sched["kind2"]),
            flat(sched["level2"]), ops,
            valid_hw=None if valid_hw is None else jnp.repeat(valid_hw, n_aug, axis=0))
        dist = d2.reshape(dist.shape)
    return jnp.concatenate([images[:, None], dist], axis=1)


def _swap(c1, c2, lo: int, hi: int):
    """Swap crop1/crop2 for versions [lo, hi) (static)."""
    # Static slices, not a select: a select let XLA re-run the crop gathers.
    q = jnp.concatenate([c1[:lo], c2[lo:hi], c1[hi:]], axis=0)
    k = jnp.concatenate([c2[:lo], c1[lo:hi], c2[hi:]], axis=0)
    return q, k


def _crop_and_swap(key, stack, valid_hw, transposed, lo: int, hi: int,
                   config: QualityViewConfig, reach: int):
    """One scale's crop pair for every version, versions [lo, hi) swapped.

    Returns (query, key) crops (N, P, P, 3) in the picture frame, the
    geometry, and the stack as the official code leaves it (changed only by
    an ``'official'`` swap whose region is a view of the picture).
    """
    p = config.patch_size
    g = crops.pair_geometry(key, p, valid_hw, transposed, config.min_ola, config.max_ola)
    c1 = crops.take_patch(stack, g["top"], g["left"], p, valid_hw)
    c2 = crops.take_patch(stack, g["top"] + g["dy"], g["left"] + g["dx"], p, valid_hw)
    mode = config.crop_swap
    if mode == "clean":
        c1, c2 = _swap(c1, c2, lo, hi)
    elif mode == "official":
        m1, m2, rows = crops.aliased_swap(stack[lo:hi], g, p, valid_hw, reach)
        c1 = jnp.concatenate([c1[:lo], m1, c1[hi:]], axis=0)
        c2 = jnp.concatenate([c2[:lo], m2, c2[hi:]], axis=0)
        stack = jnp.concatenate([stack[:lo], rows, stack[hi:]], axis=0)
    elif mode != "none":
        raise ValueError(f"crop_swap must be 'official', 'clean' or 'none', got {mode!r}")
    back = lambda c: jnp.where(transposed, jnp.swapaxes(c, 1, 2), c)
    return back(c1), back(c2), g, stack


def views_from_stack(key, stack, valid_hw, transposed, config: QualityViewConfig):
    """Crops, swaps and scale 2 for one picture's stack.

    Args:
      stack: float32 (N = n_aug + 1, H, W, 3); valid_hw int32 (2,);
      transposed: bool scalar (see ``crops.crop_pair``).
    Returns:
      views (n_scale * N, P, P, 6); offsets int32 (n_scale, 2) = (y, x) in
      the picture frame; origins int32 (n_scale, 2) = (top, left) of the crop
      region in the storage frame.
    """
    n = stack.shape[0]
    swap = (config.n_aug + 1) // 2
    reach = crops.max_reach(config.patch_size, config.min_ola, config.max_ola)
    k1, k2 = jax.random.split(key)
    c1, c2, g1, stack = _crop_and_swap(k1, stack, valid_hw, transposed, 0, swap, config, reach)
    views = [jnp.concatenate([c1, c2], axis=-1)]
    geoms = [g1]
    if config.n_scale == 2:
        half, half_hw = crops.resize_half_bicubic(stack, valid_hw)
        d1, d2, g2, _ = _crop_and_swap(k2, half, half_hw, transposed, swap, n, config, reach)
        views.append(jnp.concatenate([d1, d2], axis=-1))
        geoms.append(g2)
    elif config.n_scale != 1:
        raise ValueError("n_scale must be 1 or 2")
    offsets = jnp.stack([jnp.stack([g["y"], g["x"]]) for g in geoms])
    origins = jnp.stack([jnp.stack([g["top"], g["left"]]) for g in geoms])
    return jnp.concatenate(views, axis=0), offsets, origins


@functools.partial(jax.jit, static_argnames=("config", "ops"))
def make_quality_views(key, tiles, config: QualityViewConfig = QualityViewConfig(),
                       valid_hw=None, transposed=None,
                       ops: Sequence | None = None):
    """Batched, jitted official quality views.

    Args:
      key: PRNG key.
      tiles: (B, H, W, 3) uint8 or float32 in [0, 1]: pictures at the top-left
        (``reiqa_jax.data.tiles``).
      config: static ``QualityViewConfig``.
      valid_hw: optional int32 (B, 2) picture sizes inside the arrays
        (default: the whole array, static sizes). With sizes, each picture
        is distorted, resized and cropped as the picture alone; the
        size-dependent distortions need float64 then (CPU, GPU).
      transposed: optional bool (B,) (default False).
      ops: optional static tuple of 26 replacement ops (tests).
    Returns:
      views: float32 (B, n_scale * (n_aug + 1), P, P, 6), layout in the module
        docstring; scale-1 crops in [0, 1] (except the pixels an
        ``'official'`` crop swap mixes, which reach [-1, 2]), scale-2 crops
        may overshoot by bicubic ringing (as in the official code); zeros
        where a crop region leaves the picture (torchvision ``CenterCrop``
        padding).
      info: dict with ``kind1, level1, kind2, level2`` int32 (B, n_aug),
        ``offsets`` int32 (B, n_scale, 2) = (y, x) per scale and ``origins``
        int32 (B, n_scale, 2) = (top, left) of each crop region (storage
        frame).
    """
    images = to_unit_float(tiles)
    batch, hh, ww, _ = images.shape
    full = valid_hw is None
    if full:  # sizes known at trace time: constant-folded crop/resize maths
        valid_hw = jnp.zeros((batch, 2), jnp.int32)
    if transposed is None:
        transposed = jnp.zeros((batch,), bool)
    ks, kd, kc = jax.random.split(key, 3)
    sched = sample_schedule(ks, batch, config)
    # With sizes, every distortion works on the picture alone (borders,
    # statistics, counts of its own size); without, on the whole tile.
    stack = distort_stack(kd, images, sched, config, ops,
                          None if full else jnp.asarray(valid_hw, jnp.int32))

    def one(a):
        k, st, hw, tr = a
        if full:
            hw = jnp.array([hh, ww], jnp.int32)
        return views_from_stack(k, st, hw, tr, config)

    # lax.map, not vmap: per-picture traced sizes keep the crop and resize
    # slices real dynamic slices (vmapped they turn into slow gathers).
    views, offsets, origins = jax.lax.map(
        one, (jax.random.split(kc, batch), stack, jnp.asarray(valid_hw, jnp.int32),
              jnp.asarray(transposed, bool)))
    info = {k: sched[k] for k in ("kind1", "level1", "kind2", "level2")}
    info["offsets"] = offsets
    info["origins"] = origins
    return views, info
