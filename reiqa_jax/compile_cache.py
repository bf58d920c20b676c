"""JAX's persistent compilation cache, in the user's cache folder.

Extraction compiles one program per (bucket shape, batch size); with the
cache on, a second run on the same machine loads them instead of compiling.
The folder is ``$REIQA_JAX_CACHE_DIR`` when that is set (set it empty to
turn the cache off), else ``$XDG_CACHE_HOME/reiqa-jax/jax``, else
``~/.cache/reiqa-jax/jax``. A cache folder the process already configured
(``jax_compilation_cache_dir``) is left as it is.
"""
from __future__ import annotations

import os
from pathlib import Path

ENV = "REIQA_JAX_CACHE_DIR"
MIN_COMPILE_SECONDS = 0.1


def default_cache_dir() -> Path | None:
    """The cache folder to use, or None when ``$REIQA_JAX_CACHE_DIR`` is set empty."""
    if ENV in os.environ:
        value = os.environ[ENV].strip()
        return Path(value).expanduser() if value else None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "reiqa-jax" / "jax"


def enable_compile_cache(directory=None) -> str | None:
    """Turns JAX's persistent compilation cache on; returns the folder in use (None: off).

    directory: the folder (default :func:`default_cache_dir`). Does nothing
    when JAX already has a cache folder, and runs without a cache when the
    folder cannot be created.
    """
    import jax

    current = jax.config.jax_compilation_cache_dir
    if current:
        return current
    directory = Path(directory).expanduser() if directory else default_cache_dir()
    if directory is None:
        return None
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    jax.config.update("jax_compilation_cache_dir", str(directory))
    # JAX caches only programs that took a second or more to compile; a
    # ResNet-50 takes about that on CPU, less on a fast machine. Tiny eager
    # operations (model set-up) stay below MIN_COMPILE_SECONDS and uncached.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    return str(directory)
