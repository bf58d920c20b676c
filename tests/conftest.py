"""Test-session set-up: two virtual CPU devices, so that the multi-device
code paths (shard_map steps, shuffle BN, batch splitting) run in-process.
Must happen before JAX initialises its backend."""
import os

os.environ.setdefault("JAX_NUM_CPU_DEVICES", "2")
