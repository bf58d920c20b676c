"""JAX's persistent compilation cache for the ``reiqa`` commands.

Compiling the training step of a ResNet-50 takes minutes on a GPU and tens
of seconds on a CPU; with the cache a restarted run (after a preemption, a
crash, or simply the next run of the same config) loads the compiled
programs instead. Location, first match: ``JAX_COMPILATION_CACHE_DIR``
(JAX's own variable), ``REIQA_CACHE_DIR/jax``, ``XDG_CACHE_HOME/reiqa-jax/jax``,
``~/.cache/reiqa-jax/jax``. ``REIQA_COMPILATION_CACHE=0`` turns it off.
"""
from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path | None:
    if os.environ.get("REIQA_COMPILATION_CACHE", "1") == "0":
        return None
    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return Path(os.environ["JAX_COMPILATION_CACHE_DIR"])
    if os.environ.get("REIQA_CACHE_DIR"):
        return Path(os.environ["REIQA_CACHE_DIR"]) / "jax"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "reiqa-jax" / "jax"


def enable() -> Path | None:
    """Points JAX at the cache folder (created on demand); returns it, or None
    when disabled or the folder cannot be created (then nothing is cached)."""
    import jax

    folder = cache_dir()
    if folder is None:
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    jax.config.update("jax_compilation_cache_dir", str(folder))
    return folder
