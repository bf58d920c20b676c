"""float64 arithmetic that rounds where numpy and Pillow round, under XLA.

A few size-dependent tables (Pillow's resampling windows and weights, its
NEAREST positions, numpy's percentile position) must come out bit for bit
as the official code computes them in double precision, from sizes known
only at run time. They are computed on the device in float64
(``jax.enable_x64`` around the table maths only: CPU and GPU have float64).

XLA (LLVM underneath) contracts a product that feeds a sum into one fused
multiply-add, which rounds once where numpy and Pillow round twice; a
window bound then lands on the other side of an integer now and then.
``rounded`` stops that: the product's bits go through an integer XOR with a
zero only known at run time, which no compiler pass can see through (an
optimization barrier does not survive XLA's CPU pipeline).
"""
from __future__ import annotations

import jax.numpy as jnp
from jax import lax


def runtime_zero(n):
    """An int64 0 made from a traced integer n >= 0 (call under x64)."""
    return jnp.minimum(jnp.asarray(n).astype(jnp.int64), 0)


def rounded(x, zero):
    """float64 ``x`` as computed (rounded to float64), never contracted into a
    later sum. ``zero``: ``runtime_zero`` of some traced size."""
    bits = lax.bitcast_convert_type(x, jnp.int64) ^ zero
    return lax.bitcast_convert_type(bits, jnp.float64)
