"""On-device IQA augmentations (Re-IQA quality branch) and the MoCo-v2 content
augmentation, as pure JAX functions.

- ``registry``: the 26 official distortions (``DISTORTIONS``, numbers 1..26,
  0 = pristine), ``distort``, ``distort_batch``, ``distort_balanced``.
- ``crops``: overlapping crop pairs and the half-scale bicubic resize.
- ``quality_views``: ``make_quality_views`` = the official
  ``IQAImageClass.__getitem__`` for a batch of fixed-size tiles.
- host-side tile sampling lives in ``reiqa_jax.data.tiles`` (numpy, not device code).
- ``content``: MoCo-v2 augmentation "B" for the content encoder.
"""

from reiqa_jax.augment.registry import (
    DISTORTIONS,
    NAMES,
    NUM_KINDS,
    NUM_LEVELS,
    PRISTINE,
    Distortion,
    balanced_kinds,
    distort,
    distort_balanced,
    distort_batch,
    number_of,
)
from reiqa_jax.augment.quality_views import QualityViewConfig, make_quality_views
from reiqa_jax.augment.content import content_augment

__all__ = [
    "DISTORTIONS", "NAMES", "NUM_KINDS", "NUM_LEVELS", "PRISTINE", "Distortion",
    "balanced_kinds", "distort", "distort_balanced", "distort_batch", "number_of",
    "QualityViewConfig", "make_quality_views", "content_augment",
]
