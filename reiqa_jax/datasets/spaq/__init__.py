"""The Spaq builder (TFDS, manual download)."""
from reiqa_jax.datasets.spaq.spaq import Spaq

__all__ = ["Spaq"]
