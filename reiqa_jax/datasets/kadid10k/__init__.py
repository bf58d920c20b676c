"""The Kadid10k builder (TFDS, manual download)."""
from reiqa_jax.datasets.kadid10k.kadid10k import Kadid10k

__all__ = ["Kadid10k"]
