"""The IqaCsv builder (TFDS, manual download)."""
from reiqa_jax.datasets.iqa_csv.iqa_csv import IqaCsv

__all__ = ["IqaCsv"]
