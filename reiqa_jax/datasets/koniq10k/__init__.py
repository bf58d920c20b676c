"""The Koniq10k builder (TFDS, manual download)."""
from reiqa_jax.datasets.koniq10k.koniq10k import Koniq10k

__all__ = ["Koniq10k"]
