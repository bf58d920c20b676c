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


def op_set(name: str) -> Sequence[Op] | None:
    """The ops of set ``name`` for ``make_quality_views(ops=...)`` (``None``:
    the official 26)."""
    if name not in OP_SETS:
        raise ValueError(f"views.ops must be one of {', '.join(OP_SETS)}, got {name!r}")
    return OP_SETS[name]
