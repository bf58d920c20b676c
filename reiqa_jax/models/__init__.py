"""Flax NNX models: the ResNet encoder, the projection head, the Re-IQA model."""
from reiqa_jax.models.head import ProjectionHead, l2_normalize
from reiqa_jax.models.reiqa_model import ReIQAModel
from reiqa_jax.models.resnet import ResNet

__all__ = ["ResNet", "ProjectionHead", "ReIQAModel", "l2_normalize"]
