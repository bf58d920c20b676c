"""Suite-wide set-up, before JAX initialises its backend:

* two virtual CPU devices, so that the multi-device code paths (shard_map
  steps, shuffle BN, batch splitting) run in-process;
* JAX's persistent compilation cache in a temporary folder shared by the
  test process and the subprocesses it starts (never the user's cache:
  ``reiqa extract`` / ``reiqa train`` turn the cache on, see
  :mod:`reiqa_jax.compile_cache`), removed at the end. Identical programs
  (the same tiny training step in several runs) compile once.
"""
import os
import shutil
import tempfile

from reiqa_jax.compile_cache import ENV

os.environ.setdefault("JAX_NUM_CPU_DEVICES", "2")
_CACHE = tempfile.mkdtemp(prefix="reiqa-jax-test-cache-")


def pytest_configure(config):
    os.environ[ENV] = _CACHE


def pytest_unconfigure(config):
    shutil.rmtree(_CACHE, ignore_errors=True)
