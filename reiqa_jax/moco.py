"""The MoCo-v2 pieces of the official trainer, as pure functions.

Official code: ``learning/contrast_trainer.py`` (``_train_moco``,
``_shuffle_bn``, ``momentum_update``) and ``memory/mem_moco.py``
(``RGBMoCo``). Shapes: N query/key rows per device, D = feat_dim (128),
K = queue size (65,536). Functions that take ``axes`` run inside
``jax.shard_map`` and use collectives over those mesh axes.
"""
from __future__ import annotations

from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from reiqa_jax.models.head import l2_normalize


def init_queue(key, size: int, dim: int) -> jax.Array:
    """The official initial memory: ``F.normalize(torch.randn(K, D))``, float32 (K, D)."""
    return l2_normalize(jax.random.normal(key, (size, dim), jnp.float32))


def info_nce(q: jax.Array, k: jax.Array, queue: jax.Array, temperature: float, *,
             batch_negatives: bool | np.ndarray = False):
    """MoCo logits and loss against the queue as it was *before* this step's push.

    logits = [q . k+, q . queue^T] / T (positives in column 0); loss =
    cross-entropy with label 0, averaged over the N rows; acc = top-1 in
    percent, as the official meters log it.

    batch_negatives (not the official recipe): keys of this batch as further
    negatives, appended as columns 1 + K ..: ``True`` for the other N - 1
    keys (a row's own key, its positive, is masked out there), or a bool
    (N, N) mask whose row i marks the keys that are negatives of query i
    (the rest are masked out; see :func:`pristine_negatives`). A picture's
    other distorted versions are in the same batch, so they can become
    negatives; with the queue alone they never are (it holds earlier steps'
    pictures).

    Args: q, k float32 (N, D) unit rows (k is not differentiated);
      queue float32 (K, D).
    Returns: (loss scalar, acc scalar, logits (N, 1 + K) or (N, 1 + K + N)), float32.
    """
    dtype = jnp.promote_types(q.dtype, jnp.float32)  # float32, or float64 in exactness tests
    q = q.astype(dtype)
    k = lax.stop_gradient(k.astype(dtype))
    pos = jnp.sum(q * k, axis=-1, keepdims=True)
    neg = q @ lax.stop_gradient(queue).T
    columns = [pos, neg]
    if isinstance(batch_negatives, bool):
        batch_negatives = ~np.eye(q.shape[0], dtype=bool) if batch_negatives else None
    if batch_negatives is not None:
        columns.append(jnp.where(batch_negatives, q @ k.T, -jnp.inf))
    logits = jnp.concatenate(columns, axis=1) / temperature
    loss = jnp.mean(jax.nn.logsumexp(logits, axis=1) - logits[:, 0])
    acc = 100.0 * jnp.mean((jnp.argmax(logits, axis=1) == 0).astype(jnp.float32))
    return loss, acc, logits


def _picture_rows(n_rows: int, versions: int, scales: int) -> np.ndarray:
    """``arange(n_rows)``, after checking that the rows are whole pictures of
    ``versions * scales`` rows (the layout the batch-negative masks assume)."""
    per_picture = versions * scales
    if n_rows % per_picture:
        raise ValueError(f"{n_rows} rows are not whole pictures of {per_picture} rows")
    return np.arange(n_rows)


def pristine_negatives(n_rows: int, versions: int, scales: int) -> np.ndarray:
    """The ``batch_negatives`` mask of ``negatives: queue+pristine`` (N, N) bool.

    Rows are the quality views' layout, picture-major: ``scales * versions``
    rows per picture, scale-major, version 0 the pristine one. A distorted
    version's query gets its own picture's pristine key at the same scale as
    a negative: the one key of the batch with the same content and no
    distortion. Pristine queries get none (that key is their positive).
    """
    rows = _picture_rows(n_rows, versions, scales)
    pristine_row = rows - rows % versions  # version 0 of the row's picture and scale
    mask = np.zeros((n_rows, n_rows), dtype=bool)
    distorted = rows % versions != 0
    mask[rows[distorted], pristine_row[distorted]] = True
    return mask


def sibling_negatives(n_rows: int, versions: int, scales: int) -> np.ndarray:
    """The ``batch_negatives`` mask of ``negatives: queue+siblings`` (N, N) bool.

    Same layout as :func:`pristine_negatives`. Every query gets the keys of its
    own picture's other versions at the same scale (the pristine one among
    them): ``versions - 1`` negatives cut from the same crop region as its
    positive, so content alone cannot tell them from it, only the distortion.
    Its own version at the other scale (same content, same distortion) is not
    one of them, unlike ``queue+batch``.
    """
    # one group per (picture, scale) block of rows
    group = _picture_rows(n_rows, versions, scales) // versions
    return (group[:, None] == group[None, :]) & ~np.eye(n_rows, dtype=bool)


def momentum_update(ema_params, params, momentum: float):
    """``p_ema = m * p_ema + (1 - m) * p`` over every parameter (one tree_map).

    The official update, applied after the optimizer step, parameters only:
    BatchNorm running statistics are not parameters and stay the momentum
    encoder's own.
    """
    return jax.tree.map(lambda e, p: e * momentum + (1.0 - momentum) * p, ema_params, params)


def queue_push(queue: jax.Array, pointer: jax.Array, keys: jax.Array):
    """Write ``keys`` (M, D) at ``pointer`` with wrap-around; FIFO.

    Row i goes to ``(pointer + i) mod K`` (the official ``index_copy_`` with
    ``fmod``); needs M <= K. Returns (queue, (pointer + M) mod K).
    """
    size, count = queue.shape[0], keys.shape[0]
    if count > size:
        raise ValueError(f"{count} keys per step do not fit a queue of {size}")
    rows = (pointer + jnp.arange(count, dtype=jnp.int32)) % size
    return queue.at[rows].set(keys.astype(queue.dtype)), (pointer + count) % size


def shuffle_permutation(key, n: int):
    """A random permutation of n rows and its inverse (``argsort``), int32."""
    perm = jax.random.permutation(key, n).astype(jnp.int32)
    return perm, jnp.argsort(perm).astype(jnp.int32)


def shuffle_bn_keys(encode: Callable, x: jax.Array, key, *,
                    shuffle_axes: Sequence[str] | None, all_axes: Sequence[str]):
    """Keys through the momentum encoder with shuffle BN (``_shuffle_bn``).

    The rows of all devices in a shuffle group (``shuffle_axes``: the devices
    of one host for the official recipe, all devices for 'global') are
    gathered, permuted by one permutation drawn from ``key`` (the same on
    every device, so every group uses the same pattern, as the official
    broadcast from rank 0), and each device encodes its slice of the
    shuffled rows, so BatchNorm statistics mix images of other devices.

    Args:
      encode: rows -> (keys (n, D), aux) on this device (the momentum encoder,
        BatchNorm in train mode; aux = its updated statistics).
      x: this device's key-crop rows (n, ...).
      key: PRNG key, replicated.
      shuffle_axes: mesh axes of a shuffle group, or None (no shuffling).
      all_axes: all mesh axes of the data dimension.
    Returns:
      k: (n, D) keys of this device's own rows, in its order (unshuffled);
      all_k: (n * devices, D) every device's keys as gathered from the
        encoders, i.e. in shuffled order, what the official pushes to the
        queue (replicated);
      aux: ``encode``'s aux.
    """
    n = x.shape[0]
    if not shuffle_axes:
        k, aux = encode(x)
        return k, lax.all_gather(k, tuple(all_axes), tiled=True, to="invarying"), aux
    shuffle_axes = tuple(shuffle_axes)
    group = lax.axis_size(shuffle_axes)
    me = lax.axis_index(shuffle_axes)
    rows = lax.all_gather(x, shuffle_axes, tiled=True)
    perm, inverse = shuffle_permutation(key, group * n)
    ks, aux = encode(jnp.take(rows, lax.dynamic_slice_in_dim(perm, me * n, n), axis=0))
    all_k = lax.all_gather(ks, tuple(all_axes), tiled=True, to="invarying")
    group_k = all_k if set(shuffle_axes) == set(all_axes) else lax.all_gather(
        ks, shuffle_axes, tiled=True)
    k = jnp.take(group_k, lax.dynamic_slice_in_dim(inverse, me * n, n), axis=0)
    return k, all_k, aux
