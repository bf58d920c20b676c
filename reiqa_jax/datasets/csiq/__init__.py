"""The Csiq builder (TFDS, manual download)."""
from reiqa_jax.datasets.csiq.csiq import Csiq

__all__ = ["Csiq"]
