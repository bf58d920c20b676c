"""Helpers shared by the augmentation tests: PSNR, uint8 <-> unit-float
conversions, cheap stand-ins for the 26 distortions, a compilation counter,
and sweeps of one op over levels and keys."""

import collections
import contextlib

import jax
import jax.numpy as jnp
import numpy as np
import skimage.data


def psnr(a, b):
    """PSNR in dB between two images in 0-255 units (inf when identical)."""
    mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    return np.inf if mse == 0 else 10 * np.log10(255.0**2 / mse)


def to_u8(x):
    """[0, 1] floats (numpy or jax) -> uint8, rounding to the nearest level."""
    return np.round(np.asarray(x, np.float64) * 255.0).astype(np.uint8)


def to_f32(u8):
    """uint8 pixels -> float32 jax array in [0, 1]."""
    return jnp.asarray(u8, jnp.float32) / 255.0


def assert_same_pixels(got, want, max_flips=1e-4):
    """The same op's output from two compilations (another jit, a switch, a
    traced level): equal, except that a rounding-boundary pixel may land one
    uint8 level (1/255) apart on at most ``max_flips`` of the elements. XLA
    does not promise bit-equal floats across fusions (jax 0.11.2 flipped 1 of
    294,912 noise pixels inside a switch); a wrong key, level or op changes
    far more than that, and by more than one level."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    diff = np.abs(got - want)
    assert diff.max(initial=0.0) <= 1.0 / 255 + 1e-6, f"largest difference {diff.max() * 255:.2f}/255"
    flips = int(np.count_nonzero(diff))
    assert flips <= max(1, max_flips * diff.size), f"{flips} of {diff.size} pixels differ"


def _standin(n):
    def op(key, image, level):
        lv = jnp.asarray(level, jnp.float32)
        gain = 1.0 - 0.012 * n * (lv + 1.0) / 5.0
        noise = jax.random.uniform(key, image.shape, minval=-1, maxval=1)
        out = image * gain + noise * 0.004 * (n % 4)
        return jnp.round(jnp.clip(out, 0.0, 1.0) * 255.0) / 255.0
    op.__name__ = f"standin_{n}"
    return op


# 26 cheap, kind- and level-dependent ops with keyed noise, on the uint8 grid:
# they test the dispatch and batching independently of the real distortions.
STANDINS = tuple(_standin(n) for n in range(1, 27))


# --- compilations -------------------------------------------------------------

_BACKEND_COMPILE = "/jax/core/compile/backend_compile_duration"


@contextlib.contextmanager
def count_compiles():
    """Counts the XLA compilations made while the block runs, per function.

    Yields a ``collections.Counter`` {function name: compilations}, keyed by
    the ``__name__`` of the jitted Python function (``jax.jit(f)`` counts
    under ``"f"``). It listens to jax.monitoring's backend-compile event,
    which JAX records for every program it compiles, also when the persistent
    compilation cache supplies the executable; in-memory caches are cleared
    on entry, so the first call in the block always counts one.
    """
    counts = collections.Counter()

    def listener(event, duration_secs, **kwargs):
        del duration_secs
        if event == _BACKEND_COMPILE:
            name = kwargs.get("fun_name", "")
            counts[name[4:-1] if name.startswith("jit(") else name] += 1

    jax.clear_caches()
    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield counts
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)


# --- sweeps of one op over levels and keys --------------------------------------

KEYS_PER_LEVEL = 4
# Level of each entry of a sweep: 0 0 0 0 1 1 1 1 ... 4 (20 entries).
LEVELS = np.repeat(np.arange(5), KEYS_PER_LEVEL).astype(np.int32)


def sweep_keys():
    """The key of each entry of a sweep (entry i: level LEVELS[i])."""
    return jax.random.split(jax.random.key(0), len(LEVELS))


def level_sweep(op, photo_u8):
    """``op`` on one photo at every level x KEYS_PER_LEVEL keys, jitted and
    vmapped: float32 numpy (20, H, W, 3), entry i at level LEVELS[i] with
    key sweep_keys()[i]."""
    image = to_f32(photo_u8)
    batch = jnp.broadcast_to(image, (len(LEVELS),) + image.shape)
    return np.asarray(jax.jit(jax.vmap(op))(sweep_keys(), batch, jnp.asarray(LEVELS)))


def check_traced_levels(op, photo_u8, swept, levels):
    """jit with a traced scalar level: one compilation serves every level and
    agrees with the vmapped sweep (``level_sweep``'s ``swept``); a Python int
    level (2, a constant in the trace) gives the same."""
    def traced_and_fixed(key, image, level):
        return op(key, image, level), op(key, image, 2)

    f = jax.jit(traced_and_fixed)
    image = to_f32(photo_u8)
    keys = sweep_keys()
    with count_compiles() as compiles:
        for lv in levels:
            i = lv * KEYS_PER_LEVEL
            assert_same_pixels(f(keys[i], image, jnp.int32(lv))[0], swept[i])
        i = 2 * KEYS_PER_LEVEL
        assert_same_pixels(f(keys[i], image, jnp.int32(0))[1], swept[i])
    assert compiles["traced_and_fixed"] == 1, compiles


def switch_dispatch(ops, photo_u8, entries):
    """As ``registry.distort_batch`` calls the ops: a scalar ``lax.switch`` per
    sample inside ``lax.map``. Op j runs on the photo with the key and level
    of sweep entry ``entries[j]``; returns float32 numpy (len(ops), H, W, 3)."""
    image = to_f32(photo_u8)

    @jax.jit
    def dispatch(kinds, keys, levels):
        return jax.lax.map(lambda a: jax.lax.switch(a[0], ops, a[1], image, a[2]),
                           (kinds, keys, levels))

    entries = np.asarray(entries)
    return np.asarray(dispatch(jnp.arange(len(ops)), sweep_keys()[entries],
                               jnp.asarray(LEVELS[entries])))


# --- photos, traced-jit wrappers, switch batches ---------------------------------

# 96x128 crops of scikit-image photos with texture, edges and flat areas.
PHOTO_CROPS = {
    "astronaut": (slice(40, 136), slice(130, 258)),
    "coffee": (slice(150, 246), slice(200, 328)),
    "chelsea": (slice(60, 156), slice(150, 278)),
    "rocket": (slice(200, 296), slice(150, 278)),
}


def photo_crops(*names):
    """{name: uint8 (96, 128, 3) crop of skimage.data.NAME()} (``PHOTO_CROPS``)."""
    return {name: getattr(skimage.data, name)()[PHOTO_CROPS[name]] for name in names}


def counted_jit(op):
    """jit(op) plus a counter of how many times it was traced."""
    count = {"traces": 0}

    def f(key, image, level):
        count["traces"] += 1
        return op(key, image, level)

    return jax.jit(f), count


def switch_over_levels(fns, image, key):
    """Every op of ``fns`` under one jitted program: ``lax.switch(kind, fns)``
    vmapped over 5 copies of ``image`` at traced levels 0..4 (keys split from
    ``key``). Checks that each output is a float32 batch in [0, 1] on the uint8
    grid; returns the outputs (one numpy (5, H, W, 3) per kind) and the keys."""
    batch = jnp.stack([image] * 5)
    keys = jax.random.split(key, 5)
    levels = jnp.arange(5, dtype=jnp.int32)

    @jax.jit
    def apply_all(kind, keys, batch, levels):
        return jax.vmap(lambda k, x, l: jax.lax.switch(kind, fns, k, x, l))(keys, batch, levels)

    outs = []
    for kind in range(len(fns)):
        out = np.asarray(apply_all(kind, keys, batch, levels))
        assert out.shape == batch.shape and out.dtype == np.float32
        assert np.all(np.isfinite(out)) and out.min() >= 0 and out.max() <= 1
        np.testing.assert_allclose(out * 255, np.round(out * 255), atol=1e-3)
        outs.append(out)
    return outs, keys
