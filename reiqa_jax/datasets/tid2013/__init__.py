"""The Tid2013 builder (TFDS, manual download)."""
from reiqa_jax.datasets.tid2013.tid2013 import Tid2013

__all__ = ["Tid2013"]
