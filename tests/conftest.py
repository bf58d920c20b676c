"""Suite-wide setup: keep JAX's persistent compilation cache out of the user's home.

``reiqa extract`` and ``FeatureExtractor`` turn the cache on
(:mod:`reiqa_jax.compile_cache`); during the tests it lives in a temporary
folder, shared by the test process and its subprocesses, removed at the end.
"""
import os
import shutil
import tempfile

from reiqa_jax.compile_cache import ENV

_CACHE = tempfile.mkdtemp(prefix="reiqa-jax-test-cache-")


def pytest_configure(config):
    os.environ[ENV] = _CACHE


def pytest_unconfigure(config):
    shutil.rmtree(_CACHE, ignore_errors=True)
