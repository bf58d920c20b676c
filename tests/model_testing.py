"""Helpers shared by the model, checkpoint and extraction tests."""
from __future__ import annotations

import numpy as np

from reiqa_jax.checkpoint import expected_shapes


def random_arrays(arch: dict, seed: int) -> dict:
    """He-scaled random weights and random (non-trivial) BN statistics."""
    rng = np.random.default_rng(seed)
    out = {}
    for coll, shapes in expected_shapes(arch).items():
        out[coll] = {}
        for path, shape in shapes.items():
            leaf = path.rsplit("/", 1)[1]
            if leaf == "kernel":
                fan_in = int(np.prod(shape[:-1]))
                a = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
            elif leaf in ("scale", "var"):
                a = 0.5 + rng.random(shape)
            else:  # bias, mean
                a = 0.2 * rng.standard_normal(shape)
            out[coll][path] = a.astype(np.float32)
    return out
