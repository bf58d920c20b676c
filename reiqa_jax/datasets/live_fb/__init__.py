"""The LiveFb builder (TFDS, manual download)."""
from reiqa_jax.datasets.live_fb.live_fb import LiveFb

__all__ = ["LiveFb"]
