"""Re-IQA projection head (the official ``--head mlp``) as a Flax NNX module."""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

# torch.nn.F.normalize's default eps: the norm is clamped from below.
NORMALIZE_EPS = 1e-12


def l2_normalize(x: jax.Array, eps: float = NORMALIZE_EPS) -> jax.Array:
    """``torch.nn.functional.normalize(x, p=2, dim=-1, eps)``: x / max(|x|, eps).

    x: (..., D) float. Returns the same shape and dtype; rows have unit norm
    (an all-zero row stays zero instead of becoming NaN).
    """
    norm = jnp.sqrt(jnp.sum(jnp.square(x), axis=-1, keepdims=True))
    return x / jnp.maximum(norm, eps)


def _torch_linear_bias_init(fan_in: int):
    """torch nn.Linear's bias init, U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / fan_in ** 0.5

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def _linear(cin: int, cout: int, rngs: nnx.Rngs) -> nnx.Linear:
    # torch's default Linear weight init (kaiming_uniform a=sqrt(5)) is
    # U(-1/sqrt(fan_in), 1/sqrt(fan_in)) == variance_scaling(1/3, fan_in, uniform).
    return nnx.Linear(
        cin, cout,
        kernel_init=nnx.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform"),
        bias_init=_torch_linear_bias_init(cin),
        param_dtype=jnp.float32, rngs=rngs)


class ProjectionHead(nnx.Module):
    """Linear(in, in) -> ReLU -> Linear(in, out) -> L2-normalise.

    Torch names: ``head.0`` is ``fc1``, ``head.2`` is ``fc2``.
    Call: (N, in_dim) float -> (N, out_dim) unit-norm rows, computed in
    float32 (it is tiny next to the encoder; float64 inputs stay float64).
    """

    def __init__(self, in_dim: int, out_dim: int = 128, *, rngs: nnx.Rngs):
        self.in_dim = in_dim
        self.out_dim = out_dim
        self.fc1 = _linear(in_dim, in_dim, rngs)
        self.fc2 = _linear(in_dim, out_dim, rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = jnp.asarray(x, jnp.promote_types(jnp.asarray(x).dtype, jnp.float32))
        return l2_normalize(self.fc2(nnx.relu(self.fc1(x))))
