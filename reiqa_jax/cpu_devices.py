"""Two CPU devices for inference commands, so that two programs run at once.

XLA's CPU backend runs one program at a time per device, and with YNNPACK's
convolutions (XLA's default on CPU) one ResNet forward pass does not keep
all cores busy. Two virtual CPU devices over the same cores run two programs
side by side (or the two halves of one program: :mod:`reiqa_jax.extract`
runs both encoders as one program over two devices), so the quality and
content encoders run at the same time instead of one after the other. Steps
compiled with XLA's own convolutions (``NO_YNNPACK`` in
:mod:`reiqa_jax.extract`) keep all cores busy on their own and gain little
from this; the steps that keep YNNPACK (large images, ``low_memory``) gain,
and it costs nothing. ``benchmarks/extract_devices.py`` measures it (figures
in ``benchmarks/RESULTS.md``).

:func:`use_cpu_devices` sets this up for ``reiqa extract`` / ``score`` /
``evaluate``; it must run before JAX initialises its backends and leaves a
device count the user chose (``JAX_NUM_CPU_DEVICES``, ``jax_num_cpu_devices``,
``--xla_force_host_platform_device_count``) alone. Accelerator machines are
unaffected (their encoders run on the accelerators), and training never
calls it (its per-device batch split is part of the recipe).
"""
from __future__ import annotations

import os

CPU_DEVICES = 2


def use_cpu_devices(count: int = CPU_DEVICES) -> bool:
    """Gives the CPU backend ``count`` devices; returns whether it did.

    Does nothing once JAX's backends are initialised or when the user set
    the CPU device count.
    """
    import jax
    from jax._src import xla_bridge

    if ("JAX_NUM_CPU_DEVICES" in os.environ
            or "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", "")
            or jax.config.jax_num_cpu_devices != -1
            or xla_bridge.backends_are_initialized()):
        return False
    jax.config.update("jax_num_cpu_devices", count)
    return True
