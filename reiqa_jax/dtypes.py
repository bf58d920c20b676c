"""Inference dtypes by name: the ``--dtype`` choices of ``reiqa extract``,
``score`` and ``evaluate`` and the ``dtype`` argument of their Python API.

Imports jax only when a dtype is asked for, so command modules can take
``INFERENCE_DTYPES`` for their argparse choices and keep ``reiqa --help`` fast.
The trainer's config ``dtype`` also takes ``auto`` (and ``float64`` for
exactness tests): that is ``reiqa_jax.train.compute_dtype``.
"""

INFERENCE_DTYPES = ("float32", "bfloat16")


def inference_dtype(name: str):
    """``"float32"`` -> ``jnp.float32``, ``"bfloat16"`` -> ``jnp.bfloat16``."""
    import jax.numpy as jnp

    dtypes = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
    if name not in dtypes:
        raise ValueError(f"dtype must be one of {', '.join(INFERENCE_DTYPES)}, got {name!r}")
    return dtypes[name]


def dtype_name(dtype) -> str:
    """The name of an inference dtype (anything but bfloat16 counts as float32)."""
    import jax.numpy as jnp

    return "bfloat16" if jnp.dtype(dtype) == jnp.bfloat16 else "float32"
