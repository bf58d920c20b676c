"""The 26 synthetic distortions in the official numbering, and batched dispatch.

Numbering follows ``IQAImageClass.iqa_transformations`` of the official code
(``datasets/dataset.py``): distortion number ``n`` is ``DISTORTIONS[n - 1]``.
Number ``0`` means *pristine* (identity) everywhere in this package: it is how
the undistorted version of a stack and the "no second distortion" case of
``n_distortions=2`` are expressed without changing array shapes.

Every op has the signature ``op(key, image, level) -> image`` with ``image``
float32 (H, W, 3) in [0, 1] on the uint8 grid and ``level`` an int (0..4,
Python or traced int32). Ops whose result depends on the picture's extent
(borders, global statistics, sizes, counts per picture) also take
``valid_hw=None``: int32 (2,), the picture is image[:h, :w] of a larger
array and is distorted as the h x w picture alone (``extent.py``). The
others work pixel by pixel, so the array around the picture changes nothing
they compute on it. The dispatchers below pass ``valid_hw`` to the ops that
take it and zero what every op leaves outside the picture.

Batching (the trade-off, see ``distort_batch`` and ``distort_balanced``):

* ``vmap`` over ``lax.switch`` becomes a ``select`` that evaluates all 26 ops
  for every sample (26x the work). Nothing here does that.
* ``distort_batch`` runs a ``lax.map`` (a scan) whose body is a *scalar*
  ``lax.switch``: each sample runs only its own op. Any mix of kinds and
  levels, one compilation, but the samples run one after another, so each op
  sees a batch of one (fine on CPU, under-uses a GPU).
* ``distort_balanced`` is the training path for a *balanced* schedule: the kind
  of each slot comes from one random permutation of 1..26 per batch, so the
  number of slots per permutation position is static. It scans over
  permutation positions and runs the chosen op ``vmap``-ed over that fixed-size
  group: same total work as the scan, but each op runs on ~B*n_aug/26 images
  at once. The price is a schedule that is not independent across images in a
  batch (see ``balanced_kinds``).
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from reiqa_jax.augment.blur import denoise, gaussian_blur, lens_blur, motion_blur
from reiqa_jax.augment.color_ops import (color_diffusion, color_oversaturation,
                                         color_saturation, color_shift)
from reiqa_jax.augment.extent import zero_outside
from reiqa_jax.augment.jpeg import jpeg
from reiqa_jax.augment.noise import (impulse_noise, multiplicative_noise, white_noise,
                                     white_noise_ycbcr)
from reiqa_jax.augment.resize import (pixelate, resize_bicubic, resize_bilinear,
                                      resize_lanczos, resize_nearest)
from reiqa_jax.augment.sharpen import sharpen
from reiqa_jax.augment.spatial import color_block, jitter, non_eccentricity
from reiqa_jax.augment.tone import brighten, contrast_change, darken, mean_shift

Op = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]

# The ops in the official order: number = position + 1.
_OPS: tuple[Op, ...] = (
    gaussian_blur,         # 1
    lens_blur,             # 2
    color_diffusion,       # 3
    color_shift,           # 4
    color_saturation,      # 5
    color_oversaturation,  # 6
    jpeg,                  # 7
    white_noise,           # 8
    white_noise_ycbcr,     # 9
    impulse_noise,         # 10
    multiplicative_noise,  # 11
    denoise,               # 12
    brighten,              # 13
    darken,                # 14
    mean_shift,            # 15
    resize_bicubic,        # 16
    sharpen,               # 17
    contrast_change,       # 18
    color_block,           # 19
    pixelate,              # 20
    non_eccentricity,      # 21
    jitter,                # 22
    resize_bilinear,       # 23
    resize_nearest,        # 24
    resize_lanczos,        # 25
    motion_blur,           # 26
)

NUM_KINDS = len(_OPS)  # 26
NUM_LEVELS = 5         # levels 0..4
PRISTINE = 0


@dataclasses.dataclass(frozen=True)
class Distortion:
    """One registry entry: official ``number`` (1..26), op ``name``, op ``fn``."""

    number: int
    name: str
    fn: Op


DISTORTIONS: tuple[Distortion, ...] = tuple(
    Distortion(i + 1, op.__name__, op) for i, op in enumerate(_OPS))
NAMES: tuple[str, ...] = tuple(d.name for d in DISTORTIONS)


def number_of(kind: str | int) -> int:
    """Official number (0 = pristine, 1..26) of a name or number; ValueError
    (naming the kinds there are) for any other."""
    if isinstance(kind, str):
        if kind == "pristine":
            return 0
        if kind not in NAMES:
            raise ValueError(f"unknown distortion {kind!r}; the kinds are pristine, "
                             f"{', '.join(NAMES)} (or their numbers 0..{NUM_KINDS})")
        return NAMES.index(kind) + 1
    k = int(kind)
    if not 0 <= k <= NUM_KINDS:
        raise ValueError(f"distortion number {k} outside 0..{NUM_KINDS}")
    return k


def _identity(key, image, level):
    del key, level
    return image


def takes_extent(op) -> bool:
    """Whether ``op`` takes ``valid_hw`` (depends on the picture's extent)."""
    try:
        return "valid_hw" in inspect.signature(op).parameters
    except (TypeError, ValueError):
        return False


def _on_picture(op: Op):
    """op as ``(key, image, level, valid_hw) -> image``, zero outside the picture."""
    extent = takes_extent(op)

    def run(key, image, level, valid_hw):
        out = op(key, image, level, valid_hw=valid_hw) if extent else op(key, image, level)
        return zero_outside(out, valid_hw)

    return run


def _branches(ops: Sequence[Op] | None, valid: bool = False) -> tuple[Op, ...]:
    ops = (_identity,) + (_OPS if ops is None else tuple(ops))
    return tuple(_on_picture(op) for op in ops) if valid else ops


def _is_static(kind) -> bool:
    return isinstance(kind, (str, int, np.integer))


def distort(key, image, kind, level, ops: Sequence[Op] | None = None, valid_hw=None):
    """Apply one distortion.

    Args:
      key: PRNG key for the op's randomness.
      image: float32 (H, W, 3) in [0, 1].
      kind: name, Python int (0 = pristine, 1..26), or traced int32 scalar;
        a traced kind dispatches with a scalar ``lax.switch`` (only the chosen
        branch runs; out-of-range values are clamped by ``lax.switch``).
      level: int 0..4 (Python or traced int32 scalar); a Python int outside
        0..4 raises ValueError (a traced one cannot be checked).
      ops: optional replacement for the 26 registered ops (tests, subsets).
      valid_hw: optional int32 (2,): distort the picture image[:h, :w] alone;
        the output is zero outside it.
    Returns:
      float32 (H, W, 3) in [0, 1].
    """
    if isinstance(level, (int, np.integer)) and not 0 <= level < NUM_LEVELS:
        raise ValueError(f"distortion level must be 0..{NUM_LEVELS - 1}, got {level}")
    valid = valid_hw is not None
    args = (jnp.asarray(valid_hw, jnp.int32),) if valid else ()
    if _is_static(kind):
        n = number_of(kind)
        op = _branches(ops, valid)[n]
        if n == PRISTINE and not valid:
            return image
        return op(key, image, level, *args)
    return lax.switch(jnp.asarray(kind, jnp.int32), _branches(ops, valid),
                      key, image, jnp.asarray(level, jnp.int32), *args)


def distort_batch(key, images, kinds, levels, ops: Sequence[Op] | None = None,
                  source=None, valid_hw=None):
    """Per-sample distortion of a batch; work proportional to what is asked.

    Sample ``i`` gets ``distort(jax.random.split(key, B)[i], images[i],
    kinds[i], levels[i])``. Implemented as a ``lax.map`` over samples with a
    scalar ``lax.switch`` inside, so one compilation serves every mix of kinds
    and levels, nothing goes back to the host, and each sample runs only its
    own op (sequentially; see the module docstring for the grouped path).
    Do not ``vmap`` this function: that would turn the switch into a select.

    Args:
      key: PRNG key.
      images: float32 (B, H, W, 3) in [0, 1].
      kinds: int32 (B,), 0 = pristine (identity), 1..26 official numbers.
      levels: int32 (B,), 0..4.
      source: optional int32 (B,): sample i distorts ``images[source[i]]``
        (then images may hold fewer pictures than B); saves materialising
        repeated pictures when one picture gets several distortions.
      valid_hw: optional int32 (len(images), 2): each picture's size in its
        array (see ``distort``); outputs are zero outside the picture.
    Returns:
      float32 (B, H, W, 3) in [0, 1].
    """
    valid = valid_hw is not None
    branches = _branches(ops, valid)
    kinds = jnp.asarray(kinds, jnp.int32)
    keys = jax.random.split(key, kinds.shape[0])
    levels = jnp.asarray(levels, jnp.int32)
    hw = jnp.asarray(valid_hw, jnp.int32) if valid else None
    if source is None:
        def one(args):
            k, img, kind, level, *v = args
            return lax.switch(kind, branches, k, img, level, *v)
        return lax.map(one, (keys, images, kinds, levels) + ((hw,) if valid else ()))

    def one_src(args):
        k, src, kind, level = args
        v = (hw[src],) if valid else ()
        return lax.switch(kind, branches, k, images[src], level, *v)
    return lax.map(one_src, (keys, jnp.asarray(source, jnp.int32), kinds, levels))


# ---------------------------------------------------------------------------
# Balanced schedule: one permutation of 1..26 per batch.

def balanced_positions(batch: int, n_aug: int) -> np.ndarray:
    """Permutation position of every slot, int (batch, n_aug).

    Slot (b, k) is the t-th of the batch, t = b * n_aug + k, and takes
    position t mod 26. Image b therefore sees n_aug consecutive positions
    (distinct kinds when n_aug <= 26) and position p is used by a static
    number of slots: ceil or floor of batch * n_aug / 26.
    """
    if n_aug > NUM_KINDS:
        raise ValueError("n_aug must be <= 26 for distinct kinds per image")
    t = np.arange(batch * n_aug).reshape(batch, n_aug)
    return t % NUM_KINDS


def balanced_kinds(perm, batch: int, n_aug: int):
    """Kinds (batch, n_aug) int32 for a permutation ``perm`` (26,) of 1..26.

    Marginally every slot's kind is uniform over 1..26 and every image gets
    n_aug distinct kinds, as in the official per-image shuffle; unlike it,
    images of one batch are not independent (their windows tile the same
    permutation, so with batch * n_aug >= 26 every kind appears in the batch).
    """
    return jnp.asarray(perm, jnp.int32)[balanced_positions(batch, n_aug)]


def _groups(batch: int, n_aug: int):
    """Static slot groups: {group size: (positions (n,), slot ids (n, size))}."""
    pos = balanced_positions(batch, n_aug).reshape(-1)
    by_size: dict[int, list[tuple[int, np.ndarray]]] = {}
    for p in range(NUM_KINDS):
        slots = np.nonzero(pos == p)[0]
        if slots.size:
            by_size.setdefault(slots.size, []).append((p, slots))
    return {g: (np.array([p for p, _ in v]), np.stack([s for _, s in v]))
            for g, v in by_size.items()}


def distort_balanced(key, images, perm, levels, ops: Sequence[Op] | None = None,
                     valid_hw=None):
    """Distort every image n_aug times with the balanced kind schedule.

    Slot (b, k) gets kind ``balanced_kinds(perm, B, n_aug)[b, k]`` at level
    ``levels[b, k]`` with key ``jax.random.split(key, B * n_aug)[b * n_aug +
    k]``; the result equals ``distort`` slot by slot. Work: one op application
    per slot, vmapped over the (static-size) group of slots that share a
    permutation position; a scan over positions keeps compile time at two
    instances of each op (one per group size).

    Args:
      key: PRNG key.
      images: float32 (B, H, W, 3) in [0, 1].
      perm: int32 (26,), a permutation of 1..26 (traced is fine).
      levels: int32 (B, n_aug), 0..4.
      valid_hw: optional int32 (B, 2) picture sizes (see ``distort``).
    Returns:
      float32 (B, n_aug, H, W, 3).
    """
    batch, n_aug = levels.shape
    valid = valid_hw is not None
    ops = _branches(ops, valid)[1:]
    vbranches = tuple(jax.vmap(op) for op in ops)
    hw = jnp.asarray(valid_hw, jnp.int32) if valid else None
    keys = jax.random.split(key, batch * n_aug)
    flat_levels = jnp.asarray(levels, jnp.int32).reshape(-1)
    perm = jnp.asarray(perm, jnp.int32)
    out = jnp.zeros((batch * n_aug,) + images.shape[1:], images.dtype)
    for _, (positions, slots) in sorted(_groups(batch, n_aug).items()):
        def body(_, xs):
            p, s = xs
            imgs = images[s // n_aug]
            v = (hw[s // n_aug],) if valid else ()
            return None, lax.switch(perm[p] - 1, vbranches, keys[s], imgs,
                                    flat_levels[s], *v)
        _, res = lax.scan(body, None, (jnp.asarray(positions), jnp.asarray(slots)))
        out = out.at[slots.reshape(-1)].set(res.reshape((-1,) + images.shape[1:]))
    return out.reshape((batch, n_aug) + images.shape[1:])
