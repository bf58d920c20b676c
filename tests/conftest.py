"""Test-session set-up, before JAX initialises its backend:

* two virtual CPU devices, so that the multi-device code paths (shard_map
  steps, shuffle BN, batch splitting) run in-process;
* JAX's persistent compilation cache in a temporary folder shared by the
  session and the training processes it starts (never the user's cache):
  identical programs (the same tiny training step in several runs) compile
  once.
"""
import os
import tempfile

os.environ.setdefault("JAX_NUM_CPU_DEVICES", "2")
os.environ.setdefault("REIQA_TEST_CACHE",
                      os.path.join(tempfile.gettempdir(), f"reiqa-test-jax-cache-{os.getuid()}"))
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.environ["REIQA_TEST_CACHE"])
