"""The Clive builder (TFDS, manual download)."""
from reiqa_jax.datasets.clive.clive import Clive

__all__ = ["Clive"]
