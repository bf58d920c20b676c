"""Restatements of the official code, written by us from what it computes, for
parity tests and benchmarks (never used by a ``reiqa`` command).

* ``torch_model``: the released Re-IQA architecture in plain PyTorch (its
  state_dict is the released one), random weights and BatchNorm statistics,
  checkpoints in the released training layout;
* ``moco_torch``: one official training step (shuffle BN, MoCo, LARS) in PyTorch;
* ``dataset_torch``: the official loader's crops and crop swap;
* ``color``, ``blur_resize_jpeg``, ``noise_spatial``: the 26 official
  distortions in numpy / PIL / scipy / scikit-image, one ``ref_NAME`` each
  (:func:`official_ops`: ``ref_NAME(rng, image_u8, level)``).

The PyTorch modules need ``torch`` (the ``test`` extra of pyproject.toml).
"""
from __future__ import annotations


def official_ops() -> dict:
    """{distortion name: its official numpy statement ``ref_NAME(rng, image_u8, level)``}."""
    from reiqa_jax import augment
    from reiqa_jax.reference import blur_resize_jpeg, color, noise_spatial

    table = {}
    for name in augment.NAMES:
        for module in (color, blur_resize_jpeg, noise_spatial):
            if hasattr(module, f"ref_{name}"):
                table[name] = getattr(module, f"ref_{name}")
    return table
