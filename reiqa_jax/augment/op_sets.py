"""Sets of distortion ops for the quality views, chosen by name (config ``views.ops``).

A set fills the 26 slots of the official numbering (``registry``) with ops
``op(key, image, level) -> image`` (float32 (H, W, 3) in [0, 1], level 0..4):

* ``official``: the 26 Re-IQA distortions (the recipe). Looked up as
  ``None``, the default of ``make_quality_views``, so its programs are the
  ones every other caller compiles.
* ``stand_in``: 26 cheap elementwise ops (darkening and uniform noise that
  grow with the slot and the level). They compile in about a second where the
  official set takes tens of seconds on a CPU, so they exercise the training
  loop (its tests, a first look at a new machine) without training a quality
  encoder.
* ``only:KIND,KIND,...``: the official ops of the named kinds alone (names
  as in ``registry.NAMES``), filling the 26 slots in turn, so the first
  ``26 mod n`` kinds named take one slot more than the rest. For ablations
  (which distortions teach the encoder what); not the recipe.
"""
from __future__ import annotations

from typing import Callable, Sequence

import jax
import jax.numpy as jnp

Op = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]


def _stand_in(slot: int) -> Op:
    def op(key, image, level):
        gain = 1.0 - 0.012 * slot * (jnp.asarray(level, jnp.float32) + 1.0) / 5.0
        noise = jax.random.uniform(key, image.shape, minval=-1, maxval=1)
        return jnp.clip(image * gain + noise * 0.004 * (slot % 4), 0.0, 1.0)
    return op


OP_SETS: dict[str, tuple[Op, ...] | None] = {
    "official": None,
    "stand_in": tuple(_stand_in(slot) for slot in range(1, 27)),
}


ONLY = "only:"


def _only(kinds: str) -> tuple[Op, ...]:
    from reiqa_jax.augment import registry

    names = [k.strip() for k in kinds.split(",") if k.strip()]
    unknown = [k for k in names if k not in registry.NAMES]
    if not names or unknown:
        raise ValueError(f"views.ops {ONLY}{kinds}: "
                         + (f"unknown kind {unknown[0]!r}; the kinds are "
                            f"{', '.join(registry.NAMES)}" if unknown else "names no kind"))
    fns = {d.name: d.fn for d in registry.DISTORTIONS}
    return tuple(fns[names[i % len(names)]] for i in range(registry.NUM_KINDS))


def op_set(name: str) -> Sequence[Op] | None:
    """The ops of set ``name`` for ``make_quality_views(ops=...)`` (``None``:
    the official 26); ValueError (one line) for a name that is none."""
    if name.startswith(ONLY):
        return _only(name[len(ONLY):])
    if name not in OP_SETS:
        raise ValueError(f"views.ops must be one of {', '.join(OP_SETS)} or "
                         f"{ONLY}KIND,KIND,...; got {name!r}")
    return OP_SETS[name]
