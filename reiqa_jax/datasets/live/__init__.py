"""The Live builder (TFDS, manual download)."""
from reiqa_jax.datasets.live.live import Live

__all__ = ["Live"]
