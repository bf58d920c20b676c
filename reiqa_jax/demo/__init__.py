"""``reiqa demo``: a quality encoder trained here, measured on held-out photos, no download.

One module per job: ``photos`` (which bundled photo plays which role),
``kinds`` (distortion kinds with monotone levels), ``iqa_set`` (the labelled
set), ``classical`` (no-reference statistics), ``training`` (the run and the
encoders along its learning curve), ``measure`` (features, the protocol,
scores), ``report`` (JSON, plot, README table), ``run`` (the whole demo).
"""
from reiqa_jax.demo.run import run_demo

__all__ = ["run_demo"]
