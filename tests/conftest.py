"""Suite-wide set-up, before JAX initialises its backend:

* two virtual CPU devices, so that the multi-device code paths (shard_map
  steps, shuffle BN, batch splitting) run in-process;
* JAX's persistent compilation cache in a temporary folder shared by the
  test processes (pytest-xdist workers inherit it from the controller) and
  the subprocesses they start (never the user's cache: ``reiqa extract`` /
  ``reiqa train`` turn the cache on, see :mod:`reiqa_jax.compile_cache`),
  removed at the end by the process that made it. Identical programs (the
  same tiny training step in several runs) compile once;
* the generated training pictures (``synthetic:N``, ``skimage``) in a
  temporary folder of the session too, never the user's cache.
"""
import os
import shutil
import tempfile

from reiqa_jax.compile_cache import ENV
from reiqa_jax.data.sources import SYNTHETIC_ENV

os.environ.setdefault("JAX_NUM_CPU_DEVICES", "2")
_OWNER = "REIQA_JAX_TEST_CACHE_OWNER"
if _OWNER not in os.environ:  # the controller (or a run without xdist)
    os.environ[ENV] = tempfile.mkdtemp(prefix="reiqa-jax-test-cache-")
    os.environ[SYNTHETIC_ENV] = tempfile.mkdtemp(prefix="reiqa-jax-test-pictures-")
    os.environ[_OWNER] = str(os.getpid())


def pytest_unconfigure(config):
    if os.environ.get(_OWNER) == str(os.getpid()):
        shutil.rmtree(os.environ[ENV], ignore_errors=True)
        shutil.rmtree(os.environ[SYNTHETIC_ENV], ignore_errors=True)
