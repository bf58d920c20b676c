"""Size buckets and memory-bounded batches for feature extraction.

XLA compiles one program per input shape. Images are therefore padded up to
a *bucket* shape (the masked encoder of :mod:`reiqa_jax.models.masked` keeps
their features exact), and images of one bucket share batches.

Bucket sizes form a geometric grid with ``per_octave`` steps per doubling:
between 2**k and 2**(k+1) the sizes are 2**k * (1 + j / per_octave). With
the default 4 a side grows by at most 25 % (on average about 8 %), and the
grid is closed under halving, so the half scale of a bucket (H // 2, W // 2)
is again a bucket. ``per_octave=0`` keeps every image at its own size.

A batch holds at most ``batch_pixels`` padded pixels per device (the memory
an encoder step needs is proportional to it) and at most ``per_device``
images per device. Batch sizes are powers of two times the device count, so
each bucket compiles for a few batch sizes at most; no image is repeated and
no slot is padded except to fill the last devices.
"""
from __future__ import annotations

MIN_SIZE = 32


def bucket_size(n: int, per_octave: int = 4) -> int:
    """The smallest grid size >= n (n itself when ``per_octave`` is 0)."""
    if n < 1:
        raise ValueError(f"size must be positive, got {n}")
    if per_octave == 0:
        return n
    if n <= MIN_SIZE:
        return MIN_SIZE
    octave = 1 << ((n - 1).bit_length() - 1)  # 2**k < n <= 2**(k+1)
    step = max(1, octave // per_octave)
    return octave + -(-(n - octave) // step) * step


def bucket_shape(height: int, width: int, per_octave: int = 4) -> tuple[int, int]:
    """The padded (H, W) of an image of (height, width)."""
    return bucket_size(height, per_octave), bucket_size(width, per_octave)


def largest_power_of_two(n: int) -> int:
    """The largest power of two <= n (n >= 1)."""
    return 1 << (n.bit_length() - 1)


def images_per_device(area: int, batch_pixels: int, per_device: int) -> int:
    """How many images of ``area`` padded pixels one device step takes (0: not even one)."""
    if area > batch_pixels:
        return 0
    return largest_power_of_two(max(1, min(per_device, batch_pixels // area)))


def split_batches(count: int, per_device: int, devices: int = 1) -> list[int]:
    """Batch sizes (slots, multiples of ``devices``) that hold ``count`` images.

    Full batches of ``per_device * devices`` first, then the rest as powers of
    two times ``devices``; only the last batch may have empty slots (fewer
    than ``devices``). ``per_device`` must be a power of two.
    """
    sizes = []
    full = per_device * devices
    while count >= full:
        sizes.append(full)
        count -= full
    while count >= devices:
        size = largest_power_of_two(count // devices) * devices
        sizes.append(size)
        count -= size
    if count:
        sizes.append(devices)
    return sizes
