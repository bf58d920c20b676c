"""The Re-IQA network: ResNet encoder + MLP projection head (NNX)."""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from reiqa_jax.models.head import ProjectionHead
from reiqa_jax.models.resnet import ResNet


class ReIQAModel(nnx.Module):
    """The official ``RGBSingleHead(head='mlp')``: ``head(encoder(x))``.

    Args:
      depth, width: encoder architecture (see ``ResNet``).
      feat_dim: projection output size (128 in the paper).
      dtype: encoder compute dtype; params are float32, the head runs float32.
      rngs: nnx.Rngs for initialisation.

    Attributes: ``encoder`` (ResNet), ``head`` (ProjectionHead), ``arch``
    (dict(depth, width, feat_dim), what a checkpoint needs to rebuild it).

    Call: (N, H, W, 3) float -> (N, feat_dim) float32 unit vectors. For IQA
    features use ``model.encoder(x)`` (N, encoder.feat_dim). ``model.eval()``
    makes BatchNorm use running statistics, ``model.train()`` batch ones.
    """

    def __init__(self, depth: int = 50, width: float = 1.0, feat_dim: int = 128,
                 *, dtype=jnp.float32, rngs: nnx.Rngs):
        self.encoder = ResNet(depth, width, dtype=dtype, rngs=rngs)
        self.head = ProjectionHead(self.encoder.feat_dim, feat_dim, rngs=rngs)

    @property
    def arch(self) -> dict:
        return dict(depth=self.encoder.depth, width=self.encoder.width,
                    feat_dim=self.head.out_dim)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.head(self.encoder(x))
